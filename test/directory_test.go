package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// azCLIClientID is the public client id az signs users in with.
const azCLIClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

// graphClient calls a real server's Graph routes with tokens from an official credential.
type graphClient struct {
	t      *testing.T
	hc     *http.Client
	origin string
}

// token gets a Graph token (audience: the server's origin, as az asks for it) from cred.
func (g *graphClient) token(cred azcore.TokenCredential) string {
	g.t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{g.origin + "/.default"}})
	if err != nil {
		g.t.Fatalf("graph token: %v", err)
	}
	return tok.Token
}

// call sends one Graph request; rawQuery goes on the wire as given (raw spaces included).
func (g *graphClient) call(tok, method, path, rawQuery, body string) (int, map[string]any) {
	g.t.Helper()
	u, err := url.Parse(g.origin + path)
	if err != nil {
		g.t.Fatal(err)
	}
	u.RawQuery = rawQuery
	req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.URL.RawQuery = rawQuery
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (g *graphClient) must(tok, method, path, body string, want int) map[string]any {
	g.t.Helper()
	status, m := g.call(tok, method, path, "", body)
	if status != want {
		g.t.Fatalf("%s %s = %d %v, want %d", method, path, status, m, want)
	}
	return m
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatal("token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Through a real server and the official credentials: an application with a password and its
// service principal, signing in with ClientSecretCredential; a user signing in by password
// with UsernamePasswordCredential (what az login -u -p does through MSAL); nested groups; and
// the revocations that count on the next request.
func TestDirectory_EndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	admin := g.token(e.cred)

	app := g.must(admin, "POST", "/v1.0/applications", `{"displayName":"billing-api"}`, 201)
	appObj, appID := app["id"].(string), app["appId"].(string)
	pw := g.must(admin, "POST", "/v1.0/applications/"+appObj+"/addPassword", `{"passwordCredential":{"displayName":"ci"}}`, 200)
	secret, keyID := pw["secretText"].(string), pw["keyId"].(string)
	sp := g.must(admin, "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`, 201)
	spID := sp["id"].(string)
	// az's lookups, with the filter's spaces raw (HTTP/2 carries them) and escaped.
	for _, q := range []string{"$filter=servicePrincipalNames/any(c:c eq '" + appID + "')", "$filter=appId%20eq%20'" + appID + "'"} {
		status, l := g.call(admin, "GET", "/v1.0/servicePrincipals", q, "")
		v, _ := l["value"].([]any)
		if status != 200 || len(v) != 1 || v[0].(map[string]any)["id"] != spID {
			t.Fatalf("servicePrincipals?%s = %d %v", q, status, l)
		}
	}

	// The application signs in with the official ClientSecretCredential; oid is the service
	// principal's object id.
	appCred := e.srv.CredentialFor(e.hc, appID, secret)
	appTok := g.token(appCred)
	if c := claimsOf(t, appTok); c["oid"] != spID || c["idtyp"] != "app" || c["appid"] != appID {
		t.Fatalf("app token claims = %v", c)
	}
	if me := g.must(appTok, "GET", "/v1.0/me", "", 200); me["id"] != spID {
		t.Fatalf("app's me = %v", me)
	}
	g.must(appTok, "POST", "/v1.0/groups", `{"displayName":"x","mailNickname":"x","securityEnabled":true}`, 403)

	// A user, nested groups: alice ∈ oncall ∈ sre.
	user := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Alice","mailNickname":"alice",
		"userPrincipalName":"alice@contoso.com","passwordProfile":{"password":"Passw0rd!!","forceChangePasswordNextSignIn":false}}`, 201)
	userID := user["id"].(string)
	sre := g.must(admin, "POST", "/v1.0/groups", `{"displayName":"sre","mailNickname":"sre","securityEnabled":true}`, 201)["id"].(string)
	oncall := g.must(admin, "POST", "/v1.0/groups", `{"displayName":"oncall","mailNickname":"oncall","securityEnabled":true}`, 201)["id"].(string)
	ref := func(id string) string { return `{"@odata.id":"` + e.publicURL + `/v1.0/directoryObjects/` + id + `"}` }
	g.must(admin, "POST", "/v1.0/groups/"+sre+"/members/$ref", ref(oncall), 204)
	g.must(admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", ref(userID), 204)
	members, _ := g.must(admin, "GET", "/v1.0/groups/"+sre+"/members", "", 200)["value"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["id"] != oncall || members[0].(map[string]any)["@odata.type"] != "#microsoft.graph.group" {
		t.Fatalf("sre's members = %v", members)
	}

	// The user signs in by password through MSAL (home realm discovery, then the password grant).
	userCred, err := azidentity.NewUsernamePasswordCredential(e.srv.Admin.TenantID, azCLIClientID, "alice@contoso.com", "Passw0rd!!",
		&azidentity.UsernamePasswordCredentialOptions{
			ClientOptions:            policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.publicURL + "/"}, Transport: e.hc},
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		t.Fatal(err)
	}
	userTok := g.token(userCred)
	uc := claimsOf(t, userTok)
	groups, _ := uc["groups"].([]any)
	if uc["oid"] != userID || uc["idtyp"] != "user" || uc["upn"] != "alice@contoso.com" || uc["name"] != "Alice" ||
		uc["tid"] != e.srv.Admin.TenantID || len(groups) != 2 || !slices.Contains(groups, any(sre)) || !slices.Contains(groups, any(oncall)) {
		t.Fatalf("user token claims = %v", uc)
	}
	if me := g.must(userTok, "GET", "/v1.0/me", "", 200); me["id"] != userID || me["userPrincipalName"] != "alice@contoso.com" {
		t.Fatalf("user's me = %v", me)
	}
	check := g.must(userTok, "POST", "/v1.0/directoryObjects/"+userID+"/checkMemberGroups", `{"groupIds":["`+sre+`"]}`, 200)
	if v, _ := check["value"].([]any); len(v) != 1 {
		t.Fatalf("checkMemberGroups = %v", check)
	}
	// Membership is answered live, not from the token: removing oncall from sre counts at once.
	g.must(admin, "DELETE", "/v1.0/groups/"+sre+"/members/"+oncall+"/$ref", "", 204)
	check = g.must(userTok, "POST", "/v1.0/directoryObjects/"+userID+"/checkMemberGroups", `{"groupIds":["`+sre+`"]}`, 200)
	if v, _ := check["value"].([]any); len(v) != 0 {
		t.Fatalf("checkMemberGroups after removal = %v", check)
	}

	// The token endpoint refuses a resource no plane serves, as Entra does.
	if _, err := appCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}}); err == nil ||
		!strings.Contains(err.Error(), "AADSTS500011") {
		t.Fatalf("token for an unserved resource: %v", err)
	}

	// Revocations count on the next request: the removed password's token, the disabled user's.
	g.must(admin, "POST", "/v1.0/applications/"+appObj+"/removePassword", `{"keyId":"`+keyID+`"}`, 204)
	g.must(appTok, "GET", "/v1.0/me", "", 401)
	g.must(admin, "PATCH", "/v1.0/users/"+userID, `{"accountEnabled":false}`, 204)
	g.must(userTok, "GET", "/v1.0/me", "", 401)
	g.must(admin, "DELETE", "/v1.0/applications/"+appObj, "", 204)
	g.must(admin, "GET", "/v1.0/servicePrincipals/"+spID, "", 404)
}
