package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

const polAPI = "?api-version=2023-04-01"

func (e *env) assign(t *testing.T, scope, name, definition, effect, mode string, extra map[string]any) string {
	t.Helper()
	props := map[string]any{"policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/" + definition,
		"parameters": map[string]any{"effect": map[string]any{"value": effect}}}
	if mode != "" {
		props["enforcementMode"] = mode
	}
	for k, v := range extra {
		if k == "params" {
			for pk, pv := range v.(map[string]any) {
				props["parameters"].(map[string]any)[pk] = map[string]any{"value": pv}
			}
			continue
		}
		props[k] = v
	}
	body, _ := json.Marshal(map[string]any{"properties": props})
	path := scope + "/providers/Microsoft.Authorization/policyAssignments/" + name
	got := e.armCall(t, "PUT", path+polAPI, string(body), 201)
	if got["id"] != path {
		t.Fatalf("assignment id %v, want %s", got["id"], path)
	}
	return path
}

func (e *env) unassign(t *testing.T, path string) {
	t.Helper()
	e.armCall(t, "DELETE", path+polAPI, "", 200)
}

func versionsOf(t *testing.T, kv *azsecrets.Client, name string) int {
	t.Helper()
	n := 0
	pager := kv.NewListSecretPropertiesVersionsPager(name, nil)
	for pager.More() {
		p, err := pager.NextPage(context.Background())
		if err != nil {
			return n
		}
		n += len(p.Value)
	}
	return n
}

// The data-plane built-ins, each with a compliant and a non-compliant secret, under Deny,
// Audit, Disabled and DoNotEnforce: the status, the error codes, nothing written on a deny,
// and the audit record naming the verdict.
func TestPolicy_SecretBuiltInsGoldenTable(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	kv := e.createVault(t, "rg-pol", "kv-pol", rbacVault())
	scope := e.vaultScope("rg-pol", "kv-pol")
	ctx := context.Background()
	exp := func(days int) *time.Time { t := time.Now().Add(time.Duration(days) * 24 * time.Hour); return &t }
	type body struct {
		exp         *time.Time
		nbf         *time.Time
		contentType string
	}
	cases := []struct {
		def, name     string
		params        map[string]any
		good, bad     body
		reasonMention string
	}{
		{"98728c90-32c7-4049-8429-847dc0f4fe37", "expiration", nil, body{exp: exp(30)}, body{}, "attributes.expiresOn"},
		{"342e8053-e12e-4c44-be01-c3c2f318400f", "max-validity", map[string]any{"maximumValidityInDays": 30}, body{exp: exp(29)}, body{exp: exp(31)}, "expiresOn"},
		{"b0eb591a-5e70-4534-a8bf-04b9c489584a", "min-days", map[string]any{"minimumDaysBeforeExpiration": 10}, body{exp: exp(11)}, body{exp: exp(9)}, "expiresOn"},
		{"e8d99835-8a06-45ae-a8e0-87a91941ccfe", "active", map[string]any{"maximumValidityInDays": 30}, body{nbf: exp(-10)}, body{nbf: exp(-40)}, "utcNow"},
		{"75262d3e-ba4a-4f43-85f8-9f72c090e5e3", "content-type", nil, body{contentType: "text/plain"}, body{}, "contentType"},
	}
	set := func(name string, b body) error {
		p := azsecrets.SetSecretParameters{Value: to.Ptr("v"), SecretAttributes: &azsecrets.SecretAttributes{Expires: b.exp, NotBefore: b.nbf}}
		if b.contentType != "" {
			p.ContentType = to.Ptr(b.contentType)
		}
		_, err := kv.SetSecret(ctx, name, p, nil)
		return err
	}
	cells := 0
	for _, c := range cases {
		for _, mode := range []struct{ effect, enforcement string }{{"Deny", ""}, {"Audit", ""}, {"Disabled", ""}, {"Deny", "DoNotEnforce"}} {
			path := e.assign(t, scope, "p-"+c.name, c.def, mode.effect, mode.enforcement, map[string]any{"params": c.params})
			secret := fmt.Sprintf("%s-%s-%s", c.name, strings.ToLower(mode.effect), strings.ToLower(mode.enforcement))
			if err := set(secret, c.good); err != nil {
				t.Errorf("%s %s%s: a compliant secret was refused: %v", c.name, mode.effect, mode.enforcement, err)
			}
			before := versionsOf(t, kv, secret)
			err := set(secret, c.bad)
			denied := mode.effect == "Deny" && mode.enforcement == ""
			if denied {
				re := wantStatus(t, err, 403, "Forbidden")
				var env struct {
					Error struct {
						Message    string                `json:"message"`
						InnerError struct{ Code string } `json:"innererror"`
					} `json:"error"`
				}
				raw, _ := io.ReadAll(re.RawResponse.Body)
				_ = json.Unmarshal(raw, &env)
				if env.Error.InnerError.Code != "RequestDisallowedByPolicy" || !strings.Contains(env.Error.Message, path) ||
					!strings.Contains(env.Error.Message, c.def) || !strings.Contains(env.Error.Message, c.reasonMention) {
					t.Errorf("%s Deny: error %s", c.name, raw)
				}
				if n := versionsOf(t, kv, secret); n != before {
					t.Errorf("%s Deny: %d versions after a denied set, want %d", c.name, n, before)
				}
			} else if err != nil {
				t.Errorf("%s %s%s: refused: %v", c.name, mode.effect, mode.enforcement, err)
			}
			cells += 2
			e.unassign(t, path)
		}
	}
	// The audit log names the verdicts: a denial, an audited non-compliance.
	auditWait(t, e.srv.DataDir, func(all []byte) bool {
		return bytes.Contains(all, []byte(`"complianceState":"NonCompliant","denied":true`)) &&
			bytes.Contains(all, []byte(`"effect":"Audit","complianceState":"NonCompliant"`))
	})
	t.Logf("%d cells (5 definitions x 4 modes x compliant/non-compliant)", cells)
}

