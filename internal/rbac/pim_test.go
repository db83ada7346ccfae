package rbac_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/store"
)

// recordingStore remembers the keys of every applied batch, as a replicated store hands them to
// KeysApplied on the other nodes.
type recordingStore struct {
	store.Store
	mu   sync.Mutex
	keys []string
}

func (r *recordingStore) Apply(ctx context.Context, ops []store.Op) error {
	err := r.Store.Apply(ctx, ops)
	if err == nil {
		r.mu.Lock()
		for _, op := range ops {
			if op.Kind == store.OpPut || op.Kind == store.OpDelete {
				r.keys = append(r.keys, op.Key)
			}
		}
		r.mu.Unlock()
	}
	return err
}

func (r *recordingStore) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys
	r.keys = nil
	return k
}

// TestPIM_OtherNodeSeesActivation: a second service on the same store (another node) learns of
// an eligibility, an activation and its end through KeysApplied alone, and decides by the clock.
func TestPIM_OtherNodeSeesActivation(t *testing.T) {
	e := newEnv(t)
	rec := &recordingStore{Store: e.st}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, err := rbac.New(e.ctx, rec, e.kr, rbac.Options{AdminObjectID: admin, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rbac.New(e.ctx, e.st, e.kr, rbac.Options{AdminObjectID: admin, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	const elig, act = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	if _, _, err := a.AssignEligibility(e.ctx, rbac.ScheduleRequest{Name: elig, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob},
		rbac.Eligibility{Name: elig, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob, StartsAt: now, EndsAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Activate(e.ctx, rbac.ScheduleRequest{Name: act, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob},
		rbac.Activation{Name: act, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob, StartsAt: now, EndsAt: now.Add(time.Hour),
			LinkedEligibility: elig}); err != nil {
		t.Fatal(err)
	}
	if ask(b, bob, getSecret, true, vault).Allowed {
		t.Fatal("the other node granted before it applied anything")
	}
	if err := b.KeysApplied(e.ctx, rec.take()); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Eligibility(elig); !ok {
		t.Fatal("the other node misses the eligibility")
	}
	if got, ok := b.Activation(act); !ok || !got.ActiveAt(now) {
		t.Fatalf("the other node's activation = %+v, %v", got, ok)
	}
	if !ask(b, bob, getSecret, true, vault).Allowed {
		t.Fatal("the other node denies the activation")
	}
	now = now.Add(time.Hour)
	if ask(b, bob, getSecret, true, vault).Allowed || ask(a, bob, getSecret, true, vault).Allowed {
		t.Fatal("allowed after the window, with no write in between")
	}

	// Early end on node a reaches node b with the keys.
	now = now.Add(-30 * time.Minute)
	if _, err := a.Deactivate(e.ctx, rbac.ScheduleRequest{Name: "33333333-3333-4333-8333-333333333333", Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob}, act); err != nil {
		t.Fatal(err)
	}
	if err := b.KeysApplied(e.ctx, rec.take()); err != nil {
		t.Fatal(err)
	}
	if ask(b, bob, getSecret, true, vault).Allowed {
		t.Fatal("the other node still grants a deactivated activation")
	}
	if _, ok := b.Activation(act); ok {
		t.Fatal("the other node still lists the activation")
	}

	// A policy change, too.
	p := rbac.DefaultPolicy(vault, rbac.KeyVaultSecretsUserID)
	p.ApprovalRequired = true
	if _, err := a.PutPolicy(e.ctx, p, admin); err != nil {
		t.Fatal(err)
	}
	if err := b.KeysApplied(e.ctx, rec.take()); err != nil {
		t.Fatal(err)
	}
	if got := b.EffectivePolicy(vault+"/secrets/s", rbac.KeyVaultSecretsUserID); !got.ApprovalRequired {
		t.Fatalf("the other node's effective policy = %+v", got)
	}
}

func TestParseISODuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"PT8H", 8 * time.Hour, false},
		{"PT1H", time.Hour, false},
		{"P365D", 365 * 24 * time.Hour, false},
		{"P1DT12H30M", 36*time.Hour + 30*time.Minute, false},
		{"pt30m", 30 * time.Minute, false},
		{"P2W", 14 * 24 * time.Hour, false},
		{"P1Y", 365 * 24 * time.Hour, false},
		{"PT", 0, true},
		{"P", 0, true},
		{"8H", 0, true},
		{"PT1.5H", 0, true},
		{"P1H", 0, true},
		{"PT1D", 0, true},
		{"P999999999D", 0, true},
	}
	for _, c := range cases {
		got, err := rbac.ParseISODuration(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseISODuration(%q) = %v, %v", c.in, got, err)
		}
	}
	for _, d := range []time.Duration{time.Hour, 90 * time.Minute, 36 * time.Hour, 365 * 24 * time.Hour, 45 * time.Second} {
		if back, err := rbac.ParseISODuration(rbac.FormatISODuration(d)); err != nil || back != d {
			t.Errorf("round trip of %v: %q -> %v, %v", d, rbac.FormatISODuration(d), back, err)
		}
	}
}

// TestPIM_DeletedVaultTakesItsRecords: deleting what is within a vault takes its eligibilities,
// activations and policies too (a vault made again under the name inherits none), and leaves the
// subscription's.
func TestPIM_DeletedVaultTakesItsRecords(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s, err := rbac.New(e.ctx, e.st, e.kr, rbac.Options{AdminObjectID: admin, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const sub = "/subscriptions/s"
	for i, scope := range []string{vault, vault + "/secrets/x", sub} {
		name := []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"}[i]
		if _, _, err := s.AssignEligibility(e.ctx, rbac.ScheduleRequest{Name: name, Scope: scope, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob},
			rbac.Eligibility{Name: name, Scope: scope, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob, StartsAt: now}); err != nil {
			t.Fatal(err)
		}
		p := rbac.DefaultPolicy(scope, rbac.KeyVaultSecretsUserID)
		if _, err := s.PutPolicy(e.ctx, p, admin); err != nil {
			t.Fatal(err)
		}
	}
	const act = "44444444-4444-4444-8444-444444444444"
	if _, _, err := s.Activate(e.ctx, rbac.ScheduleRequest{Name: act, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob},
		rbac.Activation{Name: act, Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob, StartsAt: now, EndsAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteAssignmentsWithin(e.ctx, vault)
	if err != nil || n != 1 {
		t.Fatalf("DeleteAssignmentsWithin = %d, %v; want the one activation's assignment", n, err)
	}
	if got := s.Eligibilities(func(*rbac.Eligibility) bool { return true }); len(got) != 1 || got[0].Scope != sub {
		t.Fatalf("eligibilities left: %+v", got)
	}
	if got := s.Activations(func(*rbac.Activation) bool { return true }); len(got) != 0 {
		t.Fatalf("activations left: %+v", got)
	}
	if got := s.Policies(func(*rbac.Policy) bool { return true }); len(got) != 1 || got[0].Scope != sub {
		t.Fatalf("policies left: %+v", got)
	}
	if ask(s, bob, getSecret, true, vault).Allowed {
		t.Fatal("the deleted vault's activation still grants")
	}
	// Reloaded from the store, the same.
	again, err := rbac.New(e.ctx, e.st, e.kr, rbac.Options{AdminObjectID: admin, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Eligibilities(func(*rbac.Eligibility) bool { return true }); len(got) != 1 {
		t.Fatalf("eligibilities in the store: %+v", got)
	}
}
