package issuer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

var (
	vaultAudiences = []string{"https://vault.localhost:8443", "https://vault.azure.net"}
	armAudiences   = []string{"https://management.core.windows.net/", "https://management.azure.com/"}
)

// testServer is a TLS server whose mux holds only the issuer, with an identity service whose
// PublicURL is the server's own URL (MSAL requires the issuer's host to match the authority's).
type testServer struct {
	srv  *httptest.Server
	id   *identity.Service
	boot identity.Bootstrap
}

func newTestServer(t *testing.T) *testServer { return newTestServerWith(t, identity.Options{}) }

// newTestServerWith is newTestServer with identity options (PublicURL is set to the server's).
func newTestServerWith(t *testing.T, opts identity.Options) *testServer {
	t.Helper()
	ctx := context.Background()
	var mux atomic.Pointer[http.ServeMux]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{9}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	opts.PublicURL = srv.URL
	id, err := identity.New(ctx, st, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	boot, _, err := id.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := http.NewServeMux()
	issuer.New(id, srv.URL).Register(m)
	mux.Store(m)
	return &testServer{srv: srv, id: id, boot: boot}
}

func (ts *testServer) credential(t *testing.T, tenant, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: policy.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: ts.srv.URL + "/"},
			Transport: ts.srv.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func TestIssuer_Azidentity_ClientSecretCredential(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cred := ts.credential(t, ts.boot.TenantID, ts.boot.ClientID, ts.boot.ClientSecret)
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:8443/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if d := time.Until(tok.ExpiresOn); d < 55*time.Minute || d > 61*time.Minute {
		t.Errorf("token expires in %v, want about 1h", d)
	}
	claims, err := ts.id.Verify(ctx, tok.Token, vaultAudiences)
	if err != nil {
		t.Fatalf("Verify(azidentity's token): %v", err)
	}
	if claims.Principal.ObjectID != ts.boot.ObjectID || claims.Principal.AppID != ts.boot.ClientID ||
		claims.Audience != "https://vault.localhost:8443" {
		t.Errorf("claims = %+v", claims)
	}

	// A second scope on the same credential (the way az rest and ARM clients ask).
	tok2, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatalf("GetToken(arm): %v", err)
	}
	if _, err := ts.id.Verify(ctx, tok2.Token, armAudiences); err != nil {
		t.Fatalf("Verify(arm token): %v", err)
	}
	if _, err := ts.id.Verify(ctx, tok2.Token, vaultAudiences); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("arm token accepted by the data plane: err = %v", err)
	}
}

func TestIssuer_Azidentity_Errors(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name, tenant, client, secret string
		want                         string
	}{
		{"wrong secret", ts.boot.TenantID, ts.boot.ClientID, "wrong-" + ts.boot.ClientSecret, "AADSTS7000215"},
		{"unknown client", ts.boot.TenantID, "00000000-0000-0000-0000-0000000000c1", ts.boot.ClientSecret, "AADSTS700016"},
		{"unknown tenant", "00000000-0000-0000-0000-0000000000d1", ts.boot.ClientID, ts.boot.ClientSecret, "AADSTS90002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := ts.credential(t, c.tenant, c.client, c.secret).GetToken(ctx,
				policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:8443/.default"}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("GetToken err = %v, want one mentioning %s", err, c.want)
			}
			t.Logf("azidentity: %v", err)
			if strings.Contains(err.Error(), ts.boot.ClientSecret) {
				t.Fatalf("error text contains the client secret")
			}
		})
	}
}

