package agent

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCacheApply(t *testing.T) {
	a := cacheKey{clientID: "c1", vault: "kv", name: "s"}
	aOld := cacheKey{clientID: "c1", vault: "kv", name: "s", version: "v1"}
	other := cacheKey{clientID: "c2", vault: "kv", name: "s"}
	elsewhere := cacheKey{clientID: "c1", vault: "kv", name: "t"}
	tests := []struct {
		status int
		kept   []cacheKey
		gone   []cacheKey
	}{
		{http.StatusOK, []cacheKey{a, aOld, other, elsewhere}, nil},
		{http.StatusNotFound, []cacheKey{elsewhere}, []cacheKey{a, aOld, other}},
		{http.StatusForbidden, []cacheKey{other, elsewhere}, []cacheKey{a, aOld}},
		{http.StatusUnauthorized, []cacheKey{other, elsewhere}, []cacheKey{a, aOld}},
		{http.StatusTooManyRequests, []cacheKey{a, aOld, other, elsewhere}, nil},
		{http.StatusBadRequest, []cacheKey{a, aOld, other, elsewhere}, nil},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			c := &secretCache{a: &Agent{now: func() time.Time { return now }}, cfg: CacheConfig{MaxEntries: 10},
				entries: map[cacheKey]*cacheEntry{}}
			for _, k := range []cacheKey{a, aOld, other, elsewhere} {
				c.entries[k] = &cacheEntry{body: []byte("old"), fetched: now.Add(-time.Minute), lastUsed: now.Add(-time.Minute)}
			}
			c.apply(a, fetchResult{status: tt.status, body: []byte("new")})
			for _, k := range tt.kept {
				if c.entries[k] == nil {
					t.Fatalf("%+v was dropped", k)
				}
			}
			for _, k := range tt.gone {
				if c.entries[k] != nil {
					t.Fatalf("%+v was kept", k)
				}
			}
			if tt.status == http.StatusOK && (string(c.entries[a].body) != "new" || !c.entries[a].fetched.Equal(now)) {
				t.Fatalf("the 200 did not replace the copy: %+v", c.entries[a])
			}
		})
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := &secretCache{a: &Agent{now: func() time.Time { return now }}, cfg: CacheConfig{MaxEntries: 2}, entries: map[cacheKey]*cacheEntry{}}
	c.entries[cacheKey{name: "old"}] = &cacheEntry{lastUsed: now.Add(-time.Hour)}
	c.entries[cacheKey{name: "recent"}] = &cacheEntry{lastUsed: now.Add(-time.Second)}
	c.apply(cacheKey{name: "new"}, fetchResult{status: http.StatusOK})
	if len(c.entries) != 2 || c.entries[cacheKey{name: "old"}] != nil || c.entries[cacheKey{name: "new"}] == nil {
		t.Fatalf("entries after eviction: %v", c.entries)
	}
}

func TestReachable(t *testing.T) {
	for status, want := range map[int]bool{0: false, 502: false, 503: false, 504: false, 200: true, 404: true, 403: true, 500: true, 429: true} {
		if got := (fetchResult{status: status}).reachable(); got != want {
			t.Errorf("reachable(%d) = %v", status, got)
		}
	}
}

func TestRewriteNextLink(t *testing.T) {
	tests := []struct {
		name, body, ctype, want string
	}{
		{"points at the cache", `{"value":[],"nextLink":"https://kv.vault.localhost:8443/secrets?api-version=7.5&$skiptoken=x"}`, "application/json",
			`"nextLink":"https://kv.vault.localhost:9443/secrets?api-version=7.5\u0026$skiptoken=x"`},
		{"another host is left alone", `{"nextLink":"https://evil.example/secrets"}`, "application/json", `"nextLink":"https://evil.example/secrets"`},
		{"not json", `plain nextLink`, "text/plain", `plain nextLink`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{Header: http.Header{"Content-Type": []string{tt.ctype}}, Body: io.NopCloser(bytes.NewReader([]byte(tt.body))), ContentLength: int64(len(tt.body))}
			if err := rewriteNextLink(resp, "https://kv.vault.localhost:8443", "https://kv.vault.localhost:9443"); err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(got), tt.want) || resp.ContentLength != int64(len(got)) {
				t.Fatalf("got %s (length %d), want it to contain %s", got, resp.ContentLength, tt.want)
			}
		})
	}
}

func TestRememberAndIssuedTo(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := &Agent{now: func() time.Time { return now }, issued: map[[32]byte]issuedToken{}, issuedFloor: 1}
	a.remember(tokenAnswer{AccessToken: "live", ClientID: "c1", ExpiresOn: "1700003600"})
	a.remember(tokenAnswer{AccessToken: "expired", ClientID: "c1", ExpiresOn: "1699999999"})
	a.remember(tokenAnswer{AccessToken: "noclient", ExpiresOn: "1700003600"})
	a.remember(tokenAnswer{AccessToken: "trigger-prune", ClientID: "c2", ExpiresOn: "1700003600"})
	tests := []struct {
		token  string
		client string
		ok     bool
	}{
		{"live", "c1", true}, {"trigger-prune", "c2", true}, {"expired", "", false}, {"noclient", "", false}, {"never-issued", "", false}, {"liv", "", false},
	}
	for _, tt := range tests {
		if got, ok := a.issuedTo(tt.token); ok != tt.ok || got != tt.client {
			t.Errorf("issuedTo(%q) = %q, %v", tt.token, got, ok)
		}
	}
	if len(a.issued) != 3 {
		t.Fatalf("the expired token was not pruned: %d kept", len(a.issued))
	}
}
