package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rig is an engine with one rule, an injected clock and the alerts it fired.
type rig struct {
	t     *testing.T
	e     *Engine
	now   time.Time
	mu    sync.Mutex
	fired []Alert
}

func newRig(t *testing.T, r Rule, honey func(vault, secret string) bool) *rig {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("rule: %v", err)
	}
	g := &rig{t: t, now: t0}
	g.e = New(Options{Rules: []Rule{r}, Now: func() time.Time { return g.now }, IsHoneytoken: honey, Node: "n1",
		Fired: func(a Alert) { g.mu.Lock(); g.fired = append(g.fired, a); g.mu.Unlock() }})
	return g
}

func (g *rig) advance(d time.Duration) { g.now = g.now.Add(d) }

// send runs one record through the rules synchronously, as Run does.
func (g *rig) send(ev audit.Event) { g.e.process(ev, g.now) }

func (g *rig) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.fired)
}

func (g *rig) want(n int, when string) {
	g.t.Helper()
	if got := g.count(); got != n {
		g.t.Fatalf("%s: %d alerts fired, want %d: %+v", when, got, n, g.fired)
	}
}

func failed(oid, ip string, status int) audit.Event {
	ev := audit.Event{Operation: "SecretGet", Status: status, CallerIP: ip, ObjectID: "https://kv1.vault.localhost:8443/secrets/db"}
	if oid != "" {
		ev.Caller = &audit.Claims{ObjectID: oid}
	}
	return ev
}

func read(oid, ip, vault, secret string) audit.Event {
	return audit.Event{Operation: "SecretGet", Status: 200, CallerIP: ip, Caller: &audit.Claims{ObjectID: oid, AppID: "app-" + oid},
		ObjectID: "https://" + vault + ".vault.localhost:8443/secrets/" + secret + "/0123456789abcdef"}
}

func TestBruteForce(t *testing.T) {
	r := Default(KindBruteForce)
	r.Threshold, r.Window = 3, Duration(time.Minute)
	g := newRig(t, r, nil)
	g.send(failed("", "203.0.113.9", 401))
	g.advance(10 * time.Second)
	g.send(failed("", "203.0.113.9", 401))
	g.send(read("ok", "203.0.113.9", "kv1", "db")) // a success does not count
	for range 5 {                                  // nor the SDKs' challenge probes (no token)
		probe := failed("", "203.0.113.9", 401)
		probe.Description = "AKV10000: Request is missing a Bearer or PoP token."
		g.send(probe)
	}
	g.want(0, "two failures")
	g.send(failed("", "203.0.113.9", 401))
	g.want(1, "third failure within the window")
	for range 10 { // the incident goes on: no new alert
		g.advance(20 * time.Second)
		g.send(failed("", "203.0.113.9", 401))
	}
	g.want(1, "an ongoing incident")
	g.advance(61 * time.Second) // quiet for a window: the incident is over
	g.send(failed("", "203.0.113.9", 401))
	g.send(failed("", "203.0.113.9", 401))
	g.want(1, "two failures of a new incident")
	g.send(failed("", "203.0.113.9", 401))
	g.want(2, "a new incident")
	if a := g.fired[1]; a.Kind != KindBruteForce || a.Who.IP != "203.0.113.9" || a.What.Count != 3 || a.ID == g.fired[0].ID {
		t.Fatalf("alert = %+v", a)
	}
}

// One caller failing from one address is one incident, not one per subject; failures spread
// over a window's edge do not add up.
func TestBruteForceCallerAndAddress(t *testing.T) {
	r := Default(KindBruteForce)
	r.Threshold, r.Window = 3, Duration(time.Minute)
	g := newRig(t, r, nil)
	for range 3 {
		g.send(failed("mallory", "198.51.100.7", 403))
	}
	g.want(1, "caller and address crossed together")
	if a := g.fired[0]; a.Who.ObjectID != "mallory" || a.What.Status != 403 {
		t.Fatalf("alert = %+v", a)
	}
	// The same caller from elsewhere is part of the open incident (its caller subject is open).
	g.send(failed("mallory", "192.0.2.1", 403))
	g.want(1, "the same caller from another address")
	// Another caller from another address, failures 40s apart: never 3 within a minute.
	for range 5 {
		g.advance(40 * time.Second)
		g.send(failed("eve", "192.0.2.200", 403))
	}
	g.want(1, "failures spread wider than the window")
}