// get fetches path and decodes a JSON object.
func (ts *testServer) get(t *testing.T, path string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := ts.srv.Client().Get(ts.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

// post sends a form (with optional headers) and decodes the JSON answer.
func (ts *testServer) post(t *testing.T, path, contentType, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func decode(t *testing.T, resp *http.Response) (int, http.Header, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", resp.Request.Method, resp.Request.URL.Path, b, err)
	}
	return resp.StatusCode, resp.Header, m
}

func TestIssuer_Discovery(t *testing.T) {
	ts := newTestServer(t)
	tid := ts.boot.TenantID
	wantIssuer := ts.srv.URL + "/" + tid + "/v2.0"
	for _, tenant := range []string{tid, strings.ToUpper(tid), "organizations", "common"} {
		t.Run(tenant, func(t *testing.T) {
			status, hdr, doc := ts.get(t, "/"+tenant+"/v2.0/.well-known/openid-configuration")
			if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d, content type %q", status, hdr.Get("Content-Type"))
			}
			base := ts.srv.URL + "/" + tenant
			want := map[string]string{
				"issuer":                 wantIssuer,
				"authorization_endpoint": base + "/oauth2/v2.0/authorize",
				"token_endpoint":         base + "/oauth2/v2.0/token",
				"jwks_uri":               base + "/discovery/v2.0/keys",
			}
			for k, v := range want {
				if doc[k] != v {
					t.Errorf("%s = %v, want %q", k, doc[k], v)
				}
			}
			for _, k := range []string{"response_types_supported", "subject_types_supported", "token_endpoint_auth_methods_supported", "scopes_supported"} {
				if l, ok := doc[k].([]any); !ok || len(l) == 0 {
					t.Errorf("%s = %v, want a non-empty list", k, doc[k])
				}
			}
			if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
				t.Errorf("id_token_signing_alg_values_supported = %v, want [RS256]", doc["id_token_signing_alg_values_supported"])
			}
			if v, ok := doc["tenant_region_scope"]; !ok || v != nil {
				t.Errorf("tenant_region_scope = %v (present %v), want null", v, ok)
			}
		})
	}

	status, _, doc := ts.get(t, "/00000000-0000-0000-0000-0000000000ee/v2.0/.well-known/openid-configuration")
	if status != http.StatusBadRequest || doc["error"] != "invalid_tenant" || !strings.HasPrefix(doc["error_description"].(string), "AADSTS90002:") {
		t.Errorf("unknown tenant discovery = %d %v", status, doc)
	}
}

func TestIssuer_JWKS(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/" + ts.boot.TenantID + "/discovery/v2.0/keys", "/common/discovery/v2.0/keys", "/adfs/discovery/keys"} {
		status, _, doc := ts.get(t, path)
		keys, _ := doc["keys"].([]any)
		if status != http.StatusOK || len(keys) != 1 {
			t.Fatalf("%s = %d %v, want one key", path, status, doc)
		}
		k := keys[0].(map[string]any)
		want := ts.id.JWKS().Keys[0]
		if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] != want.KeyID || k["n"] == nil || k["e"] != "AQAB" {
			t.Errorf("%s key = %v", path, k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("%s publishes private member %q", path, private)
			}
		}
	}
	if status, _, doc := ts.get(t, "/nope/discovery/v2.0/keys"); status != http.StatusBadRequest || doc["error"] != "invalid_tenant" {
		t.Errorf("unknown tenant keys = %d %v", status, doc)
	}
}

// TestIssuer_ADFS replays what az login --service-principal (MSAL Python, ADFS authority) sends.
func TestIssuer_ADFS(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	status, _, doc := ts.get(t, "/adfs/.well-known/openid-configuration")
	if status != http.StatusOK {
		t.Fatalf("adfs discovery status %d", status)
	}
	for k, v := range map[string]string{
		"issuer":                 ts.srv.URL + "/adfs",
		"token_endpoint":         ts.srv.URL + "/adfs/oauth2/v2.0/token",
		"authorization_endpoint": ts.srv.URL + "/adfs/oauth2/authorize/",
		"jwks_uri":               ts.srv.URL + "/adfs/discovery/keys",
	} {
		if doc[k] != v {
			t.Errorf("adfs %s = %v, want %q", k, doc[k], v)
		}
	}

	tokenURL, _ := url.Parse(doc["token_endpoint"].(string))
	form := url.Values{
		"client_id":     {ts.boot.ClientID},
		"grant_type":    {"client_credentials"},
		"client_info":   {"1"},
		"client_secret": {ts.boot.ClientSecret},
		"claims":        {`{"access_token": {"xms_cc": {"values": ["CP1"]}}}`},
		"scope":         {"https://management.core.windows.net//.default"},
	}
	status, hdr, body := ts.post(t, tokenURL.Path, "application/x-www-form-urlencoded", form.Encode(),
		map[string]string{"x-client-sku": "MSAL.Python", "x-client-ver": "1.21.0"})
	if status != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
		t.Fatalf("adfs token = %d %v", status, redact(body))
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", hdr.Get("Cache-Control"))
	}
	claims, err := ts.id.Verify(ctx, body["access_token"].(string), armAudiences)
	if err != nil || claims.Audience != "https://management.core.windows.net/" || claims.Principal.TenantID != ts.boot.TenantID {
		t.Fatalf("Verify(adfs token) = %+v, %v", claims, err)
	}

	// The v1 endpoint with a resource parameter.
	v1 := url.Values{"client_id": {ts.boot.ClientID}, "grant_type": {"client_credentials"},
		"client_secret": {ts.boot.ClientSecret}, "resource": {"https://management.core.windows.net/"}}
	status, _, body = ts.post(t, "/adfs/oauth2/token", "application/x-www-form-urlencoded", v1.Encode(), nil)
	if status != http.StatusOK || body["resource"] != "https://management.core.windows.net/" || body["expires_on"] == nil {
		t.Fatalf("adfs v1 token = %d %v", status, redact(body))
	}
	if _, err := ts.id.Verify(ctx, body["access_token"].(string), armAudiences); err != nil {
		t.Fatalf("Verify(adfs v1 token): %v", err)
	}
}

