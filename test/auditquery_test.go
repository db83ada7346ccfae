package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// queriedRecord is the part of an audit record these tests read.
type queriedRecord struct {
	Time          string `json:"time"`
	ResourceID    string `json:"resourceId"`
	OperationName string `json:"operationName"`
	ResultType    string `json:"resultType"`
	RequestID     string `json:"requestId"`
	Identity      *struct {
		Claim struct {
			AppID    string `json:"appid"`
			ObjectID string `json:"oid"`
		} `json:"claim"`
	} `json:"identity"`
	Properties struct {
		ID             string `json:"id"`
		HTTPStatusCode int    `json:"httpStatusCode"`
		RequestURI     string `json:"requestUri"`
	} `json:"properties"`
}

func (r queriedRecord) oid() string {
	if r.Identity == nil {
		return ""
	}
	return r.Identity.Claim.ObjectID
}

type queriedPage struct {
	Value    []queriedRecord `json:"value"`
	NextLink string          `json:"nextLink"`
	Node     string          `json:"node"`
}

// auditQuery GETs the audit records at path (under the subscription) with query, as cred
// (nil: no token); it returns the status and, on 200, the page.
func (e *env) auditQuery(t *testing.T, cred azcore.TokenCredential, path string, query url.Values) (int, queriedPage, string) {
	t.Helper()
	return e.auditQueryWith(t, cred, path, query, nil)
}

// auditQueryWith is auditQuery with extra request headers.
func (e *env) auditQueryWith(t *testing.T, cred azcore.TokenCredential, path string, query url.Values, h http.Header) (int, queriedPage, string) {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("api-version", "2026-01-01")
	u := e.srv.URL + "/subscriptions/" + e.srv.Admin.SubscriptionID + path + "/providers/Strongroom.Insights/auditRecords?" + query.Encode()
	return e.auditGet(t, cred, u, h)
}

