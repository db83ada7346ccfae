package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/httpapi"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite internal/httpapi/testdata/arm/*.json from the current responses")

// armCall is one recorded management-plane exchange: status, the headers clients read, and the
// body with run-specific values (ids, times, secrets) replaced by placeholders.
type armCall struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   any               `json:"body"`
}

// TestARM_GoldenResponses records the response of every management-plane route (ARM, Graph and
// the operator's /sys routes) under testdata/arm and compares each structurally: the same keys,
// the same null and absent fields, the same values once run-specific ones are masked. A wire
// type change that alters a byte clients decode fails here; -update-golden rewrites the files.
func TestARM_GoldenResponses(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	g := &goldenRun{t: t, e: e, sub: e.svc.SubscriptionScope(), seen: map[string]bool{}}
	sub := g.sub
	rg2 := sub + "/resourcegroups/rg2"
	kvGold := rg2 + "/providers/Microsoft.KeyVault/vaults/kv-gold"
	kvMin := rg2 + "/providers/Microsoft.KeyVault/vaults/kv-min"
	const av = "?api-version=2023-07-01"
	vaultBody := `{"location":"westus","tags":{"env":"gold"},"properties":{"tenantId":"` + e.tenantID + `","sku":{"family":"A","name":"standard"},
		"accessPolicies":[{"tenantId":"` + e.tenantID + `","objectId":"00000000-0000-0000-0000-00000000000a","permissions":{"secrets":["get","list"]}}],
		"enabledForDeployment":false,"enableSoftDelete":true,"softDeleteRetentionInDays":7,"enableRbacAuthorization":true,
		"networkAcls":{"bypass":"AzureServices","defaultAction":"Allow","ipRules":[{"value":"10.0.0.0/8"}]},"publicNetworkAccess":"Enabled"}}`

	g.call("metadata", "GET", "/metadata/endpoints?api-version=2022-09-01", "")
	g.call("subscription-list", "GET", "/subscriptions"+av, "")
	g.call("subscription-get", "GET", sub+av, "")
	g.call("subscription-other", "GET", "/subscriptions/00000000-0000-0000-0000-000000000000"+av, "")
	g.call("tenant-list", "GET", "/tenants"+av, "")
	g.call("provider-register", "POST", sub+"/providers/Microsoft.KeyVault/register"+av, "")
	g.call("provider-get", "GET", sub+"/providers/Microsoft.KeyVault"+av, "")
	g.call("managedhsm-list", "GET", sub+"/providers/Microsoft.KeyVault/managedHSMs"+av, "")
	g.call("managedhsm-list-deleted", "GET", sub+"/providers/Microsoft.KeyVault/deletedManagedHSMs"+av, "")
	graphGoldenCalls(g)           // graph_golden_test.go
	graphCredentialGoldenCalls(g) // graph_credentials_golden_test.go
	msiGoldenCalls(g)             // arm_msi_golden_test.go
	eventsGoldenCalls(g)          // arm_events_golden_test.go
	monitorGoldenCalls(g)         // arm_monitor_golden_test.go
	auditQueryGoldenCalls(g)      // arm_auditquery_golden_test.go

	g.call("group-put-created", "PUT", rg2+av, `{"location":"westus","tags":{"a":"b"}}`)
	g.call("group-put-updated", "PUT", rg2+av, `{"location":"westus","tags":{"a":"c"}}`)
	g.call("group-put-untagged", "PUT", sub+"/resourceGroups/rg3"+av, `{"location":"westus"}`)
	g.call("group-put-bad-json", "PUT", sub+"/resourceGroups/rg4"+av, `{"location":`)
	g.call("group-put-empty", "PUT", sub+"/resourceGroups/rg4"+av, ``)
	g.call("group-get", "GET", rg2+av, "")
	g.call("group-get-missing", "GET", sub+"/resourcegroups/nope"+av, "")
	g.call("group-head", "HEAD", rg2+av, "")
	g.call("group-head-missing", "HEAD", sub+"/resourcegroups/nope"+av, "")
	g.call("group-list", "GET", sub+"/resourcegroups"+av, "")

	g.call("vault-put-created", "PUT", kvGold+av, vaultBody)
	g.call("vault-put-updated", "PUT", kvGold+av, vaultBody)
	g.call("vault-put-minimal", "PUT", kvMin+av, `{"location":"westus","properties":{"tenantId":"`+e.tenantID+`","sku":{"family":"A","name":"standard"}}}`)
	// From api-version 2026-02-01 a new vault that names no permission model uses RBAC (before: access policies).
	g.call("vault-put-minimal-2026", "PUT", rg2+"/providers/Microsoft.KeyVault/vaults/kv-min26?api-version=2026-02-01", `{"location":"westus","properties":{"tenantId":"`+e.tenantID+`","sku":{"family":"A","name":"standard"}}}`)
	g.call("vault-put-no-properties", "PUT", rg2+"/providers/Microsoft.KeyVault/vaults/kv-none"+av, `{"location":"westus"}`)
	g.call("vault-put-bad-name", "PUT", rg2+"/providers/Microsoft.KeyVault/vaults/-x"+av, `{"location":"westus","properties":{"tenantId":"`+e.tenantID+`","sku":{"family":"A","name":"standard"}}}`)
	g.call("vault-patch", "PATCH", kvGold+av, `{"tags":{"env":"patched"},"properties":{"enabledForTemplateDeployment":true,"accessPolicies":[]}}`)
	apBody := `{"properties":{"accessPolicies":[{"tenantId":"` + e.tenantID + `","objectId":"00000000-0000-0000-0000-00000000000b","permissions":{"secrets":["get","List"]}}]}}`
	g.call("accesspolicy-add", "PUT", kvGold+"/accessPolicies/add"+av, apBody)
	g.call("accesspolicy-replace", "PUT", kvGold+"/accessPolicies/replace"+av, strings.Replace(apBody, `"get","List"`, `"set"`, 1))
	g.call("accesspolicy-remove", "PUT", kvGold+"/accessPolicies/remove"+av, strings.Replace(apBody, `"get","List"`, `"set"`, 1))
	g.call("accesspolicy-bad-kind", "PUT", kvGold+"/accessPolicies/merge"+av, apBody)
	g.call("accesspolicy-bad-permission", "PUT", kvGold+"/accessPolicies/add"+av, strings.Replace(apBody, `"List"`, `"read"`, 1))
	g.call("vault-patch-bad-iprule", "PATCH", kvGold+av, `{"properties":{"networkAcls":{"ipRules":[{"value":"10.0.0.0/33"}]}}}`)
	g.call("vault-get", "GET", kvGold+av, "")
	g.call("vault-get-missing", "GET", rg2+"/providers/Microsoft.KeyVault/vaults/kv-nope"+av, "")
	g.call("vault-list-group", "GET", rg2+"/providers/Microsoft.KeyVault/vaults"+av, "")
	g.call("vault-list", "GET", sub+"/providers/Microsoft.KeyVault/vaults"+av, "")
	g.call("resource-list", "GET", sub+"/resources?$filter=resourceType+eq+'Microsoft.KeyVault/vaults'&api-version=2021-04-01", "")
	g.call("resource-list-other-type", "GET", sub+"/resources?$filter=resourceType+eq+'Microsoft.Storage/storageAccounts'&api-version=2021-04-01", "")
	g.call("name-taken", "POST", sub+"/providers/Microsoft.KeyVault/checkNameAvailability"+av, `{"name":"kv-gold","type":"Microsoft.KeyVault/vaults"}`)
	g.call("name-free", "POST", sub+"/providers/Microsoft.KeyVault/checkNameAvailability"+av, `{"name":"kv-free","type":"Microsoft.KeyVault/vaults"}`)
	g.call("name-invalid", "POST", sub+"/providers/Microsoft.KeyVault/checkNameAvailability"+av, `{"name":"a","type":"Microsoft.KeyVault/vaults"}`)

	g.call("vault-delete", "DELETE", kvMin+av, "")
	g.call("vault-delete-gold", "DELETE", kvGold+av, "")
	g.call("vault-list-deleted", "GET", sub+"/providers/Microsoft.KeyVault/deletedVaults"+av, "")
	g.call("vault-get-deleted", "GET", sub+"/providers/Microsoft.KeyVault/locations/westus/deletedVaults/kv-min"+av, "")
	g.call("vault-purge", "POST", sub+"/providers/Microsoft.KeyVault/locations/westus/deletedVaults/kv-min/purge"+av, "")
	g.call("vault-get-deleted-purged", "GET", sub+"/providers/Microsoft.KeyVault/locations/westus/deletedVaults/kv-min"+av, "")
	g.call("vault-recover", "PUT", kvGold+av, `{"location":"westus","properties":{"tenantId":"`+e.tenantID+`","sku":{"family":"A","name":"standard"},"createMode":"recover"}}`)
	g.call("group-delete", "DELETE", sub+"/resourceGroups/rg3"+av, "")

	g.call("unknown-path", "GET", sub+"/nothing"+av, "")
	g.call("wrong-method", "POST", rg2+av, "")
	g.callAs("no-token", "", "GET", sub+"/resourcegroups"+av, "")
	g.callAs("bad-token", "not-a-token", "GET", sub+"/resourcegroups"+av, "")

	g.call("keyring-status", "GET", "/sys/keyring", "")
	g.call("keyring-rotate", "POST", "/sys/keyring/rotate", "")
	g.call("keyring-rewrap", "POST", "/sys/keyring/rewrap", `{"limit":0}`)
	g.call("keyring-rewrap-bad", "POST", "/sys/keyring/rewrap", `{"limit":-1}`)
	g.call("keyring-rewrap-status", "GET", "/sys/keyring/rewrap", "")
	g.call("keyring-retire", "POST", "/sys/keyring/retire", "")
	g.call("backup-key-rotate", "POST", "/sys/backup-keys/rotate", "")
	g.call("backup-key-revoke", "DELETE", "/sys/backup-keys/1", "")
	g.call("backup-key-revoke-bad", "DELETE", "/sys/backup-keys/x", "")
	g.call("compact", "POST", "/sys/compact", "")
	g.call("seal", "POST", "/sys/seal", "")
	g.call("rekey", "POST", "/sys/rekey", `{"secret_shares":3,"secret_threshold":2}`)
	g.call("rekey-bad", "POST", "/sys/rekey", `{`)
	g.call("seal-migrate", "POST", "/sys/seal/migrate", `{"to":"shamir"}`)

	created := g.call("principal-create", "POST", "/sys/principals", `{"displayName":"golden app"}`)
	g.call("principal-create-bad-name", "POST", "/sys/principals", `{"displayName":""}`)
	id, _ := created["objectId"].(string)
	g.call("principal-get", "GET", "/sys/principals/"+id, "")
	g.call("principal-get-missing", "GET", "/sys/principals/nobody", "")
	g.call("principal-disable", "POST", "/sys/principals/"+id+"/disable", "")
	g.call("principal-enable", "POST", "/sys/principals/"+id+"/enable", "")
	added := g.call("principal-secret-add", "POST", "/sys/principals/"+id+"/secrets", "")
	keyID, _ := added["keyId"].(string)
	g.call("principal-secret-remove", "DELETE", "/sys/principals/"+id+"/secrets/"+keyID, "")
	g.call("principal-secret-remove-missing", "DELETE", "/sys/principals/"+id+"/secrets/nokey", "")
	g.call("principal-delete", "DELETE", "/sys/principals/"+id, "")
	g.call("signing-key-rotate", "POST", "/sys/signing-keys/rotate", "")

	for _, r := range httpapi.ARMRoutes() {
		if !g.seen[r] {
			t.Errorf("route %s has no golden response: add a call to TestARM_GoldenResponses", r)
		}
	}
}