// TestIssuer_TokenEndpoint covers what MSAL JS sends and the error shapes.
func TestIssuer_TokenEndpoint(t *testing.T) {
	ts := newTestServer(t)
	tid, cid, secret := ts.boot.TenantID, ts.boot.ClientID, ts.boot.ClientSecret
	const formCT = "application/x-www-form-urlencoded"
	good := func(extra ...string) string {
		v := url.Values{"client_id": {cid}, "client_secret": {secret}, "grant_type": {"client_credentials"},
			"scope": {"https://vault.localhost:8443/.default"}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				v.Del(extra[i])
			} else {
				v.Set(extra[i], extra[i+1])
			}
		}
		return v.Encode()
	}
	if _, err := ts.id.CreateUser(context.Background(), identity.UserInput{UserPrincipalName: "alice@contoso.com",
		DisplayName: "Alice", Password: "Passw0rd!!", AccountEnabled: true}); err != nil {
		t.Fatal(err)
	}
	userForm := func(extra ...string) string {
		v := url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
			"username": {"alice@contoso.com"}, "password": {"Passw0rd!!"}, "scope": {"https://vault.azure.net/.default offline_access openid profile"}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "" {
				v.Del(extra[i])
			} else {
				v.Set(extra[i], extra[i+1])
			}
		}
		return v.Encode()
	}
	tokenPath := "/" + tid + "/oauth2/v2.0/token"
	const corr = "3f0b2c4e-1111-4222-8333-944455556666"

	cases := []struct {
		name         string
		path, ct     string
		body         string
		hdr          map[string]string
		status       int
		errCode      string
		aadsts       float64
		verifyTokens bool
	}{
		{name: "msal js with query and telemetry", path: tokenPath + "?client-request-id=" + corr, ct: formCT + "; charset=utf-8",
			body: good("x-client-SKU", "msal.js.node", "x-client-VER", "5.6.0", "x-ms-lib-capability", "retry-after, h429",
				"x-client-current-telemetry", "5|771,2,,,|,", "client-request-id", corr,
				"claims", `{"id_token":{},"access_token":{"xms_cc":{"values":["cp1"]}}}`,
				"scope", "https://vault.azure.net/.default"),
			status: 200, verifyTokens: true},
		{name: "organizations tenant", path: "/organizations/oauth2/v2.0/token", ct: formCT, body: good(), status: 200, verifyTokens: true},
		{name: "client_secret_basic", path: tokenPath, ct: formCT, body: good("client_id", "", "client_secret", ""),
			hdr: map[string]string{"Authorization": basic(cid, secret)}, status: 200, verifyTokens: true},
		{name: "wrong secret", path: tokenPath, ct: formCT, body: good("client_secret", "nope"),
			hdr: map[string]string{"client-request-id": corr}, status: 401, errCode: "invalid_client", aadsts: 7000215},
		{name: "unknown client", path: tokenPath, ct: formCT, body: good("client_id", "00000000-0000-0000-0000-00000000000c"),
			status: 400, errCode: "unauthorized_client", aadsts: 700016},
		{name: "unknown tenant", path: "/00000000-0000-0000-0000-0000000000ee/oauth2/v2.0/token", ct: formCT, body: good(),
			status: 400, errCode: "invalid_request", aadsts: 90002},
		{name: "unsupported grant", path: tokenPath, ct: formCT, body: good("grant_type", "urn:ietf:params:oauth:grant-type:saml1_1-bearer"),
			status: 400, errCode: "unsupported_grant_type", aadsts: 70003},
		{name: "unserved resource", path: tokenPath, ct: formCT, body: good("scope", "https://evil.example/.default"),
			status: 400, errCode: "invalid_resource", aadsts: 500011},
		{name: "unserved v1 resource", path: tokenPath, ct: formCT, body: good("scope", "", "resource", "https://storage.azure.com"),
			status: 400, errCode: "invalid_resource", aadsts: 500011},
		{name: "user password", path: tokenPath, ct: formCT, body: userForm(),
			status: 200, verifyTokens: true},
		{name: "user password v1 resource", path: "/adfs/oauth2/token", ct: formCT, body: userForm("scope", "", "resource", "https://vault.azure.net"),
			status: 200, verifyTokens: true},
		{name: "user wrong password", path: tokenPath, ct: formCT, body: userForm("password", "Wr0ng-password"),
			status: 400, errCode: "invalid_grant", aadsts: 50126},
		{name: "unknown user", path: tokenPath, ct: formCT, body: userForm("username", "nobody@contoso.com"),
			status: 400, errCode: "invalid_grant", aadsts: 50034},
		{name: "user without username", path: tokenPath, ct: formCT, body: userForm("username", ""),
			status: 400, errCode: "invalid_request", aadsts: 900144},
		{name: "user with a malformed client id", path: tokenPath, ct: formCT, body: userForm("client_id", "az-cli"),
			status: 400, errCode: "unauthorized_client", aadsts: 700016},
		{name: "user for an unserved resource", path: tokenPath, ct: formCT, body: userForm("scope", "https://evil.example/.default"),
			status: 400, errCode: "invalid_resource", aadsts: 500011},
		{name: "missing grant", path: tokenPath, ct: formCT, body: good("grant_type", ""),
			status: 400, errCode: "invalid_request", aadsts: 900144},
		{name: "json body", path: tokenPath, ct: "application/json", body: `{"grant_type":"client_credentials"}`,
			status: 400, errCode: "invalid_request", aadsts: 900144},
		{name: "missing client id", path: tokenPath, ct: formCT, body: good("client_id", ""),
			status: 400, errCode: "invalid_request", aadsts: 900144},
		{name: "missing secret", path: tokenPath, ct: formCT, body: good("client_secret", ""),
			status: 401, errCode: "invalid_client", aadsts: 7000218},
		{name: "client assertion", path: tokenPath, ct: formCT, body: good("client_secret", "", "client_assertion", "x.y.z"),
			status: 400, errCode: "invalid_request", aadsts: 7000219},
		{name: "secret in query only", path: tokenPath + "?client_secret=" + url.QueryEscape(secret), ct: formCT, body: good("client_secret", ""),
			status: 401, errCode: "invalid_client", aadsts: 7000218},
		{name: "scope without .default", path: tokenPath, ct: formCT, body: good("scope", "https://vault.azure.net/user_impersonation"),
			status: 400, errCode: "invalid_scope", aadsts: 1002012},
		{name: "missing scope", path: tokenPath, ct: formCT, body: good("scope", ""),
			status: 400, errCode: "invalid_scope", aadsts: 70011},
		{name: "body too large", path: tokenPath, ct: formCT, body: good("pad", strings.Repeat("a", 70<<10)),
			status: 413, errCode: "invalid_request", aadsts: 90015},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, hdr, body := ts.post(t, c.path, c.ct, c.body, c.hdr)
			if status != c.status {
				t.Fatalf("status = %d, want %d; body %v", status, c.status, redact(body))
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", hdr.Get("Cache-Control"))
			}
			if c.status == 200 {
				if body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) {
					t.Errorf("body = %v", redact(body))
				}
				aud := []string{"https://vault.localhost:8443", "https://vault.azure.net"}
				if _, err := ts.id.Verify(context.Background(), body["access_token"].(string), aud); err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			raw, _ := json.Marshal(body)
			if strings.Contains(string(raw), secret) {
				t.Fatalf("error body contains the client secret")
			}
			desc, _ := body["error_description"].(string)
			codes, _ := body["error_codes"].([]any)
			if body["error"] != c.errCode || len(codes) != 1 || codes[0] != c.aadsts ||
				!strings.HasPrefix(desc, "AADSTS"+jsonNum(c.aadsts)+":") {
				t.Errorf("error body = %v, want %s AADSTS%v", body, c.errCode, c.aadsts)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
				if s, _ := body[k].(string); s == "" {
					t.Errorf("error body lacks %s", k)
				}
			}
			if c.hdr["client-request-id"] != "" && body["correlation_id"] != c.hdr["client-request-id"] {
				t.Errorf("correlation_id = %v, want the client-request-id %s", body["correlation_id"], c.hdr["client-request-id"])
			}
		})
	}

	// Only POST reaches the token endpoint.
	resp, err := ts.srv.Client().Get(ts.srv.URL + tokenPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint = %d, want 405", resp.StatusCode)
	}
}

