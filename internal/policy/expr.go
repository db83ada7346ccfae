package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// An expression is a template function call tree: "[addDays(field('x'), parameters('n'))]".
type expr struct {
	kind    exprKind
	name    string  // a call's function (lower case), a property's name
	display string  // a call's function as written
	args    []*expr // a call's arguments; [0] is the object of a property or index
	str     string
	num     float64
}

type exprKind int

const (
	eCall exprKind = iota
	eString
	eNumber
	eProperty
	eIndex
)

func parseExpr(s string) (*expr, error) {
	if len(s) > MaxExprLen {
		return nil, fmt.Errorf("an expression is longer than %d characters", MaxExprLen)
	}
	p := &exprParser{src: s[1 : len(s)-1]}
	e, err := p.parse(0)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", s, err)
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("expression %q: unexpected %q", s, p.src[p.pos:])
	}
	return e, nil
}

type exprParser struct {
	src string
	pos int
}

func (p *exprParser) space() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *exprParser) peek() byte {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *exprParser) parse(depth int) (*expr, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("calls nest deeper than %d", MaxDepth)
	}
	e, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch p.peek() {
		case '.':
			p.pos++
			name := p.ident()
			if name == "" {
				return nil, errors.New("a property name must follow '.'")
			}
			e = &expr{kind: eProperty, name: name, args: []*expr{e}}
		case '[':
			p.pos++
			idx, err := p.parse(depth + 1)
			if err != nil {
				return nil, err
			}
			if p.peek() != ']' {
				return nil, errors.New("']' expected")
			}
			p.pos++
			e = &expr{kind: eIndex, args: []*expr{e, idx}}
		default:
			return e, nil
		}
	}
}

func (p *exprParser) ident() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || p.pos > start && c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *exprParser) primary(depth int) (*expr, error) {
	switch c := p.peek(); {
	case c == '\'':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.src) {
				return nil, errors.New("unterminated string")
			}
			if p.src[p.pos] == '\'' {
				if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				return &expr{kind: eString, str: b.String()}, nil
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && (p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '.') {
			p.pos++
		}
		n, err := strconv.ParseFloat(p.src[start:p.pos], 64)
		if err != nil || math.IsInf(n, 0) {
			return nil, fmt.Errorf("bad number %q", p.src[start:p.pos])
		}
		return &expr{kind: eNumber, num: n}, nil
	}
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("a function call, a 'string' or a number is expected at %q", p.src[p.pos:])
	}
	if p.peek() != '(' {
		return nil, fmt.Errorf("'(' expected after %s", name)
	}
	p.pos++
	call := &expr{kind: eCall, name: strings.ToLower(name), display: name}
	if p.peek() == ')' {
		p.pos++
		return call, nil
	}
	for {
		a, err := p.parse(depth + 1)
		if err != nil {
			return nil, err
		}
		call.args = append(call.args, a)
		switch p.peek() {
		case ',':
			p.pos++
		case ')':
			p.pos++
			return call, nil
		default:
			return nil, fmt.Errorf("',' or ')' expected in %s(...)", name)
		}
	}
}

// evalCtx is one evaluation: the resource, parameters, clock, the element a count is at, and a
// step budget.
type evalCtx struct {
	env     *Env
	current any // the array element inside a count's where
	steps   int
}

var errTooManySteps = fmt.Errorf("the rule takes more than %d evaluation steps", MaxEvalSteps)

func (c *evalCtx) step() error {
	if c.steps++; c.steps > MaxEvalSteps {
		return errTooManySteps
	}
	return nil
}

// value is v with any expression evaluated.
func (c *evalCtx) value(v any) (any, error) {
	if e, ok := v.(*expr); ok {
		return c.eval(e)
	}
	return v, nil
}

