package test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
	"github.com/strongroom/strongroom/internal/testpg"
)

// rotationSetup is a config for rotation tests: databases and webhooks on loopback allowed, a
// fast worker with a 1 s retry base, the dev floors (minutes), the workers' test clock, and,
// when write is given a step, the crash hook.
type rotationSetup struct {
	flags          []string
	cfgFile, clock string
	dir            string
	retryBase      string
}

func rotationConfig(t *testing.T) *rotationSetup {
	t.Helper()
	dir := t.TempDir()
	s := &rotationSetup{dir: dir, cfgFile: filepath.Join(dir, "strongroom.yaml"), clock: filepath.Join(dir, "clock"), retryBase: "1s"}
	s.write(t, "")
	s.flags = []string{"--config", s.cfgFile, "--vault-requests-per-10s=0"}
	return s
}

func (s *rotationSetup) write(t *testing.T, crashAfter string) {
	t.Helper()
	crash := ""
	if crashAfter != "" {
		crash = "  test_crash_after: " + crashAfter + "\n"
	}
	body := fmt.Sprintf(`events:
  allowed_destinations: ['127.0.0.0/8']
  allow_http: true
  interval: 100ms
  retry_base: 200ms
  retry_max: 1s
  timeout: 5s
  test_clock_file: %q
rotation:
  interval: 100ms
  retry_base: %s
  min_period: 1m
%s`, s.clock, s.retryBase, crash)
	if err := os.WriteFile(s.cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dataCall sends a data-plane request to vault with a bearer token from cred and returns the
// status and the decoded JSON answer.
func (e *env) dataCall(t *testing.T, cred azcore.TokenCredential, method, vault, path, body string) (int, map[string]any) {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policyScopes("https://vault.azure.net/.default"))
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(e.srv.VaultURL(vault), "/")+path+"?api-version=7.4", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return 0, map[string]any{"transport": err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func errorCode(m map[string]any) (code, message string) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	if in, ok := e["innererror"].(map[string]any); ok {
		if c, _ := in["code"].(string); c != "" {
			code = c
		}
	}
	return code, message
}

func TestRotation_PolicyShapesValidationAndRoles(t *testing.T) {
	rs := rotationConfig(t)
	e := newEnv(t, &testenv.Options{Extra: rs.flags, Env: []string{"STRONGROOM_DEV=1"}})
	secrets := e.createVault(t, "rg-rot", "kv-rot", rbacVault())
	ctx := context.Background()
	if _, err := secrets.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("first-value"),
		Tags: map[string]*string{"CredentialId": to.Ptr("primary")}}, nil); err != nil {
		t.Fatal(err)
	}

	st, def := e.dataCall(t, e.cred, "GET", "kv-rot", "/secrets/api-key/rotationpolicy", "")
	acts, _ := def["lifetimeActions"].([]any)
	if st != 200 || def["id"] != nil || len(acts) != 1 || !strings.Contains(fmt.Sprint(acts[0]), "timeBeforeExpiry:P30D") {
		t.Fatalf("default policy: %d %v", st, def)
	}
	// A key rotation policy file as Key Vault accepts it, plus the rotator object.
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}},` +
		`{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}],"attributes":{"expiryTime":"P2Y"},` +
		`"rotator":{"kind":"generate","generator":{"length":40}}}`
	st, put := e.dataCall(t, e.cred, "PUT", "kv-rot", "/secrets/api-key/rotationpolicy", policy)
	wantID := strings.TrimSuffix(e.srv.VaultURL("kv-rot"), "/") + "/secrets/api-key/rotationpolicy"
	if st != 200 || put["id"] != wantID || put["attributes"].(map[string]any)["created"] == nil {
		t.Fatalf("PUT: %d %v", st, put)
	}
	st, got := e.dataCall(t, e.cred, "GET", "kv-rot", "/secrets/api-key/rotationpolicy", "")
	if st != 200 || !reflect.DeepEqual(got, put) {
		t.Fatalf("GET after PUT differs:\n%v\n%v", got, put)
	}

	for _, c := range []struct{ name, body, field string }{
		{"months without T", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"3M"},"action":{"type":"Rotate"}}],"rotator":{"kind":"generate"}}`, "timeAfterCreate"},
		{"empty time", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT"},"action":{"type":"Rotate"}}],"rotator":{"kind":"generate"}}`, "timeAfterCreate"},
		{"two rotates", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}},{"trigger":{"timeAfterCreate":"P40D"},"action":{"type":"rotate"}}],"rotator":{"kind":"generate"}}`, "lifetimeActions[1].action.type"},
		{"before expiry without expiryTime", `{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}],"rotator":{"kind":"generate"}}`, "timeBeforeExpiry"},
		{"below the floor", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT30S"},"action":{"type":"Rotate"}}],"rotator":{"kind":"generate"}}`, "minimum"},
		{"unknown rotator", `{"rotator":{"kind":"lambda"}}`, "rotator.kind"},
		{"not json", `{"lifetimeActions":`, "not valid JSON"},
	} {
		st, m := e.dataCall(t, e.cred, "PUT", "kv-rot", "/secrets/api-key/rotationpolicy", c.body)
		code, msg := errorCode(m)
		if st != 400 || code != "BadParameter" || !strings.Contains(msg, c.field) {
			t.Errorf("%s: %d %s %q, want 400 BadParameter naming %s", c.name, st, code, msg, c.field)
		}
	}
	if st, m := e.dataCall(t, e.cred, "GET", "kv-rot", "/secrets/nope/rotationpolicy", ""); st != 404 {
		t.Errorf("policy of a missing secret: %d %v", st, m)
	}

	// Rotate now: the new version's bundle without its value.
	st, bundle := e.dataCall(t, e.cred, "POST", "kv-rot", "/secrets/api-key/rotate", "")
	if st != 200 || bundle["value"] != nil || !strings.Contains(fmt.Sprint(bundle["id"]), "/secrets/api-key/") {
		t.Fatalf("rotate: %d %v", st, bundle)
	}
	latest, err := secrets.GetSecret(ctx, "api-key", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *latest.Value == "first-value" || len(*latest.Value) != 40 || string(*latest.ID) != bundle["id"] || latest.Attributes.Expires == nil ||
		*latest.Tags["CredentialId"] != "primary" {
		t.Fatalf("latest after rotate: %v %v", *latest.ID, latest.Attributes.Expires)
	}
	st, status := e.dataCall(t, e.cred, "GET", "kv-rot", "/secrets/api-key/rotationstatus", "")
	if st != 200 || status["state"] != "idle" || status["lastOutcome"] != "succeeded" || !strings.HasSuffix(fmt.Sprint(bundle["id"]), fmt.Sprint(status["lastVersion"])) ||
		status["nextDue"] == nil {
		t.Fatalf("status: %d %v", st, status)
	}
	if raw, _ := json.Marshal(status); bytes.Contains(raw, []byte(*latest.Value)) {
		t.Fatal("the status shows the value")
	}

	// Roles: Secrets User reads values but may not touch rotation; Secrets Officer may.
	admin := e.rbacClients(t, e.cred)
	scope := e.vaultScope("rg-rot", "kv-rot")
	user, officer := e.newPrincipal(t, "rot-user"), e.newPrincipal(t, "rot-officer")
	if _, err := admin.assign(ctx, scope, rbac.KeyVaultSecretsUserID, user.objectID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.assign(ctx, scope, rbac.KeyVaultSecretsOfficerID, officer.objectID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/secrets/api-key/rotationpolicy", ""}, {"PUT", "/secrets/api-key/rotationpolicy", policy},
		{"POST", "/secrets/api-key/rotate", ""}, {"GET", "/secrets/api-key/rotationstatus", ""},
	} {
		if st, m := e.dataCall(t, user.cred, c.method, "kv-rot", c.path, c.body); st != 403 {
			t.Errorf("Secrets User %s %s: %d %v", c.method, c.path, st, m)
		}
	}
	if st, m := e.dataCall(t, officer.cred, "PUT", "kv-rot", "/secrets/api-key/rotationpolicy", policy); st != 200 {
		t.Errorf("Secrets Officer PUT: %d %v", st, m)
	}
	if st, m := e.dataCall(t, officer.cred, "POST", "kv-rot", "/secrets/api-key/rotate", ""); st != 200 {
		t.Errorf("Secrets Officer rotate: %d %v", st, m)
	}
	pager := secrets.NewListSecretPropertiesVersionsPager("api-key", nil)
	n := 0
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Value)
	}
	if n != 3 {
		t.Fatalf("%d versions after two rotations, want 3", n)
	}
	auditHas(t, e.srv.DataDir, "SecretRotationPolicySet", "SecretRotationPolicyGet", "SecretRotate", "SecretRotationStatusGet")
}