func TestIssuer_InstanceDiscovery(t *testing.T) {
	ts := newTestServer(t)
	host := strings.TrimPrefix(ts.srv.URL, "https://")
	ae := url.QueryEscape(ts.srv.URL + "/" + ts.boot.TenantID + "/oauth2/v2.0/authorize")
	cases := []struct{ query, wantTenant string }{
		{"?api-version=1.1&authorization_endpoint=" + ae, ts.boot.TenantID},
		{"?api-version=1.1", "{tenant}"},
		{"?authorization_endpoint=" + url.QueryEscape("https://login.microsoftonline.com/x/oauth2/v2.0/authorize"), "{tenant}"},
	}
	for _, c := range cases {
		status, _, doc := ts.get(t, "/common/discovery/instance"+c.query)
		want := ts.srv.URL + "/" + c.wantTenant + "/v2.0/.well-known/openid-configuration"
		if status != 200 || doc["tenant_discovery_endpoint"] != want || doc["api-version"] != "1.1" {
			t.Errorf("instance discovery %s = %d %v, want endpoint %s", c.query, status, doc, want)
		}
		md, _ := doc["metadata"].([]any)
		if len(md) != 1 || md[0].(map[string]any)["preferred_network"] != host {
			t.Errorf("metadata = %v, want preferred_network %s", doc["metadata"], host)
		}
	}
}

