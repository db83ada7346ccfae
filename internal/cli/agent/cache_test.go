package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheApply(t *testing.T) {
	const v1 = "0123456789abcdef0123456789abcdef"
	a := cacheKey{clientID: "c1", vault: "kv", name: "s"}
	aOld := cacheKey{clientID: "c1", vault: "kv", name: "s", version: v1}
	other := cacheKey{clientID: "c2", vault: "kv", name: "s"}
	otherOld := cacheKey{clientID: "c2", vault: "kv", name: "s", version: v1}
	elsewhere := cacheKey{clientID: "c1", vault: "kv", name: "t"}
	all := []cacheKey{a, aOld, other, otherOld, elsewhere}
	bogus := cacheKey{clientID: "c1", vault: "kv", name: "s", version: "ffffffffffffffffffffffffffffffff"}
	tests := []struct {
		name   string
		key    cacheKey
		status int
		kept   []cacheKey
		gone   []cacheKey
	}{
		{"ok", a, http.StatusOK, all, nil},
		{"latest not found: gone for everyone", a, http.StatusNotFound, []cacheKey{elsewhere}, []cacheKey{a, aOld, other, otherOld}},
		{"latest gone: gone for everyone", a, http.StatusGone, []cacheKey{elsewhere}, []cacheKey{a, aOld, other, otherOld}},
		{"version not found: that copy only", aOld, http.StatusNotFound, []cacheKey{a, other, otherOld, elsewhere}, []cacheKey{aOld}},
		{"version gone: that copy only", aOld, http.StatusGone, []cacheKey{a, other, otherOld, elsewhere}, []cacheKey{aOld}},
		{"a version nobody holds: nothing dropped", bogus, http.StatusNotFound, all, nil},
		{"forbidden", a, http.StatusForbidden, []cacheKey{other, otherOld, elsewhere}, []cacheKey{a, aOld}},
		{"unauthorized", a, http.StatusUnauthorized, []cacheKey{other, otherOld, elsewhere}, []cacheKey{a, aOld}},
		{"throttled", a, http.StatusTooManyRequests, all, nil},
		{"bad request", a, http.StatusBadRequest, all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			c := &secretCache{a: &Agent{now: func() time.Time { return now }}, cfg: CacheConfig{MaxEntries: 10},
				entries: map[cacheKey]*cacheEntry{}}
			for _, k := range all {
				c.entries[k] = &cacheEntry{body: []byte("old"), fetched: now.Add(-time.Minute), lastUsed: now.Add(-time.Minute)}
			}
			c.apply(tt.key, fetchResult{status: tt.status, body: []byte("new")})
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
			if tt.status == http.StatusOK && (string(c.entries[tt.key].body) != "new" || !c.entries[tt.key].fetched.Equal(now)) {
				t.Fatalf("the 200 did not replace the copy: %+v", c.entries[tt.key])
			}
		})
	}
}

// Only a secret's latest version and its versions by id are kept; the other routes under a
// secret are not its value.
func TestSecretPath(t *testing.T) {
	const v = "0123456789abcdef0123456789ABCDEF"
	tests := []struct {
		path          string
		cached        bool
		name, version string
	}{
		{"/secrets/db", true, "db", ""},
		{"/secrets/db/", true, "db", ""},
		{"/secrets/db-Pass-2/" + v, true, "db-Pass-2", v},
		{"/secrets/db/" + v + "/", true, "db", v},
		{"/secrets/" + strings.Repeat("a", 127), true, strings.Repeat("a", 127), ""},
		{"/secrets/db/versions", false, "", ""},
		{"/secrets/db/rotationpolicy", false, "", ""},
		{"/secrets/db/rotationstatus", false, "", ""},
		{"/secrets/db/pending", false, "", ""},
		{"/secrets/db/abc123", false, "", ""},
		{"/secrets/db/" + v + "0", false, "", ""},
		{"/secrets/db/" + strings.Repeat("g", 32), false, "", ""},
		{"/secrets/" + strings.Repeat("a", 128), false, "", ""},
		{"/secrets/db_pass", false, "", ""},
		{"/secrets", false, "", ""},
		{"/secrets/", false, "", ""},
		{"/deletedsecrets/db", false, "", ""},
	}
	for _, tt := range tests {
		m := secretPath.FindStringSubmatch(tt.path)
		if (m != nil) != tt.cached || (m != nil && (m[1] != tt.name || m[2] != tt.version)) {
			t.Errorf("secretPath(%q) = %q, want cached %v (%q, %q)", tt.path, m, tt.cached, tt.name, tt.version)
		}
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

// newHandlerCache is a cache in front of upstream, with "app-token" issued to c1 and
// "other-token" to c2 (both already holding upstream tokens, so no token request is made).
func newHandlerCache(t *testing.T, upstream http.Handler) *secretCache {
	t.Helper()
	srv := httptest.NewTLSServer(upstream)
	t.Cleanup(srv.Close)
	now := time.Now()
	a := &Agent{now: time.Now, issued: map[[32]byte]issuedToken{}, issuedFloor: 64}
	a.remember(tokenAnswer{AccessToken: "app-token", ClientID: "c1", ExpiresOn: strconv.FormatInt(now.Add(time.Hour).Unix(), 10)})
	a.remember(tokenAnswer{AccessToken: "other-token", ClientID: "c2", ExpiresOn: strconv.FormatInt(now.Add(time.Hour).Unix(), 10)})
	held := heldToken{resp: tokenAnswer{AccessToken: "upstream"}, expiresOn: now.Add(time.Hour)}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the fake's certificate names no vault
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}}
	t.Cleanup(tr.CloseIdleConnections)
	return &secretCache{a: a, cfg: CacheConfig{MaxEntries: 10, MaxStale: time.Hour}, upstream: &http.Client{Transport: tr},
		upstreamSuffix: "vault.test:8443", localSuffix: "vault.test", entries: map[cacheKey]*cacheEntry{},
		tokens: map[string]heldToken{"c1": held, "c2": held}}
}