type goldenRun struct {
	t    *testing.T
	e    *testAPI
	sub  string
	seen map[string]bool // "METHOD pattern" of every route called
}

func (g *goldenRun) call(name, method, path, body string) map[string]any {
	return g.callAs(name, g.e.armToken, method, path, body)
}

func (g *goldenRun) callAs(name, token, method, path, body string) map[string]any {
	g.t.Helper()
	req := httptest.NewRequest(method, "https://localhost:9"+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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
	var raw any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal([]byte(g.mask(rec.Body.String())), &raw); err != nil {
			g.t.Fatalf("%s: body is not JSON: %v\n%s", name, err, rec.Body)
		}
	}
	got.Body = maskSecrets(raw)
	g.compare(name, got)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return out
}

var (
	uuidRE  = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	timeRE  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	tokenRE = regexp.MustCompile(`Invalid token: [^"]*`)
)

// mask replaces the values that differ between runs with placeholders that keep their role.
func (g *goldenRun) mask(s string) string {
	s = strings.ReplaceAll(s, g.e.tenantID, "<tenant>")
	s = strings.ReplaceAll(s, strings.TrimPrefix(g.sub, "/subscriptions/"), "<subscription>")
	s = strings.ReplaceAll(s, g.e.clientID, "<admin-app>")
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	s = timeRE.ReplaceAllString(s, "<time>")
	return tokenRE.ReplaceAllString(s, "Invalid token: <reason>")
}