// MSAL's home realm discovery before a password grant: every user is a managed account.
func TestIssuer_UserRealm(t *testing.T) {
	ts := newTestServer(t)
	host := strings.TrimPrefix(ts.srv.URL, "https://")
	for _, path := range []string{"/common/UserRealm/alice%40contoso.com?api-version=1.0", "/common/userrealm/alice@contoso.com?api-version=1.0"} {
		status, _, doc := ts.get(t, path)
		if status != 200 || doc["account_type"] != "Managed" || doc["domain_name"] != "contoso.com" ||
			doc["cloud_instance_name"] != host || doc["cloud_audience_urn"] != "urn:federation:MicrosoftOnline" {
			t.Errorf("%s = %d %v", path, status, doc)
		}
	}
}

// TestIssuer_Register_CoexistsWithOtherRoutes registers the issuer next to the kinds of routes
// the rest of the server uses; ServeMux would panic on a conflict.
func TestIssuer_Register_CoexistsWithOtherRoutes(t *testing.T) {
	ts := newTestServer(t)
	mux := http.NewServeMux()
	nop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, p := range []string{
		"/",
		"GET /healthz",
		"GET /subscriptions",
		"GET /subscriptions/{sub}/resourcegroups/{rg}",
		"PUT /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
		"GET /tenants",
		"GET /v1.0/me",
		"vault.localhost/secrets/{name}",
	} {
		mux.Handle(p, nop)
	}
	issuer.New(ts.id, ts.srv.URL).Register(mux)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/common/v2.0/.well-known/openid-configuration", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("discovery through a shared mux = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/subscriptions/x/resourcegroups/y", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("other route through a shared mux = %d", rec.Code)
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return req.Header.Get("Authorization")
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// redact drops the access token before a body goes into a failure message.
func redact(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k == "access_token" {
			v = "<redacted>"
		}
		out[k] = v
	}
	return out
}
