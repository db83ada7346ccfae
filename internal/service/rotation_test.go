package service_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// fakeRotator is a rotator under test control: it counts calls, fails while told to, and can
// hold Apply until released or end its goroutine mid-step (a crash).
type fakeRotator struct {
	applies, tests atomic.Int32
	failApply      atomic.Int32 // fail this many more Apply calls
	crashTest      atomic.Bool  // end the calling goroutine inside Test, as a crash would
	hold           chan struct{}
	entered        chan struct{}
	target         atomic.Value // the value the "target" accepts
}

func (f *fakeRotator) Prepare(_ context.Context, spec *rotation.RotatorSpec, _ rotation.Input) (string, error) {
	return spec.Generator.Generate()
}

func (f *fakeRotator) Apply(_ context.Context, _ *rotation.RotatorSpec, in rotation.Input) error {
	f.applies.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.hold
	}
	if f.failApply.Load() > 0 {
		f.failApply.Add(-1)
		return errors.New("target refused " + in.Pending + ": connection refused")
	}
	f.target.Store(in.Pending)
	return nil
}

func (f *fakeRotator) Test(_ context.Context, _ *rotation.RotatorSpec, in rotation.Input) error {
	f.tests.Add(1)
	if f.crashTest.Load() {
		runtime.Goexit()
	}
	if got, _ := f.target.Load().(string); got != in.Pending {
		return errors.New("login failed")
	}
	return nil
}

type rotEnv struct {
	svc  *service.Service
	clk  *clock
	ctx  context.Context
	fake *fakeRotator
	open func() *service.Service // a restart: a new service on the same store
}