// auditHas fails unless the data folder's audit log has a record of each operation.
func auditHas(t *testing.T, dataDir string, ops ...string) {
	t.Helper()
	var all []byte
	files, _ := filepath.Glob(filepath.Join(dataDir, "audit", "audit*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		missing := []string{}
		for _, op := range ops {
			if !bytes.Contains(all, []byte(`"operationName":"`+op+`"`)) {
				missing = append(missing, op)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of %v", missing)
		}
		all = all[:0]
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, b...)
		}
	}
}

// pgFixture is a server, a vault with a database secret and its rotation policy, and the
// database.
type pgFixture struct {
	e       *env
	pg      *testpg.Server
	secrets *azsecrets.Client
	rs      *rotationSetup
}

func newPGFixture(t *testing.T, strategy string) *pgFixture {
	t.Helper()
	pg := testpg.Start(t)
	ctx := context.Background()
	pg.Exec(ctx, `CREATE ROLE app WITH LOGIN PASSWORD 'app-first-pw'`)
	rs := rotationConfig(t)
	e := newEnv(t, &testenv.Options{Extra: rs.flags, Env: []string{"STRONGROOM_DEV=1"}})
	secrets := e.createVault(t, "rg-pg", "kv-pg", nil)
	for name, value := range map[string]string{"db-admin": pg.Doc(testpg.Superuser, testpg.SuperuserPassword), "db-app": pg.Doc("app", "app-first-pw")} {
		if _, err := secrets.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(value), ContentType: to.Ptr("application/json")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	admin := ""
	if strategy == "alternating-users" {
		admin = `,"connectionSecret":"` + strings.TrimSuffix(e.srv.VaultURL("kv-pg"), "/") + `/secrets/db-admin"`
	}
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P60D"},` +
		`"rotator":{"kind":"postgres","strategy":"` + strategy + `"` + admin + `}}`
	if st, m := e.dataCall(t, e.cred, "PUT", "kv-pg", "/secrets/db-app/rotationpolicy", policy); st != 200 {
		t.Fatalf("policy: %d %v", st, m)
	}
	return &pgFixture{e: e, pg: pg, secrets: secrets, rs: rs}
}

func (f *pgFixture) latest(t *testing.T) (version string, c struct{ Username, Password string }) {
	t.Helper()
	s, err := f.secrets.GetSecret(context.Background(), "db-app", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(*s.Value), &c); err != nil {
		t.Fatal(err)
	}
	return s.ID.Version(), c
}

func (f *pgFixture) versions(t *testing.T) []string {
	t.Helper()
	var out []string
	pager := f.secrets.NewListSecretPropertiesVersionsPager("db-app", nil)
	for pager.More() {
		p, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			out = append(out, v.ID.Version())
		}
	}
	return out
}