func TestNewPattern(t *testing.T) {
	r := Default(KindNewPattern)
	r.LearningPeriod = Duration(time.Hour)
	g := newRig(t, r, nil)
	g.send(read("alice", "10.0.0.1", "kv1", "s1"))
	g.advance(30 * time.Minute)
	g.send(read("alice", "172.16.5.5", "kv1", "s9")) // new secret, new network, but learning
	g.want(0, "during the learning period")
	g.advance(time.Hour)
	g.send(read("alice", "10.0.0.77", "kv1", "s2"))   // new secret, known /24
	g.send(read("alice", "192.168.1.1", "kv1", "s1")) // known secret, new network
	g.want(0, "a new secret or a new network alone")
	g.send(read("alice", "192.168.7.7", "kv1", "s3")) // new secret from a new network
	g.want(1, "a new secret from a new network")
	if a := g.fired[0]; a.Where.Network != "192.168.7.0/24" || a.What.Secret != "s3" || a.What.Vault != "kv1" || a.Who.ObjectID != "alice" {
		t.Fatalf("alert = %+v", a)
	}
	g.send(read("alice", "192.168.7.8", "kv1", "s4")) // that network is known now
	g.send(read("alice", "192.168.7.8", "kv2", "s1")) // another vault's s1 is a new secret
	g.want(1, "more new secrets from the same network")
	g.send(read("alice", "2001:db8:1:2::5", "kv1", "s5"))
	g.send(read("alice", "2001:db8:1:2::6", "kv1", "s6")) // same /64
	g.want(2, "IPv6 networks are /64s")
	g.send(read("bob", "192.168.7.7", "kv1", "s3")) // bob is new: learning
	g.want(2, "another caller in its learning period")
}

// The memory of callers is bounded; a caller pushed out learns again.
func TestNewPatternBounded(t *testing.T) {
	r := Default(KindNewPattern)
	r.LearningPeriod, r.MaxSubjects = Duration(time.Hour), 10
	g := newRig(t, r, nil)
	for i := range 1000 {
		g.send(read(fmt.Sprintf("c%d", i), "10.0.0.1", "kv1", "s"))
	}
	if n := g.e.rules[0].det.(*newPattern).callers.len(); n != 10 {
		t.Fatalf("%d callers remembered, want 10", n)
	}
	g.advance(2 * time.Hour)
	g.send(read("c0", "10.9.9.9", "kv1", "other")) // forgotten: learning again
	g.want(0, "a forgotten caller")
}

func TestRateSpikeDistinctSecrets(t *testing.T) {
	r := Default(KindRateSpike)
	r.Threshold, r.Window, r.MinReads = 3, Duration(time.Minute), 1000
	g := newRig(t, r, nil)
	for i := range 3 {
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("s%d", i)))
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("s%d", i))) // repeats count once
	}
	g.want(0, "three distinct secrets")
	g.send(read("svc", "10.0.0.1", "kv2", "s9")) // another vault
	g.want(0, "a fourth secret in another vault")
	g.send(read("svc", "10.0.0.1", "kv1", "s3"))
	g.want(1, "a fourth distinct secret of one vault")
	for i := 4; i < 40; i++ {
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("s%d", i)))
	}
	g.want(1, "the rest of the sweep")
	g.advance(2 * time.Minute)
	g.send(read("svc", "10.0.0.1", "kv1", "s0"))
	g.want(1, "one read after the incident ended")
	for i := range 4 {
		g.advance(time.Second)
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("t%d", i)))
	}
	g.want(2, "a second sweep")
}

// A slow sweep never has more than Threshold fresh reads in one Window, so it never fires,
// however many secrets it reads in all; the per-caller set stays bounded.
func TestRateSpikeDistinctSlowSweep(t *testing.T) {
	r := Default(KindRateSpike)
	r.Threshold, r.Window, r.MinReads = 3, Duration(time.Minute), 1000
	g := newRig(t, r, nil)
	for i := range 200 {
		g.advance(21 * time.Second) // at most 3 reads in any minute
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("s%d", i)))
	}
	g.want(0, "a sweep slower than the threshold")
	set, _ := g.e.rules[0].det.(*rateSpike).distinct.get([2]string{"svc", "kv1"})
	if n := len(set.seen); n > 2*(r.Threshold+1) {
		t.Fatalf("%d secrets remembered for one caller, want at most %d", n, 2*(r.Threshold+1))
	}
	for i := range 4 { // then a fast one fires
		g.send(read("svc", "10.0.0.1", "kv1", fmt.Sprintf("fast%d", i)))
	}
	g.want(1, "four fresh distinct secrets")
}

