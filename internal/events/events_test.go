package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook endpoint: it answers the handshake and records events, or fails
// while down.
type receiver struct {
	mu     sync.Mutex
	down   bool
	status int
	got    []map[string]any
	hdrs   []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if req.Method == http.MethodOptions {
		w.Header().Set("WebHook-Allowed-Origin", req.Header.Get("WebHook-Request-Origin"))
		return
	}
	if req.Header.Get("Aeg-Event-Type") == "SubscriptionValidation" {
		var evs []struct {
			Data struct{ ValidationCode string } `json:"data"`
		}
		var ce struct {
			Data struct{ ValidationCode string } `json:"data"`
		}
		code := ""
		if json.Unmarshal(b, &evs) == nil && len(evs) == 1 {
			code = evs[0].Data.ValidationCode
		} else if json.Unmarshal(b, &ce) == nil {
			code = ce.Data.ValidationCode
		}
		json.NewEncoder(w).Encode(map[string]string{"validationResponse": code})
		return
	}
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	var m any
	json.Unmarshal(b, &m)
	if arr, ok := m.([]any); ok {
		m = arr[0]
	}
	r.got = append(r.got, m.(map[string]any))
	r.hdrs = append(r.hdrs, req.Header.Clone())
}

func (r *receiver) events() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

type allowAll struct{}

func (allowAll) Decide(authz.Request) authz.Decision { return authz.Decision{Allowed: true} }

func setup(t *testing.T) (*service.Service, *clock, context.Context, *Worker) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	svc, err := service.New(ctx, st, kr, service.Options{SubscriptionID: "sub", TenantID: "11111111-1111-1111-1111-111111111111",
		Authorizer: allowAll{}, Now: clk.Now, VaultURI: func(n string) string { return "https://" + n + ".vault.localhost" }})
	if err != nil {
		t.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: "admin", TenantID: "11111111-1111-1111-1111-111111111111"})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	days := 7
	if _, _, err := svc.PutVault(actx, "rg", "kv-ev", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{
		TenantID: "11111111-1111-1111-1111-111111111111", Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}}); err != nil {
		t.Fatal(err)
	}
	w := New(Options{Queue: service.Events(svc, clk.Now), RetryBase: time.Second, RetryMax: 4 * time.Second,
		Outbound: outbound.Options{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, AllowHTTP: true, Timeout: 2 * time.Second}})
	return svc, clk, actx, w
}

func subscribe(t *testing.T, svc *service.Service, ctx context.Context, w *Worker, name, url string, in service.EventSubscriptionInput) {
	t.Helper()
	in.EndpointURL, in.CheckDestination = url, w.CheckDestination
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", name, in); err != nil {
		t.Fatal(err)
	}
}

func TestWorker_HandshakeThenDelivery(t *testing.T) {
	svc, _, ctx, w := setup(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	subscribe(t, svc, ctx, w, "grid", srv.URL+"/grid?code=s3cret", service.EventSubscriptionInput{})
	subscribe(t, svc, ctx, w, "cloud", srv.URL+"/cloud", service.EventSubscriptionInput{Schema: service.SchemaCloudEvent})
	v := "value-never-sent"
	if _, err := svc.SetSecret(ctx, "kv-ev", "s1", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if err := w.Pass(ctx); err != nil { // handshakes first, then the deliveries
		t.Fatal(err)
	}
	for _, n := range []string{"grid", "cloud"} {
		sub, err := svc.GetEventSubscription(ctx, "rg", "kv-ev", n)
		if err != nil || sub.State != service.SubscriptionSucceeded {
			t.Fatalf("%s after handshake: %s %v", n, sub.State, err)
		}
	}
	got := rcv.events()
	if len(got) != 2 {
		t.Fatalf("delivered %d events, want 2", len(got))
	}
	var grid, cloud map[string]any
	for _, e := range got {
		if e["specversion"] == "1.0" {
			cloud = e
		} else {
			grid = e
		}
	}
	if grid == nil || grid["eventType"] != service.EventSecretNewVersionCreated || grid["subject"] != "s1" || grid["dataVersion"] != "1" ||
		grid["metadataVersion"] != "1" || !strings.HasSuffix(grid["topic"].(string), "/vaults/kv-ev") {
		t.Fatalf("event grid schema: %v", grid)
	}
	data := grid["data"].(map[string]any)
	if data["ObjectName"] != "s1" || data["VaultName"] != "kv-ev" || data["ObjectType"] != "Secret" || data["Version"] == "" ||
		!strings.HasPrefix(data["Id"].(string), "https://kv-ev.vault.localhost/secrets/s1/") {
		t.Fatalf("data: %v", data)
	}
	if cloud == nil || cloud["type"] != service.EventSecretNewVersionCreated || cloud["source"] != grid["topic"] || cloud["id"] == "" || cloud["time"] == "" {
		t.Fatalf("cloud event: %v", cloud)
	}
	for _, e := range got {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), v) {
			t.Fatal("an event carries the secret value")
		}
	}
}