func TestRotation_PostgresAlternatingUsersNoFailedLogins(t *testing.T) {
	f := newPGFixture(t, "alternating-users")
	ctx := context.Background()
	var logins, failures atomic.Int32
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // an application: read the latest secret and log in, every 50 ms
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			s, err := f.secrets.GetSecret(ctx, "db-app", "", nil)
			if err != nil {
				failures.Add(1)
				lastErr.Store(err.Error())
				continue
			}
			var c struct{ Username, Password string }
			_ = json.Unmarshal([]byte(*s.Value), &c)
			if f.pg.CanLogin(ctx, c.Username, c.Password) {
				logins.Add(1)
			} else {
				failures.Add(1)
				lastErr.Store("login as " + c.Username + " failed")
			}
		}
	}()
	seen := map[string]bool{}
	const rotations = 50
	for i := range rotations {
		st, m := f.e.dataCall(t, f.e.cred, "POST", "kv-pg", "/secrets/db-app/rotate", "")
		if st != 200 {
			close(stop)
			wg.Wait()
			t.Fatalf("rotation %d: %d %v", i, st, m)
		}
		_, c := f.latest(t)
		seen[c.Username] = true
		time.Sleep(60 * time.Millisecond) // let the application read each version
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || logins.Load() < rotations {
		t.Fatalf("%d failed logins (last: %v), %d good ones during %d rotations", failures.Load(), lastErr.Load(), logins.Load(), rotations)
	}
	if !seen["app"] || !seen["app_clone"] || len(f.versions(t)) != rotations+1 {
		t.Fatalf("users %v, %d versions", seen, len(f.versions(t)))
	}
	_, c := f.latest(t)
	if !f.pg.CanLogin(ctx, c.Username, c.Password) {
		t.Fatal("the database does not accept the latest version")
	}
	t.Logf("%d rotations, %d logins, 0 failures", rotations, logins.Load())
}

