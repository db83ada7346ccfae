package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Each request's audit facts (operation, resource, object) are found while serving and written
// into its record in one place per plane. The table pins them for both planes, for refusals
// before any handler runs, and for lists, whose record names the list, not its last item.
func TestServer_AuditFacts(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	sub := e.svc.SubscriptionScope()
	kv := sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-audit"
	const data = "https://kv-audit.vault.localhost:9"
	cases := []struct {
		name, method, url, body, token string
		status                         int
		op, resource, object           string
	}{
		{"secret set", "PUT", data + "/secrets/a?api-version=7.4", `{"value":"v"}`, e.token, 200, "SecretSet", strings.ToUpper(kv), data + "/secrets/a/"},
		{"secret get", "GET", data + "/secrets/a?api-version=7.4", "", e.token, 200, "SecretGet", strings.ToUpper(kv), data + "/secrets/a/"},
		{"secret list", "GET", data + "/secrets?api-version=7.4", "", e.token, 200, "SecretList", strings.ToUpper(kv), data + "/secrets"},
		{"secret backup", "POST", data + "/secrets/a/backup?api-version=7.4", "", e.token, 200, "SecretBackup", strings.ToUpper(kv), data + "/secrets/a"},
		{"no token", "GET", data + "/secrets/a?api-version=7.4", "", "", 401, "Authentication", strings.ToUpper(kv), ""},
		{"unknown vault", "GET", "https://kv-none.vault.localhost:9/secrets/a?api-version=7.4", "", e.token, 404, "SecretGet", "", ""},
		{"vault get", "GET", "https://localhost:9" + kv + "?api-version=2023-07-01", "", e.armToken, 200, "VaultGet", strings.ToUpper(kv), kv},
		{"vault list", "GET", "https://localhost:9" + sub + "/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01", "", e.armToken, 200, "VaultList", strings.ToUpper(sub), ""},
		{"group get", "GET", "https://localhost:9" + sub + "/resourcegroups/rg?api-version=2023-07-01", "", e.armToken, 200, "ResourceGroupRead", strings.ToUpper(sub), ""},
		{"ARM without token", "GET", "https://localhost:9" + kv + "?api-version=2023-07-01", "", "", 401, "VaultGet", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			r := sink.last.Load()
			if rec.Code != c.status || r == nil {
				t.Fatalf("status %d, record %v; want %d", rec.Code, r, c.status)
			}
			obj := r.Properties.ID
			if c.object != "" && strings.HasSuffix(c.object, "/") { // a version id follows
				if !strings.HasPrefix(obj, c.object) || len(obj) == len(c.object) {
					t.Fatalf("object %q, want %s<version>", obj, c.object)
				}
				obj = c.object
			}
			if r.OperationName != c.op || r.ResourceID != c.resource || obj != c.object {
				t.Fatalf("record: op %q resource %q object %q; want %q %q %q", r.OperationName, r.ResourceID, r.Properties.ID, c.op, c.resource, c.object)
			}
			if wantIdentity := c.token != ""; (r.Identity != nil) != wantIdentity {
				t.Fatalf("record identity %+v, want present %v", r.Identity, wantIdentity)
			}
		})
	}
}
