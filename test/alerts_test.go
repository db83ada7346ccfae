package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/alerts"
	"github.com/strongroom/strongroom/internal/testenv"
)

// hookReceiver is a webhook destination on 127.0.0.1 that keeps every delivery.
type hookReceiver struct {
	url    string
	secret []byte
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func startHookReceiver(t *testing.T, secret []byte) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{url: "http://" + ln.Addr().String() + "/alerts?token=hook-query-credential", secret: secret}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies, h.sigs = append(h.bodies, b), append(h.sigs, r.Header.Get(alerts.SignatureHeader))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// received decodes every delivery, checking each one's signature.
func (h *hookReceiver) received(t *testing.T) []alerts.Alert {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []alerts.Alert
	for i, b := range h.bodies {
		if !alerts.Verify(h.secret, b, h.sigs[i]) {
			t.Fatalf("delivery %d: signature %q does not verify over %s", i, h.sigs[i], b)
		}
		var a alerts.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("delivery %d: %v: %s", i, err, b)
		}
		out = append(out, a)
	}
	return out
}

func (h *hookReceiver) raw() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var sb strings.Builder
	for _, b := range h.bodies {
		sb.Write(b)
	}
	return sb.String()
}

// byRule counts alerts per rule name.
func byRule(as []alerts.Alert) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a.Rule]++
	}
	return out
}

// waitAlerts waits until the receiver holds want alerts per rule, then a little longer to see
// that no more arrive.
func (h *hookReceiver) waitAlerts(t *testing.T, want map[string]int) []alerts.Alert {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := byRule(h.received(t))
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts received %v, want %v:\n%s", got, want, h.raw())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // an extra alert would be queued by now
	as := h.received(t)
	if got := byRule(as); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alerts received %v, want exactly %v:\n%s", got, want, h.raw())
	}
	return as
}

// alertsEnv is a server whose alerts go to a receiver; it trusts 127.0.0.1 as a proxy so
// that requests can come from other addresses (X-Forwarded-For).
func alertsEnv(t *testing.T) (*env, *hookReceiver, func(offset string)) {
	t.Helper()
	cfg, h, setClock := alertsConfig(t)
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", cfg}, Env: []string{"STRONGROOM_DEV=1"}})
	noRaces(t, e.srv)
	return e, h, setClock
}

// noRaces fails t if a server built with the race detector (STRONGROOM_TEST_RACE=1) reported
// a data race by the time the test ends.
func noRaces(t *testing.T, servers ...*testenv.Server) {
	t.Cleanup(func() { // before the servers stop: registered after them
		for _, s := range servers {
			if log := s.Stderr.String(); strings.Contains(log, "DATA RACE") {
				t.Errorf("server %s reported a data race:\n%s", s.URL, log)
			}
		}
	})
}