// rawARM sends one management-plane request with token and returns the status.
func (e *env) rawARM(t *testing.T, token, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func auditWait(t *testing.T, dataDir string, ok func([]byte) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var all []byte
		files, _ := filepath.Glob(filepath.Join(dataDir, "audit", "audit*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, b...)
		}
		if ok(all) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit log lacks the expected policy verdicts")
		}
	}
}

// Vault built-ins on ARM: a denied create is RequestDisallowedByPolicy with PolicyViolation
// details; an assignment at the subscription reaches every resource group but one in
// notScopes; an exemption exempts a vault until it expires; and recovering a soft-deleted
// vault is never blocked.
func TestPolicy_VaultScopesExemptionsAndRecovery(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	ctx := context.Background()
	sub := "/subscriptions/" + e.srv.Admin.SubscriptionID
	for _, rg := range []string{"rg-a", "rg-b"} {
		e.createVault(t, rg, "kv-seed-"+rg, rbacVault()) // makes the group
	}
	// Before any policy: a vault to soft-delete and recover later, with access policies and no firewall.
	e.createVault(t, "rg-a", "kv-recover", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
	if _, err := e.vaults.Delete(ctx, "rg-a", "kv-recover", nil); err != nil {
		t.Fatal(err)
	}
	rbacDeny := e.assign(t, sub, "require-rbac", "12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5", "Deny", "", map[string]any{
		"notScopes": []string{sub + "/resourceGroups/rg-b"}, "nonComplianceMessages": []map[string]string{{"message": "Use RBAC: see the wiki."}}})
	e.assign(t, sub, "require-soft-delete", "1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d", "Audit", "", nil)
	e.assign(t, sub, "require-soft-delete", "1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d", "Deny", "", nil) // a replace answers 201 too
	e.assign(t, sub, "require-firewall", "55615ac9-af46-4a59-874e-391cc3dfb490", "Deny", "", nil)
	props := func(rbacOn bool) string {
		return fmt.Sprintf(`{"location":"eastus","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"},"enableRbacAuthorization":%v,"networkAcls":{"defaultAction":"Deny"}}}`,
			e.srv.Admin.TenantID, rbacOn)
	}
	vault := func(rg, name string) string {
		return sub + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name + "?api-version=2023-07-01"
	}
	denied := e.armCall(t, "PUT", vault("rg-a", "kv-no-rbac"), props(false), 403)
	de, _ := denied["error"].(map[string]any)
	info := fmt.Sprint(de["additionalInfo"])
	if de["code"] != "RequestDisallowedByPolicy" || de["target"] != "kv-no-rbac" || !strings.Contains(info, "PolicyViolation") ||
		!strings.Contains(info, rbacDeny) || !strings.Contains(fmt.Sprint(de["message"]), "Use RBAC: see the wiki.") {
		t.Fatalf("denied vault create: %v", denied)
	}
	e.armCall(t, "PUT", vault("rg-b", "kv-no-rbac-b"), props(false), 201) // rg-b is in notScopes
	e.armCall(t, "PUT", vault("rg-a", "kv-rbac"), props(true), 201)

	// An exemption at a vault, until it expires.
	exp := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
	e.armCall(t, "PUT", sub+"/resourceGroups/rg-a/providers/Microsoft.KeyVault/vaults/kv-rbac/providers/Microsoft.Authorization/policyExemptions/waive"+polAPI,
		`{"properties":{"policyAssignmentId":"`+rbacDeny+`","exemptionCategory":"Waiver","expiresOn":"`+exp+`"}}`, 201)
	e.armCall(t, "PUT", vault("rg-a", "kv-rbac"), props(false), 200) // exempt: switching to access policies passes
	e.armCall(t, "PUT", vault("rg-a", "kv-rbac"), props(true), 200)
	time.Sleep(3500 * time.Millisecond)
	e.armCall(t, "PUT", vault("rg-a", "kv-rbac"), props(false), 403) // expired

	// Recovering a soft-deleted vault that breaks all three policies still works.
	e.armCall(t, "PUT", vault("rg-a", "kv-recover"), fmt.Sprintf(`{"location":"eastus","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"},"createMode":"recover"}}`,
		e.srv.Admin.TenantID), 200)
	if st := e.armCall(t, "GET", vault("rg-a", "kv-recover"), "", 200); st["name"] != "kv-recover" {
		t.Fatalf("recovered vault: %v", st)
	}
}

// Compliance: N vaults with M non-compliant secrets give the counts a brute-force count gives.
func TestPolicy_ComplianceSummary(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	ctx := context.Background()
	sub := "/subscriptions/" + e.srv.Admin.SubscriptionID
	want := map[string]bool{} // secret id -> non-compliant
	in := time.Now().Add(48 * time.Hour)
	for i := range 3 {
		name := fmt.Sprintf("kv-cmp-%d", i)
		kv := e.createVault(t, "rg-cmp", name, rbacVault())
		for j := range 4 {
			secret := fmt.Sprintf("s-%d", j)
			var attrs *azsecrets.SecretAttributes
			bad := (i+j)%3 == 0
			if !bad {
				attrs = &azsecrets.SecretAttributes{Expires: &in}
			}
			if _, err := kv.SetSecret(ctx, secret, azsecrets.SetSecretParameters{Value: to.Ptr("v"), SecretAttributes: attrs}, nil); err != nil {
				t.Fatal(err)
			}
			want[name+"/"+secret] = bad
		}
	}
	e.assign(t, sub, "audit-expiry", "98728c90-32c7-4049-8429-847dc0f4fe37", "Audit", "", nil)
	bad := 0
	for _, b := range want {
		if b {
			bad++
		}
	}
	got := e.armCall(t, "POST", sub+"/providers/Microsoft.PolicyInsights/policyStates/latest/summarize?api-version=2019-10-01", "", 200)
	results := got["value"].([]any)[0].(map[string]any)["results"].(map[string]any)
	counts := map[string]float64{}
	for _, d := range results["resourceDetails"].([]any) {
		m := d.(map[string]any)
		counts[m["complianceState"].(string)] = m["count"].(float64)
	}
	if results["nonCompliantResources"].(float64) != float64(bad) || counts["noncompliant"] != float64(bad) || counts["compliant"] != float64(len(want)-bad) {
		t.Fatalf("summary %v, want %d non-compliant of %d", results, bad, len(want))
	}
	rows := e.armCall(t, "POST", sub+"/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?api-version=2019-10-01&$filter=IsCompliant%20eq%20false", "", 200)
	if n := len(rows["value"].([]any)); n != bad {
		t.Fatalf("%d non-compliant rows, want %d", n, bad)
	}
	// A reader may read states but not change assignments or trigger a scan.
	reader := e.newPrincipal(t, "pol-reader")
	if _, err := e.rbacClients(t, e.cred).assign(ctx, sub, rbac.ReaderID, reader.objectID); err != nil {
		t.Fatal(err)
	}
	tok, err := reader.cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", sub + "/providers/Microsoft.PolicyInsights/policyStates/latest/summarize?api-version=2019-10-01", "", 200},
		{"POST", sub + "/providers/Microsoft.PolicyInsights/policyStates/latest/triggerEvaluation?api-version=2019-10-01", "", 403},
		{"PUT", sub + "/providers/Microsoft.Authorization/policyAssignments/x" + polAPI, `{"properties":{"policyDefinitionId":"/providers/Microsoft.Authorization/policyDefinitions/98728c90-32c7-4049-8429-847dc0f4fe37"}}`, 403},
	} {
		if st := e.rawARM(t, tok.Token, c.method, c.path, c.body); st != c.want {
			t.Errorf("Reader %s %s: %d, want %d", c.method, c.path, st, c.want)
		}
	}
}

