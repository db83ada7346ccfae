package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Resource is what "field" reads: each alias, lower-cased, with its value (string, float64,
// bool, []any, map[string]any or absent). "type", "name", "location" and "tags" are fields
// too; "tags['x']" and "tags.x" read one tag.
type Resource map[string]any

// Field is the value of alias (nil when the resource has none).
func (r Resource) Field(alias string) any {
	a := strings.ToLower(alias)
	if v, ok := r[a]; ok {
		return v
	}
	for _, p := range []string{"tags['", "tags[", "tags."} {
		if rest, ok := strings.CutPrefix(a, p); ok {
			name := strings.TrimSuffix(strings.TrimSuffix(rest, "]"), "'")
			tags, _ := r["tags"].(map[string]any)
			for k, v := range tags {
				if strings.EqualFold(k, name) {
					return v
				}
			}
			return nil
		}
	}
	return nil
}

// Env is what a rule is evaluated against.
type Env struct {
	Resource Resource
	// Params are the assignment's parameter values over the definition's defaults.
	Params map[string]any
	Now    time.Time
}

// Result is a rule's outcome for one resource.
type Result struct {
	// Matched: the if condition holds, so the effect applies (the resource is non-compliant
	// for Audit and Deny).
	Matched bool
	// Effect is the rule's effect, resolved and spelled as Azure does (Audit, Deny, Disabled,
	// Modify, AuditIfNotExists, ...).
	Effect string
	// Reason names the conditions that held, without the resource's values.
	Reason string
}

// Effect resolves the rule's effect alone (Disabled rules are not evaluated further).
func (r *Rule) Effect(env *Env) (string, error) {
	c := &evalCtx{env: env}
	v, err := c.value(literalEffect(r.effect))
	if err != nil {
		return "", err
	}
	return canonicalEffect(toString(v)), nil
}

func literalEffect(s string) any {
	if isExpr(s) {
		e, err := parseExpr(s)
		if err == nil {
			return e
		}
	}
	return s
}

var effects = []string{"Audit", "Deny", "Disabled", "Modify", "AuditIfNotExists", "DeployIfNotExists", "Append", "DenyAction", "Manual"}

func canonicalEffect(s string) string {
	for _, e := range effects {
		if strings.EqualFold(e, s) {
			return e
		}
	}
	return s
}

// Eval evaluates the rule for env's resource.
func (r *Rule) Eval(env *Env) (Result, error) {
	eff, err := r.Effect(env)
	if err != nil {
		return Result{}, err
	}
	res := Result{Effect: eff}
	if eff == "Disabled" {
		return res, nil
	}
	c := &evalCtx{env: env}
	ok, why, err := c.node(r.cond)
	if err != nil {
		return Result{}, err
	}
	res.Matched = ok
	if ok {
		res.Reason = strings.Join(why, "; ")
	}
	return res, nil
}

// node evaluates n; when it holds, why lists the leaf conditions that made it so.
func (c *evalCtx) node(n *node) (bool, []string, error) {
	if err := c.step(); err != nil {
		return false, nil, err
	}
	switch n.kind {
	case kAll:
		var why []string
		for _, ch := range n.children {
			ok, w, err := c.node(ch)
			if err != nil || !ok {
				return false, nil, err
			}
			why = append(why, w...)
		}
		return true, why, nil
	case kAny:
		for _, ch := range n.children {
			ok, w, err := c.node(ch)
			if err != nil {
				return false, nil, err
			}
			if ok {
				return true, w, nil
			}
		}
		return false, nil, nil
	case kNot:
		ok, _, err := c.node(n.children[0])
		if err != nil {
			return false, nil, err
		}
		if !ok {
			return true, []string{"not(" + describe(n.children[0]) + ")"}, nil
		}
		return false, nil, nil
	}
	left, err := c.left(n)
	if err != nil {
		return false, nil, err
	}
	target, err := c.value(n.target)
	if err != nil {
		return false, nil, err
	}
	ok, err := apply(n.op, left, target)
	if err != nil || !ok {
		return false, nil, err
	}
	return true, []string{describe(n)}, nil
}

func (c *evalCtx) left(n *node) (any, error) {
	switch {
	case n.count != nil:
		return c.countOf(n.count)
	case n.isValue:
		return c.value(n.value)
	}
	if c.current != nil {
		if v, ok := c.currentField(n.field); ok {
			return v, nil
		}
	}
	return c.env.Resource.Field(n.field), nil
}

// countOf counts the elements of an array alias for which where holds.
func (c *evalCtx) countOf(cs *countSpec) (any, error) {
	items, _ := c.env.Resource.Field(cs.field).([]any)
	if len(items) > maxCountValues {
		items = items[:maxCountValues]
	}
	if cs.where == nil {
		return float64(len(items)), nil
	}
	saved := c.current
	defer func() { c.current = saved }()
	n := 0
	for _, it := range items {
		c.current = countElement{alias: cs.field, value: it}
		ok, _, err := c.node(cs.where)
		if err != nil {
			return nil, err
		}
		if ok {
			n++
		}
	}
	return float64(n), nil
}

type countElement struct {
	alias string
	value any
}

// currentField reads an alias relative to the element a count is at.
func (c *evalCtx) currentField(alias string) (any, bool) {
	el, ok := c.current.(countElement)
	if !ok {
		return nil, false
	}
	if strings.EqualFold(alias, el.alias) {
		return el.value, true
	}
	prefix := el.alias + "."
	if len(alias) > len(prefix) && strings.EqualFold(alias[:len(prefix)], prefix) {
		m, _ := el.value.(map[string]any)
		return lookupPath(m, alias[len(prefix):]), true
	}
	return nil, false
}

func lookupPath(m map[string]any, path string) any {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		var next any
		for k, v := range mm {
			if strings.EqualFold(k, part) {
				next = v
			}
		}
		cur = next
	}
	return cur
}