// alertsConfig writes a config file whose alerts go to a new receiver (short windows, a test
// clock file set by setClock) and returns its path.
func alertsConfig(t *testing.T) (cfg string, h *hookReceiver, setClock func(offset string)) {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 32)
	rand.Read(secret)
	secret = []byte(hex.EncodeToString(secret))
	keyFile := filepath.Join(dir, "hook.key")
	if err := os.WriteFile(keyFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	h = startHookReceiver(t, secret)
	clock := filepath.Join(dir, "clock")
	setClock = func(offset string) {
		t.Helper()
		if err := os.WriteFile(clock, []byte(offset), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setClock("0s")
	cfg = filepath.Join(dir, "strongroom.yaml")
	yaml := `trusted_proxies: ['127.0.0.1/32', '::1/128']
alerts:
  allowed_destinations: ['127.0.0.0/8']
  webhooks: [{url: '` + h.url + `', secret_file: '` + keyFile + `'}]
  webhook_backoff: 100ms
  test_clock_file: '` + clock + `'
  brute_force: {threshold: 5, window: 1m}
  new_pattern: {learning_period: 1h}
  rate_spike: {threshold: 8, window: 1m, min_reads: 100000}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, h, setClock
}

func (e *env) adminARMToken(t *testing.T) string {
	t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// monitorCall sends one management-plane call and returns the status and body.
func (e *env) monitorCall(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	return e.monitorCallVia(t, e.hc, token, method, path, body)
}

// monitorCallVia is monitorCall through hc.
func (e *env) monitorCallVia(t *testing.T, hc *http.Client, token, method, path, body string) (int, string) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, e.srv.URL+path+sep+"api-version=2026-01-01", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// alertsRun is TestAlerts' server, receiver and clients; each phase is a method.
type alertsRun struct {
	t           *testing.T
	e           *env
	hook        *hookReceiver
	setClock    func(offset string)
	kv, kvSweep *azsecrets.Client
	canary, tok string
	// strangerNet and strangerTok are a principal without roles, calling from an address of
	// its own, so that its refusals do not add up with the SDK's challenge probes from
	// 127.0.0.1 to a brute-force incident there.
	strangerNet *http.Client
	strangerTok string
}

const htPathFmt = "/subscriptions/%s/resourceGroups/rg-alerts/providers/Microsoft.KeyVault/vaults/kv-alerts/providers/Strongroom.Monitor/honeytokens"

// The four access rules against a real server: brute force (failed authentications from one
// address), a new pattern (a new secret from a new network after the learning period), a rate
// spike (more than 8 distinct secrets of one vault in a minute) and a honeytoken read each
// reach the webhook exactly once per incident, signed with the webhook's HMAC key, naming who,
// what and where and never a secret value. The server's rules run on a test clock the test
// moves. A rule changed through the API takes effect at once; only operators may read or set
// a honeytoken mark, and a decoy reads exactly like a secret.
func TestAlerts(t *testing.T) {
	r := newAlertsRun(t)
	r.bruteForce()
	r.newPattern()
	r.rateSpike()
	r.honeytoken()
	r.checkBodies(r.hook.waitAlerts(t, map[string]int{"bruteForce": 2, "newPattern": 1, "rateSpike": 1, "honeytoken": 1}))
	r.listAndCount()
	r.ruleThroughAPI()
}

func newAlertsRun(t *testing.T) *alertsRun {
	e, hook, setClock := alertsEnv(t)
	r := &alertsRun{t: t, e: e, hook: hook, setClock: setClock, canary: "alert-canary-" + hex.EncodeToString([]byte(t.Name()))}
	r.kv = e.createVault(t, "rg-alerts", "kv-alerts", rbacVault())
	r.kvSweep = e.createVault(t, "rg-alerts", "kv-sweep", rbacVault())
	set := func(c *azsecrets.Client, name, value string) {
		t.Helper()
		if _, err := c.SetSecret(context.Background(), name, azsecrets.SetSecretParameters{Value: to.Ptr(value)}, nil); err != nil {
			t.Fatalf("setting %s: %v", name, err)
		}
	}
	for _, n := range []string{"app-db", "app-api", "decoy", "normal"} {
		set(r.kv, n, r.canary+"-"+n)
	}
	for i := range 9 {
		set(r.kvSweep, fmt.Sprintf("s%d", i), r.canary+"-sweep")
	}
	r.tok = e.adminARMToken(t)
	r.strangerNet = e.withXFF("192.0.2.10")
	stok, err := e.stranger(t).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	r.strangerTok = stok.Token
	return r
}

// badTokens sends n data-plane requests with a bad bearer token from address from.
func (r *alertsRun) badTokens(n int, from string) {
	r.t.Helper()
	for range n {
		req, _ := http.NewRequest("GET", r.e.srv.VaultURL("kv-alerts")+"/secrets/app-db?api-version=7.4", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := r.e.hc.Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			r.t.Fatalf("bad token: HTTP %d", resp.StatusCode)
		}
	}
}

// bruteForce: five failures from one address alert once, however many follow within the
// window; two hours later (the test clock) that incident is over, and five more are a new one.
func (r *alertsRun) bruteForce() {
	r.badTokens(7, "198.51.100.66")
	r.hook.waitAlerts(r.t, map[string]int{"bruteForce": 1})
	// The admin's first read starts its learning period (1h).
	getOK(r.t, r.kv, "app-db", r.canary+"-app-db")
	r.setClock("2h")
	r.badTokens(4, "198.51.100.66")
	r.hook.waitAlerts(r.t, map[string]int{"bruteForce": 1})
	r.badTokens(1, "198.51.100.66")
	r.hook.waitAlerts(r.t, map[string]int{"bruteForce": 2})
}

// newPattern, after the learning period: a new secret from a network never seen for the
// caller alerts; a new secret or a new network alone does not.
func (r *alertsRun) newPattern() {
	t, e, c := r.t, r.e, r.canary
	getOK(t, r.kv, "app-db", c+"-app-db")                               // known secret, known network
	far := e.srv.Secrets("kv-alerts", e.cred, e.withXFF("10.20.30.40")) // new network
	getOK(t, far, "app-db", c+"-app-db")                                // known secret, new network
	getOK(t, far, "app-api", c+"-app-api")                              // new secret, but the network is known now
	wideNet := e.srv.Secrets("kv-alerts", e.cred, e.withXFF("10.99.1.2"))
	getOK(t, wideNet, "normal", c+"-normal") // new secret from a new network: alerts
	getOK(t, wideNet, "normal", c+"-normal")
	r.hook.waitAlerts(t, map[string]int{"bruteForce": 2, "newPattern": 1})
}

// rateSpike: nine distinct secrets of one vault within a minute, twice: one incident.
func (r *alertsRun) rateSpike() {
	for range 2 {
		for i := range 9 {
			getOK(r.t, r.kvSweep, fmt.Sprintf("s%d", i), r.canary+"-sweep")
		}
	}
	r.hook.waitAlerts(r.t, map[string]int{"bruteForce": 2, "newPattern": 1, "rateSpike": 1})
}

// honeytoken: marked through the API (only by an operator), then read once, looking like any
// other secret to the reader.
func (r *alertsRun) honeytoken() {
	t, e := r.t, r.e
	htPath := fmt.Sprintf(htPathFmt, e.srv.Admin.SubscriptionID)
	if status, body := e.monitorCallVia(t, r.strangerNet, r.strangerTok, "PUT", htPath+"/decoy", "{}"); status != http.StatusForbidden {
		t.Fatalf("a non-operator marking a honeytoken: %d %s", status, body)
	}
	if status, body := e.monitorCall(t, r.tok, "PUT", htPath+"/decoy", "{}"); status != http.StatusOK || !strings.Contains(body, `"secretName":"decoy"`) {
		t.Fatalf("marking a honeytoken: %d %s", status, body)
	}
	if status, body := e.monitorCallVia(t, r.strangerNet, r.strangerTok, "GET", htPath, ""); status != http.StatusForbidden {
		t.Fatalf("a non-operator listing honeytokens: %d %s", status, body)
	}
	if status, body := e.monitorCall(t, r.tok, "GET", htPath, ""); status != http.StatusOK || !strings.Contains(body, `"DECOY"`) {
		t.Fatalf("listing honeytokens: %d %s", status, body)
	}
	decoy, err := r.kv.GetSecret(context.Background(), "decoy", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	normal, err := r.kv.GetSecret(context.Background(), "normal", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if shape(t, decoy.Secret) != shape(t, normal.Secret) || decoy.Tags != nil {
		t.Fatalf("a decoy reads differently from a secret:\n%s\n%s", shape(t, decoy.Secret), shape(t, normal.Secret))
	}
}

// checkBodies: who, what and where, and never a value (nor the webhook's query credential).
func (r *alertsRun) checkBodies(all []alerts.Alert) {
	t := r.t
	for _, a := range all {
		if a.ID == "" || a.Time.IsZero() || a.Kind == "" || a.Summary == "" {
			t.Fatalf("incomplete alert %+v", a)
		}
		ok := true
		switch a.Rule {
		case "bruteForce":
			ok = a.Who.IP == "198.51.100.66" && a.What.Status == http.StatusUnauthorized && a.What.Count == 5
		case "newPattern":
			ok = a.Who.IP == "10.99.1.2" && a.Where.Network == "10.99.1.0/24" && a.What.Secret == "normal" && a.What.Vault == "kv-alerts" && a.Who.ObjectID != ""
		case "rateSpike":
			ok = a.What.Vault == "kv-sweep" && a.What.Count == 9 && a.Who.ObjectID != ""
		case "honeytoken":
			ok = a.What.Vault == "kv-alerts" && a.What.Secret == "decoy" && a.What.Operation == "SecretGet" && a.Who.IP == "127.0.0.1" && a.Severity == "critical"
		}
		if !ok {
			t.Fatalf("%s alert %+v", a.Rule, a)
		}
	}
	if raw := r.hook.raw(); strings.Contains(raw, r.canary) || strings.Contains(raw, "hook-query-credential") {
		t.Fatalf("an alert body holds a secret value or the webhook's query:\n%s", raw)
	}
}

// listAndCount: the node lists what it fired (to operators only); the counter counts by kind.
func (r *alertsRun) listAndCount() {
	t, e := r.t, r.e
	status, body := e.monitorCall(t, r.tok, "GET", "/providers/Strongroom.Monitor/alerts", "")
	if status != http.StatusOK || strings.Count(body, `"rule":`) != 5 || strings.Contains(body, r.canary) {
		t.Fatalf("listing alerts: %d %s", status, body)
	}
	if status, body := e.monitorCallVia(t, r.strangerNet, r.strangerTok, "GET", "/providers/Strongroom.Monitor/alerts", ""); status != http.StatusForbidden {
		t.Fatalf("a non-operator listing alerts: %d %s", status, body)
	}
	_, metrics := scrape(t, e.hc, e.srv.URL, r.tok)
	for k, want := range map[string]float64{"BruteForce": 2, "NewPattern": 1, "RateSpike": 1, "Honeytoken": 1, "AuditSink": 0} {
		if v := metricValue(metrics, `strongroom_alerts_fired_total{rule="`+k+`"}`); v != want {
			t.Fatalf("strongroom_alerts_fired_total{rule=%q} = %v, want %v\n%s", k, v, want, grepLines(metrics, "strongroom_alert"))
		}
	}
	if strings.Contains(metrics, r.canary) || strings.Contains(metrics, "decoy") {
		t.Fatal("/metrics names a secret")
	}
}

// ruleThroughAPI: a rule changed through the API applies at once (three failures now alert);
// deleting it returns the configured one.
func (r *alertsRun) ruleThroughAPI() {
	t, e := r.t, r.e
	const rule = "/providers/Strongroom.Monitor/alertRules/bruteForce"
	status, body := e.monitorCall(t, r.tok, "PUT", rule, `{"properties":{"threshold":3,"window":"1m"}}`)
	if status != http.StatusCreated || !strings.Contains(body, `"source":"api"`) || !strings.Contains(body, `"threshold":3`) {
		t.Fatalf("overriding bruteForce: %d %s", status, body)
	}
	if status, body := e.monitorCall(t, r.tok, "PUT", rule, `{"properties":{"threshold":0}}`); status != http.StatusBadRequest || !strings.Contains(body, "threshold") {
		t.Fatalf("an invalid rule: %d %s", status, body)
	}
	r.badTokens(3, "198.51.100.77")
	r.hook.waitAlerts(t, map[string]int{"bruteForce": 3, "newPattern": 1, "rateSpike": 1, "honeytoken": 1})
	status, body = e.monitorCall(t, r.tok, "GET", "/providers/Strongroom.Monitor/alertRules", "")
	if status != http.StatusOK || strings.Count(body, `"kind":`) != 6 {
		t.Fatalf("listing rules: %d %s", status, body)
	}
	if status, _ := e.monitorCall(t, r.tok, "DELETE", rule, ""); status != http.StatusOK {
		t.Fatalf("deleting the override: %d", status)
	}
	if status, body := e.monitorCall(t, r.tok, "GET", rule, ""); status != http.StatusOK || !strings.Contains(body, `"source":"config"`) || !strings.Contains(body, `"threshold":5`) {
		t.Fatalf("the configured rule after deleting the override: %d %s", status, body)
	}
}

// shape is a secret bundle's JSON field names, sorted: what a reader could tell apart.
func shape(t *testing.T, s azsecrets.Secret) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, v := range m {
		keys = append(keys, k)
		if sub, ok := v.(map[string]any); ok {
			for sk := range sub {
				keys = append(keys, k+"."+sk)
			}
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}