func TestRateSpikeBaseline(t *testing.T) {
	r := Default(KindRateSpike)
	r.Threshold, r.Window, r.Factor, r.MinReads = 1000, Duration(time.Minute), 3, 5
	g := newRig(t, r, nil)
	// Three windows of 2 reads each build a baseline of 2 per window.
	for range 3 {
		for range 2 {
			g.send(read("svc", "10.0.0.1", "kv1", "s"))
		}
		g.advance(time.Minute)
	}
	for range 6 { // limit max(5, 3*2) = 6: not more
		g.send(read("svc", "10.0.0.1", "kv1", "s"))
	}
	g.want(0, "reads up to the limit")
	for range 20 {
		g.send(read("svc", "10.0.0.1", "kv1", "s"))
	}
	g.want(1, "reads over three times the baseline")
	if a := g.fired[0]; a.What.Count != 7 || !strings.Contains(a.Summary, "average") {
		t.Fatalf("alert = %+v", a)
	}
	// A new caller has no baseline yet: a burst alone does not alert on rate.
	for range 50 {
		g.send(read("new", "10.0.0.2", "kv1", "s"))
	}
	g.want(1, "a caller without a baseline")
}

func TestHoneytoken(t *testing.T) {
	honey := func(vault, secret string) bool { return vault == "kv1" && strings.EqualFold(secret, "decoy") }
	g := newRig(t, Default(KindHoneytoken), honey)
	g.send(read("alice", "10.0.0.1", "kv1", "real"))
	g.send(read("alice", "10.0.0.1", "kv2", "decoy"))
	nf := read("alice", "10.0.0.1", "kv1", "decoy")
	nf.Status = 404
	g.send(nf)
	g.want(0, "other secrets and a read of nothing")
	g.send(read("alice", "10.0.0.1", "kv1", "DECOY"))
	g.want(1, "a honeytoken read")
	denied := read("bob", "10.0.0.2", "kv1", "decoy")
	denied.Status = 403
	g.send(denied)
	g.send(read("alice", "10.0.0.1", "kv1", "decoy"))
	g.want(3, "every read, and a refused attempt")
	if a := g.fired[0]; a.Kind != KindHoneytoken || a.Severity != "critical" || a.What.Secret != "DECOY" {
		t.Fatalf("alert = %+v", a)
	}

	r := Default(KindHoneytoken)
	r.Window = Duration(time.Minute)
	g = newRig(t, r, honey)
	g.send(read("alice", "10.0.0.1", "kv1", "decoy"))
	g.advance(30 * time.Second)
	g.send(read("alice", "10.0.0.1", "kv1", "decoy"))
	g.want(1, "repeats merged within the window")
	g.advance(2 * time.Minute)
	g.send(read("alice", "10.0.0.1", "kv1", "decoy"))
	g.want(2, "after the window")
}

func TestAuditSink(t *testing.T) {
	healthy := true
	g := &rig{t: t, now: t0}
	g.e = New(Options{Rules: []Rule{Default(KindAuditSink)}, Now: func() time.Time { return g.now }, AuditHealthy: func() bool { return healthy },
		Fired: func(a Alert) { g.fired = append(g.fired, a) }})
	g.e.CheckSink()
	g.want(0, "healthy")
	healthy = false
	g.e.CheckSink()
	g.e.CheckSink()
	g.want(1, "one alert while the sink stays down")
	healthy = true
	g.e.CheckSink()
	healthy = false
	g.e.CheckSink()
	g.want(2, "a second outage")
}

