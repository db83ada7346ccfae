package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/strongroom/strongroom/internal/testenv"
)

// tokenCall posts one token request to the real server's tenant endpoint and returns the status
// and the decoded body.
func (e *env) tokenCall(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := e.hc.PostForm(e.publicURL+"/"+e.srv.Admin.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("token response %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, m
}

// aadsts is the single Entra error code of an error body, or 0.
func aadsts(body map[string]any) int {
	codes, _ := body["error_codes"].([]any)
	if len(codes) != 1 {
		return 0
	}
	f, _ := codes[0].(float64)
	return int(f)
}

// Refresh tokens through a real server, by raw HTTP (azidentity offers no public call that
// takes a refresh token): a user signs in by password for ARM with offline_access, redeems the
// refresh token for a data-plane token (another resource) and reads a secret; the old token
// presented again is refused (AADSTS70008) and revokes the session, so the newest one dies too
// (AADSTS50173); a password change through Graph and revokeSignInSessions each revoke the
// user's refresh tokens.
func TestRefreshToken_RealServer(t *testing.T) {
	e := newEnv(t, nil)
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	user := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Rita","mailNickname":"rita",
		"userPrincipalName":"rita@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	userID := user["id"].(string)
	e.vaultWithSecretFor(t, "refresh", "rtvault", userID, "User")
	dataScope := e.dataScope().Scopes[0]
	const msal = " openid profile offline_access"

	signIn := func(password string) string {
		t.Helper()
		status, body := e.tokenCall(t, url.Values{"grant_type": {"password"}, "client_id": {azCLIClientID}, "username": {"rita@contoso.com"},
			"password": {password}, "scope": {"https://management.core.windows.net//.default" + msal}, "client_info": {"1"}})
		rt, _ := body["refresh_token"].(string)
		if status != 200 || rt == "" || body["id_token"] == nil || body["client_info"] == nil {
			t.Fatalf("password grant with offline_access = %d, refresh token %t, id token %t", status, rt != "", body["id_token"] != nil)
		}
		return rt
	}
	refresh := func(rt, scope string) (int, map[string]any) {
		t.Helper()
		return e.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {azCLIClientID}, "refresh_token": {rt},
			"scope": {scope + msal}, "client_info": {"1"}})
	}

	rt1 := signIn("Passw0rd!!")
	status, body := refresh(rt1, dataScope)
	if status != 200 {
		t.Fatalf("refresh for the data plane = %d %v", status, body)
	}
	rt2, _ := body["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 {
		t.Fatal("the refresh grant did not rotate the refresh token")
	}
	if c := claimsOf(t, body["access_token"].(string)); c["oid"] != userID || c["idtyp"] != "user" {
		t.Fatalf("data-plane token claims %v", c)
	}
	if got := e.readWith(t, "rtvault", body["access_token"].(string)); got != http.StatusOK {
		t.Fatalf("reading the secret with the refreshed token = %d", got)
	}
	if status, body := refresh(rt2, "https://not-served.example"); status != 400 || aadsts(body) != 500011 {
		t.Fatalf("refresh for an unserved resource = %d %v", status, body)
	}

	// Reuse of the rotated token: refused, and the session (its newest token too) is revoked.
	if status, body := refresh(rt1, dataScope); status != 400 || body["error"] != "invalid_grant" || aadsts(body) != 70008 {
		t.Fatalf("reused refresh token = %d %v, want 400 invalid_grant AADSTS70008", status, body)
	}
	if status, body := refresh(rt2, dataScope); status != 400 || body["error"] != "invalid_grant" || aadsts(body) != 50173 {
		t.Fatalf("the session's newest token after a reuse = %d %v, want AADSTS50173", status, body)
	}

	// A password change (Graph PATCH passwordProfile) revokes the user's refresh tokens.
	rt3 := signIn("Passw0rd!!")
	g.must(admin, "PATCH", "/v1.0/users/"+userID, `{"passwordProfile":{"password":"N3w-Passw0rd!"}}`, 204)
	if status, body := refresh(rt3, dataScope); status != 400 || aadsts(body) != 50173 {
		t.Fatalf("refresh after a password change = %d %v, want AADSTS50173", status, body)
	}

	// revokeSignInSessions does too, and answers {"value": true}.
	rt4 := signIn("N3w-Passw0rd!")
	if status, body := refresh(rt4, dataScope); status != 200 {
		t.Fatalf("refresh before revokeSignInSessions = %d %v", status, body)
	} else {
		rt4 = body["refresh_token"].(string)
	}
	if got := g.must(admin, "POST", "/v1.0/users/"+userID+"/revokeSignInSessions", "", 200); got["value"] != true {
		t.Fatalf("revokeSignInSessions = %v", got)
	}
	if status, body := refresh(rt4, dataScope); status != 400 || aadsts(body) != 50173 {
		t.Fatalf("refresh after revokeSignInSessions = %d %v, want AADSTS50173", status, body)
	}
	// A user may revoke their own sessions; another user's need User Administrator.
	other := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Otto","mailNickname":"otto",
		"userPrincipalName":"otto@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	status, body = e.tokenCall(t, url.Values{"grant_type": {"password"}, "client_id": {azCLIClientID}, "username": {"otto@contoso.com"},
		"password": {"Passw0rd!!"}, "scope": {e.publicURL + "/.default" + msal}})
	if status != 200 {
		t.Fatalf("otto's Graph token = %d %v", status, body)
	}
	otto := body["access_token"].(string)
	g.must(otto, "POST", "/v1.0/users/"+userID+"/revokeSignInSessions", "", 403)
	g.must(otto, "POST", "/v1.0/users/"+other["id"].(string)+"/revokeSignInSessions", "", 200)
	if status, body := refresh(body["refresh_token"].(string), dataScope); status != 400 || aadsts(body) != 50173 {
		t.Fatalf("otto's refresh token after revoking his own sessions = %d %v", status, body)
	}

	// Client credentials never get a refresh token.
	status, body = e.tokenCall(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {e.srv.Admin.ClientID},
		"client_secret": {e.srv.Admin.ClientSecret}, "scope": {dataScope + " offline_access"}})
	if status != 200 || body["refresh_token"] != nil {
		t.Fatalf("client credentials with offline_access = %d, refresh token %v", status, body["refresh_token"] != nil)
	}
	if strings.Contains(strings.Join([]string{rt1, rt2}, ""), userID) {
		t.Fatal("a refresh token carries the user's object id")
	}
}

