package issuer_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/strongroom/strongroom/internal/identity"
)

const publicClient = "04b07795-8ddb-461a-bbee-02f9e1bf7b46" // az's

func (ts *testServer) user(t *testing.T, upn, password string) identity.User {
	t.Helper()
	u, err := ts.id.CreateUser(context.Background(), identity.UserInput{UserPrincipalName: upn, DisplayName: "U", Password: password, AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// noRedirect is the test server's client, not following redirects.
func (ts *testServer) noRedirect() *http.Client {
	c := *ts.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (ts *testServer) postForm(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := ts.noRedirect().PostForm(ts.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The official DeviceCodeCredential signs a user in: it shows the message, the user enters the
// code with their UPN and password at /devicelogin, and the credential's polling gets the
// user's token.
func TestInteractive_DeviceCodeCredential(t *testing.T) {
	ts := newTestServer(t)
	u := ts.user(t, "dev@contoso.com", "Passw0rd!!")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	codeRE := regexp.MustCompile(`enter the code ([A-Z0-9]+) to authenticate`)
	signedIn := make(chan error, 1)
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ts.srv.URL + "/"}, Transport: ts.srv.Client()},
		TenantID:      ts.boot.TenantID, ClientID: publicClient, DisableInstanceDiscovery: true,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			if m.VerificationURL != ts.srv.URL+"/devicelogin" {
				t.Errorf("verification URL %q", m.VerificationURL)
			}
			code := codeRE.FindStringSubmatch(m.Message)
			if code == nil || code[1] != m.UserCode {
				t.Errorf("message %q does not name the user code %q", m.Message, m.UserCode)
			}
			go func() {
				resp, body := ts.postForm(t, "/devicelogin", url.Values{"user_code": {strings.ToLower(m.UserCode)}, "username": {"DEV@contoso.com"},
					"password": {"Passw0rd!!"}, "decision": {"approve"}})
				if resp.StatusCode != 200 || !strings.Contains(body, "You have signed in") {
					signedIn <- &url.Error{Op: "sign in", URL: "/devicelogin", Err: io.ErrUnexpectedEOF}
					return
				}
				signedIn <- nil
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:8443/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if err := <-signedIn; err != nil {
		t.Fatal(err)
	}
	c, err := ts.id.Verify(ctx, tok.Token, vaultAudiences)
	if err != nil || c.Principal.ObjectID != u.ID || c.IdentityType != "user" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
}

// Polling answers as Entra does: authorization_pending, slow_down when too fast, access_denied
// once the user declines, and the code is then gone (expired_token); a wrong password at the
// sign-in page is refused without approving anything.
func TestInteractive_DeviceCodePolling(t *testing.T) {
	ts := newTestServer(t)
	ts.user(t, "dev@contoso.com", "Passw0rd!!")
	tenant := ts.boot.TenantID
	resp, body := ts.postForm(t, "/"+tenant+"/oauth2/v2.0/devicecode", url.Values{"client_id": {publicClient}, "scope": {"https://vault.localhost:8443/.default openid"}})
	var dc struct {
		DeviceCode, UserCode string
		Interval             int
	}
	var raw map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &raw) != nil {
		t.Fatalf("devicecode = %d %s", resp.StatusCode, body)
	}
	dc.DeviceCode, dc.UserCode = raw["device_code"].(string), raw["user_code"].(string)
	if raw["interval"] != float64(5) || raw["expires_in"] != float64(900) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("devicecode response %v", raw)
	}
	poll := func() (int, string) {
		resp, body := ts.postForm(t, "/"+tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {publicClient}, "device_code": {dc.DeviceCode}})
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		e, _ := m["error"].(string)
		return resp.StatusCode, e
	}
	if s, e := poll(); s != 400 || e != "authorization_pending" {
		t.Fatalf("first poll = %d %s", s, e)
	}
	if s, e := poll(); s != 400 || e != "slow_down" {
		t.Fatalf("immediate second poll = %d %s", s, e)
	}
	resp, body = ts.postForm(t, "/devicelogin", url.Values{"user_code": {dc.UserCode}, "username": {"dev@contoso.com"}, "password": {"wrong"}, "decision": {"approve"}})
	if !strings.Contains(body, "account or password is incorrect") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("wrong password page: %s", body)
	}
	resp, body = ts.postForm(t, "/devicelogin", url.Values{"user_code": {dc.UserCode}, "username": {"dev@contoso.com"}, "password": {"Passw0rd!!"}, "decision": {"deny"}})
	if !strings.Contains(body, "You declined") {
		t.Fatalf("decline page: %d %s", resp.StatusCode, body)
	}
	time.Sleep(5 * time.Second)
	if s, e := poll(); s != 400 || e != "access_denied" {
		t.Fatalf("poll after decline = %d %s", s, e)
	}
	if s, e := poll(); s != 400 || e != "expired_token" {
		t.Fatalf("poll after the flow ended = %d %s", s, e)
	}
	// A code for another client is not this one's.
	if resp, _ := ts.postForm(t, "/"+tenant+"/oauth2/v2.0/devicecode", url.Values{"client_id": {"not-a-guid"}, "scope": {"https://vault.localhost:8443/.default"}}); resp.StatusCode != 400 {
		t.Fatalf("devicecode for a malformed client id: %d", resp.StatusCode)
	}
}

func pkce(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Authorization code with PKCE: the sign-in form, the redirect with code and state, the code
// redeemed once with the right verifier and redirect URI; unregistered redirect URIs are never
// redirected to, and plain PKCE is refused.
func TestInteractive_AuthorizationCodePKCE(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	u := ts.user(t, "portal@contoso.com", "Passw0rd!!")
	app, err := ts.id.CreateApplication(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://portal.localhost:8443/signin"
	if err := ts.id.SetRedirectURIs(ctx, app.ID, []string{redirect, "http://localhost:3000/cb"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.id.SetRedirectURIs(ctx, app.ID, []string{"http://portal.example/cb"}); err == nil {
		t.Fatal("a plain-http non-loopback redirect URI was registered")
	}
	tenant := ts.boot.TenantID
	verifier := strings.Repeat("v3r1f13r-", 6)
	params := url.Values{"client_id": {app.AppID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"https://vault.localhost:8443/.default openid"},
		"state": {"xyz"}, "code_challenge": {pkce(verifier)}, "code_challenge_method": {"S256"}}
	authorize := "/" + tenant + "/oauth2/v2.0/authorize"
	get := func(q url.Values) (*http.Response, string) {
		resp, err := ts.noRedirect().Get(ts.srv.URL + authorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(params)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("sign-in form: %d %s", resp.StatusCode, body)
	}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range params {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	for _, bad := range []string{"https://evil.localhost/signin", redirect + "/", "https://portal.localhost:8443/signin?x=1"} {
		if resp, _ := get(with("redirect_uri", bad)); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Fatalf("unregistered redirect %q: %d, Location %q", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := get(with("code_challenge_method", "plain")); resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "error=invalid_request") {
		t.Fatalf("plain PKCE: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	signIn := func(password string) (*http.Response, string) {
		f := with("username", "portal@contoso.com")
		f.Set("password", password)
		return ts.postForm(t, authorize, f)
	}
	if resp, body := signIn("nope"); resp.StatusCode != 200 || !strings.Contains(body, "account or password is incorrect") {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	resp, _ = signIn("Passw0rd!!")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != redirect || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code := loc.Query().Get("code")
	redeem := func(code, redirectURI, verifier string) (int, map[string]any) {
		resp, body := ts.postForm(t, "/"+tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {app.AppID},
			"code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		return resp.StatusCode, m
	}
	status, m := redeem(code, redirect, verifier)
	if status != 200 {
		t.Fatalf("redeem: %d %v", status, m)
	}
	c, err := ts.id.Verify(ctx, m["access_token"].(string), vaultAudiences)
	if err != nil || c.Principal.ObjectID != u.ID || c.UPN != "portal@contoso.com" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if status, m := redeem(code, redirect, verifier); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("code reused: %d %v", status, m)
	}
	// Fresh codes: a wrong verifier or redirect URI uses the code up and is refused.
	for _, tc := range []struct {
		name, redirect, verifier string
		sts                      float64
	}{
		{"wrong verifier", redirect, strings.Repeat("x", 50), 501481},
		{"other redirect URI", "http://localhost:3000/cb", verifier, 70008},
	} {
		resp, _ := signIn("Passw0rd!!")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, m := redeem(loc.Query().Get("code"), tc.redirect, tc.verifier)
		codes, _ := m["error_codes"].([]any)
		if status != 400 || len(codes) != 1 || codes[0] != tc.sts {
			t.Fatalf("%s: %d %v", tc.name, status, m)
		}
		if status, _ := redeem(loc.Query().Get("code"), redirect, verifier); status != 400 {
			t.Fatalf("%s: the code survived a failed redemption", tc.name)
		}
	}
}
