package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

func TestAlertRulesStored(t *testing.T) {
	st, kr, svc, ctx := openStoreService(t)
	changes := 0
	service.Alerting(svc).Watch(func() { changes++ })
	r := service.AlertRule{Name: "bruteForce", Properties: json.RawMessage(`{"kind":"BruteForce","threshold":3}`)}
	if created, err := svc.PutAlertRule(ctx, r); err != nil || !created {
		t.Fatalf("PutAlertRule = %v, %v", created, err)
	}
	if created, err := svc.PutAlertRule(ctx, r); err != nil || created {
		t.Fatalf("second PutAlertRule = %v, %v", created, err)
	}
	if changes != 2 {
		t.Fatalf("watcher called %d times, want 2", changes)
	}
	// Another service on the same store (a restart) reads it.
	other, err := service.New(context.Background(), st, kr, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	rules, err := other.AlertRules(ctx)
	if err != nil || len(rules) != 1 || rules[0].Name != "bruteForce" || string(rules[0].Properties) != `{"kind":"BruteForce","threshold":3}` {
		t.Fatalf("AlertRules = %+v, %v", rules, err)
	}
	if err := svc.DeleteAlertRule(ctx, "BRUTEFORCE"); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAlertRule(ctx, "bruteForce"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("deleting again: %v", err)
	}
	if rules, _ := service.Alerting(svc).Rules(ctx); len(rules) != 0 {
		t.Fatalf("rules after delete = %+v", rules)
	}
}

// Only operators may read or change alert settings, and a honeytoken's mark: a vault's Owner
// or a reader of its secrets cannot tell a decoy.
func TestAlertSettingsNeedOperator(t *testing.T) {
	_, _, svc, ctx := openStoreService(t)
	mkVault(t, svc, ctx, "kv-a", 7, false)
	nobody := service.WithCaller(context.Background(), service.Caller{ObjectID: "11111111-1111-1111-1111-111111111111", TenantID: tenant})
	calls := map[string]func() error{
		"PutAlertRule": func() error {
			_, err := svc.PutAlertRule(nobody, service.AlertRule{Name: "x", Properties: json.RawMessage(`{}`)})
			return err
		},
		"AlertRules":      func() error { _, err := svc.AlertRules(nobody); return err },
		"DeleteAlertRule": func() error { return svc.DeleteAlertRule(nobody, "x") },
		"SetHoneytoken":   func() error { return svc.SetHoneytoken(nobody, "rg", "kv-a", "decoy", true) },
		"Honeytokens":     func() error { _, err := svc.Honeytokens(nobody, "rg", "kv-a"); return err },
		"AuthorizeAlerts": func() error { return svc.AuthorizeAlerts(nobody, service.ActionAlertsRead) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, service.ErrForbidden) {
			t.Errorf("%s by a non-operator: %v, want forbidden", name, err)
		}
	}
}

func TestHoneytokens(t *testing.T) {
	st, kr, svc, ctx := openStoreService(t)
	mkVault(t, svc, ctx, "kv-a", 7, false)
	mkVault(t, svc, ctx, "kv-b", 7, false)
	// A second node's service, loaded before the change: KeysApplied brings it up to date.
	node2, err := service.New(context.Background(), st, kr, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.Alerting(node2).Rules(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetHoneytoken(ctx, "rg", "kv-a", "Decoy-1", true); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetHoneytoken(ctx, "rg", "kv-a", "decoy-1", true); err != nil { // again: no change
		t.Fatal(err)
	}
	if err := svc.SetHoneytoken(ctx, "rg", "kv-a", "not a name!", true); !errors.Is(err, service.ErrBadRequest) {
		t.Fatalf("bad name: %v", err)
	}
	if err := svc.SetHoneytoken(ctx, "rg", "kv-none", "x", true); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("missing vault: %v", err)
	}
	for _, c := range []struct {
		vault, secret string
		want          bool
	}{{"kv-a", "decoy-1", true}, {"KV-A", "DECOY-1", true}, {"kv-b", "decoy-1", false}, {"kv-a", "other", false}, {"kv-none", "decoy-1", false}} {
		if got := service.Alerting(svc).IsHoneytoken(c.vault, c.secret); got != c.want {
			t.Errorf("IsHoneytoken(%s, %s) = %v, want %v", c.vault, c.secret, got, c.want)
		}
	}
	if service.Alerting(node2).IsHoneytoken("kv-a", "decoy-1") {
		t.Fatal("node 2 saw the change before it was applied there")
	}
	var keys []string
	if err := st.Scan(ctx, "sys/alerts/", "", func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	if err := node2.KeysApplied(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if !service.Alerting(node2).IsHoneytoken("kv-a", "decoy-1") {
		t.Fatal("node 2 did not pick up the honeytoken")
	}
	names, err := svc.Honeytokens(ctx, "rg", "kv-a")
	if err != nil || !slices.Equal(names, []string{"DECOY-1"}) {
		t.Fatalf("Honeytokens = %v, %v", names, err)
	}
	if err := svc.SetHoneytoken(ctx, "rg", "kv-a", "decoy-1", false); err != nil {
		t.Fatal(err)
	}
	if err := node2.KeysApplied(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if service.Alerting(svc).IsHoneytoken("kv-a", "decoy-1") || service.Alerting(node2).IsHoneytoken("kv-a", "decoy-1") {
		t.Fatal("still a honeytoken after unmarking")
	}
}
