// Package policy evaluates Azure Policy rules: the JSON condition language (allOf, anyOf, not,
// field/value/count with equals, like, in, exists, less, greater and the rest) and the
// template expressions inside it ("[addDays(utcNow(), parameters('days'))]"), the subset Key
// Vault's built-in definitions use, plus the built-in definitions themselves. It is pure: no
// store, no clock (the caller passes now), no I/O. Parsing and evaluation are bounded in depth
// and steps, so a hostile custom definition cannot exhaust the server.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Bounds on what a rule may be.
const (
	MaxDepth       = 32   // nested conditions, and nested calls in an expression
	MaxNodes       = 512  // conditions in one rule
	MaxExprLen     = 4096 // characters of one expression
	MaxEvalSteps   = 20000
	maxCountValues = 1024 // elements a count walks
)

// Rule is a parsed policyRule: if the condition holds for a resource, the effect applies.
type Rule struct {
	cond   *node
	effect string // literal or expression
	// Details is "then.details" as written (Modify's operations), for the caller.
	Details json.RawMessage
}

type nodeKind int

const (
	kAll nodeKind = iota
	kAny
	kNot
	kLeaf
)

type node struct {
	kind     nodeKind
	children []*node
	// A leaf: the left side is a field alias, a value expression or a count.
	field   string
	value   any // literal or *expr
	isValue bool
	count   *countSpec
	op      string
	target  any // literal or *expr
}

type countSpec struct {
	field string // an array alias with [*]
	where *node  // nil: count every element
}

// operators and whether they take their target as is.
var operators = map[string]bool{
	"equals": true, "notequals": true, "like": true, "notlike": true, "contains": true, "notcontains": true,
	"in": true, "notin": true, "containskey": true, "notcontainskey": true, "less": true, "lessorequals": true,
	"greater": true, "greaterorequals": true, "exists": true,
}

// ParseRule parses a policyRule object ({"if": {...}, "then": {"effect": ...}}).
func ParseRule(raw []byte) (*Rule, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("policyRule: %v", err)
	}
	ifRaw, ok := lookupFold(top, "if")
	if !ok {
		return nil, errors.New("policyRule: the if condition is required")
	}
	thenRaw, ok := lookupFold(top, "then")
	if !ok {
		return nil, errors.New("policyRule: then is required")
	}
	var then map[string]json.RawMessage
	if err := json.Unmarshal(thenRaw, &then); err != nil {
		return nil, fmt.Errorf("policyRule.then: %v", err)
	}
	effRaw, ok := lookupFold(then, "effect")
	var effect string
	if !ok || json.Unmarshal(effRaw, &effect) != nil || effect == "" {
		return nil, errors.New("policyRule.then.effect: a string is required")
	}
	if isExpr(effect) {
		if _, err := parseExpr(effect); err != nil {
			return nil, fmt.Errorf("policyRule.then.effect: %v", err)
		}
	}
	p := &parser{}
	var cond any
	if err := json.Unmarshal(ifRaw, &cond); err != nil {
		return nil, fmt.Errorf("policyRule.if: %v", err)
	}
	n, err := p.cond(cond, "policyRule.if", 0)
	if err != nil {
		return nil, err
	}
	r := &Rule{cond: n, effect: effect}
	if d, ok := lookupFold(then, "details"); ok {
		r.Details = d
	}
	return r, nil
}

