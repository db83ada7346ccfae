package httpapi

import (
	"strings"
	"testing"
)

func TestParseGraphFilter(t *testing.T) {
	cases := []struct {
		raw  string
		ok   bool
		want string // the clauses as "prop op value" joined by " & "; "" for no filter
	}{
		{"", true, ""},
		{"appId eq 'abc'", true, "appid eq abc"},
		{"  AppId   EQ   'abc'  ", true, "appid eq abc"},
		{"displayName eq 'O''Brien'", true, "displayname eq O'Brien"},
		{"startswith(displayName,'sre')", true, "displayname startswith sre"},
		{"startsWith( displayName , 'sre' )", true, "displayname startswith sre"},
		{"servicePrincipalNames/any(c:c eq 'x')", true, "serviceprincipalnames any x"},
		{"servicePrincipalNames/any(x: x eq 'y')", true, "serviceprincipalnames any y"},
		{"servicePrincipalNames/any(c:d eq 'x')", false, ""},
		{"appId eq abc", false, ""},
		// az's `ad group create` looks for an existing group with a conjunction.
		{"displayName eq 'devs' and mailNickname eq 'devs'", true, "displayname eq devs & mailnickname eq devs"},
		{"displayName eq 'a'  AND  startswith(mailNickname,'b')", true, "displayname eq a & mailnickname startswith b"},
		{"displayName eq 'rock and roll'", true, "displayname eq rock and roll"},
		{"displayName eq 'it''s and' and appId eq 'x'", true, "displayname eq it's and & appid eq x"},
		{"appId eq 'a' and", false, ""},
		{"and appId eq 'a'", false, ""},
		{"appId eq 'a' or displayName eq 'b'", false, ""},
		{strings.Repeat("appId eq 'a' and ", 8) + "appId eq 'a'", false, ""}, // more than 8 clauses
		{"appId ne 'a'", false, ""},
		{"x", false, ""},
		{"appId eq 'a'') or (1 eq 1'", true, "appid eq a') or (1 eq 1"}, // one quoted literal
	}
	for _, c := range cases {
		f, ok := parseGraphFilter(c.raw)
		if ok != c.ok {
			t.Errorf("parseGraphFilter(%q) ok = %v, want %v", c.raw, ok, c.ok)
			continue
		}
		var got []string
		if f != nil {
			for _, cl := range f.clauses {
				got = append(got, cl.prop+" "+cl.op+" "+cl.value)
			}
		}
		if strings.Join(got, " & ") != c.want {
			t.Errorf("parseGraphFilter(%q) = %q, want %q", c.raw, strings.Join(got, " & "), c.want)
		}
	}
}

func TestGraphFilterMatch(t *testing.T) {
	obj := map[string][]string{"displayname": {"sre-team"}, "mailnickname": {"sre"}}
	props := func(p string) ([]string, bool) { v, ok := obj[p]; return v, ok }
	cases := []struct {
		filter       string
		matched, ok  bool
		unsupportedP string
	}{
		{"startswith(displayName,'SR')", true, true, ""}, // case-insensitive
		{"displayName eq 'sre-team' and mailNickname eq 'sre'", true, true, ""},
		{"displayName eq 'sre-team' and mailNickname eq 'ops'", false, true, ""},
		{"tags/any(c:c eq 'x')", false, false, "tags"},
		{"displayName eq 'nope' and tags/any(c:c eq 'x')", false, false, "tags"},
	}
	for _, c := range cases {
		f, ok := parseGraphFilter(c.filter)
		if !ok {
			t.Fatalf("parseGraphFilter(%q) failed", c.filter)
		}
		m, ok, bad := f.match(props)
		if m != c.matched || ok != c.ok || bad != c.unsupportedP {
			t.Errorf("%q: match = %v %v %q, want %v %v %q", c.filter, m, ok, bad, c.matched, c.ok, c.unsupportedP)
		}
	}
}