// maskSecrets replaces the values of fields that are random per run (secrets, key ids) wherever
// they appear; the field itself, and whether it is null, stays.
func maskSecrets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "clientSecret", "keyId", "activeKeyId", "retiredKeyId":
				if s, ok := val.(string); ok && s != "" {
					x[k] = "<" + k + ">"
					continue
				}
			}
			x[k] = maskSecrets(val)
		}
	case []any:
		for i := range x {
			x[i] = maskSecrets(x[i])
		}
	}
	return v
}

func (g *goldenRun) compare(name string, got armCall) {
	g.t.Helper()
	path := filepath.Join("testdata", "arm", name+".json")
	if *updateGolden {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // readable placeholders
		enc.SetIndent("", "  ")
		_ = enc.Encode(got)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			g.t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		g.t.Errorf("%s: no golden response (run with -update-golden): %v", name, err)
		return
	}
	var want armCall
	if err := json.Unmarshal(b, &want); err != nil {
		g.t.Fatalf("%s: %v", path, err)
	}
	// Round-trip got so that both sides hold the same JSON types.
	rb, _ := json.Marshal(got)
	var gotRT armCall
	_ = json.Unmarshal(rb, &gotRT)
	if gotRT.Status != want.Status || !reflect.DeepEqual(gotRT.Header, want.Header) || !reflect.DeepEqual(gotRT.Body, want.Body) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		g.t.Errorf("%s differs from %s:\n got %s\nwant %s\n%s", name, path, gb, b, diffKeys(gotRT.Body, want.Body, ""))
	}
}

// diffKeys names the first paths where got and want differ, to make a failure readable.
func diffKeys(got, want any, at string) string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if !gok || !wok {
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("at %s: got %#v, want %#v\n", at, got, want)
		}
		return ""
	}
	keys := map[string]bool{}
	for k := range gm {
		keys[k] = true
	}
	for k := range wm {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out strings.Builder
	for _, k := range names {
		gv, gin := gm[k]
		wv, win := wm[k]
		switch {
		case gin != win:
			fmt.Fprintf(&out, "at %s.%s: present %v, want present %v\n", at, k, gin, win)
		default:
			out.WriteString(diffKeys(gv, wv, at+"."+k))
		}
	}
	return out.String()
}