// TestRotation_PostgresCrashMatrix kills the server right after each step is recorded; after
// a restart (and the dead runner's lease) the rotation ends with the database accepting
// exactly the latest version's password and at most one new version.
func TestRotation_PostgresCrashMatrix(t *testing.T) {
	f := newPGFixture(t, "single-user")
	ctx := context.Background()
	for i, step := range []string{"pending", "applied", "tested", "committed"} {
		before := len(f.versions(t))
		_, old := f.latest(t)
		f.rs.write(t, step)
		f.e.srv.Restart()
		st, m := f.e.dataCall(t, f.e.cred, "POST", "kv-pg", "/secrets/db-app/rotate", "")
		if st != 0 {
			t.Fatalf("%s: the server answered %d %v instead of dying", step, st, m)
		}
		if _, exited := f.e.srv.WaitExit(10 * time.Second); !exited {
			t.Fatalf("%s: the server did not die", step)
		}
		f.rs.write(t, "")
		setClock(t, f.rs.clock, time.Duration(i+1)*3*time.Minute) // past the dead runner's lease
		f.e.srv.StartAgain()
		var status map[string]any
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, status = f.e.dataCall(t, f.e.cred, "GET", "kv-pg", "/secrets/db-app/rotationstatus", "")
			if status["state"] == "idle" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rotation not finished after the restart: %v", step, status)
			}
		}
		_, now := f.latest(t)
		after := len(f.versions(t))
		if after != before+1 || status["lastOutcome"] != "succeeded" {
			t.Fatalf("%s: %d versions (was %d), status %v", step, after, before, status)
		}
		if !f.pg.CanLogin(ctx, "app", now.Password) || f.pg.CanLogin(ctx, "app", old.Password) {
			t.Fatalf("%s: the database does not accept exactly the latest password", step)
		}
	}
}

