package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// evHook is an Event Grid receiver started by the test on 127.0.0.1: it answers the
// validation handshake and records every event it accepts. down answers 503 to everything;
// failEvents answers 500 to events but still validates.
type evHook struct {
	srv *httptest.Server

	mu          sync.Mutex
	down        bool
	failEvents  bool
	validations int
	events      []map[string]any
	raw         []string
}

func newEvHook(t *testing.T) *evHook {
	w := &evHook{}
	w.srv = httptest.NewServer(w) // 127.0.0.1
	t.Cleanup(w.srv.Close)
	return w
}

func (h *evHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodOptions { // CloudEvents' webhook validation (abuse protection)
		h.validations++
		w.Header().Set("WebHook-Allowed-Origin", r.Header.Get("WebHook-Request-Origin"))
		return
	}
	var one map[string]any
	var batch []map[string]any
	if json.Unmarshal(b, &batch) == nil && len(batch) == 1 {
		one = batch[0]
	} else if json.Unmarshal(b, &one) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	typ, _ := one["eventType"].(string)
	if typ == "" {
		typ, _ = one["type"].(string)
	}
	if typ == "Microsoft.EventGrid.SubscriptionValidationEvent" {
		h.validations++
		code, _ := one["data"].(map[string]any)["validationCode"].(string)
		json.NewEncoder(w).Encode(map[string]string{"validationResponse": code})
		return
	}
	if h.failEvents {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.events = append(h.events, one)
	h.raw = append(h.raw, string(b))
}

func (h *evHook) set(f func(h *evHook)) { h.mu.Lock(); f(h); h.mu.Unlock() }

// got returns the events of type typ (any type when "") about subject (any when "").
func (h *evHook) got(typ, subject string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, e := range h.events {
		t, _ := e["eventType"].(string)
		if t == "" {
			t, _ = e["type"].(string)
		}
		if (typ == "" || t == typ) && (subject == "" || e["subject"] == subject) {
			out = append(out, e)
		}
	}
	return out
}

func (h *evHook) waitFor(t *testing.T, typ, subject string, n int, within time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := h.got(typ, subject)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events about %q after %v, want %d (all: %d)", len(got), typ, subject, within, n, len(h.got("", "")))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventsConfig writes a config allowing webhooks on loopback over http, with fast retries and
// the test clock file, and returns the server flags and the clock file.
func eventsConfig(t *testing.T) (flags []string, clockFile string) {
	t.Helper()
	dir := t.TempDir()
	clockFile = filepath.Join(dir, "clock")
	cfg := filepath.Join(dir, "strongroom.yaml")
	body := fmt.Sprintf(`events:
  allowed_destinations: ['127.0.0.0/8']
  allow_http: true
  interval: 100ms
  retry_base: 200ms
  retry_max: 1s
  timeout: 2s
  test_clock_file: %q
`, clockFile)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg, "--vault-requests-per-10s=0"}, clockFile
}

func setClock(t *testing.T, file string, d time.Duration) {
	t.Helper()
	if err := os.WriteFile(file, []byte(d.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

const evAPI = "?api-version=2022-06-15"

func evSubPath(e *env, rg, vault, name string) string {
	return "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + vault +
		"/providers/Microsoft.EventGrid/eventSubscriptions/" + name
}

func evSubBody(endpoint, schema string, maxAttempts int, types ...string) string {
	typesJSON, _ := json.Marshal(types)
	if len(types) == 0 {
		typesJSON = []byte("[]")
	}
	retry := ""
	if maxAttempts > 0 {
		retry = fmt.Sprintf(`,"retryPolicy":{"maxDeliveryAttempts":%d,"eventTimeToLiveInMinutes":1440}`, maxAttempts)
	}
	return `{"properties":{"destination":{"endpointType":"WebHook","properties":{"endpointUrl":"` + endpoint + `"}},` +
		`"filter":{"includedEventTypes":` + string(typesJSON) + `},"eventDeliverySchema":"` + schema + `"` + retry + `}}`
}

// subscribe creates a subscription and waits until its handshake made it Succeeded.
func (e *env) subscribe(t *testing.T, rg, vault, name, body string) map[string]any {
	t.Helper()
	got := e.armCall(t, "PUT", evSubPath(e, rg, vault, name)+evAPI, body, http.StatusCreated)
	if strings.Contains(fmt.Sprint(got), "code=") {
		t.Fatalf("the PUT answer echoes the endpoint's query: %v", got)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = e.armCall(t, "GET", evSubPath(e, rg, vault, name)+evAPI, "", http.StatusOK)
		state := got["properties"].(map[string]any)["provisioningState"]
		if state == "Succeeded" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription %s still %v", name, state)
		}
	}
}

func TestEvents_HandshakeAndEveryEventType(t *testing.T) {
	flags, clock := eventsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	kv := e.createVault(t, "rg-ev", "kv-ev", rbacVault())
	hook, cloud := newEvHook(t), newEvHook(t)
	ctx := context.Background()

	// A destination inside the server's network is refused unless allowed; only loopback is.
	e.armCall(t, "PUT", evSubPath(e, "rg-ev", "kv-ev", "sub-private")+evAPI, evSubBody("https://10.1.2.3/hook", "EventGridSchema", 0), http.StatusBadRequest)
	e.armCall(t, "PUT", evSubPath(e, "rg-ev", "kv-ev", "sub-meta")+evAPI, evSubBody("https://169.254.169.254/latest", "EventGridSchema", 0), http.StatusBadRequest)

	// Nothing reaches an endpoint before its handshake: the receiver sees the validation first.
	got := e.subscribe(t, "rg-ev", "kv-ev", "sub-grid", evSubBody(hook.srv.URL+"/hook?code=s3cret-in-query", "EventGridSchema", 0))
	dest := got["properties"].(map[string]any)["destination"].(map[string]any)["properties"].(map[string]any)
	if dest["endpointBaseUrl"] != hook.srv.URL+"/hook" || dest["endpointUrl"] != nil {
		t.Fatalf("destination as shown: %v", dest)
	}
	e.subscribe(t, "rg-ev", "kv-ev", "sub-cloud", evSubBody(cloud.srv.URL+"/ce", "CloudEventSchemaV1_0", 0, "Microsoft.KeyVault.SecretNewVersionCreated"))
	hook.mu.Lock()
	if hook.validations != 1 || len(hook.events) != 0 {
		t.Fatalf("before any event: %d validations, %d events", hook.validations, len(hook.events))
	}
	hook.mu.Unlock()
	list := e.armCall(t, "GET", strings.TrimSuffix(evSubPath(e, "rg-ev", "kv-ev", "x"), "/x")+evAPI, "", http.StatusOK)
	if b, _ := json.Marshal(list); len(list["value"].([]any)) != 2 || strings.Contains(string(b), "s3cret") {
		t.Fatalf("list: %s", b)
	}

	exp := time.Now().Add(40 * 24 * time.Hour).Truncate(time.Second)
	const value = "canary-value-never-in-events"
	set, err := kv.SetSecret(ctx, "db-pass", azsecrets.SetSecretParameters{Value: to.Ptr(value), SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "db-pass", 1, 10*time.Second)[0]
	data := ev["data"].(map[string]any)
	if !strings.HasSuffix(ev["topic"].(string), "/resourceGroups/rg-ev/providers/Microsoft.KeyVault/vaults/kv-ev") || ev["dataVersion"] != "1" ||
		ev["metadataVersion"] != "1" || ev["id"] == "" || ev["eventTime"] == "" || data["Id"] != string(*set.ID) || data["VaultName"] != "kv-ev" ||
		data["ObjectType"] != "Secret" || data["ObjectName"] != "db-pass" || data["Version"] != set.ID.Version() || data["EXP"] != float64(exp.Unix()) {
		t.Fatalf("SecretNewVersionCreated: %v", ev)
	}
	ce := cloud.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "db-pass", 1, 10*time.Second)[0]
	if ce["specversion"] != "1.0" || ce["source"] != ev["topic"] || ce["id"] == "" || ce["time"] == "" || ce["data"].(map[string]any)["ObjectName"] != "db-pass" {
		t.Fatalf("CloudEvents: %v", ce)
	}

	e.armCall(t, "PUT", "/subscriptions/"+e.srv.Admin.SubscriptionID+"/resourceGroups/rg-ev/providers/Microsoft.KeyVault/vaults/kv-ev/accessPolicies/add?api-version=2023-07-01",
		`{"properties":{"accessPolicies":[{"tenantId":"`+e.srv.Admin.TenantID+`","objectId":"00000000-0000-0000-0000-0000000000e1","permissions":{"secrets":["get"]}}]}}`, http.StatusOK)
	pol := hook.waitFor(t, "Microsoft.KeyVault.VaultAccessPolicyChanged", "kv-ev", 1, 10*time.Second)[0]
	if pol["data"].(map[string]any)["VaultName"] != "kv-ev" {
		t.Fatalf("VaultAccessPolicyChanged: %v", pol)
	}

	// The injected clock reaches 30 days before exp, then exp.
	if n := len(hook.got("Microsoft.KeyVault.SecretNearExpiry", "")); n != 0 {
		t.Fatalf("near expiry before its time: %d", n)
	}
	setClock(t, clock, 10*24*time.Hour+time.Hour)
	near := hook.waitFor(t, "Microsoft.KeyVault.SecretNearExpiry", "db-pass", 1, 10*time.Second)[0]
	if near["data"].(map[string]any)["EXP"] != float64(exp.Unix()) {
		t.Fatalf("SecretNearExpiry: %v", near)
	}
	if n := len(hook.got("Microsoft.KeyVault.SecretExpired", "")); n != 0 {
		t.Fatalf("expired before exp: %d", n)
	}
	setClock(t, clock, 40*24*time.Hour+time.Hour)
	hook.waitFor(t, "Microsoft.KeyVault.SecretExpired", "db-pass", 1, 10*time.Second)

	time.Sleep(time.Second) // anything duplicated would have arrived
	for _, typ := range []string{"Microsoft.KeyVault.SecretNewVersionCreated", "Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired", "Microsoft.KeyVault.VaultAccessPolicyChanged"} {
		if n := len(hook.got(typ, "")); n != 1 {
			t.Errorf("%s delivered %d times, want once", typ, n)
		}
	}
	if n := len(cloud.got("", "")); n != 1 {
		t.Errorf("the filtered CloudEvents subscription got %d events, want 1", n)
	}
	for _, h := range []*evHook{hook, cloud} {
		h.mu.Lock()
		for _, r := range h.raw {
			if strings.Contains(r, value) {
				t.Errorf("an event carries the secret value: %s", r)
			}
		}
		h.mu.Unlock()
	}

	// A principal without a role may not subscribe.
	stranger := e.stranger(t)
	tok, err := stranger.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	status, body := e.armPut(t, tok.Token, evSubPath(e, "rg-ev", "kv-ev", "sub-evil"), evSubBody(hook.srv.URL+"/x", "EventGridSchema", 0))
	if status != http.StatusForbidden || !strings.Contains(body, "Microsoft.EventGrid/eventSubscriptions/write") {
		t.Fatalf("a stranger's subscription: %d %s", status, body)
	}
	e.armCall(t, "DELETE", evSubPath(e, "rg-ev", "kv-ev", "sub-grid")+evAPI, "", http.StatusOK)
	e.armCall(t, "GET", evSubPath(e, "rg-ev", "kv-ev", "sub-grid")+evAPI, "", http.StatusNotFound)
}

func TestEvents_QueuedWhileDownSurviveKill(t *testing.T) {
	flags, _ := eventsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	kv := e.createVault(t, "rg-evk", "kv-evk", rbacVault())
	hook := newEvHook(t)
	e.subscribe(t, "rg-evk", "kv-evk", "sub", evSubBody(hook.srv.URL+"/", "EventGridSchema", 0))
	hook.set(func(h *evHook) { h.down = true })
	ctx := context.Background()
	for i := range 3 {
		if _, err := kv.SetSecret(ctx, fmt.Sprintf("s%d", i), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	e.srv.Kill()
	hook.set(func(h *evHook) { h.down = false })
	e.srv.StartAgain()
	for i := range 3 {
		hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", fmt.Sprintf("s%d", i), 1, 20*time.Second)
	}
}

func TestEvents_DeadLetterAndReplay(t *testing.T) {
	flags, _ := eventsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	kv := e.createVault(t, "rg-evd", "kv-evd", rbacVault())
	hook := newEvHook(t)
	e.subscribe(t, "rg-evd", "kv-evd", "sub", evSubBody(hook.srv.URL+"/", "EventGridSchema", 3))
	hook.set(func(h *evHook) { h.failEvents = true })
	if _, err := kv.SetSecret(context.Background(), "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	dlPath := evSubPath(e, "rg-evd", "kv-evd", "sub") + "/deadLetters"
	var dls []any
	for deadline := time.Now().Add(15 * time.Second); len(dls) == 0; time.Sleep(100 * time.Millisecond) {
		dls = e.armCall(t, "GET", dlPath+evAPI, "", http.StatusOK)["value"].([]any)
		if time.Now().After(deadline) {
			t.Fatal("nothing dead-lettered")
		}
	}
	dl := dls[0].(map[string]any)
	if dl["deliveryAttempts"] != float64(3) || !strings.HasPrefix(dl["deadLetterReason"].(string), "MaxDeliveryAttemptsExceeded") ||
		dl["eventType"] != "Microsoft.KeyVault.SecretNewVersionCreated" || dl["subject"] != "s" {
		t.Fatalf("dead letter: %v", dl)
	}
	hook.set(func(h *evHook) { h.failEvents = false })
	if got := e.armCall(t, "POST", dlPath+"/replay"+evAPI, "", http.StatusOK); got["replayed"] != float64(1) {
		t.Fatalf("replay: %v", got)
	}
	hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "s", 1, 10*time.Second)
	if left := e.armCall(t, "GET", dlPath+evAPI, "", http.StatusOK)["value"].([]any); len(left) != 0 {
		t.Fatalf("dead letters after replay: %v", left)
	}
}

func TestEvents_ClusterDeliverySurvivesLeaderKill(t *testing.T) {
	flags, _ := eventsConfig(t)
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	leader := c.Leader(10 * time.Second)
	e := clusterEnv(t, c, leader)
	kv := e.createVault(t, "rg-evc", "kv-evc", rbacVault())
	hook := newEvHook(t)
	e.subscribe(t, "rg-evc", "kv-evc", "sub", evSubBody(hook.srv.URL+"/", "EventGridSchema", 0))
	ctx := context.Background()
	if _, err := kv.SetSecret(ctx, "before", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "before", 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := len(hook.got("", "before")); n != 1 {
		t.Fatalf("delivered %d times from a 3-node cluster, want once (only the leader delivers)", n)
	}
	// A survivor's client, its token cached now (the token endpoint's public URL may be the
	// node killed below).
	survivor := c.Follower()
	kvS := survivor.Secrets("kv-evc", e.cred, e.hc)
	hook.set(func(h *evHook) { h.down = true })
	for _, n := range []string{"during-1", "during-2"} {
		if _, err := kvS.SetSecret(ctx, n, azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	leader.Kill()
	hook.set(func(h *evHook) { h.down = false })
	next := c.Leader(20 * time.Second)
	if next == leader {
		t.Fatal("the killed node still leads")
	}
	for _, n := range []string{"during-1", "during-2"} {
		hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", n, 1, 30*time.Second)
	}
	// The new leader delivers new events too.
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err = kvS.SetSecret(ctx, "after", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "after", 1, 10*time.Second)
}

// The eventgrid commands, as az's: create waits for the handshake, show and list never print
// the endpoint's query, and the dead-letter commands list and replay.
func TestEvents_CLI(t *testing.T) {
	flags, _ := eventsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	kv := e.createVault(t, "rg-evcli", "kv-evcli", rbacVault())
	hook := newEvHook(t)
	cfgDir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := cli(t, cfgDir, args...)
		if err != nil {
			t.Fatalf("strongroom %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	run("login", "--server", e.srv.URL, "--ca-file", filepath.Join(e.srv.DataDir, "tls", "ca.pem"),
		"--service-principal", "--username", e.srv.Admin.ClientID, "--password", e.srv.Admin.ClientSecret, "--tenant", e.srv.Admin.TenantID)
	src := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/rg-evcli/providers/Microsoft.KeyVault/vaults/kv-evcli"
	out := run("eventgrid", "event-subscription", "create", "--name", "cli-sub", "--source-resource-id", src,
		"--endpoint", hook.srv.URL+"/hook?code=cli-s3cret", "--included-event-types", "Microsoft.KeyVault.SecretNewVersionCreated",
		"Microsoft.KeyVault.SecretExpired", "--max-delivery-attempts", "2", "--event-delivery-schema", "eventgridschema")
	var sub map[string]any
	if err := json.Unmarshal([]byte(out), &sub); err != nil || provisioningOf(sub) != "Succeeded" || strings.Contains(out, "cli-s3cret") {
		t.Fatalf("create printed %s (%v)", out, err)
	}
	for _, args := range [][]string{
		{"eventgrid", "event-subscription", "show", "--name", "cli-sub", "--source-resource-id", src},
		{"eventgrid", "event-subscription", "list", "--source-resource-id", src},
	} {
		if out := run(args...); !strings.Contains(out, "cli-sub") || strings.Contains(out, "cli-s3cret") {
			t.Fatalf("%s printed %s", args[2], out)
		}
	}
	hook.set(func(h *evHook) { h.failEvents = true })
	if _, err := kv.SetSecret(context.Background(), "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	var dls []map[string]any
	for deadline := time.Now().Add(15 * time.Second); len(dls) == 0; time.Sleep(200 * time.Millisecond) {
		json.Unmarshal([]byte(run("eventgrid", "dead-letter", "list", "--name", "cli-sub", "--source-resource-id", src)), &dls)
		if time.Now().After(deadline) {
			t.Fatal("nothing dead-lettered")
		}
	}
	hook.set(func(h *evHook) { h.failEvents = false })
	if out := run("eventgrid", "dead-letter", "replay", "--name", "cli-sub", "--source-resource-id", src); !strings.Contains(out, `"replayed": 1`) {
		t.Fatalf("replay printed %s", out)
	}
	hook.waitFor(t, "Microsoft.KeyVault.SecretNewVersionCreated", "s", 1, 10*time.Second)
	run("eventgrid", "event-subscription", "delete", "--name", "cli-sub", "--source-resource-id", src)
	if _, _, err := cli(t, cfgDir, "eventgrid", "event-subscription", "show", "--name", "cli-sub", "--source-resource-id", src); err == nil {
		t.Fatal("show after delete succeeded")
	}
	if _, errOut, err := cli(t, cfgDir, "eventgrid", "event-subscription", "create", "--name", "private-sub", "--source-resource-id", src,
		"--endpoint", "https://10.0.0.1/hook"); err == nil || !strings.Contains(errOut, "endpointUrl") {
		t.Fatalf("a private endpoint: %v %s", err, errOut)
	}
}

func provisioningOf(sub map[string]any) string {
	p, _ := sub["properties"].(map[string]any)
	s, _ := p["provisioningState"].(string)
	return s
}

// Who may subscribe: writing takes Microsoft.EventGrid/eventSubscriptions/write at the vault
// (Owner's and Contributor's "*"); Reader reads subscriptions (endpoint redacted) but may not
// write them nor list dead letters (they name secrets); Key Vault Contributor grants no
// Event Grid action, as in Azure.
func TestEvents_Roles(t *testing.T) {
	flags, _ := eventsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: flags, Env: []string{"STRONGROOM_DEV=1"}})
	e.createVault(t, "rg-evr", "kv-evr", rbacVault())
	hook := newEvHook(t)
	e.subscribe(t, "rg-evr", "kv-evr", "sub", evSubBody(hook.srv.URL+"/?code=r3ader-secret", "EventGridSchema", 0))
	ctx := context.Background()
	admin := e.rbacClients(t, e.cred)
	grant := func(name, role string) string {
		p := e.newPrincipal(t, name)
		if _, err := admin.assign(ctx, e.vaultScope("rg-evr", "kv-evr"), role, p.objectID); err != nil {
			t.Fatalf("assigning %s: %v", name, err)
		}
		tok, err := p.cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	do := func(token, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path+evAPI, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sub := evSubPath(e, "rg-evr", "kv-evr", "sub")
	body := evSubBody(hook.srv.URL+"/", "EventGridSchema", 0)
	reader := grant("ev-reader", rbac.ReaderID)
	if st, b := do(reader, "GET", sub, ""); st != http.StatusOK || strings.Contains(b, "r3ader-secret") {
		t.Fatalf("Reader GET: %d %s", st, b)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", sub, body}, {"DELETE", sub, ""}, {"GET", sub + "/deadLetters", ""}, {"POST", sub + "/deadLetters/replay", ""},
	} {
		if st, b := do(reader, c.method, c.path, c.body); st != http.StatusForbidden || !strings.Contains(b, "AuthorizationFailed") {
			t.Errorf("Reader %s %s: %d %s", c.method, c.path, st, b)
		}
	}
	kvContrib := grant("ev-kv-contributor", rbac.KeyVaultContributorID)
	if st, b := do(kvContrib, "PUT", evSubPath(e, "rg-evr", "kv-evr", "kvc-sub"), body); st != http.StatusForbidden {
		t.Errorf("Key Vault Contributor PUT: %d %s", st, b)
	}
	contrib := grant("ev-contributor", rbac.ContributorID)
	if st, b := do(contrib, "PUT", evSubPath(e, "rg-evr", "kv-evr", "contrib-sub"), body); st != http.StatusCreated {
		t.Errorf("Contributor PUT: %d %s", st, b)
	}
}
