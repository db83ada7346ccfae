package httpapi

import (
	"regexp"
	"strings"
)

// graphFilter is the OData $filter the directory's lists answer: one clause, or clauses joined
// by "and" (az's `ad group create` asks "displayName eq '…' and mailNickname eq '…'"). A clause
// is "prop eq 'v'", "startswith(prop,'v')", or "coll/any(c:c eq 'v')" (what az sends for
// --spn). Property names match case-insensitively, as Graph's do; values are compared as Graph
// compares them (ids and names case-insensitively).
type graphFilter struct {
	clauses []graphClause
}

// graphClause is one comparison of a filter.
type graphClause struct {
	prop  string // lower-case; for any(), the collection
	op    string // "eq", "startswith" or "any"
	value string
}

// maxFilterClauses bounds a conjunction, so a filter costs at most this many comparisons per
// object.
const maxFilterClauses = 8

var (
	filterEq         = regexp.MustCompile(`(?i)^\s*([a-z][a-z0-9]*)\s+eq\s+'((?:[^']|'')*)'\s*$`)
	filterStartsWith = regexp.MustCompile(`(?i)^\s*startswith\(\s*([a-z][a-z0-9]*)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$`)
	filterAny        = regexp.MustCompile(`(?i)^\s*([a-z][a-z0-9]*)/any\(\s*([a-z][a-z0-9]*)\s*:\s*([a-z][a-z0-9]*)\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$`)
)

// parseGraphFilter reads raw (already query-unescaped: "+" and %20 both arrive as spaces); ok
// is false for a filter it does not understand. An empty raw is no filter.
func parseGraphFilter(raw string) (f *graphFilter, ok bool) {
	if strings.TrimSpace(raw) == "" {
		return nil, true
	}
	parts := splitAnd(raw)
	if len(parts) > maxFilterClauses {
		return nil, false
	}
	f = &graphFilter{}
	for _, p := range parts {
		c, ok := parseGraphClause(p)
		if !ok {
			return nil, false
		}
		f.clauses = append(f.clauses, c)
	}
	return f, true
}

// splitAnd splits s at each " and " (any case, any run of spaces) outside a quoted literal.
func splitAnd(s string) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			quoted = !quoted // '' inside a literal toggles twice
		case !quoted && isSpace(s[i]) && i+4 < len(s) && strings.EqualFold(s[i+1:i+4], "and") && isSpace(s[i+4]):
			parts = append(parts, s[start:i])
			start = i + 4
			i += 3
		}
	}
	return append(parts, s[start:])
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }

func parseGraphClause(raw string) (graphClause, bool) {
	unq := func(s string) string { return strings.ReplaceAll(s, "''", "'") }
	if m := filterEq.FindStringSubmatch(raw); m != nil {
		return graphClause{prop: strings.ToLower(m[1]), op: "eq", value: unq(m[2])}, true
	}
	if m := filterStartsWith.FindStringSubmatch(raw); m != nil {
		return graphClause{prop: strings.ToLower(m[1]), op: "startswith", value: unq(m[2])}, true
	}
	if m := filterAny.FindStringSubmatch(raw); m != nil && strings.EqualFold(m[2], m[3]) {
		return graphClause{prop: strings.ToLower(m[1]), op: "any", value: unq(m[4])}, true
	}
	return graphClause{}, false
}

// match reports whether an object whose properties props returns passes every clause of f; a
// property the object lacks is "unsupported" (ok false, bad names it).
func (f *graphFilter) match(props func(name string) ([]string, bool)) (matched, ok bool, bad string) {
	matched = true
	for _, c := range f.clauses {
		m, ok := c.match(props)
		if !ok {
			return false, false, c.prop
		}
		matched = matched && m
	}
	return matched, true, ""
}

func (c graphClause) match(props func(name string) ([]string, bool)) (matched, ok bool) {
	vals, ok := props(c.prop)
	if !ok {
		return false, false
	}
	for _, v := range vals {
		switch c.op {
		case "eq", "any":
			if strings.EqualFold(v, c.value) {
				return true, true
			}
		case "startswith":
			if len(v) >= len(c.value) && strings.EqualFold(v[:len(c.value)], c.value) {
				return true, true
			}
		}
	}
	return false, true
}
