package httpapi

import (
	"net/url"
	"testing"
)

func TestQueryValue_MatchesURLValues(t *testing.T) {
	queries := []string{
		"", "api-version=7.4", "a=1&api-version=7.5&api-version=7.6", "api-version", "api-version=",
		"api%2Dversion=7.4", "api-version=7%2E4", "api-version=a+b", "x=%zz&api-version=1",
		"api-version=%zz&api-version=2", "&&api-version=3&", "maxresults=2&$skiptoken=abc",
		"api-version=1;x=2",
	}
	for _, q := range queries {
		for _, key := range []string{"api-version", "maxresults", "$skiptoken"} {
			want := ""
			if vals, err := url.ParseQuery(q); err == nil || vals != nil {
				want = vals.Get(key)
			}
			if got := queryValue(q, key); got != want {
				t.Errorf("queryValue(%q, %q) = %q, want %q", q, key, got, want)
			}
		}
	}
}
