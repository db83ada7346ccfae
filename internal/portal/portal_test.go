package portal

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/config"
)

func newTestPortal(t *testing.T) *Portal {
	t.Helper()
	p, err := New(Options{PublicURL: "https://localhost:8443", TenantID: "t", SubscriptionID: "s",
		Config: config.PortalConfig{IdleTimeout: 15 * time.Minute, AbsoluteTimeout: 8 * time.Hour, RevealFor: 30 * time.Second, RecentSignIn: 5 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every answer, whatever its route or outcome, carries the security headers; cross-origin
// posts are refused before any handler runs; posts without a session are refused.
func TestPortal_HeadersAndRefusals(t *testing.T) {
	p := newTestPortal(t)
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"signed-out page", "GET", "/portal/vaults", nil, http.StatusFound},
		{"root", "GET", "/portal", nil, http.StatusFound},
		{"sign-in page", "GET", "/portal/signin", nil, http.StatusOK},
		{"static", "GET", "/portal/static/portal.js", nil, http.StatusOK},
		{"missing static", "GET", "/portal/static/nope.js", nil, http.StatusNotFound},
		{"callback without login cookie", "GET", "/portal/callback?code=x&state=y", nil, http.StatusBadRequest},
		{"callback with an error", "GET", "/portal/callback?error=access_denied&error_description=no", nil, http.StatusBadRequest},
		{"cross-site post", "POST", "/portal/vaults/kv1/secrets/new", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin post", "POST", "/portal/vaults/kv1/secrets/new", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site sign-out", "POST", "/portal/logout", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-origin post without a session", "POST", "/portal/vaults/kv1/secrets/new", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusUnauthorized},
		{"reveal without a session", "POST", "/portal/vaults/kv1/secrets/n/versions/1/reveal", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusUnauthorized},
		// A name Key Vault does not allow is no page at all, before any session or API call.
		{"a vault name with an @", "GET", "/portal/vaults/kvtest%40kvprod/secrets", nil, http.StatusNotFound},
		{"a vault name with a raw @", "GET", "/portal/vaults/kvtest@kvprod", nil, http.StatusNotFound},
		{"a vault name with a colon", "GET", "/portal/vaults/kvprod.vault.localhost:8443%2F/secrets", nil, http.StatusNotFound},
		{"a vault name with --", "GET", "/portal/vaults/kv--prod/secrets", nil, http.StatusNotFound},
		{"a vault name too short", "GET", "/portal/vaults/kv/events", nil, http.StatusNotFound},
		{"a secret name with an underscore", "GET", "/portal/vaults/kv1/secrets/db_pass", nil, http.StatusNotFound},
		{"a deleted secret name with an @", "POST", "/portal/vaults/kv1/deleted-secrets/a%40b/recover", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusNotFound},
		{"a valid vault and secret name", "GET", "/portal/vaults/kv-Prod1/secrets/db-pass", nil, http.StatusFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "https://localhost:8443"+c.path, strings.NewReader("name=x&value=y"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("%s %s = %d, want %d", c.method, c.path, w.Code, c.want)
			}
			for k, v := range map[string]string{"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
				"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if strings.Contains(w.Body.String(), "value=y") {
				t.Error("the answer echoes the posted value")
			}
		})
	}
}

// A failed sign-in is explained in the portal's words for the OAuth error code; the answer's
// error_description, which anyone can put in a link, is never shown.
func TestCallbackErrorShowsNoDescription(t *testing.T) {
	p := newTestPortal(t)
	const lure = "Your account is locked. Call +1 555 0100 to unlock it"
	cases := []struct{ code, want, notWant string }{
		{"access_denied", "refused or cancelled", ""},
		{"server_error", "(OAuth error server_error)", ""},
		{"something_new", "the issuer refused it. Sign in again. (OAuth error something_new)", ""},
		{"Call +1 555 0100", "the issuer refused it.", "555"},
	}
	for _, c := range cases {
		q := url.Values{"error": {c.code}, "error_description": {lure}}
		r := httptest.NewRequest("GET", "https://localhost:8443/portal/callback?"+q.Encode(), nil)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		body := html.UnescapeString(w.Body.String())
		if w.Code != http.StatusBadRequest || !strings.Contains(body, c.want) || strings.Contains(body, "locked") ||
			(c.notWant != "" && strings.Contains(body, c.notWant)) {
			t.Errorf("error=%q: HTTP %d, page %q; want %q and no description", c.code, w.Code, body, c.want)
		}
	}
}

// The data plane is called only at the host of a vault name Key Vault allows.
func TestVaultHost(t *testing.T) {
	p := newTestPortal(t)
	p.opts.VaultURI = func(name string) string { return "https://" + strings.ToLower(name) + ".vault.localhost:8443" }
	cases := map[string]string{
		"kvProd":          "kvprod.vault.localhost:8443",
		"kvtest@kvprod":   "",
		"kvtest:x@kvprod": "",
		"kv/../kvprod":    "",
		"kv--prod":        "",
		"kv":              "",
		"":                "",
	}
	for in, want := range cases {
		if got := p.vaultHost(in); got != want {
			t.Errorf("vaultHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// The page to return to after sign-in stays inside the portal.
func TestSafeNext(t *testing.T) {
	cases := map[string]string{
		"/portal/vaults/x/secrets?filter=a": "/portal/vaults/x/secrets?filter=a",
		"":                                  defaultLanding,
		"https://evil.example/portal/":      defaultLanding,
		"//evil.example/portal/":            defaultLanding,
		"/portal/\\evil":                    defaultLanding,
		"/portal/callback?code=x":           defaultLanding,
		"/portal/login":                     defaultLanding,
		"/other":                            defaultLanding,
		"/portal/../sys/seal-status":        defaultLanding,
		"/portal/vaults/../../sys/seal-status?a=1":  defaultLanding,
		"/portal/%2e%2e/sys/seal-status":            defaultLanding,
		"/portal/%2E%2E/sys/seal-status":            defaultLanding,
		"/portal/.%2e/sys/seal-status":              defaultLanding,
		"/portal/..":                                defaultLanding,
		"/portal/vaults/../login":                   defaultLanding,
		"/portal/./callback?code=x":                 defaultLanding,
		"/portal/./vaults//x/secrets?filter=a/../b": "/portal/vaults/x/secrets?filter=a/../b",
		"/portal/vaults/x/../y/secrets":             "/portal/vaults/y/secrets",
		"/portal/vaults/":                           "/portal/vaults/",
		"/portal/vaults?":                           "/portal/vaults?",
	}
	for in, want := range cases {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// A session ends at the idle or the absolute timeout, whichever comes first.
func TestExpired(t *testing.T) {
	p := newTestPortal(t)
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		created, seen, now time.Time
		want               string
	}{
		{t0, t0, t0.Add(time.Minute), ""},
		{t0, t0, t0.Add(15 * time.Minute), "idle"},
		{t0, t0.Add(7*time.Hour + 55*time.Minute), t0.Add(8 * time.Hour), "absolute"},
		{t0, t0.Add(7 * time.Hour), t0.Add(7*time.Hour + 14*time.Minute), ""},
	}
	for i, c := range cases {
		if got := p.expired(&session{Created: c.created, LastSeen: c.seen}, c.now); got != c.want {
			t.Errorf("case %d: expired = %q, want %q", i, got, c.want)
		}
	}
}

// Tags and IP rules: every bad input gets a message.
func TestVaultFormCheck(t *testing.T) {
	good := vaultForm{Name: "my-vault1", NewGroup: "rg", Location: "eastus", Retention: 90, PublicAccess: "selected", IPRules: "203.0.113.0/24\n198.51.100.7", Tags: "env=prod"}
	if errs := good.check(); len(errs) != 0 {
		t.Fatalf("good form: %v", errs)
	}
	cases := []struct {
		field string
		edit  func(*vaultForm)
	}{
		{"name", func(f *vaultForm) { f.Name = "1vault" }},
		{"name", func(f *vaultForm) { f.Name = "my--vault" }},
		{"name", func(f *vaultForm) { f.Name = "ab" }},
		{"group", func(f *vaultForm) { f.NewGroup = "" }},
		{"new_group", func(f *vaultForm) { f.NewGroup = "bad/name" }},
		{"location", func(f *vaultForm) { f.Location = "mars" }},
		{"retention", func(f *vaultForm) { f.Retention = 6 }},
		{"public_access", func(f *vaultForm) { f.PublicAccess = "some" }},
		{"ip_rules", func(f *vaultForm) { f.IPRules = "example.com" }},
		{"tags", func(f *vaultForm) { f.Tags = "novalue" }},
	}
	for _, c := range cases {
		f := good
		c.edit(&f)
		if errs := f.check(); errs[c.field] == "" {
			t.Errorf("%+v: no error for %s (%v)", f, c.field, errs)
		}
	}
}

// Rotation durations read as words; anything that is not a whole-unit ISO-8601 duration is
// shown as the API answered it.
func TestDurationWords(t *testing.T) {
	cases := map[string]string{
		"P30D":    "30 days",
		"P1D":     "1 day",
		"P3M":     "3 months",
		"PT3M":    "3 minutes",
		"PT48H":   "48 hours",
		"P1Y10D":  "1 year, 10 days",
		"P2W":     "2 weeks",
		"":        "",
		"P":       "P",
		"30 days": "30 days",
		"P1.5D":   "P1.5D",
	}
	for in, want := range cases {
		if got := durationWords(in); got != want {
			t.Errorf("durationWords(%q) = %q, want %q", in, got, want)
		}
	}
}

// A URL is shown without what may carry a credential.
func TestBaseURL(t *testing.T) {
	cases := map[string]string{
		"https://hooks.example.com/rotate":                     "https://hooks.example.com/rotate",
		"https://user:pw@hooks.example.com/rotate?code=s3cr3t": "https://hooks.example.com/rotate",
		"https://hooks.example.com/r#frag":                     "https://hooks.example.com/r",
		"":                                                     "",
		"not a url":                                            "(not a URL)",
	}
	for in, want := range cases {
		if got := baseURL(in); got != want {
			t.Errorf("baseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The audit blade continues with the token of the API's next link, whatever its spelling.
func TestSkipTokenOf(t *testing.T) {
	cases := map[string]string{
		"https://localhost:8443/x/auditRecords?api-version=2026-01-01&%24skipToken=abc": "abc",
		"https://localhost:8443/x?$skiptoken=def":                                       "def",
		"":                                 "",
		"https://localhost:8443/x?limit=5": "",
	}
	for in, want := range cases {
		if got := skipTokenOf(in); got != want {
			t.Errorf("skipTokenOf(%q) = %q, want %q", in, got, want)
		}
	}
}
