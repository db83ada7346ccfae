package issuer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
)

// grantRecorder is a transport that notes the grant_type of every token request.
type grantRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	grants []string
}

func (g *grantRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		g.mu.Lock()
		g.grants = append(g.grants, form.Get("grant_type"))
		g.mu.Unlock()
	}
	return g.next.RoundTrip(r)
}

func (g *grantRecorder) seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.grants)
}

// The official UsernamePasswordCredential keeps working on the refresh token: MSAL finds its
// account from the ID token and client_info, redeems the refresh token for another resource
// and, once the cached access token is near expiry, for the same one, never sending the
// password again.
func TestRefresh_MSALRedeemsRefreshTokens(t *testing.T) {
	// Under MSAL's 5-minute margin, so every cached token already counts as expiring.
	ts := newTestServerWith(t, identity.Options{TokenLifetime: 2 * time.Minute})
	u := ts.user(t, "msal@contoso.com", "Passw0rd!!")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &grantRecorder{next: ts.srv.Client().Transport}
	cred, err := azidentity.NewUsernamePasswordCredential(ts.boot.TenantID, publicClient, "msal@contoso.com", "Passw0rd!!",
		&azidentity.UsernamePasswordCredentialOptions{
			ClientOptions:            policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ts.srv.URL + "/"}, Transport: &http.Client{Transport: rec}},
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		scope string
		auds  []string
	}{
		{"https://vault.localhost:8443/.default", vaultAudiences},
		{"https://management.core.windows.net//.default", armAudiences},
		{"https://vault.localhost:8443/.default", vaultAudiences},
	} {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{step.scope}})
		if err != nil {
			t.Fatalf("GetToken(%s): %v", step.scope, err)
		}
		if c, err := ts.id.Verify(ctx, tok.Token, step.auds); err != nil || c.Principal.ObjectID != u.ID {
			t.Fatalf("token for %s: %+v, %v", step.scope, c, err)
		}
	}
	if got, want := rec.seen(), []string{"password", "refresh_token", "refresh_token"}; !slices.Equal(got, want) {
		t.Fatalf("grants sent = %v, want %v", got, want)
	}
}