// The vault built-ins through ARM: a compliant and a non-compliant vault create under Deny,
// Audit, Disabled and DoNotEnforce; a denied create leaves no vault.
func TestPolicy_VaultBuiltInsGoldenTable(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	e.createVault(t, "rg-vpol", "kv-vpol-seed", rbacVault())
	scope := e.vaultScope("rg-vpol", "kv-vpol-seed")
	scope = scope[:strings.Index(scope, "/providers/")] // the resource group
	body := func(extra string) string {
		return fmt.Sprintf(`{"location":"eastus","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"}%s}}`, e.srv.Admin.TenantID, extra)
	}
	cases := []struct{ def, name, good, bad string }{
		{"55615ac9-af46-4a59-874e-391cc3dfb490", "firewall", `,"networkAcls":{"defaultAction":"Deny"}`, `,"networkAcls":{"defaultAction":"Allow"}`},
		{"405c5871-3e91-4644-8a63-58e19d68ff5b", "public", `,"publicNetworkAccess":"Disabled"`, `,"publicNetworkAccess":"Enabled"`},
		{"0b60c0b2-2dc2-4e1c-b5c9-abbed971de53", "deletion", `,"enablePurgeProtection":true`, ``},
		{"1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d", "softdelete", `,"enableSoftDelete":true`, `,"enableSoftDelete":false`},
		{"12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5", "rbac", `,"enableRbacAuthorization":true`, `,"enableRbacAuthorization":false`},
	}
	n := 0
	for _, c := range cases {
		for i, mode := range []struct{ effect, enforcement string }{{"Deny", ""}, {"Audit", ""}, {"Disabled", ""}, {"Deny", "DoNotEnforce"}} {
			path := e.assign(t, scope, "v-"+c.name, c.def, mode.effect, mode.enforcement, nil)
			vault := func(kind string) string {
				return scope + "/providers/Microsoft.KeyVault/vaults/" + fmt.Sprintf("kv-%s-%s-%d", c.name, kind, i) + "?api-version=2023-07-01"
			}
			e.armCall(t, "PUT", vault("ok"), body(c.good), 201)
			if mode.effect == "Deny" && mode.enforcement == "" {
				got := e.armCall(t, "PUT", vault("no"), body(c.bad), 403)
				if de, _ := got["error"].(map[string]any); de["code"] != "RequestDisallowedByPolicy" || !strings.Contains(fmt.Sprint(de["additionalInfo"]), c.def) {
					t.Errorf("%s Deny: %v", c.name, got)
				}
				e.armCall(t, "GET", vault("no"), "", 404)
			} else {
				e.armCall(t, "PUT", vault("no"), body(c.bad), 201)
			}
			n += 2
			e.unassign(t, path)
		}
	}
	t.Logf("%d cells (5 definitions x 4 modes x compliant/non-compliant)", n)
}

