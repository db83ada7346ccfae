package test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/portal"
	"github.com/strongroom/strongroom/internal/testenv"
)

// The web portal through a real server process, driven over HTTPS by a plain client with a
// cookie jar (the browser tests in portal_browser_test.go drive Chromium): sign-in through the
// issuer's authorization-code flow, the security headers and cookie, cross-origin refusals,
// callback refusals, sign-out and idle expiry, and read-only enforcement.

// Built-in role definition ids the portal tests assign.
const (
	roleContributor   = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	roleUserAccess    = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	roleReader        = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	roleSecretsOfficr = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	roleSecretsUser   = "4633458b-17de-408a-b874-0445c86b69e6"
)

// portalEnv is a server with an admin able to make users and role assignments.
type portalEnv struct {
	*env
	g        *graphClient
	graphTok string
	armTok   string
}

func newPortalEnv(t *testing.T, opts *testenv.Options) *portalEnv {
	t.Helper()
	return portalEnvOf(t, newEnv(t, opts))
}

// portalEnvOf is e with the admin's Graph and ARM tokens (e may be a cluster node's).
func portalEnvOf(t *testing.T, e *env) *portalEnv {
	t.Helper()
	g := &graphClient{t: t, hc: e.hc, origin: e.publicURL}
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	return &portalEnv{env: e, g: g, graphTok: g.token(e.cred), armTok: tok.Token}
}

// user creates a directory user and returns its object id.
func (pe *portalEnv) user(t *testing.T, upn, password string) string {
	t.Helper()
	name, _, _ := strings.Cut(upn, "@")
	u := pe.g.must(pe.graphTok, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"`+name+`","mailNickname":"`+name+`",
		"userPrincipalName":"`+upn+`","passwordProfile":{"password":"`+password+`","forceChangePasswordNextSignIn":false}}`, 201)
	return u["id"].(string)
}

// assign gives principal a built-in role at scope (a path such as /subscriptions/{s}).
func (pe *portalEnv) assign(t *testing.T, scope, role, principal string) {
	t.Helper()
	body := `{"properties":{"roleDefinitionId":"/subscriptions/` + pe.srv.Admin.SubscriptionID + `/providers/Microsoft.Authorization/roleDefinitions/` + role +
		`","principalId":"` + principal + `"}}`
	req, _ := http.NewRequest("PUT", pe.publicURL+scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+"?api-version=2022-04-01", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pe.armTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := pe.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("assigning %s at %s: %d %s", role, scope, resp.StatusCode, raw)
	}
}

func (pe *portalEnv) sub() string { return "/subscriptions/" + pe.srv.Admin.SubscriptionID }

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t      *testing.T
	hc     *http.Client
	origin string
}

func (pe *portalEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	hc := pe.srv.HTTPClient()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, hc: hc, origin: pe.publicURL}
}

// do sends a request; same-origin requests carry what a browser sends (Sec-Fetch-Site).
func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = b.origin + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(raw)
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// authorize runs the sign-in up to the issuer's redirect and returns the callback URL.
func (b *browser) authorize(upn, password string) string {
	b.t.Helper()
	resp, _ := b.do("GET", "/portal/login?next=/portal/vaults", nil, map[string]string{"Sec-Fetch-Site": "none"})
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("GET /portal/login = %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	resp, page := b.do("GET", loc, nil, nil)
	if resp.StatusCode != 200 {
		b.t.Fatalf("GET authorize = %d %s", resp.StatusCode, page)
	}
	form := url.Values{"username": {upn}, "password": {password}}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	u, _ := url.Parse(loc)
	resp, page = b.do("POST", u.Path, form, nil)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("POST authorize = %d %s", resp.StatusCode, page)
	}
	return resp.Header.Get("Location")
}

// signIn signs upn in and returns the session cookie's Set-Cookie line.
func (b *browser) signIn(upn, password string) string {
	b.t.Helper()
	cb := b.authorize(upn, password)
	resp, page := b.do("GET", cb, nil, nil)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("GET callback = %d %s", resp.StatusCode, page)
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, portal.SessionCookie+"=") {
			return c
		}
	}
	b.t.Fatal("the callback set no session cookie")
	return ""
}

func cookieValue(setCookie string) string {
	v, _, _ := strings.Cut(strings.TrimPrefix(setCookie, portal.SessionCookie+"="), ";")
	return v
}

// wantPortalHeaders checks the headers every portal response carries.
func wantPortalHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if !strings.HasPrefix(h.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("%s: no Strict-Transport-Security", what)
	}
}