func newRotationEnv(t *testing.T) *rotEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	e := &rotEnv{clk: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, fake: &fakeRotator{}}
	e.open = func() *service.Service {
		kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		opts := testOptions()
		opts.Now = e.clk.Now
		opts.Rotators = map[string]rotation.Rotator{rotation.KindWebhook: e.fake}
		svc, err := service.New(ctx, st, kr, opts)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	e.svc = e.open()
	e.ctx = service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := e.svc.PutResourceGroup(e.ctx, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	mkVault(t, e.svc, e.ctx, "kv-rot", 7, false)
	key := "hook-signing-key"
	if _, err := e.svc.SetSecret(e.ctx, "kv-rot", "hook-key", service.SecretInput{Value: &key}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *rotEnv) set(t *testing.T, name, value string, exp *int64) service.Secret {
	t.Helper()
	sec, err := e.svc.SetSecret(e.ctx, "kv-rot", name, service.SecretInput{Value: &value, Expires: exp, Tags: map[string]string{"CredentialId": "app"}})
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func (e *rotEnv) put(t *testing.T, name string, p rotation.Policy) rotation.Policy {
	t.Helper()
	out, err := e.svc.LookupVault("kv-rot").SetRotationPolicy(e.ctx, name, p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *rotEnv) due(t *testing.T) {
	t.Helper()
	for range 10 { // a pass may leave work for the next (a notice, then a rotation)
		n, err := e.svc.DueRotations(e.ctx, e.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (e *rotEnv) latest(t *testing.T, name string) service.Secret {
	t.Helper()
	sec, err := e.svc.GetSecret(e.ctx, "kv-rot", name, "")
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func (e *rotEnv) versions(t *testing.T, name string) int {
	t.Helper()
	p, err := e.svc.LookupVault("kv-rot").ListSecretVersions(e.ctx, name, 25, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Items)
}

func (e *rotEnv) status(t *testing.T, name string) service.RotationStatus {
	t.Helper()
	st, err := e.svc.LookupVault("kv-rot").RotationStatus(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func rotatePolicy(trigger rotation.Trigger, expiry string, kind string) rotation.Policy {
	spec := &rotation.RotatorSpec{Kind: kind, Generator: &rotation.Generator{Length: 24}}
	if kind == rotation.KindWebhook {
		spec.URL, spec.SigningSecret = "https://hooks.example/rotate", "hook-key"
	}
	return rotation.Policy{
		LifetimeActions: []rotation.LifetimeAction{{Trigger: trigger, Action: rotation.Action{Type: "rotate"}}},
		Attributes:      rotation.Attributes{ExpiryTime: expiry},
		Rotator:         spec,
	}
}

func TestRotation_PolicyRoundTrip(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	ref := e.svc.LookupVault("kv-rot")
	def, err := ref.GetRotationPolicy(e.ctx, "db")
	if err != nil || len(def.LifetimeActions) != 1 || def.LifetimeActions[0].Action.Type != "Notify" ||
		def.LifetimeActions[0].Trigger.TimeBeforeExpiry != "P30D" || def.Attributes.Created != nil {
		t.Fatalf("default policy: %+v %v", def, err)
	}
	put := e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindGenerate))
	if put.LifetimeActions[0].Action.Type != "Rotate" || put.Attributes.Created == nil || *put.Attributes.Created != e.clk.Now().Unix() {
		t.Fatalf("stored policy: %+v", put)
	}
	got, err := ref.GetRotationPolicy(e.ctx, "db")
	if err != nil || got.Attributes.ExpiryTime != "P90D" || got.Rotator == nil || got.Rotator.Kind != "generate" || got.Rotator.Generator.Length != 24 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if _, err := ref.GetRotationPolicy(e.ctx, "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("policy of a missing secret: %v", err)
	}
	bad := rotatePolicy(rotation.Trigger{TimeAfterCreate: "P3D"}, "P90D", rotation.KindGenerate)
	if _, err := ref.SetRotationPolicy(e.ctx, "db", bad); !errors.Is(err, service.ErrBadRequest) || !strings.Contains(err.Error(), "timeAfterCreate") {
		t.Fatalf("below the floor: %v", err)
	}
	if _, err := ref.RotateSecret(e.ctx, "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("rotate of a missing secret: %v", err)
	}
	e.set(t, "plain", "v", nil)
	if _, err := ref.RotateSecret(e.ctx, "plain"); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("rotate without a policy: %v", err)
	}
}

func TestRotation_ScheduledAfterCreate(t *testing.T) {
	e := newRotationEnv(t)
	first := e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindGenerate))
	e.due(t)
	if e.versions(t, "db") != 1 {
		t.Fatal("rotated before it was due")
	}
	if st := e.status(t, "db"); st.NextDue == nil || *st.NextDue != first.Created+30*86400 {
		t.Fatalf("next due: %+v", st)
	}
	e.clk.Advance(30*24*time.Hour - time.Second)
	e.due(t)
	if e.versions(t, "db") != 1 {
		t.Fatal("rotated a second early")
	}
	e.clk.Advance(time.Second)
	e.due(t)
	e.due(t) // a second pass finds nothing more to do
	if n := e.versions(t, "db"); n != 2 {
		t.Fatalf("%d versions after the due time, want 2", n)
	}
	got := e.latest(t, "db")
	if got.Value == "v1" || len(got.Value) != 24 || got.Expires == nil || *got.Expires != e.clk.Now().AddDate(0, 0, 90).Unix() ||
		got.Tags["CredentialId"] != "app" {
		t.Fatalf("rotated version: value len %d exp %v tags %v", len(got.Value), got.Expires, got.Tags)
	}
	st := e.status(t, "db")
	if st.State != service.RotationIdle || st.LastOutcome != "succeeded" || st.LastVersion != got.Version ||
		st.NextDue == nil || *st.NextDue != got.Created+30*86400 {
		t.Fatalf("status after rotation: %+v", st)
	}
}

func TestRotation_ScheduledBeforeExpiryAndNotify(t *testing.T) {
	e := newRotationEnv(t)
	if _, _, err := e.svc.PutEventSubscription(e.ctx, "rg", "kv-rot", "all", service.EventSubscriptionInput{EndpointURL: "https://h.example/a"}); err != nil {
		t.Fatal(err)
	}
	q := service.Events(e.svc, e.clk.Now)
	exp := e.clk.Now().Add(60 * 24 * time.Hour).Unix()
	e.set(t, "db", "v1", &exp)
	p := rotatePolicy(rotation.Trigger{TimeBeforeExpiry: "P7D"}, "P60D", rotation.KindGenerate)
	p.LifetimeActions = append(p.LifetimeActions, rotation.LifetimeAction{Trigger: rotation.Trigger{TimeBeforeExpiry: "P10D"}, Action: rotation.Action{Type: "Notify"}})
	e.put(t, "db", p)
	near := 0
	count := func() {
		for {
			n, err := q.DueExpiries(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		e.due(t)
		if _, err := q.FanOut(e.ctx); err != nil {
			t.Fatal(err)
		}
		ds, err := q.DueDeliveries(e.ctx, 100, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Event.Type == service.EventSecretNearExpiry {
				near++
			}
			if err := q.Delivered(e.ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	count()
	// 30 days before exp, the default notice would fire: the policy's own Notify replaces it.
	e.clk.Advance(30*24*time.Hour + time.Second)
	count()
	if near != 0 {
		t.Fatalf("%d near-expiry events 30 days before exp; the policy notifies 10 days before", near)
	}
	e.clk.Advance(20 * 24 * time.Hour) // 10 days before exp
	count()
	count()
	if near != 1 || e.versions(t, "db") != 1 {
		t.Fatalf("at exp-10d: %d notices (want 1), %d versions (want 1)", near, e.versions(t, "db"))
	}
	e.clk.Advance(3 * 24 * time.Hour) // 7 days before exp: rotate
	count()
	if e.versions(t, "db") != 2 {
		t.Fatalf("not rotated 7 days before exp")
	}
	if got := e.latest(t, "db"); got.Expires == nil || *got.Expires != e.clk.Now().AddDate(0, 0, 60).Unix() {
		t.Fatalf("new version's exp: %v", got.Expires)
	}
	if near != 1 {
		t.Fatalf("%d notices in all, want 1", near)
	}
}

func TestRotation_FailureBackoffAndRecovery(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindWebhook))
	e.fake.failApply.Store(2)
	ref := e.svc.LookupVault("kv-rot")
	_, err := ref.RotateSecret(e.ctx, "db")
	var de *service.Error
	if !errors.As(err, &de) || de.Inner != "RotationFailed" || !strings.Contains(de.Message, "target refused [redacted]") {
		t.Fatalf("failed rotation: %v (the pending value must be redacted)", err)
	}
	st := e.status(t, "db")
	if st.State != service.RotationFailed || st.Step != rotation.StepPending || st.Attempts != 1 || st.NextAttempt == nil ||
		*st.NextAttempt != e.clk.Now().Add(10*time.Second).Unix() || !strings.Contains(st.LastError, "target refused [redacted]: connection refused") {
		t.Fatalf("status after a failure: %+v", st)
	}
	if e.latest(t, "db").Value != "v1" || e.versions(t, "db") != 1 {
		t.Fatal("a failed rotation changed the secret")
	}
	e.due(t) // not yet time to retry
	if e.fake.applies.Load() != 1 {
		t.Fatalf("retried before its backoff: %d applies", e.fake.applies.Load())
	}
	e.clk.Advance(10 * time.Second)
	e.due(t) // second failure: 30 s backoff
	if st := e.status(t, "db"); st.Attempts != 2 || *st.NextAttempt != e.clk.Now().Add(30*time.Second).Unix() {
		t.Fatalf("after the second failure: %+v", st)
	}
	e.clk.Advance(30 * time.Second)
	e.due(t)
	if n := e.versions(t, "db"); n != 2 || e.latest(t, "db").Value != e.fake.target.Load().(string) {
		t.Fatalf("recovered rotation: %d versions, latest matches target: %v", n, e.latest(t, "db").Value == e.fake.target.Load())
	}
	if st := e.status(t, "db"); st.State != service.RotationIdle || st.LastOutcome != "succeeded" || st.LastError != "" {
		t.Fatalf("status after recovery: %+v", st)
	}
}

func TestRotation_CrashMidStepResumesOnce(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindWebhook))
	e.fake.crashTest.Store(true)
	done := make(chan struct{})
	go func() { // Test ends this goroutine with the step "applied" recorded: a crash
		defer close(done)
		_, _ = e.svc.LookupVault("kv-rot").RotateSecret(e.ctx, "db")
	}()
	<-done
	if st := e.status(t, "db"); st.Step != rotation.StepApplied || e.latest(t, "db").Value != "v1" {
		t.Fatalf("after the crash: %+v", st)
	}
	e.fake.crashTest.Store(false)
	e.svc = e.open() // restart
	if _, err := e.svc.LookupVault("kv-rot").RotateSecret(e.ctx, "db"); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("rotate while the dead runner's lease holds: %v", err)
	}
	e.due(t)
	if e.versions(t, "db") != 1 {
		t.Fatal("resumed inside the lease")
	}
	e.clk.Advance(3 * time.Minute)
	e.due(t)
	if n := e.versions(t, "db"); n != 2 || e.fake.applies.Load() != 1 || e.latest(t, "db").Value != e.fake.target.Load().(string) {
		t.Fatalf("after resuming: %d versions, %d applies (want 2, 1), latest is the target's: %v", n, e.fake.applies.Load(),
			e.latest(t, "db").Value == e.fake.target.Load())
	}
}

func TestRotation_ConcurrentTriggersMakeOneVersion(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindWebhook))
	e.fake.hold, e.fake.entered = make(chan struct{}), make(chan struct{}, 1)
	ref := e.svc.LookupVault("kv-rot")
	var wg sync.WaitGroup
	var first error
	wg.Add(1)
	go func() { defer wg.Done(); _, first = ref.RotateSecret(e.ctx, "db") }()
	<-e.fake.entered
	_, second := ref.RotateSecret(e.ctx, "db")
	e.due(t) // the worker, looking meanwhile, leaves a held rotation alone
	close(e.fake.hold)
	wg.Wait()
	var de *service.Error
	if first != nil || !errors.As(second, &de) || de.Inner != "RotationInProgress" {
		t.Fatalf("first %v, second %v", first, second)
	}
	if n := e.versions(t, "db"); n != 2 {
		t.Fatalf("%d versions, want 2", n)
	}
}

func TestRotation_ManualSetAbandons(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindWebhook))
	e.fake.failApply.Store(1)
	if _, err := e.svc.LookupVault("kv-rot").RotateSecret(e.ctx, "db"); err == nil {
		t.Fatal("rotation did not fail")
	}
	e.set(t, "db", "by-hand", nil)
	e.due(t)
	st := e.status(t, "db")
	if st.State != service.RotationIdle || st.LastOutcome != "abandoned" || e.latest(t, "db").Value != "by-hand" || e.versions(t, "db") != 2 {
		t.Fatalf("after a manual set: %+v, latest %q", st, e.latest(t, "db").Value)
	}
	e.clk.Advance(time.Hour)
	e.due(t)
	if e.fake.applies.Load() != 1 {
		t.Fatalf("an abandoned rotation was retried: %d applies", e.fake.applies.Load())
	}
}

func TestRotation_GuardedStrangers(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindGenerate))
	stranger := service.WithCaller(context.Background(), service.Caller{ObjectID: "stranger-oid", TenantID: tenant})
	ref := e.svc.LookupVault("kv-rot")
	calls := map[string]func() error{
		"GetRotationPolicy": func() error { _, err := ref.GetRotationPolicy(stranger, "db"); return err },
		"SetRotationPolicy": func() error { _, err := ref.SetRotationPolicy(stranger, "db", rotation.Policy{}); return err },
		"RotateSecret":      func() error { _, err := ref.RotateSecret(stranger, "db"); return err },
		"RotationStatus":    func() error { _, err := ref.RotationStatus(stranger, "db"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, service.ErrForbidden) {
			t.Errorf("%s by a stranger: %v, want ErrForbidden", name, err)
		}
	}
	if e.versions(t, "db") != 1 {
		t.Fatal("a stranger rotated the secret")
	}
}