func describe(n *node) string {
	var left string
	switch {
	case n.count != nil:
		left = "count(" + n.count.field + ")"
	case n.isValue:
		left = "value " + show(n.value)
	default:
		left = "field '" + n.field + "'"
	}
	return left + " " + opName(n.op) + " " + show(n.target)
}

func show(v any) string {
	if e, ok := v.(*expr); ok {
		return "[" + exprText(e) + "]"
	}
	switch x := v.(type) {
	case string:
		return "'" + x + "'"
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func exprText(e *expr) string {
	switch e.kind {
	case eString:
		return "'" + e.str + "'"
	case eNumber:
		return strconv.FormatFloat(e.num, 'f', -1, 64)
	case eProperty:
		return exprText(e.args[0]) + "." + e.name
	case eIndex:
		return exprText(e.args[0]) + "[" + exprText(e.args[1]) + "]"
	}
	parts := make([]string, len(e.args))
	for i, a := range e.args {
		parts[i] = exprText(a)
	}
	return e.display + "(" + strings.Join(parts, ", ") + ")"
}

var opNames = map[string]string{"notequals": "notEquals", "notlike": "notLike", "notcontains": "notContains", "notin": "notIn",
	"containskey": "containsKey", "notcontainskey": "notContainsKey", "lessorequals": "lessOrEquals", "greaterorequals": "greaterOrEquals"}

func opName(op string) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return op
}

// apply is one operator.
func apply(op string, left, target any) (bool, error) {
	switch op {
	case "equals":
		return compare(left, target) == 0, nil
	case "notequals":
		return compare(left, target) != 0, nil
	case "like":
		return like(toString(left), toString(target)) && left != nil, nil
	case "notlike":
		return !like(toString(left), toString(target)) || left == nil, nil
	case "contains":
		return containsValue(left, target), nil
	case "notcontains":
		return !containsValue(left, target), nil
	case "in", "notin":
		list, ok := target.([]any)
		if !ok {
			return false, fmt.Errorf("%s needs an array", opName(op))
		}
		in := false
		for _, x := range list {
			if compare(left, x) == 0 {
				in = true
				break
			}
		}
		return in == (op == "in"), nil
	case "containskey", "notcontainskey":
		m, _ := left.(map[string]any)
		key := toString(target)
		has := false
		for k := range m {
			if strings.EqualFold(k, key) {
				has = true
			}
		}
		return has == (op == "containskey"), nil
	case "exists":
		want := true
		switch t := target.(type) {
		case bool:
			want = t
		case string:
			want = strings.EqualFold(t, "true")
		}
		return (left != nil) == want, nil
	case "less", "lessorequals", "greater", "greaterorequals":
		return ordered(op, left, target), nil
	}
	return false, fmt.Errorf("%q is not an operator", op)
}

// compare is 0 when a and b are equal as Azure Policy compares: strings without regard to
// case, numbers by value (a numeric string equals its number), booleans; nil equals only nil
// and "".
func compare(a, b any) int {
	if a == nil || b == nil {
		if a == b || a == "" || b == "" {
			return 0
		}
		return 1
	}
	if x, ok := asNumber(a); ok {
		if y, ok := asNumber(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	if aStr && bStr {
		return strings.Compare(strings.ToLower(sa), strings.ToLower(sb))
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok && ba == bb {
			return 0
		}
		if aStr || bStr {
			return compare(fmt.Sprint(a), fmt.Sprint(b))
		}
		return 1
	}
	if _, ok := b.(bool); ok && aStr {
		return compare(sa, fmt.Sprint(b))
	}
	return 1
}

// ordered compares dates as dates, numbers as numbers, strings without regard to case;
// anything else (a missing value included) is not ordered and gives false.
func ordered(op string, a, b any) bool {
	var c int
	ta, okA := asTime(a)
	tb, okB := asTime(b)
	switch {
	case okA && okB:
		c = ta.Compare(tb)
	default:
		x, okX := asNumber(a)
		y, okY := asNumber(b)
		sa, isA := a.(string)
		sb, isB := b.(string)
		switch {
		case okX && okY:
			c = 0
			if x < y {
				c = -1
			} else if x > y {
				c = 1
			}
		case isA && isB:
			c = strings.Compare(strings.ToLower(sa), strings.ToLower(sb))
		default:
			return false
		}
	}
	switch op {
	case "less":
		return c < 0
	case "lessorequals":
		return c <= 0
	case "greater":
		return c > 0
	}
	return c >= 0
}

func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x)
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		n, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return n, err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
	}
	return 0, false
}

func asTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func containsValue(container, item any) bool {
	switch c := container.(type) {
	case string:
		return strings.Contains(strings.ToLower(c), strings.ToLower(toString(item)))
	case []any:
		for _, x := range c {
			if compare(x, item) == 0 {
				return true
			}
		}
	case map[string]any:
		for k := range c {
			if strings.EqualFold(k, toString(item)) {
				return true
			}
		}
	}
	return false
}

// like matches s against a pattern where * is any run of characters, without regard to case.
func like(s, pattern string) bool {
	s, pattern = strings.ToLower(s), strings.ToLower(pattern)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