func (c *evalCtx) eval(e *expr) (any, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	switch e.kind {
	case eString:
		return e.str, nil
	case eNumber:
		return e.num, nil
	case eProperty:
		obj, err := c.eval(e.args[0])
		if err != nil {
			return nil, err
		}
		m, _ := obj.(map[string]any)
		for k, v := range m {
			if strings.EqualFold(k, e.name) {
				return v, nil
			}
		}
		return nil, nil
	case eIndex:
		obj, err := c.eval(e.args[0])
		if err != nil {
			return nil, err
		}
		idx, err := c.eval(e.args[1])
		if err != nil {
			return nil, err
		}
		switch o := obj.(type) {
		case []any:
			if n, ok := idx.(float64); ok && n >= 0 && int(n) < len(o) {
				return o[int(n)], nil
			}
		case map[string]any:
			if s, ok := idx.(string); ok {
				for k, v := range o {
					if strings.EqualFold(k, s) {
						return v, nil
					}
				}
			}
		}
		return nil, nil
	}
	args := make([]any, len(e.args))
	if e.name != "if" { // if evaluates only the branch it takes
		for i, a := range e.args {
			v, err := c.eval(a)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
	}
	return c.call(e, args)
}

func want(e *expr, n int) error {
	if len(e.args) != n {
		return fmt.Errorf("%s() takes %d arguments, not %d", e.name, n, len(e.args))
	}
	return nil
}

// TimeFormat is how dates are written in resources and returned by utcNow and addDays.
const TimeFormat = "2006-01-02T15:04:05Z"

func (c *evalCtx) call(e *expr, args []any) (any, error) {
	switch e.name {
	case "parameters":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		name, _ := args[0].(string)
		for k, v := range c.env.Params {
			if strings.EqualFold(k, name) {
				return v, nil
			}
		}
		return nil, fmt.Errorf("parameters('%s'): no such parameter", name)
	case "field":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		alias, _ := args[0].(string)
		return c.env.Resource.Field(alias), nil
	case "current":
		if len(e.args) > 1 {
			return nil, fmt.Errorf("current() takes at most 1 argument")
		}
		el, ok := c.current.(countElement)
		if !ok {
			return nil, nil // outside a count
		}
		if len(args) == 1 {
			alias, _ := args[0].(string)
			v, _ := c.currentField(alias)
			return v, nil
		}
		return el.value, nil
	case "utcnow":
		return c.env.Now.UTC().Format(TimeFormat), nil
	case "adddays":
		if err := want(e, 2); err != nil {
			return nil, err
		}
		t, ok := asTime(args[0])
		n, isNum := asNumber(args[1])
		if !ok || !isNum || math.Abs(n) > 1e6 {
			return nil, nil // a missing date stays missing
		}
		return t.Add(time.Duration(n * float64(24*time.Hour))).UTC().Format(TimeFormat), nil
	case "if":
		if err := want(e, 3); err != nil {
			return nil, err
		}
		cond, err := c.eval(e.args[0])
		if err != nil {
			return nil, err
		}
		b, _ := cond.(bool)
		if b {
			return c.eval(e.args[1])
		}
		return c.eval(e.args[2])
	case "empty":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		return isEmpty(args[0]), nil
	case "equals":
		if err := want(e, 2); err != nil {
			return nil, err
		}
		return compare(args[0], args[1]) == 0, nil
	case "less", "lessorequals", "greater", "greaterorequals":
		if err := want(e, 2); err != nil {
			return nil, err
		}
		return ordered(e.name, args[0], args[1]), nil
	case "not":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		b, _ := args[0].(bool)
		return !b, nil
	case "and", "or":
		if len(args) < 1 {
			return nil, fmt.Errorf("%s() takes at least 1 argument", e.name)
		}
		res := e.name == "and"
		for _, a := range args {
			b, _ := a.(bool)
			if e.name == "and" {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	case "concat":
		var b strings.Builder
		for _, a := range args {
			b.WriteString(toString(a))
			if b.Len() > MaxExprLen*4 {
				return nil, errors.New("concat(): result too long")
			}
		}
		return b.String(), nil
	case "tolower":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		return strings.ToLower(toString(args[0])), nil
	case "toupper":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		return strings.ToUpper(toString(args[0])), nil
	case "length":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		switch a := args[0].(type) {
		case string:
			return float64(len(a)), nil
		case []any:
			return float64(len(a)), nil
		case map[string]any:
			return float64(len(a)), nil
		}
		return float64(0), nil
	case "string":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		return toString(args[0]), nil
	case "int":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		n, ok := asNumber(args[0])
		if !ok {
			return nil, fmt.Errorf("int(): %v is not a number", args[0])
		}
		return math.Trunc(n), nil
	case "bool":
		if err := want(e, 1); err != nil {
			return nil, err
		}
		switch a := args[0].(type) {
		case bool:
			return a, nil
		case string:
			return strings.EqualFold(a, "true"), nil
		case float64:
			return a != 0, nil
		}
		return false, nil
	case "coalesce":
		for _, a := range args {
			if a != nil {
				return a, nil
			}
		}
		return nil, nil
	case "contains":
		if err := want(e, 2); err != nil {
			return nil, err
		}
		return containsValue(args[0], args[1]), nil
	case "padleft":
		if len(args) != 3 {
			return nil, errors.New("padLeft() takes 3 arguments")
		}
		s, pad := toString(args[0]), toString(args[2])
		n, _ := asNumber(args[1])
		if pad == "" || n > 1024 {
			return s, nil
		}
		for len(s) < int(n) {
			s = pad[:1] + s
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s() is not a supported function", e.name)
}