func (e *env) auditGet(t *testing.T, cred azcore.TokenCredential, u string, h http.Header) (int, queriedPage, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if cred != nil {
		tok, err := cred.GetToken(context.Background(), policyScopes("https://management.core.windows.net//.default"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p queriedPage
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("decoding the page: %v\n%s", err, body)
		}
	}
	return resp.StatusCode, p, string(body)
}

// TestAuditQuery_FiltersAndRoles: through the real server, records are found by each filter;
// the query needs the Strongroom Audit Reader role (or the admin's operator role): Key Vault
// Reader, Reader and Owner get 403, no token 401; a role held at a vault reads that vault only.
func TestAuditQuery_FiltersAndRoles(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	one := e.createVault(t, "rg-aq", "kv-aq-one", rbacVault())
	two := e.createVault(t, "rg-aq", "kv-aq-two", rbacVault())
	if _, err := one.SetSecret(ctx, "db-pass", azsecrets.SetSecretParameters{Value: to.Ptr("hunter2")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := two.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("k-123")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := one.GetSecret(ctx, "db-pass", "", nil); err != nil {
		t.Fatal(err)
	}
	sub := "/subscriptions/" + e.srv.Admin.SubscriptionID
	admin := e.rbacClients(t, e.cred)
	grant := func(name, scope, role string) principal {
		p := e.newPrincipal(t, name)
		if _, err := admin.assign(ctx, scope, role, p.objectID); err != nil {
			t.Fatalf("assigning %s: %v", name, err)
		}
		return p
	}
	auditor := grant("auditor", sub, rbac.StrongroomAuditReaderID)
	vaultAuditor := grant("vault-auditor", e.vaultScope("rg-aq", "kv-aq-two"), rbac.StrongroomAuditReaderID)
	kvReader := grant("kv-reader", sub, rbac.KeyVaultReaderID)
	reader := grant("reader", sub, rbac.ReaderID)
	owner := grant("owner", sub, rbac.OwnerID)

	// A denied read and a failed sign-in to find later.
	_, err := e.srv.Secrets("kv-aq-one", kvReader.cred, e.hc).GetSecret(ctx, "db-pass", "", nil)
	wantStatus(t, err, 403, "Forbidden")
	if _, err := e.srv.CredentialFor(e.hc, kvReader.appID, "not-the-secret").GetToken(ctx, policyScopes("https://management.core.windows.net//.default")); err == nil {
		t.Fatal("a wrong client secret got a token")
	}
	start := time.Now().UTC()

	for _, c := range []struct {
		name string
		cred azcore.TokenCredential
		want int
	}{
		{"KeyVaultReader", kvReader.cred, 403}, {"Reader", reader.cred, 403}, {"Owner", owner.cred, 403},
		{"VaultAuditorAtSubscription", vaultAuditor.cred, 403}, {"NoToken", nil, 401},
		{"AuditReader", auditor.cred, 200}, {"BootstrapAdmin", e.cred, 200},
	} {
		t.Run("Access/"+c.name, func(t *testing.T) {
			status, p, body := e.auditQuery(t, c.cred, "", nil)
			if status != c.want {
				t.Fatalf("HTTP %d, want %d: %s", status, c.want, body)
			}
			if status == 200 && (len(p.Value) == 0 || p.Node == "") {
				t.Errorf("%d records, node %q", len(p.Value), p.Node)
			}
			if status != 200 && strings.Contains(body, "kv-aq") {
				t.Errorf("a refusal shows records: %s", body)
			}
		})
	}

	cases := []struct {
		name  string
		query url.Values
		check func(r queriedRecord) bool // every record must pass
		any   func(r queriedRecord) bool // and one must pass this
	}{
		{"Vault", url.Values{"vault": {"KV-AQ-ONE"}},
			func(r queriedRecord) bool {
				return strings.Contains(strings.ToLower(r.ResourceID+r.Properties.RequestURI), "kv-aq-one")
			},
			func(r queriedRecord) bool { return r.OperationName == "SecretSet" }},
		{"Secret", url.Values{"secret": {"db-pass"}},
			func(r queriedRecord) bool { return strings.Contains(r.Properties.RequestURI, "/secrets/db-pass") },
			func(r queriedRecord) bool {
				return r.OperationName == "SecretGet" && r.Properties.HTTPStatusCode == 200
			}},
		{"Operation", url.Values{"operation": {"SecretSet,VaultPut"}},
			func(r queriedRecord) bool { return r.OperationName == "SecretSet" || r.OperationName == "VaultPut" },
			func(r queriedRecord) bool { return r.OperationName == "VaultPut" }},
		{"Caller", url.Values{"caller": {kvReader.objectID}},
			func(r queriedRecord) bool { return r.oid() == kvReader.objectID },
			func(r queriedRecord) bool {
				return r.OperationName == "SecretGet" && r.Properties.HTTPStatusCode == 403
			}},
		{"CallerByAppID", url.Values{"caller": {kvReader.appID}, "result": {"failure"}},
			func(r queriedRecord) bool { return r.ResultType == "Failure" },
			func(r queriedRecord) bool {
				return r.Properties.HTTPStatusCode == 400 || r.Properties.HTTPStatusCode == 401
			}}, // the failed sign-in
		{"ResultStatus", url.Values{"result": {"403"}, "vault": {"kv-aq-one"}},
			func(r queriedRecord) bool { return r.Properties.HTTPStatusCode == 403 },
			func(r queriedRecord) bool { return r.oid() == kvReader.objectID }},
		{"Since", url.Values{"since": {start.Format(time.RFC3339Nano)}},
			func(r queriedRecord) bool {
				t, err := time.Parse(time.RFC3339Nano, r.Time)
				return err == nil && !t.Before(start)
			},
			func(r queriedRecord) bool { return r.OperationName == "AuditRecordList" }}, // the queries above
		{"Until", url.Values{"until": {start.Format(time.RFC3339Nano)}, "operation": {"AuditRecordList"}},
			func(r queriedRecord) bool { return false }, nil}, // no query ran before start
	}
	for _, c := range cases {
		t.Run("Filter/"+c.name, func(t *testing.T) {
			status, p, body := e.auditQuery(t, auditor.cred, "", c.query)
			if status != 200 {
				t.Fatalf("HTTP %d: %s", status, body)
			}
			found := false
			for _, r := range p.Value {
				if !c.check(r) {
					t.Errorf("a record that does not match: %+v", r)
				}
				found = found || c.any != nil && c.any(r)
			}
			if c.any != nil && !found {
				t.Errorf("the expected record is missing among %d", len(p.Value))
			}
		})
	}

	t.Run("Pages", func(t *testing.T) {
		_, all, _ := e.auditQuery(t, auditor.cred, "", url.Values{"vault": {"kv-aq-one"}, "until": {start.Format(time.RFC3339Nano)}})
		var paged []queriedRecord
		status, p, body := e.auditQuery(t, auditor.cred, "", url.Values{"vault": {"kv-aq-one"}, "until": {start.Format(time.RFC3339Nano)}, "limit": {"2"}})
		for n := 0; ; n++ {
			if status != 200 || n > 50 {
				t.Fatalf("page %d: HTTP %d: %s", n, status, body)
			}
			if len(p.Value) > 2 {
				t.Fatalf("page %d has %d records", n, len(p.Value))
			}
			paged = append(paged, p.Value...)
			if p.NextLink == "" {
				break
			}
			status, p, body = e.auditGet(t, auditor.cred, p.NextLink, nil)
		}
		if len(paged) != len(all.Value) || len(all.Value) < 3 {
			t.Fatalf("%d records in pages, %d in one", len(paged), len(all.Value))
		}
		key := func(r queriedRecord) string { return r.Time + " " + r.OperationName + " " + r.Properties.RequestURI }
		for i := range paged {
			if key(paged[i]) != key(all.Value[i]) {
				t.Errorf("record %d: %s in pages, %s in one", i, key(paged[i]), key(all.Value[i]))
			}
		}
	})

	t.Run("VaultScope", func(t *testing.T) {
		status, p, body := e.auditQuery(t, vaultAuditor.cred, "/resourceGroups/rg-aq/providers/Microsoft.KeyVault/vaults/kv-aq-two", nil)
		if status != 200 || len(p.Value) == 0 {
			t.Fatalf("HTTP %d, %d records: %s", status, len(p.Value), body)
		}
		for _, r := range p.Value {
			if !strings.Contains(strings.ToLower(r.ResourceID+r.Properties.RequestURI), "kv-aq-two") {
				t.Errorf("a record of another vault: %+v", r)
			}
		}
		if status, _, _ := e.auditQuery(t, vaultAuditor.cred, "/resourceGroups/rg-aq/providers/Microsoft.KeyVault/vaults/kv-aq-one", nil); status != 403 {
			t.Errorf("another vault: HTTP %d", status)
		}
		if status, _, body := e.auditQuery(t, vaultAuditor.cred, "/resourceGroups/rg-aq/providers/Microsoft.KeyVault/vaults/kv-aq-two", url.Values{"vault": {"kv-aq-one"}}); status != 400 {
			t.Errorf("a vault filter outside the scope: HTTP %d %s", status, body)
		}
	})

	t.Run("BadParameters", func(t *testing.T) {
		for _, q := range []url.Values{{"since": {"yesterday"}}, {"limit": {"0"}}, {"limit": {"10001"}}, {"$skipToken": {"garbage"}},
			{"since": {"2026-01-02T00:00:00Z"}, "until": {"2026-01-01T00:00:00Z"}}} {
			if status, _, body := e.auditQuery(t, auditor.cred, "", q); status != 400 {
				t.Errorf("%v: HTTP %d %s", q, status, body)
			}
		}
	})

	t.Run("NoSecretValues", func(t *testing.T) {
		_, _, body := e.auditQuery(t, auditor.cred, "", url.Values{"limit": {"10000"}})
		for _, v := range []string{"hunter2", "k-123", kvReader.secret, "not-the-secret"} {
			if strings.Contains(body, v) {
				t.Errorf("the answer holds %q", v)
			}
		}
	})

	// The CLI reads the folder itself, without the server, and finds what the API finds.
	t.Run("CLIDir", func(t *testing.T) {
		dir := filepath.Join(e.srv.DataDir, "audit")
		out, err := exec.Command(testenv.Binary(t), "monitor", "log", "query", "--dir", dir, "--vault", "kv-aq-one", "--secret", "db-pass",
			"--operation", "SecretGet", "--output", "json").Output()
		if err != nil {
			t.Fatalf("%v: %s", err, exitStderr(err))
		}
		var recs []queriedRecord
		if err := json.Unmarshal(out, &recs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(recs) < 2 {
			t.Fatalf("%d records: %s", len(recs), out)
		}
		for _, r := range recs {
			if r.OperationName != "SecretGet" || !strings.Contains(r.Properties.RequestURI, "db-pass") {
				t.Errorf("record %+v", r)
			}
		}
		out, err = exec.Command(testenv.Binary(t), "monitor", "log", "query", "--dir", dir, "--caller", kvReader.objectID, "--result", "403", "--output", "table").Output()
		if err != nil {
			t.Fatalf("%v: %s", err, exitStderr(err))
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) < 3 || !strings.HasPrefix(lines[0], "Time") ||
			!strings.Contains(string(out), "kv-aq-one") || !strings.Contains(string(out), "403") {
			t.Errorf("table:\n%s", out)
		}
	})
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestAuditQuery_ClusterNodesAnswerFromTheirOwnLog: in a cluster each node records the requests
// it executed and answers from that log, naming itself in the answer's node field. A query is
// executed by the leader like any request; with X-Strongroom-Consistency: stale the addressed
// node answers from its own log.
func TestAuditQuery_ClusterNodesAnswerFromTheirOwnLog(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	le := clusterEnv(t, c, leader)
	kv := le.createVault(t, "rg-aq-cluster", "kv-aq-cluster", nil)
	if _, err := kv.SetSecret(context.Background(), "served-by-leader", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	leaderID := ""
	for i, node := range c.Nodes {
		if node == leader {
			leaderID = c.IDs[i]
		}
	}
	q := url.Values{"secret": {"served-by-leader"}, "operation": {"SecretSet"}}
	for i, node := range c.Nodes {
		e := clusterEnv(t, c, node)
		for _, stale := range []bool{false, true} {
			var h http.Header
			wantNode, want := leaderID, 1
			if stale {
				h = http.Header{"X-Strongroom-Consistency": {"stale"}}
				wantNode = c.IDs[i]
				if node != leader {
					want = 0
				}
			}
			status, p, body := e.auditQueryWith(t, e.cred, "", q, h)
			if status != 200 {
				t.Fatalf("node %s (stale %v): HTTP %d %s", c.IDs[i], stale, status, body)
			}
			if p.Node != wantNode || len(p.Value) != want {
				t.Errorf("node %s (stale %v) answered as %q with %d records, want %q with %d", c.IDs[i], stale, p.Node, len(p.Value), wantNode, want)
			}
		}
	}
}

// TestAuditQuery_AcrossRotation: records are found in rotated files and the active one alike,
// and a continuation token taken before a rotation continues after it with nothing lost or
// repeated.
func TestAuditQuery_AcrossRotation(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("audit:\n  max_file_bytes: 1048576\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", cfg}})
	ctx := context.Background()
	kv := e.createVault(t, "rg-aq-rot", "kv-aq-rot", nil)
	if _, err := kv.SetSecret(ctx, "before", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	filter := url.Values{"vault": {"kv-aq-rot"}}
	withLimit := func(v url.Values, limit string) url.Values {
		out := url.Values{"limit": {limit}}
		for k, x := range v {
			out[k] = x
		}
		return out
	}
	status, first, body := e.auditQuery(t, e.cred, "", withLimit(filter, "1"))
	if status != 200 || len(first.Value) != 1 || first.NextLink == "" {
		t.Fatalf("first page: HTTP %d %s", status, body)
	}
	rotated := func() bool {
		m, _ := filepath.Glob(filepath.Join(e.srv.DataDir, "audit", "audit-*.log"))
		return len(m) > 0
	}
	for i := 0; !rotated(); i++ {
		if i > 5000 {
			t.Fatal("no rotation after 5000 requests")
		}
		for range 50 {
			if _, err := kv.GetSecret(ctx, "before", "", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := kv.SetSecret(ctx, "after", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	link, err := url.Parse(first.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	rest := withLimit(filter, "10000")
	rest.Set("$skipToken", link.Query().Get("$skipToken"))
	status, more, body := e.auditQuery(t, e.cred, "", rest)
	if status != 200 {
		t.Fatalf("continuing after the rotation: HTTP %d %s", status, body)
	}
	_, all, _ := e.auditQuery(t, e.cred, "", withLimit(filter, "10000"))
	paged := append(first.Value, more.Value...)
	if len(paged) != len(all.Value) || len(all.Value) < 500 {
		t.Fatalf("%d records through the token, %d in one query", len(paged), len(all.Value))
	}
	for i := range paged {
		if paged[i].RequestID != all.Value[i].RequestID {
			t.Fatalf("record %d: %s through the token, %s in one query", i, paged[i].RequestID, all.Value[i].RequestID)
		}
	}
	if !slices.ContainsFunc(all.Value, func(r queriedRecord) bool {
		return r.OperationName == "SecretSet" && strings.Contains(r.Properties.RequestURI, "/secrets/before")
	}) {
		t.Error("the record in the rotated file is missing")
	}
	if last := all.Value[len(all.Value)-1]; last.OperationName != "SecretSet" || !strings.Contains(last.Properties.RequestURI, "/secrets/after") {
		t.Errorf("the last record is %+v", last)
	}
}
