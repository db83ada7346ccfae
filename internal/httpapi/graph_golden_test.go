package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
)

// graphGoldenCalls records a golden response of every Graph route (TestARM_GoldenResponses
// calls it) with a token for the server's origin, the Graph audience az uses.
func graphGoldenCalls(g *goldenRun) {
	e := g.e
	c := graphCall{}
	req := httptest.NewRequest("POST", testOrigin+"/"+e.tenantID+"/oauth2/v2.0/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {e.clientID}, "client_secret": {e.clientSecret}, "scope": {testOrigin + "/.default"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	_ = json.Unmarshal(rec.Body.Bytes(), &c.body)
	tok, _ := c.body["access_token"].(string)
	if tok == "" {
		g.t.Fatalf("graph token: %s", rec.Body)
	}
	call := func(name, method, path, body string) map[string]any {
		return graphGolden(g, name, tok, method, path, body)
	}

	g.callAs("graph-me-arm-token", e.armToken, "GET", "/v1.0/me", "")
	call("graph-me", "GET", "/v1.0/me", "")
	app := call("graph-application-create", "POST", "/v1.0/applications", `{"displayName":"golden app"}`)
	appObj, _ := app["id"].(string)
	appID, _ := app["appId"].(string)
	call("graph-application-create-bad", "POST", "/v1.0/applications", `{}`)
	pw := call("graph-application-add-password", "POST", "/v1.0/applications/"+appObj+"/addPassword", `{"passwordCredential":{"displayName":"ci"}}`)
	keyID, _ := pw["keyId"].(string)
	call("graph-application-get", "GET", "/v1.0/applications/"+appObj, "")
	call("graph-application-get-missing", "GET", "/v1.0/applications/00000000-0000-0000-0000-000000000000", "")
	call("graph-application-list", "GET", "/v1.0/applications?$filter=appId%20eq%20'"+appID+"'", "")
	sp := call("graph-serviceprincipal-create", "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`)
	spID, _ := sp["id"].(string)
	call("graph-serviceprincipals", "GET", "/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c%20eq%20'"+appID+"')", "")
	call("graph-serviceprincipals-bad-filter", "GET", "/v1.0/servicePrincipals?$filter=x", "")
	call("graph-serviceprincipal-get", "GET", "/v1.0/servicePrincipals/"+spID, "")
	call("graph-serviceprincipal-patch", "PATCH", "/v1.0/servicePrincipals/"+spID, `{"accountEnabled":false}`)
	user := call("graph-user-create", "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Golden","mailNickname":"golden","userPrincipalName":"golden@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`)
	userID, _ := user["id"].(string)
	call("graph-user-create-weak", "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Weak","userPrincipalName":"weak@contoso.com","passwordProfile":{"password":"weak"}}`)
	call("graph-user-get", "GET", "/v1.0/users/golden@contoso.com", "")
	call("graph-user-list", "GET", "/v1.0/users", "")
	call("graph-user-patch", "PATCH", "/v1.0/users/"+userID, `{"accountEnabled":true}`)
	grp := call("graph-group-create", "POST", "/v1.0/groups", `{"displayName":"golden","mailNickname":"golden","securityEnabled":true}`)
	gid, _ := grp["id"].(string)
	call("graph-group-get", "GET", "/v1.0/groups/"+gid, "")
	call("graph-group-list", "GET", "/v1.0/groups", "")
	call("graph-group-member-add", "POST", "/v1.0/groups/"+gid+"/members/$ref", `{"@odata.id":"`+testOrigin+`/v1.0/directoryObjects/`+userID+`"}`)
	call("graph-group-member-add-again", "POST", "/v1.0/groups/"+gid+"/members/$ref", `{"@odata.id":"`+testOrigin+`/v1.0/directoryObjects/`+userID+`"}`)
	call("graph-group-members", "GET", "/v1.0/groups/"+gid+"/members", "")
	call("graph-get-by-ids", "POST", "/v1.0/directoryObjects/getByIds",
		`{"ids":["`+userID+`","`+spID+`","`+gid+`","00000000-0000-0000-0000-000000000000"],"types":["user","servicePrincipal","group"]}`)
	call("graph-check-member-groups", "POST", "/v1.0/directoryObjects/"+userID+"/checkMemberGroups", `{"groupIds":["`+gid+`"]}`)
	call("graph-member-objects", "POST", "/v1.0/directoryObjects/"+userID+"/getMemberObjects", `{"securityEnabledOnly":false}`)
	call("graph-user-transitive-member-of", "GET", "/v1.0/users/"+userID+"/transitiveMemberOf", "")
	call("graph-me-transitive-member-of", "GET", "/v1.0/me/transitiveMemberOf", "")
	call("graph-sp-transitive-member-of", "GET", "/v1.0/servicePrincipals/"+spID+"/transitiveMemberOf", "")
	call("graph-group-transitive-member-of", "GET", "/v1.0/groups/"+gid+"/transitiveMemberOf", "")
	call("graph-user-member-objects", "POST", "/v1.0/users/"+userID+"/getMemberObjects", `{"securityEnabledOnly":false}`)
	call("graph-user-revoke-sign-in-sessions", "POST", "/v1.0/users/"+userID+"/revokeSignInSessions", "")
	call("graph-role-definitions", "GET", "/v1.0/roleManagement/directory/roleDefinitions", "")
	ra := call("graph-role-assignment-create", "POST", "/v1.0/roleManagement/directory/roleAssignments",
		`{"principalId":"`+userID+`","roleDefinitionId":"`+identity.RoleGroupsAdministrator+`","directoryScopeId":"/"}`)
	raID, _ := ra["id"].(string)
	call("graph-role-assignment-get", "GET", "/v1.0/roleManagement/directory/roleAssignments/"+raID, "")
	call("graph-role-assignments", "GET", "/v1.0/roleManagement/directory/roleAssignments", "")
	call("graph-role-assignment-delete", "DELETE", "/v1.0/roleManagement/directory/roleAssignments/"+raID, "")
	call("graph-group-member-remove", "DELETE", "/v1.0/groups/"+gid+"/members/"+userID+"/$ref", "")
	call("graph-group-delete", "DELETE", "/v1.0/groups/"+gid, "")
	call("graph-user-delete", "DELETE", "/v1.0/users/"+userID, "")
	call("graph-application-remove-password", "POST", "/v1.0/applications/"+appObj+"/removePassword", `{"keyId":"`+keyID+`"}`)
	call("graph-serviceprincipal-delete", "DELETE", "/v1.0/servicePrincipals/"+spID, "")
	call("graph-application-delete", "DELETE", "/v1.0/applications/"+appObj, "")
}

// graphGolden is goldenRun.callAs with Graph's run-specific fields (a new secret and its hint)
// masked too.
func graphGolden(g *goldenRun, name, token, method, path, body string) map[string]any {
	g.t.Helper()
	req := httptest.NewRequest(method, testOrigin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	g.e.h.ServeHTTP(rec, req)
	if r := httpapi.ARMRouteOf(method, req.URL.Path); r != "" {
		g.seen[r] = true
	}
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	got := armCall{Status: rec.Code, Header: map[string]string{}}
	for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Retry-After"} {
		if v := rec.Header().Get(h); v != "" {
			got.Header[h] = g.mask(v)
		}
	}
	var raw any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal([]byte(g.mask(rec.Body.String())), &raw); err != nil {
			g.t.Fatalf("%s: body is not JSON: %v\n%s", name, err, rec.Body)
		}
	}
	got.Body = maskGraphSecrets(maskSecrets(raw))
	g.compare(name, got)
	return out
}

func maskGraphSecrets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && s != "" && (k == "secretText" || k == "hint") {
				x[k] = "<" + k + ">"
				continue
			}
			x[k] = maskGraphSecrets(val)
		}
	case []any:
		for i := range x {
			x[i] = maskGraphSecrets(x[i])
		}
	}
	return v
}
