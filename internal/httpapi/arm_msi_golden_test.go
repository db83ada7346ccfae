package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/httpapi"
)

// TestMSI_GoldenResponses records the managed identity and host routes' responses under
// testdata/arm/msi-*.json (-update-golden rewrites them) on a server of their own.
// TestARM_GoldenResponses should call msiGoldenCalls too, so that its every-route check counts
// these routes.
func TestMSI_GoldenResponses(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	msiGoldenCalls(&goldenRun{t: t, e: e, sub: e.svc.SubscriptionScope(), seen: map[string]bool{}})
}

var (
	hostTokenRE = regexp.MustCompile(`srh1\.[A-Za-z0-9._-]+\.[A-Za-z0-9_-]{43}`)
	thumbRE     = regexp.MustCompile(`"certificateThumbprint":"[0-9a-f]{64}"`)
)

// msiGoldenCalls records a golden response of every route of arm_msi.go.
func msiGoldenCalls(g *goldenRun) {
	const av = "?api-version=2023-01-31"
	sub := g.sub
	rg := sub + "/resourceGroups/rg" // newTestAPI's: the calls leave nothing behind for later golden calls
	mi := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-gold"
	hosts := sub + "/providers/Strongroom.Identity/hosts"
	call := func(name, method, path, body string) map[string]any { return msiGolden(g, name, method, path, body) }

	call("msi-identity-put-created", "PUT", mi+av, `{"location":"eastus","tags":{"team":"gold"}}`)
	call("msi-identity-put-updated", "PUT", mi+av, `{"location":"eastus"}`)
	call("msi-identity-put-bad-name", "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"+av, `{"location":"eastus"}`)
	call("msi-identity-patch", "PATCH", mi+av, `{"tags":{"team":"silver"}}`)
	call("msi-identity-get", "GET", mi+av, "")
	call("msi-identity-get-missing", "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nobody"+av, "")
	call("msi-identity-list-group", "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities"+av, "")
	call("msi-identity-list", "GET", sub+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities"+av, "")
	call("msi-host-put-created", "PUT", hosts+"/web-gold"+av, "")
	call("msi-host-put-bad-name", "PUT", hosts+"/bad_name!"+av, "")
	call("msi-host-get", "GET", hosts+"/web-gold"+av, "")
	call("msi-host-list", "GET", hosts+av, "")
	call("msi-host-assign", "POST", hosts+"/web-gold/assignIdentity"+av, `{"identityId":"`+mi+`"}`)
	call("msi-host-assign-bad-id", "POST", hosts+"/web-gold/assignIdentity"+av, `{"identityId":"/subscriptions/x"}`)
	call("msi-host-unassign", "POST", hosts+"/web-gold/unassignIdentity"+av, `{"identityId":"`+mi+`"}`)
	call("msi-host-unassign-not-assigned", "POST", hosts+"/web-gold/unassignIdentity"+av, `{"identityId":"`+mi+`"}`)
	call("msi-agent-register-bad-token", "POST", "/providers/Strongroom.Identity/hostAgent/register", `{"registrationToken":"srh1.web-gold.x","csr":"AA=="}`)
	call("msi-agent-token-no-assertion", "POST", "/providers/Strongroom.Identity/hostAgent/token", `{"resource":"https://vault.azure.net"}`)
	call("msi-host-delete", "DELETE", hosts+"/web-gold"+av, "")
	call("msi-host-delete-missing", "DELETE", hosts+"/web-gold"+av, "")
	call("msi-identity-delete", "DELETE", mi+av, "")
	call("msi-identity-delete-missing", "DELETE", mi+av, "")
}

// msiGolden is goldenRun.callAs with the admin's ARM token (or none, for the agent routes), also
// masking the registration token and certificate thumbprints, which are random per run.
func msiGolden(g *goldenRun, name, method, path, body string) map[string]any {
	g.t.Helper()
	req := httptest.NewRequest(method, "https://localhost:9"+path, strings.NewReader(body))
	if !strings.HasPrefix(path, "/providers/") {
		req.Header.Set("Authorization", "Bearer "+g.e.armToken)
	}
	rec := httptest.NewRecorder()
	g.e.h.ServeHTTP(rec, req)
	if r := httpapi.ARMRouteOf(method, req.URL.Path); r != "" {
		g.seen[r] = true
	}
	got := armCall{Status: rec.Code, Header: map[string]string{}}
	for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Retry-After"} {
		if v := rec.Header().Get(h); v != "" {
			got.Header[h] = g.mask(v)
		}
	}
	masked := hostTokenRE.ReplaceAllString(rec.Body.String(), "<registration-token>")
	masked = thumbRE.ReplaceAllString(masked, `"certificateThumbprint":"<thumbprint>"`)
	var raw any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal([]byte(g.mask(masked)), &raw); err != nil {
			g.t.Fatalf("%s: body is not JSON: %v\n%s", name, err, rec.Body)
		}
	}
	got.Body = maskSecrets(raw)
	g.compare(name, got)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return out
}
