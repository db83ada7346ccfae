package httpapi

import (
	"regexp"
	"strings"
)

// graphFilter is the one OData $filter clause the directory's lists answer: "prop eq 'v'",
// "startswith(prop,'v')", or "coll/any(c:c eq 'v')" (what az sends for --spn). Property names
// match case-insensitively, as Graph's do; values are compared as Graph compares them (ids and
// names case-insensitively).
type graphFilter struct {
	prop  string // lower-case; for any(), the collection
	op    string // "eq", "startswith" or "any"
	value string
}

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
	unq := func(s string) string { return strings.ReplaceAll(s, "''", "'") }
	if m := filterEq.FindStringSubmatch(raw); m != nil {
		return &graphFilter{prop: strings.ToLower(m[1]), op: "eq", value: unq(m[2])}, true
	}
	if m := filterStartsWith.FindStringSubmatch(raw); m != nil {
		return &graphFilter{prop: strings.ToLower(m[1]), op: "startswith", value: unq(m[2])}, true
	}
	if m := filterAny.FindStringSubmatch(raw); m != nil && strings.EqualFold(m[2], m[3]) {
		return &graphFilter{prop: strings.ToLower(m[1]), op: "any", value: unq(m[4])}, true
	}
	return nil, false
}

// match reports whether an object whose properties props returns passes f; a property the
// object lacks is "unsupported" (ok false).
func (f *graphFilter) match(props func(name string) ([]string, bool)) (matched, ok bool) {
	vals, ok := props(f.prop)
	if !ok {
		return false, false
	}
	for _, v := range vals {
		switch f.op {
		case "eq", "any":
			if strings.EqualFold(v, f.value) {
				return true, true
			}
		case "startswith":
			if len(v) >= len(f.value) && strings.EqualFold(v[:len(f.value)], f.value) {
				return true, true
			}
		}
	}
	return false, true
}
