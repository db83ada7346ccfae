package test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Golden wire bodies: every data-plane operation, sent as raw HTTP to a real server with a real
// token, and its answer (status, headers, JSON body) compared with the recorded shape under
// testdata/golden. The volatile parts (host and port, version ids, times, request ids, the
// backup blob, caller ids) are replaced by placeholders first, so what is left is exactly what
// a Key Vault client parses: a change of a field name, of when a field appears, of an error
// code or status is a test failure and, once intended, a visible diff of the golden files.
//
// Regenerate after an intended change with
//
//	go test ./test/ -run TestGoldenWire -update     (or STRONGROOM_UPDATE_GOLDEN=1)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under test/testdata/golden")

const goldenDir = "testdata/golden"

// clientRequestID is sent on every request, as the SDKs send theirs.
const clientRequestID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

// wireExchange is one recorded request and its answer, as the golden files hold them.
type wireExchange struct {
	Request  wireRequest  `json:"request"`
	Response wireResponse `json:"response"`
}

type wireRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Auth   string `json:"auth"` // none, admin or stranger (a principal without a role)
	Body   any    `json:"body,omitempty"`
}

type wireResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    any               `json:"body,omitempty"`
}

// goldenRun drives one server and checks each exchange against its file.
type goldenRun struct {
	t        *testing.T
	e        *env
	vault    string
	tokens   map[string]string // auth mode → bearer token
	norm     *wireNormalizer
	produced map[string]bool
}

func TestGoldenWire_DataPlane(t *testing.T) {
	e := newEnv(t, nil)
	g := &goldenRun{t: t, e: e, vault: "kv-golden", tokens: map[string]string{}, produced: map[string]bool{}}
	e.createVault(t, "rg-golden", g.vault, nil)
	g.tokens["admin"] = g.token(e.cred, "https://vault.localhost:"+strconv.Itoa(e.srv.Port)+"/.default")
	stranger := g.createStranger()
	g.norm = newWireNormalizer(e, g.vault, stranger)
	g.run()
	g.checkNoStaleFiles()
}

// run is the recorded session: the order matters, since version placeholders are numbered by
// first appearance.
func (g *goldenRun) run() {
	const api = "?api-version=7.4"
	// Authentication.
	g.call("challenge-401", "PUT", "/secrets/alpha"+api, "none", nil)
	g.call("forbidden-rbac-403", "GET", "/secrets/alpha"+api, "stranger", nil)

	// Set, get, versions.
	set1 := g.call("set-secret", "PUT", "/secrets/alpha"+api, "admin", map[string]any{
		"value": "first value", "contentType": "text/plain", "tags": map[string]string{"env": "dev"},
		"attributes": map[string]any{"enabled": true, "nbf": 1700000000, "exp": 1893456000},
	})
	v1 := versionOf(g.t, set1)
	time.Sleep(2 * time.Millisecond) // version ids start with milliseconds: keep v1 < v2 in listings
	g.call("set-secret-new-version", "PUT", "/secrets/alpha"+api, "admin", map[string]any{"value": "second value"})
	g.call("get-secret-latest", "GET", "/secrets/alpha"+api, "admin", nil)
	g.call("get-secret-version", "GET", "/secrets/alpha/"+v1+api, "admin", nil)
	g.call("set-secret-beta", "PUT", "/secrets/beta"+api, "admin", map[string]any{"value": "b"})

	// Lists and paging.
	g.call("list-secrets", "GET", "/secrets"+api, "admin", nil)
	page := g.call("list-secrets-page-1", "GET", "/secrets"+api+"&maxresults=1", "admin", nil)
	g.follow("list-secrets-page-2", page)
	page = g.call("list-versions-page-1", "GET", "/secrets/alpha/versions"+api+"&maxresults=1", "admin", nil)
	g.follow("list-versions-page-2", page)

	// Update, and reading a disabled version.
	g.call("update-secret", "PATCH", "/secrets/alpha/"+v1+api, "admin", map[string]any{
		"contentType": "application/json", "tags": map[string]string{"stage": "two"}, "attributes": map[string]any{"enabled": false},
	})
	g.call("get-disabled-403", "GET", "/secrets/alpha/"+v1+api, "admin", nil)

	// Backup, and restoring over a live name.
	backup := g.call("backup-secret", "POST", "/secrets/alpha/backup"+api, "admin", nil)
	blob, _ := backup["value"].(string)
	g.call("restore-conflict-409", "POST", "/secrets/restore"+api, "admin", map[string]any{"value": blob})

	// Soft delete, recover, purge, restore.
	g.call("delete-secret", "DELETE", "/secrets/alpha"+api, "admin", nil)
	g.call("get-deleted-secret", "GET", "/deletedsecrets/alpha"+api, "admin", nil)
	g.call("list-deleted-secrets", "GET", "/deletedsecrets"+api, "admin", nil)
	g.call("set-deleted-conflict-409", "PUT", "/secrets/alpha"+api, "admin", map[string]any{"value": "again"})
	g.call("recover-deleted-secret", "POST", "/deletedsecrets/alpha/recover"+api, "admin", nil)
	g.call("purge-live-404", "DELETE", "/deletedsecrets/alpha"+api, "admin", nil)
	g.call("delete-secret-again", "DELETE", "/secrets/alpha"+api, "admin", nil)
	g.call("purge-deleted-secret", "DELETE", "/deletedsecrets/alpha"+api, "admin", nil)
	g.call("get-deleted-purged-404", "GET", "/deletedsecrets/alpha"+api, "admin", nil)
	g.call("restore-secret", "POST", "/secrets/restore"+api, "admin", map[string]any{"value": blob})

	// Not found and bad input.
	g.call("get-missing-404", "GET", "/secrets/missing"+api, "admin", nil)
	g.call("get-missing-version-404", "GET", "/secrets/beta/"+strings.Repeat("0", 32)+api, "admin", nil)
	g.call("maxresults-too-large-400", "GET", "/secrets"+api+"&maxresults=26", "admin", nil)
	g.call("missing-api-version-400", "GET", "/secrets/beta", "admin", nil)
	g.call("set-missing-value-400", "PUT", "/secrets/gamma"+api, "admin", map[string]any{"contentType": "x"})
	g.call("set-invalid-name-400", "PUT", "/secrets/bad_name"+api, "admin", map[string]any{"value": "x"})
	g.call("restore-bad-blob-400", "POST", "/secrets/restore"+api, "admin", map[string]any{"value": "bm90IGEgYmxvYg"})
}