// TestRotation_PostgresOutage stops the database mid-rotation: the status shows the failure
// and its retry, the current value stays, and once the database is back the rotation
// completes once. No rotated value reaches logs, audit, status or the data folder in
// plaintext.
func TestRotation_PostgresOutage(t *testing.T) {
	f := newPGFixture(t, "single-user")
	ctx := context.Background()
	hook := newEvHook(t)
	f.e.subscribe(t, "rg-pg", "kv-pg", "rot", evSubBody(hook.srv.URL+"/", "EventGridSchema", 0,
		"Strongroom.SecretRotationStarted", "Strongroom.SecretRotationSucceeded", "Strongroom.SecretRotationFailed"))
	f.pg.Stop()
	st, m := f.e.dataCall(t, f.e.cred, "POST", "kv-pg", "/secrets/db-app/rotate", "")
	code, msg := errorCode(m)
	if st != 409 || code != "RotationFailed" || !strings.Contains(msg, "unchanged") {
		t.Fatalf("rotate with the database down: %d %s %s", st, code, msg)
	}
	_, status := f.e.dataCall(t, f.e.cred, "GET", "kv-pg", "/secrets/db-app/rotationstatus", "")
	if status["state"] != "failed" || status["step"] != "pending" || status["nextAttempt"] == nil || !strings.Contains(fmt.Sprint(status["lastError"]), "logging in") {
		t.Fatalf("status with the database down: %v", status)
	}
	time.Sleep(2500 * time.Millisecond) // retries at 1 s, then 3 s: still down
	_, status = f.e.dataCall(t, f.e.cred, "GET", "kv-pg", "/secrets/db-app/rotationstatus", "")
	if a, _ := status["attempts"].(float64); a < 2 || len(f.versions(t)) != 1 {
		t.Fatalf("no backed-off retry while down: %v, %d versions", status, len(f.versions(t)))
	}
	f.pg.Restart()
	if !f.pg.CanLogin(ctx, "app", "app-first-pw") {
		t.Fatal("the old value stopped working during the outage")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, status = f.e.dataCall(t, f.e.cred, "GET", "kv-pg", "/secrets/db-app/rotationstatus", "")
		if status["state"] == "idle" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rotated after the database came back: %v", status)
		}
	}
	_, c := f.latest(t)
	if len(f.versions(t)) != 2 || status["lastOutcome"] != "succeeded" || !f.pg.CanLogin(ctx, "app", c.Password) || f.pg.CanLogin(ctx, "app", "app-first-pw") {
		t.Fatalf("after the outage: %d versions, status %v", len(f.versions(t)), status)
	}

	hook.waitFor(t, "Strongroom.SecretRotationSucceeded", "db-app", 1, 10*time.Second)
	time.Sleep(time.Second) // deliveries are not ordered: let the earlier events land
	if n := len(hook.got("Strongroom.SecretRotationStarted", "db-app")); n != 1 {
		t.Fatalf("%d started events, want 1", n)
	}
	failed := hook.got("Strongroom.SecretRotationFailed", "db-app")
	if len(failed) < 2 || !strings.Contains(fmt.Sprint(failed[0]["data"]), "Step:pending") {
		all := []string{}
		for _, ev := range hook.got("", "") {
			all = append(all, fmt.Sprint(ev["eventType"], ev["subject"], ev["data"].(map[string]any)["Attempt"]))
		}
		t.Fatalf("failed events: %d (all: %v)", len(failed), all)
	}
	if n := strings.Count(f.e.srv.Stderr.String(), "rule=rotationFailure"); n != 1 {
		t.Fatalf("%d rotation failure alerts in the log, want 1 (one per rotation)", n)
	}

	// Canary: no rotated password anywhere in plaintext.
	f.e.srv.Stop()
	var hay [][]byte
	hook.mu.Lock()
	for _, r := range hook.raw {
		hay = append(hay, []byte(r))
	}
	hook.mu.Unlock()
	hay = append(hay, []byte(f.e.srv.Stdout.String()), []byte(f.e.srv.Stderr.String()))
	_ = filepath.Walk(f.e.srv.DataDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			hay = append(hay, b)
		}
		return nil
	})
	raw, _ := json.Marshal(status)
	hay = append(hay, raw)
	for _, h := range hay {
		if bytes.Contains(h, []byte(c.Password)) {
			t.Fatal("a rotated password is in plaintext in the logs, the data folder or the status")
		}
	}
}