// In a cluster an assignment made through one node is enforced by every node at once.
func TestPolicy_Cluster(t *testing.T) {
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: []string{"--vault-requests-per-10s=0"}})
	leader := c.Leader(10 * time.Second)
	e := clusterEnv(t, c, leader)
	e.createVault(t, "rg-polc", "kv-polc", rbacVault())
	follower := c.Follower()
	fe := clusterEnv(t, c, follower)
	path := fe.assign(t, e.vaultScope("rg-polc", "kv-polc"), "deny-no-exp", "98728c90-32c7-4049-8429-847dc0f4fe37", "Deny", "", nil) // written through a follower
	ctx := context.Background()
	for _, n := range c.Nodes {
		kv := n.Secrets("kv-polc", e.cred, e.hc)
		_, err := kv.SetSecret(ctx, "no-exp", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
		wantStatus(t, err, 403, "Forbidden")
		exp := time.Now().Add(time.Hour)
		if _, err := kv.SetSecret(ctx, "with-exp", azsecrets.SetSecretParameters{Value: to.Ptr("v"), SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp}}, nil); err != nil {
			t.Fatalf("a compliant set on %s: %v", n.URL, err)
		}
	}
	e.unassign(t, path)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := follower.Secrets("kv-polc", e.cred, e.hc).SetSecret(ctx, "no-exp", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still denied on a follower after the assignment was deleted: %v", err)
		}
	}
}