// call sends one request, normalizes the answer, compares it with testdata/golden/<name>.json
// (or rewrites that file under -update) and returns the raw JSON body for the steps after it.
func (g *goldenRun) call(name, method, pathAndQuery, auth string, body any) map[string]any {
	t := g.t
	t.Helper()
	var reqBody []byte
	if body != nil {
		reqBody, _ = json.Marshal(body)
	}
	target := pathAndQuery
	if !strings.HasPrefix(target, "https://") {
		target = strings.TrimSuffix(g.e.srv.VaultURL(g.vault), "/") + pathAndQuery
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("x-ms-client-request-id", clientRequestID) // as every SDK sends it
	if auth != "none" {
		req.Header.Set("Authorization", "Bearer "+g.tokens[auth])
	}
	resp, err := g.e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	var respBody any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &parsed); err != nil {
			t.Fatalf("%s: body is not a JSON object: %q", name, raw)
		}
		respBody = g.norm.body(name, parsed)
	}
	var reqAny any
	if body != nil {
		_ = json.Unmarshal(reqBody, &reqAny)
		reqAny = g.norm.body(name, reqAny)
	}
	ex := wireExchange{
		Request:  wireRequest{Method: method, Path: g.norm.str(strings.TrimPrefix(target, strings.TrimSuffix(g.e.srv.VaultURL(g.vault), "/"))), Auth: auth, Body: reqAny},
		Response: wireResponse{Status: resp.StatusCode, Headers: g.norm.headers(resp.Header), Body: respBody},
	}
	g.compare(name, ex)
	return parsed
}

// follow requests a page's nextLink (which must be there) under name.
func (g *goldenRun) follow(name string, page map[string]any) {
	g.t.Helper()
	next, _ := page["nextLink"].(string)
	if next == "" {
		g.t.Fatalf("%s: the page before it has no nextLink", name)
	}
	g.call(name, "GET", next, "admin", nil)
}

func (g *goldenRun) compare(name string, ex wireExchange) {
	t := g.t
	t.Helper()
	g.produced[name+".json"] = true
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep & and < readable in paths and messages
	enc.SetIndent("", "  ")
	if err := enc.Encode(ex); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join(goldenDir, name+".json")
	if goldenUpdating() {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: no golden file (run with -update to record it): %v\ngot:\n%s", name, err, got)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the wire shape changed (if intended, run with -update and review the diff)\n%s", name, lineDiff(string(want), string(got)))
	}
}

// checkNoStaleFiles fails on golden files no exchange produced (a renamed or dropped case),
// and deletes them under -update.
func (g *goldenRun) checkNoStaleFiles() {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		g.t.Fatal(err)
	}
	for _, f := range files {
		if g.produced[filepath.Base(f)] {
			continue
		}
		if goldenUpdating() {
			os.Remove(f)
			continue
		}
		g.t.Errorf("%s: no exchange records this golden file; delete it or run with -update", f)
	}
}

func goldenUpdating() bool { return *updateGolden || os.Getenv("STRONGROOM_UPDATE_GOLDEN") == "1" }

func (g *goldenRun) token(cred azcore.TokenCredential, scope string) string {
	g.t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		g.t.Fatalf("token for %s: %v", scope, err)
	}
	return tok.Token
}

// createStranger makes a service principal with no role (POST /sys/principals, as `operator
// principal create` does), stores its data-plane token and returns its ids.
func (g *goldenRun) createStranger() strangerIDs {
	t := g.t
	t.Helper()
	armTok := g.token(g.e.cred, "https://management.core.windows.net//.default")
	req, err := http.NewRequest("POST", g.e.srv.URL+"/sys/principals", strings.NewReader(`{"displayName":"golden-stranger"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+armTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		ObjectID     string `json:"objectId"`
		AppID        string `json:"appId"`
		ClientSecret string `json:"clientSecret"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil || p.ClientSecret == "" {
		t.Fatalf("creating a principal: HTTP %d", resp.StatusCode)
	}
	cred := g.e.srv.CredentialFor(g.e.hc, p.AppID, p.ClientSecret)
	g.tokens["stranger"] = g.token(cred, "https://vault.localhost:"+strconv.Itoa(g.e.srv.Port)+"/.default")
	return strangerIDs{objectID: p.ObjectID, appID: p.AppID}
}

// versionOf is the version of a set response's id.
func versionOf(t *testing.T, bundle map[string]any) string {
	t.Helper()
	id, _ := bundle["id"].(string)
	v := id[strings.LastIndex(id, "/")+1:]
	if len(v) != 32 {
		t.Fatalf("set returned id %q without a version", id)
	}
	return v
}
