package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/identity"
)

func (e *testAPI) armDo(t *testing.T, token, method, path, body string, header map[string]string) graphCall {
	t.Helper()
	req := httptest.NewRequest(method, testOrigin+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	c := graphCall{status: rec.Code, raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &c.body)
	return c
}

func TestManagedIdentityRoutes(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	sub := e.svc.SubscriptionScope()
	const av = "?api-version=2023-01-31"
	mi := sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-1"

	c := e.armDo(t, e.armToken, "PUT", mi+av, `{"location":"eastus","tags":{"a":"b"}}`, nil)
	props, _ := c.body["properties"].(map[string]any)
	if c.status != 201 || c.body["id"] != mi || c.body["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities" ||
		props["tenantId"] != e.tenantID || props["principalId"] == "" || props["clientId"] == "" {
		t.Fatalf("create: %d %s", c.status, c.raw)
	}
	if c := e.armDo(t, e.armToken, "PUT", mi+av, `{"location":"eastus"}`, nil); c.status != 200 {
		t.Fatalf("update: %d %s", c.status, c.raw)
	}
	// Another spelling of the same path (az lower-cases resourcegroups; ARM ignores case).
	if c := e.armDo(t, e.armToken, "GET", strings.ToLower(mi)+av, "", nil); c.status != 200 || c.body["name"] != "worker-1" {
		t.Fatalf("get: %d %s", c.status, c.raw)
	}
	for _, c := range []struct {
		name, method, path, body, code string
		status                         int
	}{
		{"bad name", "PUT", sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x" + av, `{"location":"eastus"}`, "InvalidResourceName", 400},
		{"no group", "PUT", sub + "/resourceGroups/nope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-2" + av, `{"location":"eastus"}`, "ResourceGroupNotFound", 404},
		{"missing", "GET", sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-9" + av, "", "ResourceNotFound", 404},
		{"no location", "PUT", sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-3" + av, `{}`, "BadRequest", 400},
	} {
		got := e.armDo(t, e.armToken, c.method, c.path, c.body, nil)
		if got.status != c.status || !strings.Contains(got.raw, `"`+c.code+`"`) {
			t.Errorf("%s: %d %s", c.name, got.status, got.raw)
		}
	}
	for _, list := range []string{sub + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities", sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities"} {
		if c := e.armDo(t, e.armToken, "GET", list+av, "", nil); c.status != 200 || len(c.body["value"].([]any)) != 1 {
			t.Errorf("list %s: %d %s", list, c.status, c.raw)
		}
	}

	// A principal without a role is refused every route, in ARM's words.
	made := e.armDo(t, e.armToken, "POST", "/sys/principals", `{"displayName":"stranger"}`, nil)
	appID, _ := made.body["appId"].(string)
	secret, _ := made.body["clientSecret"].(string)
	stranger := e.appGraphToken(t, appID, secret, "https://management.azure.com")
	hosts := sub + "/providers/Strongroom.Identity/hosts"
	for _, c := range []struct{ method, path, body string }{
		{"PUT", mi + av, `{"location":"eastus"}`},
		{"GET", mi + av, ""},
		{"DELETE", mi + av, ""},
		{"GET", sub + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities" + av, ""},
		{"PUT", hosts + "/web-1" + av, ""},
		{"GET", hosts + av, ""},
		{"POST", hosts + "/web-1/assignIdentity" + av, `{"identityId":"` + mi + `"}`},
	} {
		if got := e.armDo(t, stranger, c.method, c.path, c.body, nil); got.status != 403 || !strings.Contains(got.raw, "AuthorizationFailed") {
			t.Errorf("stranger %s %s: %d %s", c.method, c.path, got.status, got.raw)
		}
	}

	// A host: registered, its agent redeems the token once, assigned the identity, asks.
	reg := e.armDo(t, e.armToken, "PUT", hosts+"/web-1"+av, "", nil)
	token, _ := reg.body["properties"].(map[string]any)["registrationToken"].(string)
	if reg.status != 201 || !strings.HasPrefix(token, "srh1.web-1.") {
		t.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "web-1"}}, key)
	redeem := `{"registrationToken":"` + token + `","csr":"` + base64.StdEncoding.EncodeToString(csr) + `"}`
	got := e.armDo(t, "", "POST", "/providers/Strongroom.Identity/hostAgent/register", redeem, nil)
	certPEM, _ := got.body["certificate"].(string)
	if got.status != 200 || certPEM == "" {
		t.Fatalf("redeem: %d %s", got.status, got.raw)
	}
	if again := e.armDo(t, "", "POST", "/providers/Strongroom.Identity/hostAgent/register", redeem, nil); again.status != 401 || !strings.Contains(again.raw, "InvalidRegistrationToken") {
		t.Fatalf("second redemption: %d %s", again.status, again.raw)
	}
	if raw, _ := json.Marshal(sink.last.Load()); strings.Contains(string(raw), token) {
		t.Fatal("the audit record holds the registration token")
	}
	b, _ := pem.Decode([]byte(certPEM))
	sum := sha256.Sum256(b.Bytes)
	sign := func(body string) string {
		bh := sha256.Sum256([]byte(body))
		jti := make([]byte, 16)
		rand.Read(jti)
		claims, _ := json.Marshal(map[string]any{"iss": "web-1", "sub": "web-1", "aud": identity.HostAssertionAudience, "iat": time.Now().Unix(),
			"exp": time.Now().Add(time.Minute).Unix(), "jti": hex.EncodeToString(jti), "bh": base64.RawURLEncoding.EncodeToString(bh[:])})
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: hex.EncodeToString(sum[:])}},
			(&jose.SignerOptions{}).WithType(identity.HostAssertionType))
		jws, _ := s.Sign(claims)
		out, _ := jws.CompactSerialize()
		return out
	}
	const tokenPath = "/providers/Strongroom.Identity/hostAgent/token"
	ask := `{"resource":"https://vault.azure.net"}`
	if got := e.armDo(t, "", "POST", tokenPath, ask, map[string]string{"X-Strongroom-Host-Assertion": sign(ask)}); got.status != 400 || !strings.Contains(got.raw, "IdentityNotSpecified") {
		t.Fatalf("no identity assigned: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, e.armToken, "POST", hosts+"/web-1/assignIdentity"+av, `{"identityId":"`+mi+`"}`, nil); got.status != 200 {
		t.Fatalf("assign: %d %s", got.status, got.raw)
	}
	got = e.armDo(t, "", "POST", tokenPath, ask, map[string]string{"X-Strongroom-Host-Assertion": sign(ask)})
	if got.status != 200 || got.body["access_token"] == "" || got.body["client_id"] != props["clientId"] {
		t.Fatalf("token: %d %s", got.status, got.raw)
	}
	if raw, _ := json.Marshal(sink.last.Load()); !strings.Contains(string(raw), "IdentityHostToken") {
		t.Fatalf("audit record of a host token: %s", raw)
	}

	// Without a valid assertion, in any spelling of the route: refused before anything is read.
	// An ARM token (even the admin's) is no host credential.
	stale := sign(ask)
	e.armDo(t, "", "POST", tokenPath, ask, map[string]string{"X-Strongroom-Host-Assertion": stale})
	for _, c := range []struct {
		name, path, token string
		header            map[string]string
		want              int
	}{
		{"none", tokenPath, "", nil, 401},
		{"the admin's ARM token", tokenPath, e.armToken, nil, 401},
		{"an ARM token as the assertion", tokenPath, "", map[string]string{"X-Strongroom-Host-Assertion": e.armToken}, 401},
		{"replayed", tokenPath, "", map[string]string{"X-Strongroom-Host-Assertion": stale}, 401},
		{"made for another body", tokenPath, "", map[string]string{"X-Strongroom-Host-Assertion": sign(`{"resource":"https://management.azure.com"}`)}, 401},
		{"upper case", strings.ToUpper(tokenPath), "", nil, 401},
		{"trailing slash", tokenPath + "/", "", nil, 401},
		{"doubled slash (the mux redirects to the clean path)", "/providers//Strongroom.Identity/hostAgent/token", "", nil, 307},
		{"under a subscription", sub + tokenPath, e.armToken, nil, 404},
		{"escaped", "/providers/Strongroom.Identity/hostAgent%2Ftoken", "", nil, 401},
	} {
		got := e.armDo(t, c.token, "POST", c.path, ask, c.header)
		if got.status != c.want || strings.Contains(got.raw, "access_token") {
			t.Errorf("%s: %d %s", c.name, got.status, got.raw)
		}
	}
	if got := e.armDo(t, "", "GET", tokenPath, "", nil); got.status != 405 {
		t.Errorf("GET: %d", got.status)
	}

	// Unassigned: refused. Removed: refused as a host.
	if got := e.armDo(t, e.armToken, "POST", hosts+"/web-1/unassignIdentity"+av, `{"identityId":"`+mi+`"}`, nil); got.status != 200 {
		t.Fatalf("unassign: %d %s", got.status, got.raw)
	}
	sel := `{"resource":"https://vault.azure.net","clientId":"` + props["clientId"].(string) + `"}`
	if got := e.armDo(t, "", "POST", tokenPath, sel, map[string]string{"X-Strongroom-Host-Assertion": sign(sel)}); got.status != 403 || !strings.Contains(got.raw, "IdentityNotAssigned") {
		t.Fatalf("after unassign: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, e.armToken, "DELETE", hosts+"/web-1"+av, "", nil); got.status != 200 {
		t.Fatalf("remove: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, "", "POST", tokenPath, ask, map[string]string{"X-Strongroom-Host-Assertion": sign(ask)}); got.status != 401 {
		t.Fatalf("removed host: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, e.armToken, "DELETE", mi+av, "", nil); got.status != 200 {
		t.Fatalf("delete: %d", got.status)
	}
	if got := e.armDo(t, e.armToken, "DELETE", mi+av, "", nil); got.status != 204 {
		t.Fatalf("delete again: %d", got.status)
	}
}

// A managed identity never holds a client secret, and deleting its resource group deletes it
// (its principal with it), as in Azure.
func TestManagedIdentity_NoSecretAndGoesWithItsGroup(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	sub := e.svc.SubscriptionScope()
	const av = "?api-version=2023-01-31"
	if c := e.armDo(t, e.armToken, "PUT", sub+"/resourcegroups/rg-mi"+av, `{"location":"eastus"}`, nil); c.status/100 != 2 {
		t.Fatalf("group: %d %s", c.status, c.raw)
	}
	mi := sub + "/resourceGroups/rg-mi/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-1"
	c := e.armDo(t, e.armToken, "PUT", mi+av, `{"location":"eastus"}`, nil)
	principal, _ := c.body["properties"].(map[string]any)["principalId"].(string)
	if c.status != 201 || principal == "" {
		t.Fatalf("create: %d %s", c.status, c.raw)
	}
	if got := e.armDo(t, e.armToken, "POST", "/sys/principals/"+principal+"/secrets", `{}`, nil); got.status != 400 || !strings.Contains(got.raw, "ManagedIdentitySecret") {
		t.Fatalf("a secret for a managed identity: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, e.armToken, "DELETE", sub+"/resourcegroups/rg-mi"+av, "", nil); got.status != 200 {
		t.Fatalf("delete group: %d %s", got.status, got.raw)
	}
	if got := e.armDo(t, e.armToken, "GET", "/sys/principals/"+principal, "", nil); got.status != 404 {
		t.Fatalf("the identity's principal after its group's deletion: %d %s", got.status, got.raw)
	}
}