// Observe never blocks: a full queue drops and counts.
func TestObserveNeverBlocks(t *testing.T) {
	drops := 0
	e := New(Options{Rules: []Rule{Default(KindBruteForce)}, QueueSize: 4, Dropped: func() { drops++ }})
	done := make(chan struct{})
	go func() {
		for range 100 {
			e.Observe(failed("x", "10.0.0.1", 401))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked on a full queue")
	}
	if e.Dropped() != 96 || drops != 96 {
		t.Fatalf("dropped %d (hook %d), want 96", e.Dropped(), drops)
	}
}

// Run observes queued records (the path the server uses).
func TestRun(t *testing.T) {
	fired := make(chan Alert, 10)
	r := Default(KindBruteForce)
	r.Threshold = 2
	e := New(Options{Rules: []Rule{r}, Fired: func(a Alert) { fired <- a }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	e.Observe(failed("x", "10.0.0.1", 401))
	e.Observe(failed("x", "10.0.0.1", 401))
	select {
	case a := <-fired:
		if a.Rule != "bruteForce" {
			t.Fatalf("alert = %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert")
	}
}

func TestOverridesAndHistory(t *testing.T) {
	bf := Default(KindBruteForce)
	bf.Threshold = 100
	g := newRig(t, bf, nil)
	g.e.opts.History = 3
	strict := bf
	strict.Threshold = 2
	g.e.SetOverrides([]Rule{strict})
	extra := Default(KindBruteForce)
	extra.Name, extra.Threshold = "veryStrict", 1
	g.e.SetOverrides([]Rule{strict, extra})
	rules := g.e.Rules()
	if len(rules) != 2 || rules[0].Source != "api" || rules[0].Threshold != 2 || rules[1].Name != "veryStrict" {
		t.Fatalf("rules = %+v", rules)
	}
	for i := range 5 {
		g.send(failed("", fmt.Sprintf("10.0.0.%d", i), 401))
		g.send(failed("", fmt.Sprintf("10.0.0.%d", i), 401))
	}
	g.want(10, "two rules, five addresses")
	if got := g.e.Alerts(0); len(got) != 3 || got[0].Who.IP != "10.0.0.4" || got[2].Who.IP != "10.0.0.3" {
		t.Fatalf("history = %+v", got)
	}
	if got := g.e.Alerts(1); len(got) != 1 {
		t.Fatalf("Alerts(1) = %d", len(got))
	}
	// An unchanged rule keeps its state: its open incident still holds.
	g.e.SetOverrides([]Rule{strict, extra})
	g.send(failed("", "10.0.0.4", 401))
	g.send(failed("", "10.0.0.4", 401))
	g.want(10, "open incidents survive an unchanged reload")
	g.e.SetOverrides(nil)
	if rules := g.e.Rules(); len(rules) != 1 || rules[0].Source != "config" || rules[0].Threshold != 100 {
		t.Fatalf("rules after removing overrides = %+v", rules)
	}
}

func TestParseRule(t *testing.T) {
	cases := []struct {
		name, props, err string
	}{
		{"bruteForce", `{"threshold": 3, "window": "2m"}`, ""},
		{"strict", `{"kind": "RateSpike", "factor": 4}`, ""},
		{"strict", `{"threshold": 3}`, "properties.kind"},
		{"bruteForce", `{"threshold": 0}`, "threshold"},
		{"bruteForce", `{"window": "soon"}`, "duration"},
		{"bruteForce", `{"window": "10ms"}`, "window"},
		{"rateSpike", `{"factor": 1}`, "factor"},
		{"bruteForce", `{"colour": "red"}`, "colour"},
		{"bad name!", `{}`, "name"},
		{"newPattern", `{"learningPeriod": "-1h"}`, "learningPeriod"},
	}
	for _, c := range cases {
		t.Run(c.name+c.props, func(t *testing.T) {
			r, err := ParseRule(c.name, []byte(c.props))
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !r.Enabled || r.Name != c.name {
					t.Fatalf("rule = %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want one naming %q", err, c.err)
			}
		})
	}
	r, err := ParseRule("bruteForce", []byte(`{"threshold": 3, "window": "2m", "enabled": false}`))
	if err != nil || r.Threshold != 3 || r.Window.D() != 2*time.Minute || r.Enabled || r.Kind != KindBruteForce {
		t.Fatalf("rule = %+v, %v", r, err)
	}
}

func TestToAccess(t *testing.T) {
	a := toAccess(read("o", "10.1.2.3", "My-Vault", "Db-Pass"), t0)
	if a.vault != "my-vault" || a.secret != "Db-Pass" || a.caller() != "o" || a.network() != "10.1.2.0/24" {
		t.Fatalf("access = %+v", a)
	}
	a = toAccess(audit.Event{Operation: "VaultGet", ObjectID: "https://x.vault.localhost/secrets/a", Caller: &audit.Claims{AppID: "app"}}, t0)
	if a.vault != "" || a.secret != "" || a.caller() != "app" {
		t.Fatalf("access = %+v", a)
	}
	if n := (&access{ip: "::ffff:10.0.0.1"}).network(); n != "10.0.0.0/24" {
		t.Fatalf("mapped address network = %s", n)
	}
}

// poster fails the first n calls, then accepts.
type poster struct {
	mu     sync.Mutex
	fail   int
	calls  int
	bodies [][]byte
	sigs   []string
	done   chan struct{}
}

func (p *poster) Post(_ context.Context, _ string, h http.Header, body []byte) (int, []byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls <= p.fail {
		if p.calls%2 == 0 {
			return 500, nil, nil
		}
		return 0, nil, errors.New("connection refused")
	}
	p.bodies, p.sigs = append(p.bodies, body), append(p.sigs, h.Get(SignatureHeader))
	close(p.done)
	return 204, nil, nil
}

func TestDispatcherRetriesAndSigns(t *testing.T) {
	p := &poster{fail: 3, done: make(chan struct{})}
	secret := []byte("hook-secret")
	d := NewDispatcher(DispatchOptions{Webhooks: []Webhook{{URL: "https://hooks.example/a", Secret: secret}}, Post: p, Backoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.Run(ctx)
	d.Send(Alert{ID: "inc-1", Rule: "bruteForce", Kind: KindBruteForce})
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
	if p.calls != 4 || !Verify(secret, p.bodies[0], p.sigs[0]) || Verify([]byte("other"), p.bodies[0], p.sigs[0]) {
		t.Fatalf("calls %d, signature %q", p.calls, p.sigs[0])
	}
	if !strings.HasPrefix(p.sigs[0], "sha256=") || !strings.Contains(string(p.bodies[0]), `"id":"inc-1"`) {
		t.Fatalf("signature %q body %s", p.sigs[0], p.bodies[0])
	}
}

func TestDispatcherGivesUp(t *testing.T) {
	p := &poster{fail: 1000, done: make(chan struct{})}
	gaveUp := make(chan struct{}, 1)
	d := NewDispatcher(DispatchOptions{Webhooks: []Webhook{{URL: "https://hooks.example/a", Secret: []byte("s")}}, Post: p,
		MaxAttempts: 3, Backoff: time.Millisecond, Failed: func() { gaveUp <- struct{}{} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.Run(ctx)
	d.Send(Alert{ID: "inc-2"})
	select {
	case <-gaveUp:
	case <-time.After(5 * time.Second):
		t.Fatal("never gave up")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls != 3 {
		t.Fatalf("%d attempts, want 3", p.calls)
	}
}

// Run checks the audit sink every AuditSink window.
func TestRunChecksSink(t *testing.T) {
	var healthy atomic.Bool
	fired := make(chan Alert, 10)
	r := Default(KindAuditSink)
	r.Window = Duration(time.Second)
	e := New(Options{Rules: []Rule{r}, AuditHealthy: healthy.Load, Fired: func(a Alert) { fired <- a }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	select {
	case a := <-fired:
		if a.Kind != KindAuditSink || !strings.Contains(a.Summary, "stopped writing") {
			t.Fatalf("alert = %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no audit sink alert")
	}
	select {
	case a := <-fired:
		t.Fatalf("a second alert for the same outage: %+v", a)
	case <-time.After(2500 * time.Millisecond):
	}
}

func TestSecretOf(t *testing.T) {
	for _, c := range []struct{ id, vault, secret string }{
		{"https://KV-Prod.vault.localhost:8443/secrets/db-pass/0123abcd", "kv-prod", "db-pass"},
		{"https://kv.vault.localhost/secrets/only-name", "kv", "only-name"},
		{"https://kv.vault.localhost/deletedsecrets/x", "kv", ""},
		{"http://kv.vault.localhost/secrets/x", "", ""},
		{"", "", ""},
	} {
		if v, s := secretOf(c.id); v != c.vault || s != c.secret {
			t.Errorf("secretOf(%q) = %q, %q; want %q, %q", c.id, v, s, c.vault, c.secret)
		}
	}
}

// A failed rotation alerts once, however often its step is retried; another rotation alerts
// again.
func TestRotationFailedOncePerRotation(t *testing.T) {
	var got []Alert
	e := New(Options{Rules: []Rule{Default(KindRotation)}, Fired: func(a Alert) { got = append(got, a) }})
	for range 3 {
		e.RotationFailed("kv1", "db-app", "rot-1", "pending", "logging in to db:5432 as app: connection refused")
	}
	e.RotationFailed("kv1", "db-app", "rot-2", "applied", "probing failed")
	if len(got) != 2 || got[0].Kind != KindRotation || got[0].What.Vault != "kv1" || got[0].What.Secret != "db-app" ||
		!strings.Contains(got[0].Summary, "step pending: logging in") || got[0].Severity != "warning" {
		t.Fatalf("alerts: %+v", got)
	}
	off := Default(KindRotation)
	off.Enabled = false
	quiet := New(Options{Rules: []Rule{off}, Fired: func(a Alert) { t.Fatalf("a disabled rule fired: %+v", a) }})
	quiet.RotationFailed("kv1", "db-app", "rot-3", "pending", "x")
}
