package httpapi

import "testing"

func TestParseGraphFilter(t *testing.T) {
	cases := []struct {
		raw            string
		ok             bool
		prop, op, want string
	}{
		{"", true, "", "", ""},
		{"appId eq 'abc'", true, "appid", "eq", "abc"},
		{"  AppId   EQ   'abc'  ", true, "appid", "eq", "abc"},
		{"displayName eq 'O''Brien'", true, "displayname", "eq", "O'Brien"},
		{"startswith(displayName,'sre')", true, "displayname", "startswith", "sre"},
		{"startsWith( displayName , 'sre' )", true, "displayname", "startswith", "sre"},
		{"servicePrincipalNames/any(c:c eq 'x')", true, "serviceprincipalnames", "any", "x"},
		{"servicePrincipalNames/any(x: x eq 'y')", true, "serviceprincipalnames", "any", "y"},
		{"servicePrincipalNames/any(c:d eq 'x')", false, "", "", ""},
		{"appId eq abc", false, "", "", ""},
		{"appId eq 'a' and displayName eq 'b'", false, "", "", ""},
		{"appId ne 'a'", false, "", "", ""},
		{"x", false, "", "", ""},
		{"appId eq 'a'') or (1 eq 1'", true, "appid", "eq", "a') or (1 eq 1"}, // one quoted literal
	}
	for _, c := range cases {
		f, ok := parseGraphFilter(c.raw)
		if ok != c.ok {
			t.Errorf("parseGraphFilter(%q) ok = %v, want %v", c.raw, ok, c.ok)
			continue
		}
		if !ok || c.prop == "" {
			if f != nil {
				t.Errorf("parseGraphFilter(%q) = %+v, want none", c.raw, f)
			}
			continue
		}
		if f.prop != c.prop || f.op != c.op || f.value != c.want {
			t.Errorf("parseGraphFilter(%q) = %+v, want %s %s %q", c.raw, f, c.prop, c.op, c.want)
		}
	}
	f, _ := parseGraphFilter("startswith(displayName,'SR')")
	props := func(p string) ([]string, bool) { return []string{"sre-team"}, p == "displayname" }
	if m, ok := f.match(props); !m || !ok {
		t.Errorf("startswith is case-insensitive: %v %v", m, ok)
	}
	f, _ = parseGraphFilter("tags/any(c:c eq 'x')")
	if _, ok := f.match(props); ok {
		t.Error("an unknown property matched")
	}
}
