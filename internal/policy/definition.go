package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Compile checks a definition (its mode, parameters and rule) and parses its rule.
func (d *Definition) Compile() (*Rule, error) {
	p := &d.Properties
	switch {
	case strings.EqualFold(p.Mode, ModeKeyVaultData):
		p.Mode = ModeKeyVaultData
	case strings.EqualFold(p.Mode, ModeIndexed):
		p.Mode = ModeIndexed
	case strings.EqualFold(p.Mode, ModeAll), p.Mode == "":
		p.Mode = ModeAll
	default:
		return nil, fmt.Errorf("properties.mode: %q is not All, Indexed or Microsoft.KeyVault.Data", p.Mode)
	}
	if len(p.Parameters) > 64 {
		return nil, fmt.Errorf("properties.parameters: at most 64 parameters")
	}
	for name, pd := range p.Parameters {
		if !validType(pd.Type) {
			return nil, fmt.Errorf("properties.parameters.%s.type: %q is not String, Integer, Float, Boolean, Array, Object or DateTime", name, pd.Type)
		}
		if pd.DefaultValue != nil {
			if err := checkParam(name, pd, pd.DefaultValue); err != nil {
				return nil, err
			}
		}
	}
	if len(p.PolicyRule) == 0 {
		return nil, fmt.Errorf("properties.policyRule: required")
	}
	r, err := ParseRule(p.PolicyRule)
	if err != nil {
		return nil, fmt.Errorf("properties.%v", err)
	}
	return r, nil
}

func validType(t string) bool {
	for _, v := range []string{"String", "Integer", "Float", "Boolean", "Array", "Object", "DateTime"} {
		if strings.EqualFold(t, v) {
			return true
		}
	}
	return false
}

// AppliesTo reports whether a definition of mode looks at resources of typ.
func AppliesTo(mode, typ string) bool {
	if mode == ModeKeyVaultData {
		return typ == TypeSecret
	}
	return typ == TypeVault
}

// Params resolves an assignment's parameter values ({"name": {"value": v}}) over the
// definition's defaults; every parameter without a default must be given, and values must
// have the declared type and be allowed.
func (d *Definition) Params(given map[string]ParamValue) (map[string]any, error) {
	out := map[string]any{}
	for name := range given {
		if _, ok := d.param(name); !ok {
			return nil, fmt.Errorf("parameters.%s: the definition has no such parameter", name)
		}
	}
	names := make([]string, 0, len(d.Properties.Parameters))
	for n := range d.Properties.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		pd := d.Properties.Parameters[name]
		v := pd.DefaultValue
		for k, g := range given {
			if strings.EqualFold(k, name) {
				v = g.Value
			}
		}
		if v == nil {
			return nil, fmt.Errorf("parameters.%s: required (the definition gives no default)", name)
		}
		if err := checkParam(name, pd, v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func (d *Definition) param(name string) (ParameterDef, bool) {
	for k, v := range d.Properties.Parameters {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return ParameterDef{}, false
}

// ParamValue is one assignment parameter.
type ParamValue struct {
	Value any `json:"value"`
}

func checkParam(name string, pd ParameterDef, v any) error {
	ok := true
	switch strings.ToLower(pd.Type) {
	case "string", "datetime":
		_, ok = v.(string)
	case "integer":
		n, isNum := v.(float64)
		ok = isNum && n == float64(int64(n))
	case "float":
		_, ok = v.(float64)
	case "boolean":
		_, ok = v.(bool)
	case "array":
		_, ok = v.([]any)
	case "object":
		_, ok = v.(map[string]any)
	}
	if !ok {
		return fmt.Errorf("parameters.%s: the value must be of type %s", name, pd.Type)
	}
	if len(pd.AllowedValues) > 0 {
		for _, a := range pd.AllowedValues {
			if compare(a, v) == 0 {
				return nil
			}
		}
		b, _ := json.Marshal(pd.AllowedValues)
		return fmt.Errorf("parameters.%s: %v is not one of the allowed values %s", name, v, b)
	}
	return nil
}