// rotationHook is user code behind a webhook rotator: it checks each call's signature, reads
// the pending value with its own identity, and keeps the "target" credential.
type rotationHook struct {
	t       *testing.T
	key     string
	e       *env
	cred    azcore.TokenCredential
	mu      sync.Mutex
	target  string
	steps   []string
	bodies  [][]byte
	failSet bool
	badSigs int
}

func (h *rotationHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(h.key))
	mac.Write(body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, body)
	if r.Header.Get("X-Strongroom-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		h.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var call struct{ Step, PendingValueRef string }
	_ = json.Unmarshal(body, &call)
	h.steps = append(h.steps, call.Step)
	pending := func() string {
		tok, err := h.cred.GetToken(r.Context(), policyScopes("https://vault.azure.net/.default"))
		if err != nil {
			return ""
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", call.PendingValueRef, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := h.e.hc.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var p struct{ Value string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return p.Value
	}
	switch call.Step {
	case "setSecret":
		if h.failSet {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.target = pending()
	case "testSecret":
		if v := pending(); v == "" || v != h.target {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func TestRotation_Webhook(t *testing.T) {
	rs := rotationConfig(t)
	e := newEnv(t, &testenv.Options{Extra: rs.flags, Env: []string{"STRONGROOM_DEV=1"}})
	secrets := e.createVault(t, "rg-wh", "kv-wh", rbacVault())
	ctx := context.Background()
	for name, value := range map[string]string{"app-token": "token-v1", "hook-key": "hook-signing-key-0123"} {
		if _, err := secrets.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	hookID := e.newPrincipal(t, "rotation-hook")
	if _, err := e.rbacClients(t, e.cred).assign(ctx, e.vaultScope("rg-wh", "kv-wh")+"/secrets/app-token", rbac.KeyVaultSecretsUserID, hookID.objectID); err != nil {
		t.Fatal(err)
	}
	h := &rotationHook{t: t, key: "hook-signing-key-0123", e: e, cred: hookID.cred, failSet: true}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P60D"},` +
		`"rotator":{"kind":"webhook","url":"` + srv.URL + `/rotate","signingSecret":"hook-key","generator":{"bytes":32}}}`
	if st, m := e.dataCall(t, e.cred, "PUT", "kv-wh", "/secrets/app-token/rotationpolicy", policy); st != 200 {
		t.Fatalf("policy: %d %v", st, m)
	}
	if st, m := e.dataCall(t, e.cred, "GET", "kv-wh", "/secrets/app-token/pending", ""); st != 404 {
		t.Fatalf("pending with no rotation: %d %v", st, m)
	}
	// The hook fails setSecret: the rotation fails, the value stays, and the worker retries.
	st, m := e.dataCall(t, e.cred, "POST", "kv-wh", "/secrets/app-token/rotate", "")
	if code, _ := errorCode(m); st != 409 || code != "RotationFailed" {
		t.Fatalf("rotate with the hook failing: %d %v", st, m)
	}
	if s, err := secrets.GetSecret(ctx, "app-token", "", nil); err != nil || *s.Value != "token-v1" {
		t.Fatalf("latest after a failed rotation: %v", err)
	}
	h.mu.Lock()
	h.failSet = false
	h.mu.Unlock()
	var status map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, status = e.dataCall(t, e.cred, "GET", "kv-wh", "/secrets/app-token/rotationstatus", "")
		if status["state"] == "idle" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not retried: %v", status)
		}
	}
	s, err := secrets.GetSecret(ctx, "app-token", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if *s.Value == "token-v1" || *s.Value != h.target || h.badSigs != 0 || status["lastOutcome"] != "succeeded" {
		t.Fatalf("after the retry: latest is the target's %v, bad signatures %d, status %v", *s.Value == h.target, h.badSigs, status)
	}
	// The failed try (or tries, on a slow machine), then one whole rotation; finishSecret comes
	// right after the commit.
	const tail = "createSecret,setSecret,testSecret,finishSecret"
	for deadline := time.Now().Add(5 * time.Second); !strings.HasSuffix(strings.Join(h.steps, ","), tail) && time.Now().Before(deadline); {
		h.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		h.mu.Lock()
	}
	got := strings.Join(h.steps, ",")
	if !strings.HasPrefix(got, "createSecret,setSecret,createSecret") || !strings.HasSuffix(got, tail) || strings.Count(got, "testSecret") != 1 {
		t.Fatalf("hook steps %s, want failed createSecret,setSecret tries, then %s", got, tail)
	}
	for _, b := range h.bodies {
		if bytes.Contains(b, []byte(*s.Value)) || bytes.Contains(b, []byte("hook-signing-key")) {
			t.Fatal("a webhook call carries the pending value or the signing key")
		}
	}
	// Another principal without getSecret cannot read a pending value.
	stranger := e.newPrincipal(t, "rotation-stranger")
	if st, _ := e.dataCall(t, stranger.cred, "GET", "kv-wh", "/secrets/app-token/pending", ""); st != 403 {
		t.Fatalf("a stranger reading the pending value: %d", st)
	}
}

// TestRotation_Cluster: a follower rotates on request (its writes go through the leader), only
// the leader's worker makes scheduled rotations (one new version, not one per node), and after
// the leader is killed the new leader schedules from the replicated index.
func TestRotation_Cluster(t *testing.T) {
	rs := rotationConfig(t)
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: rs.flags, Env: []string{"STRONGROOM_DEV=1"}})
	leader := c.Leader(10 * time.Second)
	e := clusterEnv(t, c, leader)
	kv := e.createVault(t, "rg-rotc", "kv-rotc", rbacVault())
	ctx := context.Background()
	if _, err := kv.SetSecret(ctx, "svc-key", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil); err != nil {
		t.Fatal(err)
	}
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"PT2M"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"PT10M"},"rotator":{"kind":"generate"}}`
	if st, m := e.dataCall(t, e.cred, "PUT", "kv-rotc", "/secrets/svc-key/rotationpolicy", policy); st != 200 {
		t.Fatalf("policy: %d %v", st, m)
	}
	follower := c.Follower()
	fe := clusterEnv(t, c, follower)
	if st, m := fe.dataCall(t, e.cred, "POST", "kv-rotc", "/secrets/svc-key/rotate", ""); st != 200 {
		t.Fatalf("rotate through a follower: %d %v", st, m)
	}
	clients := map[*testenv.Server]*azsecrets.Client{} // each made (and its token cached) before the kill
	count := func(s *testenv.Server) int {
		t.Helper()
		if clients[s] == nil {
			clients[s] = s.Secrets("kv-rotc", e.cred, e.hc)
		}
		n := 0
		pager := clients[s].NewListSecretPropertiesVersionsPager("svc-key", nil)
		for pager.More() {
			p, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Value)
		}
		return n
	}
	waitVersions := func(s *testenv.Server, want int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); count(s) < want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d versions, want %d", count(s), want)
			}
		}
		time.Sleep(1500 * time.Millisecond) // and no more than that: one worker rotates
		if n := count(s); n != want {
			t.Fatalf("%d versions, want exactly %d", n, want)
		}
	}
	if n := count(follower); n != 2 {
		t.Fatalf("%d versions after a follower's rotate, want 2", n)
	}
	// The workers' clock 1m55s ahead makes the latest version (2 minutes' rotation period) due
	// once it is 5 s old, and the version a rotation makes not due.
	time.Sleep(6 * time.Second)
	setClock(t, rs.clock, 115*time.Second)
	waitVersions(follower, 3)

	setClock(t, rs.clock, 0) // nothing due while the leader changes
	for _, n := range c.Nodes {
		count(n) // the token endpoint (the public URL) may be the node killed next
	}
	leader.Kill()
	next := c.Leader(20 * time.Second)
	if next == leader {
		t.Fatal("the killed node still leads")
	}
	time.Sleep(6 * time.Second)
	setClock(t, rs.clock, 115*time.Second)
	waitVersions(next, 4)
	ne := clusterEnv(t, c, next)
	if st, status := ne.dataCall(t, e.cred, "GET", "kv-rotc", "/secrets/svc-key/rotationstatus", ""); st != 200 || status["trigger"] != nil && status["state"] != "idle" {
		t.Fatalf("status on the new leader: %d %v", st, status)
	}
}

// In a vault with access policies, rotation takes its own permissions: get, list and set do
// not grant it; rotate, getrotationpolicy and setrotationpolicy do (and "all").
func TestRotation_AccessPolicyPermissions(t *testing.T) {
	rs := rotationConfig(t)
	e := newEnv(t, &testenv.Options{Extra: rs.flags, Env: []string{"STRONGROOM_DEV=1"}})
	ctx := context.Background()
	e.createVault(t, "rg-rap", "kv-rap", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
	writer, rotator := e.newPrincipal(t, "rot-writer"), e.newPrincipal(t, "rot-rotator")
	perms := func(ps ...string) *armkeyvault.Permissions {
		var out []*armkeyvault.SecretPermissions
		for _, p := range ps {
			out = append(out, to.Ptr(armkeyvault.SecretPermissions(p)))
		}
		return &armkeyvault.Permissions{Secrets: out}
	}
	tenant := to.Ptr(e.srv.Admin.TenantID)
	entries := []*armkeyvault.AccessPolicyEntry{
		{TenantID: tenant, ObjectID: to.Ptr(e.objectIDOf(t, e.cred)), Permissions: perms("all")},
		{TenantID: tenant, ObjectID: to.Ptr(writer.objectID), Permissions: perms("get", "list", "set")},
		{TenantID: tenant, ObjectID: to.Ptr(rotator.objectID), Permissions: perms("get", "rotate", "getrotationpolicy", "setrotationpolicy")},
	}
	if _, err := e.vaults.UpdateAccessPolicy(ctx, "rg-rap", "kv-rap", armkeyvault.AccessPolicyUpdateKindAdd,
		armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: entries}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Secrets("kv-rap", e.cred, e.hc).SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	policy := `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"rotator":{"kind":"generate"}}`
	calls := []struct{ method, path, body, perm string }{
		{"PUT", "/secrets/s/rotationpolicy", policy, "setrotationpolicy"},
		{"GET", "/secrets/s/rotationpolicy", "", "getrotationpolicy"},
		{"POST", "/secrets/s/rotate", "", "rotate"},
		{"GET", "/secrets/s/rotationstatus", "", "getrotationpolicy"},
	}
	for _, c := range calls {
		st, m := e.dataCall(t, writer.cred, c.method, "kv-rap", c.path, c.body)
		code, msg := errorCode(m)
		if st != 403 || code != "ForbiddenByPolicy" || !strings.Contains(msg, "secrets "+c.perm+" permission") {
			t.Errorf("get/list/set holder %s %s: %d %s %q", c.method, c.path, st, code, msg)
		}
	}
	for _, c := range calls {
		if st, m := e.dataCall(t, rotator.cred, c.method, "kv-rap", c.path, c.body); st != 200 {
			t.Errorf("rotation permissions holder %s %s: %d %v", c.method, c.path, st, m)
		}
	}
}