// Modify: "Configure key vaults to enable firewall" turns the firewall on in the vault being
// written, before Deny and Audit judge it; DoNotEnforce leaves the vault as sent.
func TestPolicy_ModifyEnablesFirewall(t *testing.T) {
	e := newEnv(t, &testenv.Options{Extra: []string{"--vault-requests-per-10s=0"}})
	e.createVault(t, "rg-mod", "kv-mod-seed", rbacVault())
	rg := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/rg-mod"
	vault := func(name string) string {
		return rg + "/providers/Microsoft.KeyVault/vaults/" + name + "?api-version=2023-07-01"
	}
	body := fmt.Sprintf(`{"location":"eastus","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"},"networkAcls":{"defaultAction":"Allow","bypass":"AzureServices"}}}`, e.srv.Admin.TenantID)
	firewall := func(m map[string]any) any {
		acls, _ := m["properties"].(map[string]any)["networkAcls"].(map[string]any)
		return acls["defaultAction"]
	}
	path := e.assign(t, rg, "enable-firewall", "ac673a9a-f77d-4846-b2d8-a57f8e1c01dc", "Modify", "", nil)
	// With the modify in place, the firewall Deny is satisfied by what Modify did.
	e.assign(t, rg, "require-firewall", "55615ac9-af46-4a59-874e-391cc3dfb490", "Deny", "", nil)
	if got := e.armCall(t, "PUT", vault("kv-mod-1"), body, 201); firewall(got) != "Deny" {
		t.Fatalf("modified vault: %v", got["properties"])
	}
	if got := e.armCall(t, "GET", vault("kv-mod-1"), "", 200); firewall(got) != "Deny" {
		t.Fatalf("stored vault: %v", got["properties"])
	}
	e.unassign(t, path)
	e.assign(t, rg, "enable-firewall", "ac673a9a-f77d-4846-b2d8-a57f8e1c01dc", "Modify", "DoNotEnforce", nil)
	e.armCall(t, "PUT", vault("kv-mod-2"), body, 403) // not modified, so the Deny refuses it
}