// The official DeviceCodeCredential signs the user in once: its token for ARM comes from the
// device flow, and reading a secret (another resource) redeems the refresh token MSAL cached
// instead of prompting again.
func TestRefreshToken_DeviceCodeCredentialPromptsOnce(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)
	user := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Dora","mailNickname":"dora",
		"userPrincipalName":"dora@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	e.vaultWithSecretFor(t, "refresh", "dcrtvault", user["id"].(string), "User")

	var prompts atomic.Int32
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{ClientOptions: e.clientOptions(),
		TenantID: e.srv.Admin.TenantID, ClientID: azCLIClientID, DisableInstanceDiscovery: true,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			prompts.Add(1)
			go func() {
				form := url.Values{"user_code": {m.UserCode}, "username": {"dora@contoso.com"}, "password": {"Passw0rd!!"}, "decision": {"approve"}}
				if resp, err := e.hc.PostForm(m.VerificationURL, form); err == nil {
					resp.Body.Close()
				}
			}()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	// azsecrets asks for CAE tokens, and azidentity keeps a separate MSAL cache for those: sign in
	// on that one.
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}, EnableCAE: true}); err != nil {
		t.Fatalf("device code sign-in for ARM: %v", err)
	}
	got, err := e.srv.Secrets("dcrtvault", cred, e.hc).GetSecret(ctx, "db", "", nil)
	if err != nil || got.Value == nil || *got.Value != "s3cret" {
		t.Fatalf("GetSecret after the ARM sign-in = %v, %v", got.Value, err)
	}
	if n := prompts.Load(); n != 1 {
		t.Fatalf("the user was prompted %d times, want once (the refresh token serves the data plane)", n)
	}
}

// On a 3-node cluster a refresh token issued through one node is redeemed through another and
// its reuse is caught through the third: families live in the replicated store, and the token
// endpoint's writes run on the leader after a read barrier, so no node answers from a stale copy.
func TestRefreshToken_ClusterEveryNode(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	hc := c.HTTPClient()
	g := &graphClient{t: t, hc: hc, origin: c.PublicURL}
	admin := g.token(c.Credential(c.Nodes[0], hc))
	g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Nia",
		"userPrincipalName":"nia@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	post := func(node int, form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := hc.PostForm(c.Nodes[node].URL+"/"+c.Admin.TenantID+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	const scope = "https://management.core.windows.net//.default openid profile offline_access"
	status, body := post(0, url.Values{"grant_type": {"password"}, "client_id": {azCLIClientID}, "username": {"nia@contoso.com"},
		"password": {"Passw0rd!!"}, "scope": {scope}})
	rt1, _ := body["refresh_token"].(string)
	if status != 200 || rt1 == "" {
		t.Fatalf("password grant on node 1 = %d", status)
	}
	refresh := func(node int, rt string) (int, map[string]any) {
		return post(node, url.Values{"grant_type": {"refresh_token"}, "client_id": {azCLIClientID}, "refresh_token": {rt}, "scope": {scope}})
	}
	status, body = refresh(1, rt1)
	rt2, _ := body["refresh_token"].(string)
	if status != 200 || rt2 == "" {
		t.Fatalf("refresh on node 2 = %d %v", status, body)
	}
	if status, body := refresh(2, rt1); status != 400 || aadsts(body) != 70008 {
		t.Fatalf("reuse on node 3 = %d %v, want AADSTS70008", status, body)
	}
	if status, body := refresh(0, rt2); status != 400 || aadsts(body) != 50173 {
		t.Fatalf("the revoked session's token on node 1 = %d %v, want AADSTS50173", status, body)
	}
}