// Azure's rotation tag contract: without expiryTime, ValidityPeriodDays sets the new version's
// exp; the tags carry over.
func TestRotation_ValidityPeriodDaysTag(t *testing.T) {
	e := newRotationEnv(t)
	v := "v1"
	if _, err := e.svc.SetSecret(e.ctx, "kv-rot", "sql", service.SecretInput{Value: &v,
		Tags: map[string]string{"CredentialId": "sqlAdmin", "ProviderAddress": "/subscriptions/x/sql", "ValidityPeriodDays": "45"}}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "sql", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "", rotation.KindGenerate))
	if _, err := e.svc.LookupVault("kv-rot").RotateSecret(e.ctx, "sql"); err != nil {
		t.Fatal(err)
	}
	got := e.latest(t, "sql")
	if got.Expires == nil || *got.Expires != e.clk.Now().AddDate(0, 0, 45).Unix() || got.Tags["CredentialId"] != "sqlAdmin" || got.Tags["ProviderAddress"] == "" {
		t.Fatalf("rotated version: exp %v tags %v", got.Expires, got.Tags)
	}
}

// A secret deleted and recovered keeps its rotation policy and its schedule.
func TestRotation_RecoveredSecretKeepsItsSchedule(t *testing.T) {
	e := newRotationEnv(t)
	e.set(t, "db", "v1", nil)
	e.put(t, "db", rotatePolicy(rotation.Trigger{TimeAfterCreate: "P30D"}, "P90D", rotation.KindGenerate))
	ref := e.svc.LookupVault("kv-rot")
	if _, err := ref.DeleteSecret(e.ctx, "db"); err != nil {
		t.Fatal(err)
	}
	e.due(t) // the worker drops what it finds for a deleted secret
	if _, err := ref.RecoverDeletedSecret(e.ctx, "db"); err != nil {
		t.Fatal(err)
	}
	e.due(t)
	e.clk.Advance(31 * 24 * time.Hour)
	e.due(t)
	if n := e.versions(t, "db"); n != 2 {
		t.Fatalf("%d versions 31 days after a recovered secret's creation, want 2 (rotated)", n)
	}
}
