package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/strongroom/strongroom/internal/testenv"
)

// On a 3-node cluster, directory changes reach every node's in-memory directory as soon as it
// has applied them: transitive memberships (what authorization asks), a removed client secret
// and a disabled user, each answered by every node itself (the stale path, no forwarding).
func TestCluster_Directory_EveryNode(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	hc := c.HTTPClient()
	g := &graphClient{t: t, hc: hc, origin: c.PublicURL}
	admin := g.token(c.Credential(c.Nodes[0], hc))

	user := g.must(admin, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Alice",
		"userPrincipalName":"alice@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	userID := user["id"].(string)
	sre := g.must(admin, "POST", "/v1.0/groups", `{"displayName":"sre","mailNickname":"sre","securityEnabled":true}`, 201)["id"].(string)
	oncall := g.must(admin, "POST", "/v1.0/groups", `{"displayName":"oncall","mailNickname":"oncall","securityEnabled":true}`, 201)["id"].(string)
	ref := func(id string) string { return `{"@odata.id":"` + c.PublicURL + `/v1.0/directoryObjects/` + id + `"}` }
	g.must(admin, "POST", "/v1.0/groups/"+sre+"/members/$ref", ref(oncall), 204)
	g.must(admin, "POST", "/v1.0/groups/"+oncall+"/members/$ref", ref(userID), 204)
	app := g.must(admin, "POST", "/v1.0/applications", `{"displayName":"replicated"}`, 201)
	appObj, appID := app["id"].(string), app["appId"].(string)
	pw := g.must(admin, "POST", "/v1.0/applications/"+appObj+"/addPassword", `{}`, 200)
	g.must(admin, "POST", "/v1.0/servicePrincipals", `{"appId":"`+appID+`"}`, 201)

	appTok := formToken(t, hc, c, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
		"client_secret": {pw["secretText"].(string)}, "scope": {c.PublicURL + "/.default"}})
	userTok := formToken(t, hc, c, url.Values{"grant_type": {"password"}, "client_id": {azCLIClientID},
		"username": {"alice@contoso.com"}, "password": {"Passw0rd!!"}, "scope": {c.PublicURL + "/.default"}})

	everyNode := func(what, tok, path string, check func(status int, body map[string]any) bool) {
		t.Helper()
		allApplied(t, c)
		for i, n := range c.Nodes {
			status, body := staleGet(t, hc, n, tok, path)
			if !check(status, body) {
				t.Errorf("%s on node %s: %d %v", what, c.IDs[i], status, body)
			}
		}
	}
	groupsAre := func(n int) func(int, map[string]any) bool {
		return func(status int, body map[string]any) bool {
			v, _ := body["value"].([]any)
			return status == 200 && len(v) == n
		}
	}
	statusIs := func(want int) func(int, map[string]any) bool {
		return func(status int, _ map[string]any) bool { return status == want }
	}
	everyNode("nested membership", admin, "/v1.0/users/"+userID+"/transitiveMemberOf", groupsAre(2))
	everyNode("app token", appTok, "/v1.0/me", statusIs(200))
	everyNode("user token", userTok, "/v1.0/me", statusIs(200))

	g.must(admin, "DELETE", "/v1.0/groups/"+sre+"/members/"+oncall+"/$ref", "", 204)
	g.must(admin, "POST", "/v1.0/applications/"+appObj+"/removePassword", `{"keyId":"`+pw["keyId"].(string)+`"}`, 204)
	g.must(admin, "PATCH", "/v1.0/users/"+userID, `{"accountEnabled":false}`, 204)
	everyNode("membership after removal", admin, "/v1.0/users/"+userID+"/transitiveMemberOf", groupsAre(1))
	everyNode("removed secret's token", appTok, "/v1.0/me", statusIs(401))
	everyNode("disabled user's token", userTok, "/v1.0/me", statusIs(401))
}

// formToken posts a token request to the cluster's token endpoint.
func formToken(t *testing.T, hc *http.Client, c *testenv.Cluster, form url.Values) string {
	t.Helper()
	resp, err := hc.PostForm(c.PublicURL+"/"+c.Admin.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.AccessToken == "" {
		t.Fatalf("token (%s): HTTP %d", form.Get("grant_type"), resp.StatusCode)
	}
	return body.AccessToken
}

// staleGet asks node itself (X-Strongroom-Consistency: stale) and decodes the answer.
func staleGet(t *testing.T, hc *http.Client, node *testenv.Server, tok, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", node.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Strongroom-Consistency", "stale")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}