// The refresh grant over HTTP: Entra's response fields, rotation, reuse revoking the session
// (AADSTS70008, then AADSTS50173), unserved resources (AADSTS500011), missing parameters, and no
// refresh token for client credentials.
func TestRefresh_TokenEndpoint(t *testing.T) {
	ts := newTestServer(t)
	u := ts.user(t, "raw@contoso.com", "Passw0rd!!")
	path := "/" + ts.boot.TenantID + "/oauth2/v2.0/token"
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const ct = "application/x-www-form-urlencoded"
	status, hdr, body := ts.post(t, path, ct, form("grant_type", "password", "client_id", publicClient, "username", "raw@contoso.com",
		"password", "Passw0rd!!", "scope", "https://vault.localhost:8443/.default openid profile offline_access", "client_info", "1"), nil)
	rt, _ := body["refresh_token"].(string)
	if status != 200 || rt == "" || body["id_token"] == nil || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("password grant = %d %v", status, redact(body))
	}
	ci, err := base64.RawURLEncoding.DecodeString(body["client_info"].(string))
	var info map[string]string
	if err != nil || json.Unmarshal(ci, &info) != nil || info["uid"] != u.ID || info["utid"] != ts.boot.TenantID {
		t.Fatalf("client_info %s (%v)", ci, err)
	}
	refresh := func(token, scope string) (int, map[string]any) {
		status, _, body := ts.post(t, path, ct, form("grant_type", "refresh_token", "client_id", publicClient, "refresh_token", token,
			"scope", scope), nil)
		return status, body
	}
	code := func(body map[string]any) float64 {
		codes, _ := body["error_codes"].([]any)
		if len(codes) != 1 {
			return 0
		}
		f, _ := codes[0].(float64)
		return f
	}
	status, next := refresh(rt, "https://management.azure.com/.default offline_access")
	rt2, _ := next["refresh_token"].(string)
	if status != 200 || rt2 == "" || rt2 == rt {
		t.Fatalf("refresh = %d %v", status, redact(next))
	}
	if _, err := ts.id.Verify(context.Background(), next["access_token"].(string), armAudiences); err != nil {
		t.Fatalf("ARM token from the refresh grant: %v", err)
	}
	if status, body := refresh(rt2, "https://unknown.example/.default"); status != 400 || code(body) != 500011 {
		t.Fatalf("unserved resource = %d %v", status, body)
	}
	if status, _, body := ts.post(t, path, ct, form("grant_type", "refresh_token", "client_id", publicClient), nil); status != 400 || code(body) != 900144 ||
		!strings.Contains(body["error_description"].(string), "'refresh_token'") {
		t.Fatalf("missing refresh_token = %d %v", status, body)
	}
	if status, body := refresh("garbage", "https://vault.localhost:8443/.default"); status != 400 || body["error"] != "invalid_grant" || code(body) != 9002313 {
		t.Fatalf("malformed = %d %v", status, body)
	}
	if status, body := refresh(rt, "https://vault.localhost:8443/.default"); status != 400 || body["error"] != "invalid_grant" || code(body) != 70008 {
		t.Fatalf("reuse = %d %v", status, body)
	}
	if status, body := refresh(rt2, "https://vault.localhost:8443/.default"); status != 400 || body["error"] != "invalid_grant" || code(body) != 50173 {
		t.Fatalf("the session's newest token after a reuse = %d %v", status, body)
	}
	if strings.Contains(strings.Join(func() []string {
		_, b := refresh(rt2, "")
		return []string{b["error_description"].(string)}
	}(), ""), rt2) {
		t.Fatal("an error echoes the refresh token")
	}

	// Client credentials never get one, offline_access or not.
	status, _, body = ts.post(t, path, ct, form("grant_type", "client_credentials", "client_id", ts.boot.ClientID, "client_secret", ts.boot.ClientSecret,
		"scope", "https://vault.localhost:8443/.default offline_access"), nil)
	if status != 200 || body["refresh_token"] != nil || body["id_token"] != nil {
		t.Fatalf("client credentials = %d %v", status, redact(body))
	}
}

// The refresh grant's audit notes name the client and, on success, the user (object id and
// UPN); a refused reuse says why in fixed words, never with the token.
func TestRefresh_AuditNotes(t *testing.T) {
	ts := newTestServer(t)
	u := ts.user(t, "note@contoso.com", "Passw0rd!!")
	var notes []issuer.Attempt
	iss := issuer.New(ts.id, ts.srv.URL)
	iss.OnAttempt(func(_ *http.Request, a issuer.Attempt) { notes = append(notes, a) })
	mux := http.NewServeMux()
	iss.Register(mux)
	post := func(form url.Values) map[string]any {
		r := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return m
	}
	rt, _ := post(url.Values{"grant_type": {"password"}, "client_id": {publicClient}, "username": {"note@contoso.com"}, "password": {"Passw0rd!!"},
		"scope": {"https://vault.localhost:8443/.default offline_access"}})["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {publicClient}, "refresh_token": {rt}, "scope": {"https://vault.localhost:8443/.default"}}
	post(refresh)
	post(refresh) // reuse
	if len(notes) != 3 {
		t.Fatalf("notes %+v", notes)
	}
	if n := notes[1]; n.ClientID != publicClient || n.ObjectID != u.ID || n.UPN != "note@contoso.com" || n.Failure != "" {
		t.Fatalf("refresh note %+v", n)
	}
	if n := notes[2]; n.ObjectID != "" || n.Failure != "token refused: refresh token reused, session revoked" || strings.Contains(fmt.Sprint(n), rt) {
		t.Fatalf("reuse note %+v", n)
	}
}