func TestWorker_BackoffAndDeadLetter(t *testing.T) {
	svc, clk, ctx, w := setup(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	subscribe(t, svc, ctx, w, "flaky", srv.URL+"/", service.EventSubscriptionInput{MaxDeliveryAttempts: 3})
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.down = true
	rcv.mu.Unlock()
	v := "x"
	if _, err := svc.SetSecret(ctx, "kv-ev", "s1", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			clk.Advance(w.backoff(i + 1))
		}
	}
	dls, err := svc.ListDeadLetters(ctx, "rg", "kv-ev", "flaky")
	if err != nil || len(dls) != 1 || dls[0].Attempts != 3 || !strings.HasPrefix(dls[0].Reason, ReasonMaxAttempts) {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	if n, err := svc.ReplayDeadLetters(ctx, "rg", "kv-ev", "flaky"); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.events(); len(got) != 1 {
		t.Fatalf("replayed: %d delivered", len(got))
	}
}

func TestWorker_TTL(t *testing.T) {
	svc, clk, ctx, w := setup(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	subscribe(t, svc, ctx, w, "slow", srv.URL+"/", service.EventSubscriptionInput{EventTTLMinutes: 1})
	w.Pass(ctx)
	rcv.mu.Lock()
	rcv.status = http.StatusInternalServerError
	rcv.mu.Unlock()
	v := "x"
	svc.SetSecret(ctx, "kv-ev", "s1", service.SecretInput{Value: &v})
	w.Pass(ctx)
	clk.Advance(2 * time.Minute)
	w.Pass(ctx)
	dls, err := svc.ListDeadLetters(ctx, "rg", "kv-ev", "slow")
	if err != nil || len(dls) != 1 || dls[0].Reason != ReasonTTL {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
}

func TestWorker_HandshakeRefusedAndSSRF(t *testing.T) {
	svc, _, ctx, w := setup(t)
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"validationResponse":"not-the-code"}`))
	}))
	defer wrong.Close()
	subscribe(t, svc, ctx, w, "wrong", wrong.URL+"/", service.EventSubscriptionInput{})
	w.opts.MaxValidationAttempts = 1
	w.Pass(ctx)
	if sub, _ := svc.GetEventSubscription(ctx, "rg", "kv-ev", "wrong"); sub.State != service.SubscriptionFailed {
		t.Fatalf("a wrong validation answer left the subscription %s", sub.State)
	}
	// Without the allowance, a loopback endpoint is refused when stored.
	strict := New(Options{Queue: w.opts.Queue})
	_, _, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", "local", service.EventSubscriptionInput{EndpointURL: "https://127.0.0.1:1/", CheckDestination: strict.CheckDestination})
	if err == nil || !strings.Contains(err.Error(), "endpointUrl") {
		t.Fatalf("loopback endpoint: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	w := New(Options{RetryBase: 10 * time.Second, RetryMax: time.Minute})
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, d := range want {
		if got := w.backoff(i + 1); got != d {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, d)
		}
	}
}

// Only a leading node delivers; when it starts leading it picks up what is queued.
func TestWorker_RunsOnlyWhileLeading(t *testing.T) {
	svc, _, ctx, w := setup(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	subscribe(t, svc, ctx, w, "sub", srv.URL+"/", service.EventSubscriptionInput{})
	v := "x"
	if _, err := svc.SetSecret(ctx, "kv-ev", "s1", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	leading := false
	w.opts.Leads = func() bool { mu.Lock(); defer mu.Unlock(); return leading }
	w.opts.Interval = 20 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(runCtx)
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.events()); n != 0 {
		t.Fatalf("a follower delivered %d events", n)
	}
	if sub, _ := svc.GetEventSubscription(ctx, "rg", "kv-ev", "sub"); sub.State != service.SubscriptionCreating {
		t.Fatalf("a follower ran the handshake: %s", sub.State)
	}
	mu.Lock()
	leading = true
	mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); len(rcv.events()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leader delivered nothing")
		}
	}
}

// An endpoint that hangs holds up only its own subscription's events.
func TestWorker_HangingEndpointIsolated(t *testing.T) {
	svc, _, ctx, w := setup(t)
	fast := &receiver{}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Aeg-Event-Type") == "SubscriptionValidation" {
			(&receiver{}).ServeHTTP(rw, r)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	subscribe(t, svc, ctx, w, "hang", hang.URL+"/", service.EventSubscriptionInput{})
	subscribe(t, svc, ctx, w, "fast", fastSrv.URL+"/", service.EventSubscriptionInput{})
	if err := w.Pass(ctx); err != nil { // both validated
		t.Fatal(err)
	}
	w.opts.Interval = 20 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(runCtx)
	v := "x"
	for i := range 3 {
		if _, err := svc.SetSecret(ctx, "kv-ev", fmt.Sprintf("s%d", i), service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Second); len(fast.events()) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the fast endpoint got %d of 3 events while the other hangs", len(fast.events()))
		}
	}
}