// TestPortal_Security: headers on every kind of portal response, the session cookie's
// attributes and a new id at each sign-in, cross-origin posts refused with nothing changed,
// callbacks with a wrong state, without the login cookie (no PKCE verifier) or with a replayed
// code refused, sign-out making the old cookie useless, and a read-only person who sees no
// write controls and whose forged post is refused by the API's authorization.
func TestPortal_Security(t *testing.T) {
	pe := newPortalEnv(t, nil)
	alice := pe.user(t, "alice@contoso.com", "Passw0rd!!")
	bob := pe.user(t, "bob@contoso.com", "Passw0rd!!")
	pe.assign(t, pe.sub(), roleContributor, alice)
	pe.assign(t, pe.sub(), roleSecretsOfficr, alice)
	pe.assign(t, pe.sub(), roleReader, bob)
	pe.assign(t, pe.sub(), roleSecretsUser, bob)
	admin := pe.createVault(t, "portal-rg", "portalsec", nil)
	if _, err := admin.SetSecret(context.Background(), "existing", secretParams("v1"), nil); err != nil {
		t.Fatal(err)
	}

	b := pe.browser(t)
	// Unauthenticated: a page sends the browser to sign in; the landing page has the headers.
	resp, _ := b.do("GET", "/portal/vaults", nil, nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/signin") {
		t.Fatalf("GET /portal/vaults signed out = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantPortalHeaders(t, "redirect to sign-in", resp.Header)

	first := b.signIn("alice@contoso.com", "Passw0rd!!")
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(first, attr) {
			t.Errorf("session cookie %q lacks %s", redactCookie(first), attr)
		}
	}
	if strings.Contains(strings.ToLower(first), "domain=") {
		t.Errorf("session cookie names a Domain: %q", redactCookie(first))
	}
	// Every page, including a refusal the API made (alice is no Audit Reader), has the headers.
	pages := []struct {
		path string
		want int
	}{
		{"/portal/vaults", 200}, {"/portal/vaults/new", 200}, {"/portal/vaults/portalsec", 200}, {"/portal/vaults/portalsec/secrets", 200},
		{"/portal/vaults/portalsec/secrets/new", 200}, {"/portal/vaults/portalsec/secrets/existing", 200},
		{"/portal/vaults/portalsec/secrets/existing/rotation", 200}, {"/portal/vaults/portalsec/deleted-secrets", 200},
		{"/portal/vaults/portalsec/access", 200}, {"/portal/vaults/portalsec/networking", 200}, {"/portal/vaults/portalsec/delete", 200},
		{"/portal/vaults/portalsec/access/permission-model", 200}, {"/portal/vaults/portalsec/events", 200},
		{"/portal/vaults/portalsec/policy", 200}, {"/portal/vaults/portalsec/audit", 403},
		{"/portal/static/portal.css", 200}, {"/portal/static/portal.js", 200}, {"/portal/nothing-here", 404},
	}
	for _, pg := range pages {
		resp, body := b.do("GET", pg.path, nil, nil)
		if resp.StatusCode != pg.want {
			t.Errorf("GET %s = %d, want %d: %s", pg.path, resp.StatusCode, pg.want, snippet(body))
		}
		wantPortalHeaders(t, "GET "+pg.path, resp.Header)
	}
	// A vault name Key Vault does not allow is no page: "x@portalsec" would otherwise become
	// the URL https://x@portalsec.vault.../ and list portalsec's secrets under another heading.
	for _, path := range []string{"/portal/vaults/kvtest%40portalsec/secrets", "/portal/vaults/kvtest@portalsec/secrets/existing",
		"/portal/vaults/portalsec/secrets/existing%40x", "/portal/vaults/kvtest%40portalsec"} {
		resp, body := b.do("GET", path, nil, nil)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "existing") || strings.Contains(body, "kvtest@") {
			t.Errorf("GET %s = %d: %s", path, resp.StatusCode, snippet(body))
		}
		wantPortalHeaders(t, "GET "+path, resp.Header)
	}
	// After sign-in the portal sends the browser only to a page inside it, dot segments resolved.
	for _, next := range []string{"/portal/../sys/seal-status", "/portal/vaults/%2e%2e/%2e%2e/sys/seal-status"} {
		resp, _ := b.do("GET", "/portal/signin?next="+url.QueryEscape(next), nil, nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/portal/vaults" {
			t.Errorf("signed in, next=%s goes to %d %q", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A failed sign-in's page says why in the portal's words, never the link's description.
	cbResp, cbBody := b.do("GET", "/portal/callback?"+url.Values{"error": {"access_denied"},
		"error_description": {"Your account is locked: call +1 555 0100"}}.Encode(), nil, nil)
	if cbResp.StatusCode != http.StatusBadRequest || strings.Contains(cbBody, "555") || !strings.Contains(cbBody, "access_denied") {
		t.Errorf("callback with an error = %d: %s", cbResp.StatusCode, snippet(cbBody))
	}

	// Cross-origin posts: refused (403), with the headers, and nothing changes.
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "", "Origin": "https://evil.example"}} {
		resp, _ := b.do("POST", "/portal/vaults/portalsec/secrets/new", url.Values{"name": {"csrf"}, "value": {"x"}}, hdr)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %v = %d, want 403", hdr, resp.StatusCode)
		}
		wantPortalHeaders(t, "cross-origin POST", resp.Header)
	}
	if _, err := admin.GetSecret(context.Background(), "csrf", "", nil); err == nil {
		t.Fatal("a cross-origin post created a secret")
	}
	resp, _ = b.do("POST", "/portal/logout", url.Values{}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sign-out = %d, want 403", resp.StatusCode)
	}

	// A new id at every sign-in; the old one opens nothing.
	second := b.signIn("alice@contoso.com", "Passw0rd!!")
	if cookieValue(second) == cookieValue(first) {
		t.Fatal("the session id did not change at sign-in")
	}
	if status := withCookie(t, pe, cookieValue(first), "/portal/vaults"); status != http.StatusFound {
		t.Errorf("the session cookie from before the sign-in still opens a page: %d", status)
	}
	if status := withCookie(t, pe, cookieValue(second), "/portal/vaults"); status != 200 {
		t.Fatalf("the new session cookie = %d", status)
	}

	// Callback refusals.
	c := pe.browser(t)
	cb := c.authorize("alice@contoso.com", "Passw0rd!!")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", "not-the-state")
	resp, _ = c.do("GET", u.Path+"?"+q.Encode(), nil, nil)
	if resp.StatusCode != http.StatusBadRequest || hasSession(resp) {
		t.Errorf("callback with a wrong state = %d (session set: %v)", resp.StatusCode, hasSession(resp))
	}
	wantPortalHeaders(t, "refused callback", resp.Header)
	d := pe.browser(t) // no login cookie: no code verifier
	resp, _ = d.do("GET", cb, nil, nil)
	if resp.StatusCode != http.StatusBadRequest || hasSession(resp) {
		t.Errorf("callback without the login cookie = %d", resp.StatusCode)
	}
	e2 := pe.browser(t)
	good := e2.authorize("alice@contoso.com", "Passw0rd!!")
	if resp, _ := e2.do("GET", good, nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback = %d", resp.StatusCode)
	}
	// Replay the code with a fresh login cookie and its own state: the issuer refuses the code.
	f := pe.browser(t)
	fresh, _ := url.Parse(f.authorize("alice@contoso.com", "Passw0rd!!"))
	used, _ := url.Parse(good)
	rq := fresh.Query()
	rq.Set("code", used.Query().Get("code"))
	resp, body := f.do("GET", fresh.Path+"?"+rq.Encode(), nil, nil)
	if resp.StatusCode != http.StatusBadRequest || hasSession(resp) {
		t.Errorf("callback with a replayed code = %d %s", resp.StatusCode, snippet(body))
	}

	// Sign-out ends the session on the server: the old cookie, sent by hand, opens nothing.
	if resp, _ := b.do("POST", "/portal/logout", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out = %d", resp.StatusCode)
	}
	if status := withCookie(t, pe, cookieValue(second), "/portal/vaults"); status != http.StatusFound {
		t.Errorf("the cookie still opens a page after sign-out: %d", status)
	}

	// A read-only person: no write controls, and a forged post is refused by the API.
	r := pe.browser(t)
	r.signIn("bob@contoso.com", "Passw0rd!!")
	hidden := []struct {
		page     string
		controls []string
	}{
		{"/portal/vaults", []string{"+ Create"}},
		{"/portal/vaults/portalsec", []string{"Delete vault", "/portalsec/delete"}},
		{"/portal/vaults/portalsec/secrets", []string{"Generate/Import", "+ Create"}},
		{"/portal/vaults/portalsec/secrets/existing", []string{"New Version", ">Delete<"}},
		{"/portal/vaults/portalsec/access", []string{"Add role assignment", "Switch to", "/access/permission-model"}},
		{"/portal/vaults/portalsec/networking", []string{">Apply<"}},
	}
	for _, h := range hidden {
		_, page := r.do("GET", h.page, nil, nil)
		if !strings.Contains(page, "Sign out") {
			t.Fatalf("the reader does not see %s: %s", h.page, snippet(page))
		}
		for _, control := range h.controls {
			if strings.Contains(page, control) {
				t.Errorf("the reader sees %q on %s", control, h.page)
			}
		}
	}
	_, page := r.do("GET", "/portal/vaults/portalsec/secrets", nil, nil)
	if !strings.Contains(page, "existing") {
		t.Fatalf("the reader does not see the secret list: %s", snippet(page))
	}
	// Forged posts, each with what a person would type, are refused by the API (403) and
	// change nothing. The reader signed in just now: the recent sign-in check passes.
	forged := []struct {
		name, path string
		form       url.Values
	}{
		{"create a secret", "/portal/vaults/portalsec/secrets/new", url.Values{"name": {"forged"}, "value": {"x"}, "enabled": {"yes"}}},
		{"delete a secret", "/portal/vaults/portalsec/secrets/existing/delete", url.Values{}},
		{"delete the vault", "/portal/vaults/portalsec/delete", url.Values{"confirm_name": {"portalsec"}}},
		{"switch the permission model", "/portal/vaults/portalsec/access/permission-model", url.Values{"confirm_name": {"portalsec"}}},
		{"save networking", "/portal/vaults/portalsec/networking", url.Values{"public_access": {"disabled"}}},
	}
	before, err := pe.vaults.Get(context.Background(), "portal-rg", "portalsec", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forged {
		resp, body := r.do("POST", f.path, f.form, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("the reader's forged %s = %d, want 403: %s", f.name, resp.StatusCode, snippet(body))
		}
		if !strings.Contains(body, "You do not have permission") && !strings.Contains(body, "You may not") {
			t.Errorf("the reader's forged %s is not refused in words: %s", f.name, snippet(body))
		}
	}
	if _, err := admin.GetSecret(context.Background(), "forged", "", nil); err == nil {
		t.Fatal("the reader's forged post created a secret")
	}
	if _, err := admin.GetSecret(context.Background(), "existing", "", nil); err != nil {
		t.Fatalf("the reader's forged delete deleted the secret: %v", err)
	}
	v, err := pe.vaults.Get(context.Background(), "portal-rg", "portalsec", nil)
	if err != nil {
		t.Fatalf("the reader's forged vault delete deleted the vault: %v", err)
	}
	if fmt.Sprint(deref(v.Properties.EnableRbacAuthorization), deref(v.Properties.PublicNetworkAccess)) !=
		fmt.Sprint(deref(before.Properties.EnableRbacAuthorization), deref(before.Properties.PublicNetworkAccess)) {
		t.Errorf("the reader's forged posts changed the vault's permission model or public access")
	}
	// The refusals were the API's, audited with the reader as caller and the portal as client.
	log := readAudit(t, pe.srv)
	if !strings.Contains(log, `"clientInfo":"strongroom-portal"`) || !strings.Contains(log, bob) {
		t.Error("no audit record names the portal as client and the reader as caller")
	}
}

// TestPortal_IdleTimeout: a session unused for longer than portal.idle_timeout is ended on
// the server, whatever the browser still holds.
func TestPortal_IdleTimeout(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("portal:\n  idle_timeout: 2s\n  absolute_timeout: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pe := newPortalEnv(t, &testenv.Options{DataDir: dir, Extra: []string{"--config", cfg}})
	pe.assign(t, pe.sub(), roleReader, pe.user(t, "carol@contoso.com", "Passw0rd!!"))
	b := pe.browser(t)
	id := cookieValue(b.signIn("carol@contoso.com", "Passw0rd!!"))
	if status := withCookie(t, pe, id, "/portal/vaults"); status != 200 {
		t.Fatalf("fresh session = %d", status)
	}
	time.Sleep(2500 * time.Millisecond)
	if status := withCookie(t, pe, id, "/portal/vaults"); status != http.StatusFound {
		t.Fatalf("an idle session still opens a page: %d", status)
	}
}

// withCookie sends GET path with only the given session cookie (no jar) and returns the status.
func withCookie(t *testing.T, pe *portalEnv, id, path string) int {
	t.Helper()
	hc := pe.srv.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", pe.publicURL+path, nil)
	req.Header.Set("Cookie", portal.SessionCookie+"="+id)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func hasSession(resp *http.Response) bool {
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, portal.SessionCookie+"=") && !strings.Contains(c, "Max-Age=0") {
			return true
		}
	}
	return false
}

func redactCookie(c string) string {
	name, rest, _ := strings.Cut(c, "=")
	_, attrs, _ := strings.Cut(rest, ";")
	return name + "=…;" + attrs
}

func snippet(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// readAudit is the server's audit log as text.
func readAudit(t *testing.T, srv *testenv.Server) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(srv.DataDir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func secretParams(v string) azsecrets.SetSecretParameters {
	return azsecrets.SetSecretParameters{Value: &v}
}

// deref is *p, or T's zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