// A secret's version list, rotation policy and an unknown version are passed through: nothing
// of them is kept, the list's nextLink points at the cache, and the 404 for a version nobody
// holds leaves the other identity's copy of the secret alone.
func TestCacheServeHTTPKeepsOnlySecrets(t *testing.T) {
	const version = "0123456789abcdef0123456789abcdef"
	var down atomic.Bool
	c := newHandlerCache(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Method != http.MethodGet {
			fmt.Fprint(w, `{}`)
			return
		}
		switch r.URL.Path {
		case "/secrets/db", "/secrets/db/":
			fmt.Fprint(w, `{"value":"hunter2","id":"https://kv1.vault.test:8443/secrets/db/`+version+`"}`)
		case "/secrets/db/versions":
			fmt.Fprint(w, `{"value":[{"id":"x"}],"nextLink":"https://kv1.vault.test:8443/secrets/db/versions?api-version=7.5&$skiptoken=p2"}`)
		case "/secrets/db/rotationpolicy":
			fmt.Fprint(w, `{"id":"https://kv1.vault.test:8443/secrets/db/rotationpolicy"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"SecretNotFound","message":"no"}}`)
		}
	}))
	get := func(token, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "https://kv1.vault.test:9443"+path+"?api-version=7.5", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("other-token", "/secrets/db"); rec.Code != http.StatusOK || rec.Header().Get(CacheHeader) != cacheFresh {
		t.Fatalf("the secret: HTTP %d %s %q", rec.Code, rec.Body, rec.Header().Get(CacheHeader))
	}
	held := cacheKey{clientID: "c2", vault: "kv1", name: "db"}
	if c.entries[held] == nil {
		t.Fatal("the secret was not kept")
	}

	rec := get("app-token", "/secrets/db/versions")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"nextLink":"https://kv1.vault.test:9443/secrets/db/versions?`) {
		t.Fatalf("the version list: HTTP %d %s", rec.Code, rec.Body)
	}
	if rec := get("app-token", "/secrets/db/rotationpolicy"); rec.Code != http.StatusOK {
		t.Fatalf("the rotation policy: HTTP %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/secrets/db/ffffffffffffffffffffffffffffffff", "/secrets/db/pending", "/secrets/db/nosuchversion"} {
		if rec := get("app-token", path); rec.Code != http.StatusNotFound {
			t.Fatalf("%s: HTTP %d %s", path, rec.Code, rec.Body)
		}
	}
	if len(c.entries) != 1 || c.entries[held] == nil {
		t.Fatalf("after the other routes the cache holds %v, want only %+v", c.entries, held)
	}

	// During an outage the kept secret is served; the list and the policy are not.
	down.Store(true)
	if rec := get("other-token", "/secrets/db"); rec.Code != http.StatusOK || rec.Header().Get(CacheHeader) != cacheStale {
		t.Fatalf("the secret in an outage: HTTP %d %s %q", rec.Code, rec.Body, rec.Header().Get(CacheHeader))
	}
	for _, path := range []string{"/secrets/db/versions", "/secrets/db/rotationpolicy"} {
		if rec := get("app-token", path); rec.Code == http.StatusOK || rec.Header().Get(CacheHeader) == cacheStale {
			t.Fatalf("%s in an outage: HTTP %d %s, served from a copy", path, rec.Code, rec.Body)
		}
	}

	// A successful write under the secret (disabling its version) drops its copies.
	down.Store(false)
	req := httptest.NewRequest("PATCH", "https://kv1.vault.test:9443/secrets/db/"+version+"?api-version=7.5", strings.NewReader(`{"attributes":{"enabled":false}}`))
	req.Header.Set("Authorization", "Bearer app-token")
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(c.entries) != 0 {
		t.Fatalf("after a PATCH of the version: HTTP %d, %d copies kept", rec.Code, len(c.entries))
	}
}

// A successful write anywhere under a secret's name drops its copies.
func TestSecretWrite(t *testing.T) {
	tests := map[string]string{
		"/secrets/db":                "db",
		"/secrets/db/0123abcd":       "db",
		"/secrets/db/rotationpolicy": "db",
		"/deletedsecrets/db":         "db",
		"/deletedsecrets/db/recover": "db",
		"/secrets/db_x":              "",
		"/secretsdb":                 "",
		"/keys/db":                   "",
		"/deletedsecrets/":           "",
	}
	for path, want := range tests {
		got := ""
		if m := secretWrite.FindStringSubmatch(path); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("secretWrite(%q) names %q, want %q", path, got, want)
		}
	}
}