func lookupFold(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

type parser struct{ nodes int }

func (p *parser) cond(v any, path string, depth int) (*node, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%s: conditions nest deeper than %d", path, MaxDepth)
	}
	if p.nodes++; p.nodes > MaxNodes {
		return nil, fmt.Errorf("%s: more than %d conditions", path, MaxNodes)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a condition is an object", path)
	}
	lower := map[string]any{}
	for k, x := range m {
		lower[strings.ToLower(k)] = x
	}
	for _, logical := range []string{"allof", "anyof"} {
		if list, ok := lower[logical]; ok {
			if len(lower) != 1 {
				return nil, fmt.Errorf("%s: %s stands alone in its object", path, logical)
			}
			items, ok := list.([]any)
			if !ok || len(items) == 0 {
				return nil, fmt.Errorf("%s.%s: a non-empty array of conditions is required", path, logical)
			}
			n := &node{kind: kAll}
			if logical == "anyof" {
				n.kind = kAny
			}
			for i, it := range items {
				c, err := p.cond(it, fmt.Sprintf("%s.%s[%d]", path, logical, i), depth+1)
				if err != nil {
					return nil, err
				}
				n.children = append(n.children, c)
			}
			return n, nil
		}
	}
	if inner, ok := lower["not"]; ok {
		if len(lower) != 1 {
			return nil, fmt.Errorf("%s: not stands alone in its object", path)
		}
		c, err := p.cond(inner, path+".not", depth+1)
		if err != nil {
			return nil, err
		}
		return &node{kind: kNot, children: []*node{c}}, nil
	}
	n := &node{kind: kLeaf}
	sides := 0
	if f, ok := lower["field"]; ok {
		s, isStr := f.(string)
		if !isStr || s == "" {
			return nil, fmt.Errorf("%s.field: an alias is required", path)
		}
		if isExpr(s) {
			return nil, fmt.Errorf("%s.field: an alias, not an expression", path)
		}
		n.field, sides = s, sides+1
	}
	if v, ok := lower["value"]; ok {
		lit, err := literalOrExpr(v, path+".value")
		if err != nil {
			return nil, err
		}
		n.value, n.isValue, sides = lit, true, sides+1
	}
	if c, ok := lower["count"]; ok {
		cs, err := p.count(c, path+".count", depth)
		if err != nil {
			return nil, err
		}
		n.count, sides = cs, sides+1
	}
	if sides != 1 {
		return nil, fmt.Errorf("%s: a condition needs exactly one of field, value and count (or allOf, anyOf, not)", path)
	}
	var ops []string
	for k := range lower {
		if operators[k] {
			ops = append(ops, k)
		} else if k != "field" && k != "value" && k != "count" {
			return nil, fmt.Errorf("%s: %q is not a condition operator", path, k)
		}
	}
	if len(ops) != 1 {
		sort.Strings(ops)
		return nil, fmt.Errorf("%s: exactly one operator is required (found %d)", path, len(ops))
	}
	n.op = ops[0]
	t, err := literalOrExpr(lower[n.op], path+"."+n.op)
	if err != nil {
		return nil, err
	}
	n.target = t
	return n, nil
}

func (p *parser) count(v any, path string, depth int) (*countSpec, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: an object with field (and where) is required", path)
	}
	cs := &countSpec{}
	for k, x := range m {
		switch strings.ToLower(k) {
		case "field":
			s, ok := x.(string)
			if !ok || !strings.Contains(s, "[*]") {
				return nil, fmt.Errorf("%s.field: an array alias ending in [*] is required", path)
			}
			cs.field = s
		case "where":
			w, err := p.cond(x, path+".where", depth+1)
			if err != nil {
				return nil, err
			}
			cs.where = w
		default:
			return nil, fmt.Errorf("%s: %q is not supported in a count (field and where are)", path, k)
		}
	}
	if cs.field == "" {
		return nil, fmt.Errorf("%s.field: required", path)
	}
	return cs, nil
}

// literalOrExpr parses a string expression or keeps a JSON literal as it is.
func literalOrExpr(v any, path string) (any, error) {
	s, ok := v.(string)
	if !ok || !isExpr(s) {
		if ok && strings.HasPrefix(s, "[[") { // an escaped literal "[...": drop one [
			return s[1:], nil
		}
		return v, nil
	}
	e, err := parseExpr(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return e, nil
}

// isExpr reports whether s is a template expression: "[...]" but not "[[...".
func isExpr(s string) bool {
	return len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && !strings.HasPrefix(s, "[[")
}
