package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/identity"
)

const testOrigin = "https://localhost:9"

// graphCall is one request to the handler and its decoded answer.
type graphCall struct {
	status int
	body   map[string]any
	raw    string
}

func (e *testAPI) graphDo(t *testing.T, token, method, path, body string) graphCall {
	t.Helper()
	req := httptest.NewRequest(method, testOrigin+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	c := graphCall{status: rec.Code, raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &c.body)
	return c
}

// tokenFor gets a token from the issuer's endpoint through the handler.
func (e *testAPI) tokenFor(t *testing.T, form url.Values) (string, graphCall) {
	t.Helper()
	req := httptest.NewRequest("POST", testOrigin+"/"+e.tenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	c := graphCall{status: rec.Code, raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &c.body)
	tok, _ := c.body["access_token"].(string)
	return tok, c
}

func (e *testAPI) appGraphToken(t *testing.T, clientID, secret, resource string) string {
	t.Helper()
	tok, c := e.tokenFor(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {resource + "/.default"}})
	if tok == "" {
		t.Fatalf("token for %s: %d %s", resource, c.status, c.raw)
	}
	return tok
}

// want checks a call's status and, for errors, Graph's envelope with code.
func (c graphCall) want(t *testing.T, status int, code string) graphCall {
	t.Helper()
	if c.status != status {
		t.Fatalf("status = %d, want %d: %s", c.status, status, c.raw)
	}
	if code != "" {
		e, _ := c.body["error"].(map[string]any)
		inner, _ := e["innerError"].(map[string]any)
		if e["code"] != code || e["message"] == "" || inner["request-id"] == nil {
			t.Fatalf("error = %s, want Graph's envelope with code %s", c.raw, code)
		}
	}
	return c
}

func (c graphCall) str(key string) string { s, _ := c.body[key].(string); return s }

func (c graphCall) values() []map[string]any {
	var out []map[string]any
	for _, v := range c.body["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

func TestGraph_Directory(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	admin := e.appGraphToken(t, e.clientID, e.clientSecret, testOrigin)

	// Audiences: an ARM token is refused; the origin's is accepted.
	e.graphDo(t, e.armToken, "GET", "/v1.0/me", "").want(t, 401, "InvalidAuthenticationToken")
	e.graphDo(t, "", "GET", "/v1.0/me", "").want(t, 401, "")
	me := e.graphDo(t, admin, "GET", "/v1.0/me", "").want(t, 200, "")
	if me.str("appId") != e.clientID || !strings.HasSuffix(me.str("@odata.context"), "#servicePrincipals/$entity") {
		t.Fatalf("me = %s", me.raw)
	}
	e.graphDo(t, e.appGraphToken(t, e.clientID, e.clientSecret, "https://graph.microsoft.com"), "GET", "/v1.0/me", "").want(t, 200, "")
	// And the other way round: ARM refuses the directory's tokens.
	if st := e.graphDo(t, admin, "GET", "/subscriptions?api-version=2022-12-01", "").status; st != 401 {
		t.Fatalf("ARM answered a Graph token with %d, want 401", st)
	}

	// An application, a password, its service principal.
	app := e.graphDo(t, admin, "POST", "/v1.0/applications", `{"displayName":"billing-api"}`).want(t, 201, "")
	if rec := sink.last.Load(); rec == nil || rec.Properties.IsRbacAuthorized == nil || !*rec.Properties.IsRbacAuthorized || rec.Properties.AppliedAssignmentID == "" {
		t.Fatalf("a directory write's audit record carries no decision: %+v", rec)
	}
	appObj, appID := app.str("id"), app.str("appId")
	if appObj == "" || appID == "" || appObj == appID || app.body["passwordCredentials"] == nil {
		t.Fatalf("application = %s", app.raw)
	}
	pw := e.graphDo(t, admin, "POST", "/v1.0/applications/"+appObj+"/addPassword", `{"passwordCredential":{"displayName":"ci","endDateTime":"2099-01-01T00:00:00Z"}}`).want(t, 200, "")
	secret, keyID := pw.str("secretText"), pw.str("keyId")
	if len(secret) != 40 || keyID == "" || pw.str("endDateTime") != "2099-01-01T00:00:00Z" || pw.str("hint") != secret[:3] {
		t.Fatalf("addPassword = %s", pw.raw)
	}
	if got := e.graphDo(t, admin, "GET", "/v1.0/applications/"+appObj, ""); strings.Contains(got.raw, secret) {
		t.Fatal("the secret is shown again")
	}
	sp := e.graphDo(t, admin, "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`).want(t, 201, "")
	spID := sp.str("id")
	e.graphDo(t, admin, "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`).want(t, 400, "Request_BadRequest")
	for _, q := range []string{
		"$filter=appId%20eq%20'" + appID + "'",
		"$filter=appId+eq+'" + appID + "'",
		"%24filter=servicePrincipalNames/any(c:c%20eq%20'" + appID + "')",
		"$filter=" + url.QueryEscape("servicePrincipalNames/any(c:c eq '"+strings.ToUpper(appID)+"')"),
	} {
		l := e.graphDo(t, admin, "GET", "/v1.0/servicePrincipals?"+q, "").want(t, 200, "")
		if v := l.values(); len(v) != 1 || v[0]["id"] != spID {
			t.Fatalf("%s: %s", q, l.raw)
		}
	}
	e.graphDo(t, admin, "GET", "/v1.0/servicePrincipals?$filter=tags/any(t:t%20eq%20'x')", "").want(t, 400, "Request_UnsupportedQuery")
	e.graphDo(t, admin, "GET", "/v1.0/servicePrincipals?$filter=x", "").want(t, 400, "Request_UnsupportedQuery")

	// The app signs in; its token carries the service principal's object id. Reading the
	// directory is open to it, writing is not, until it holds a role.
	appTok := e.appGraphToken(t, appID, secret, testOrigin)
	if m := e.graphDo(t, appTok, "GET", "/v1.0/me", "").want(t, 200, ""); m.str("id") != spID {
		t.Fatalf("app's me = %s", m.raw)
	}
	e.graphDo(t, appTok, "GET", "/v1.0/users", "").want(t, 200, "")
	userBody := `{"accountEnabled":true,"displayName":"Alice","mailNickname":"alice","userPrincipalName":"alice@contoso.com","passwordProfile":{"password":"Passw0rd!!","forceChangePasswordNextSignIn":false}}`
	e.graphDo(t, appTok, "POST", "/v1.0/users", userBody).want(t, 403, "Authorization_RequestDenied")
	ra := e.graphDo(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments",
		`{"principalId":"`+spID+`","roleDefinitionId":"`+identity.RoleUserAdministrator+`","directoryScopeId":"/"}`).want(t, 201, "")
	user := e.graphDo(t, appTok, "POST", "/v1.0/users", userBody).want(t, 201, "")
	userID := user.str("id")
	e.graphDo(t, appTok, "POST", "/v1.0/applications", `{"displayName":"x"}`).want(t, 403, "Authorization_RequestDenied")
	e.graphDo(t, admin, "DELETE", "/v1.0/roleManagement/directory/roleAssignments/"+ra.str("id"), "").want(t, 204, "")
	e.graphDo(t, appTok, "POST", "/v1.0/groups", `{"displayName":"g","mailNickname":"g","securityEnabled":true}`).want(t, 403, "Authorization_RequestDenied")
	if l := e.graphDo(t, admin, "GET", "/v1.0/roleManagement/directory/roleAssignments", "").want(t, 200, ""); len(l.values()) != 1 {
		t.Fatalf("role assignments = %s", l.raw)
	}

	// Bad input gets Graph's errors, and writes nothing.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1.0/users", strings.Replace(userBody, "Passw0rd!!", "short", 1)},
		{"POST", "/v1.0/users", strings.Replace(userBody, "alice@contoso.com", "ALICE@contoso.com", 1)},
		{"POST", "/v1.0/users", `{"displayName":"no upn","accountEnabled":true}`},
		{"POST", "/v1.0/users", `{"displayName":`},
		{"POST", "/v1.0/groups", `{"displayName":"g"}`},
		{"POST", "/v1.0/groups", `{"displayName":"m","mailNickname":"m","securityEnabled":false,"mailEnabled":true,"groupTypes":["Unified"]}`},
		{"POST", "/v1.0/applications", `{}`},
		{"POST", "/v1.0/applications/" + appObj + "/removePassword", `{}`},
		{"POST", "/v1.0/applications/" + appObj + "/addPassword", `{"passwordCredential":{"endDateTime":"yesterday"}}`},
		{"POST", "/v1.0/roleManagement/directory/roleAssignments", `{"principalId":"` + userID + `","roleDefinitionId":"00000000-0000-0000-0000-000000000000","directoryScopeId":"/"}`},
	} {
		e.graphDo(t, admin, c.method, c.path, c.body).want(t, 400, "Request_BadRequest")
	}
	if l := e.graphDo(t, admin, "GET", "/v1.0/users", "").want(t, 200, ""); len(l.values()) != 1 {
		t.Fatalf("users after refused writes = %s", l.raw)
	}
	e.graphDo(t, admin, "GET", "/v1.0/users/00000000-0000-0000-0000-0000000000aa", "").want(t, 404, "Request_ResourceNotFound")
	e.graphDo(t, admin, "GET", "/v1.0/groups/nope", "").want(t, 404, "Request_ResourceNotFound")
	if u := e.graphDo(t, admin, "GET", "/v1.0/users/Alice@Contoso.com", "").want(t, 200, ""); u.str("id") != userID {
		t.Fatalf("user by UPN = %s", u.raw)
	}

	// The user signs in by password; me is the user.
	userTok, tc := e.tokenFor(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
		"username": {"alice@contoso.com"}, "password": {"Passw0rd!!"}, "scope": {testOrigin + "//.default openid profile offline_access"}})
	if userTok == "" {
		t.Fatalf("password sign-in: %s", tc.raw)
	}
	if m := e.graphDo(t, userTok, "GET", "/v1.0/me", "").want(t, 200, ""); m.str("userPrincipalName") != "alice@contoso.com" || m.str("id") != userID {
		t.Fatalf("user's me = %s", m.raw)
	}

	// Nested groups.
	sre := e.graphDo(t, admin, "POST", "/v1.0/groups", `{"displayName":"sre","mailNickname":"sre","securityEnabled":true}`).want(t, 201, "").str("id")
	oncall := e.graphDo(t, admin, "POST", "/v1.0/groups", `{"displayName":"oncall","mailNickname":"oncall","securityEnabled":true}`).want(t, 201, "").str("id")
	ref := func(id string) string { return `{"@odata.id":"` + testOrigin + `/v1.0/directoryObjects/` + id + `"}` }
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+sre+"/members/$ref", ref(oncall)).want(t, 204, "")
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", ref(userID)).want(t, 204, "")
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/`+spID+`"}`).want(t, 204, "")
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", ref(userID)).want(t, 400, "Request_BadRequest")
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", ref("00000000-0000-0000-0000-0000000000bb")).want(t, 404, "Request_ResourceNotFound")
	e.graphDo(t, admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", `{"@odata.id":"not a reference"}`).want(t, 400, "Request_BadRequest")
	members := e.graphDo(t, admin, "GET", "/v1.0/groups/"+oncall+"/members", "").want(t, 200, "").values()
	types := map[string]string{}
	for _, m := range members {
		types[m["id"].(string)] = m["@odata.type"].(string)
	}
	if types[userID] != "#microsoft.graph.user" || types[spID] != "#microsoft.graph.servicePrincipal" || len(types) != 2 {
		t.Fatalf("members = %v", members)
	}
	check := e.graphDo(t, userTok, "POST", "/v1.0/directoryObjects/"+userID+"/checkMemberGroups", `{"groupIds":["`+sre+`"]}`).want(t, 200, "")
	if v, _ := check.body["value"].([]any); len(v) != 1 || v[0] != sre {
		t.Fatalf("checkMemberGroups (transitive) = %s", check.raw)
	}
	tm := e.graphDo(t, admin, "GET", "/v1.0/users/alice@contoso.com/transitiveMemberOf", "").want(t, 200, "").values()
	if len(tm) != 2 || tm[0]["@odata.type"] != "#microsoft.graph.group" {
		t.Fatalf("transitiveMemberOf = %v", tm)
	}
	if mine := e.graphDo(t, userTok, "GET", "/v1.0/me/transitiveMemberOf", "").want(t, 200, "").values(); len(mine) != 2 {
		t.Fatalf("me/transitiveMemberOf = %v", mine)
	}
	e.graphDo(t, admin, "DELETE", "/v1.0/groups/"+sre+"/members/"+oncall+"/$ref", "").want(t, 204, "")
	if tm := e.graphDo(t, admin, "GET", "/v1.0/users/"+userID+"/transitiveMemberOf", "").want(t, 200, "").values(); len(tm) != 1 || tm[0]["id"] != oncall {
		t.Fatalf("transitiveMemberOf after removal = %v", tm)
	}
	check = e.graphDo(t, userTok, "POST", "/v1.0/directoryObjects/"+userID+"/checkMemberGroups", `{"groupIds":["`+sre+`"]}`).want(t, 200, "")
	if v, _ := check.body["value"].([]any); len(v) != 0 {
		t.Fatalf("checkMemberGroups after removal = %s", check.raw)
	}
	e.graphDo(t, admin, "DELETE", "/v1.0/groups/"+sre+"/members/"+oncall+"/$ref", "").want(t, 404, "Request_ResourceNotFound")
	if l := e.graphDo(t, admin, "GET", "/v1.0/groups?$filter=startswith(displayName,'on')", "").want(t, 200, ""); len(l.values()) != 1 {
		t.Fatalf("groups starting with on = %s", l.raw)
	}

	// Revocations count on the next request: a removed password, a disabled principal, a
	// deleted user.
	e.graphDo(t, admin, "POST", "/v1.0/applications/"+appObj+"/removePassword", `{"keyId":"`+keyID+`"}`).want(t, 204, "")
	e.graphDo(t, appTok, "GET", "/v1.0/me", "").want(t, 401, "")
	e.graphDo(t, admin, "PATCH", "/v1.0/users/"+userID, `{"passwordProfile":{"password":"weak"}}`).want(t, 400, "Request_BadRequest")
	e.graphDo(t, admin, "PATCH", "/v1.0/users/"+userID, `{}`).want(t, 400, "Request_BadRequest")
	e.graphDo(t, userTok, "GET", "/v1.0/me", "").want(t, 200, "")
	e.graphDo(t, admin, "PATCH", "/v1.0/users/"+userID, `{"passwordProfile":{"password":"N3w-Passw0rd"}}`).want(t, 204, "")
	e.graphDo(t, userTok, "GET", "/v1.0/me", "").want(t, 401, "")
	userTok, tc = e.tokenFor(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
		"username": {"alice@contoso.com"}, "password": {"N3w-Passw0rd"}, "scope": {testOrigin + "/.default"}})
	if userTok == "" {
		t.Fatalf("sign-in with the new password: %s", tc.raw)
	}
	e.graphDo(t, admin, "PATCH", "/v1.0/users/"+userID, `{"accountEnabled":false}`).want(t, 204, "")
	e.graphDo(t, userTok, "GET", "/v1.0/me", "").want(t, 401, "")
	e.graphDo(t, admin, "PATCH", "/v1.0/servicePrincipals/"+spID, `{"accountEnabled":false}`).want(t, 204, "")
	if s := e.graphDo(t, admin, "GET", "/v1.0/servicePrincipals/"+spID, "").want(t, 200, ""); s.body["accountEnabled"] != false {
		t.Fatalf("disabled sp = %s", s.raw)
	}
	e.graphDo(t, admin, "DELETE", "/v1.0/users/"+userID, "").want(t, 204, "")
	e.graphDo(t, admin, "DELETE", "/v1.0/users/"+userID, "").want(t, 404, "Request_ResourceNotFound")
	e.graphDo(t, admin, "DELETE", "/v1.0/groups/"+oncall, "").want(t, 204, "")
	e.graphDo(t, admin, "DELETE", "/v1.0/applications/"+appObj, "").want(t, 204, "")
	e.graphDo(t, admin, "GET", "/v1.0/servicePrincipals/"+spID, "").want(t, 404, "Request_ResourceNotFound")
	// The bootstrap admin is protected.
	e.graphDo(t, admin, "DELETE", "/v1.0/servicePrincipals/"+me.str("id"), "").want(t, 400, "Request_BadRequest")
	e.graphDo(t, admin, "DELETE", "/v1.0/roleManagement/directory/roleAssignments/strongroom-bootstrap-global-administrator", "").want(t, 400, "Request_BadRequest")
}

// The token endpoint refuses a resource no plane serves.
func TestGraph_TokenRefusesUnservedResource(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	_, c := e.tokenFor(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {e.clientID}, "client_secret": {e.clientSecret},
		"scope": {"https://storage.azure.com/.default"}})
	if c.status != 400 || c.body["error"] != "invalid_resource" || !strings.HasPrefix(c.body["error_description"].(string), "AADSTS500011: The resource principal named https://storage.azure.com was not found") {
		t.Fatalf("token for storage = %d %s", c.status, c.raw)
	}
}

// A User Administrator manages users but not administrators: resetting, disabling or deleting
// a user who holds a directory role takes a Global or Privileged Role Administrator, as in
// Entra, or a User Administrator could take over a Global Administrator.
func TestGraph_UserAdministratorCannotTakeOverAnAdministrator(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	admin := e.appGraphToken(t, e.clientID, e.clientSecret, testOrigin)
	mkUser := func(upn, role string) string {
		u := e.graphDo(t, admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"`+upn+`","mailNickname":"x","userPrincipalName":"`+upn+`","passwordProfile":{"password":"Passw0rd!!"}}`).want(t, 201, "")
		if role != "" {
			e.graphDo(t, admin, "POST", "/v1.0/roleManagement/directory/roleAssignments",
				`{"principalId":"`+u.str("id")+`","roleDefinitionId":"`+role+`","directoryScopeId":"/"}`).want(t, 201, "")
		}
		return u.str("id")
	}
	ga := mkUser("ga@contoso.com", identity.RoleGlobalAdministrator)
	mkUser("ua@contoso.com", identity.RoleUserAdministrator)
	plain := mkUser("bob@contoso.com", "")
	ua, c := e.tokenFor(t, url.Values{"grant_type": {"password"}, "client_id": {"04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
		"username": {"ua@contoso.com"}, "password": {"Passw0rd!!"}, "scope": {testOrigin + "/.default"}})
	if ua == "" {
		t.Fatalf("sign-in: %s", c.raw)
	}
	e.graphDo(t, ua, "PATCH", "/v1.0/users/"+ga, `{"passwordProfile":{"password":"Hijacked#123"}}`).want(t, 403, "Authorization_RequestDenied")
	e.graphDo(t, ua, "PATCH", "/v1.0/users/ga@contoso.com", `{"accountEnabled":false}`).want(t, 403, "Authorization_RequestDenied")
	e.graphDo(t, ua, "DELETE", "/v1.0/users/"+ga, "").want(t, 403, "Authorization_RequestDenied")
	// A user without a role is the User Administrator's to manage; the admin manages anyone.
	e.graphDo(t, ua, "PATCH", "/v1.0/users/"+plain, `{"passwordProfile":{"password":"N3w-Passw0rd"}}`).want(t, 204, "")
	e.graphDo(t, admin, "PATCH", "/v1.0/users/"+ga, `{"accountEnabled":false}`).want(t, 204, "")
}
