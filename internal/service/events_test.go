package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/service"
)

func TestEvents_SubscriptionValidation(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-ev", 7, false)
	refuse := func(string) error { return errors.New("loopback is refused") }
	cases := []struct {
		name  string
		in    service.EventSubscriptionInput
		field string
	}{
		{"ok-1", service.EventSubscriptionInput{EndpointType: "EventHub", EndpointURL: "https://h.example/"}, "endpointType"},
		{"ok-2", service.EventSubscriptionInput{}, "endpointUrl"},
		{"ok-3", service.EventSubscriptionInput{EndpointURL: "https://h.example/", CheckDestination: refuse}, "endpointUrl"},
		{"ok-4", service.EventSubscriptionInput{EndpointURL: "https://h.example/", IncludedEventTypes: []string{"Microsoft.KeyVault.KeyExpired"}}, "includedEventTypes"},
		{"ok-5", service.EventSubscriptionInput{EndpointURL: "https://h.example/", Schema: "CustomInputSchema"}, "eventDeliverySchema"},
		{"ok-6", service.EventSubscriptionInput{EndpointURL: "https://h.example/", MaxDeliveryAttempts: 31}, "maxDeliveryAttempts"},
		{"ok-7", service.EventSubscriptionInput{EndpointURL: "https://h.example/", EventTTLMinutes: 1441}, "eventTimeToLiveInMinutes"},
		{"a", service.EventSubscriptionInput{EndpointURL: "https://h.example/"}, "name"},
	}
	for _, tc := range cases {
		_, _, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", tc.name, tc.in)
		var e *service.Error
		if !errors.As(err, &e) || !errors.Is(err, service.ErrBadRequest) || !strings.Contains(e.Message, tc.field) {
			t.Errorf("%s: err = %v, want a 400 naming %s", tc.name, err, tc.field)
		}
	}
	sub, created, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", "sub-1", service.EventSubscriptionInput{
		EndpointURL: "https://h.example/hook?code=k", IncludedEventTypes: []string{"microsoft.keyvault.secretnewversioncreated"}})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if sub.State != service.SubscriptionCreating || sub.MaxDeliveryAttempts != 30 || sub.EventTTLMinutes != 1440 ||
		sub.Schema != service.SchemaEventGrid || sub.IncludedEventTypes[0] != service.EventSecretNewVersionCreated {
		t.Fatalf("defaults: %+v", sub)
	}
}

func TestEvents_OutboxFanOutAndDelivery(t *testing.T) {
	svc, clk, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-ev", 7, false)
	mkVault(t, svc, ctx, "kv-quiet", 7, false)
	q := service.Events(svc, nil)
	v := "x"
	if _, err := svc.SetSecret(ctx, "kv-quiet", "s", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.FanOut(ctx); err != nil || n != 0 {
		t.Fatalf("a vault without subscriptions queued %d events (%v)", n, err)
	}
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", "all", service.EventSubscriptionInput{EndpointURL: "https://h.example/a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-ev", "prefixed", service.EventSubscriptionInput{EndpointURL: "https://h.example/b", SubjectBeginsWith: "db-"}); err != nil {
		t.Fatal(err)
	}
	pend, err := q.PendingValidations(ctx)
	if err != nil || len(pend) != 2 {
		t.Fatalf("pending validations: %d, %v", len(pend), err)
	}
	for _, p := range pend {
		if err := q.RecordValidation(ctx, p, service.SubscriptionSucceeded); err != nil {
			t.Fatal(err)
		}
	}
	if pend, _ := q.PendingValidations(ctx); len(pend) != 0 {
		t.Fatalf("still pending after validation: %d", len(pend))
	}
	exp := clk.Now().Add(40 * 24 * time.Hour).Unix()
	if _, err := svc.SetSecret(ctx, "kv-ev", "DB-password", service.SecretInput{Value: &v, Expires: &exp}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.FanOut(ctx); err != nil || n != 1 {
		t.Fatalf("fan out: %d, %v", n, err)
	}
	ds, err := q.DueDeliveries(ctx, 10, 10, nil)
	if err != nil || len(ds) != 2 {
		t.Fatalf("due deliveries: %d, %v; want one per subscription", len(ds), err)
	}
	d := ds[0]
	if d.Event.Type != service.EventSecretNewVersionCreated || d.Event.Subject != "DB-password" || d.Event.Data.ObjectName != "DB-password" ||
		d.Event.Data.EXP == nil || *d.Event.Data.EXP != exp || !strings.HasSuffix(d.Event.Topic, "/providers/Microsoft.KeyVault/vaults/kv-ev") {
		t.Fatalf("event: %+v", d.Event)
	}
	if err := q.Delivered(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if err := q.Reschedule(ctx, ds[1], clk.Now().Add(time.Minute), true, "503"); err != nil {
		t.Fatal(err)
	}
	if ds, _ := q.DueDeliveries(ctx, 10, 10, nil); len(ds) != 0 {
		t.Fatalf("rescheduled delivery is due early: %d", len(ds))
	}
	clk.Advance(time.Minute)
	ds, _ = q.DueDeliveries(ctx, 10, 10, nil)
	if len(ds) != 1 || ds[0].Attempts != 1 || ds[0].LastError != "503" {
		t.Fatalf("rescheduled: %+v", ds)
	}
	if err := q.DeadLetter(ctx, ds[0], true, "attempts exhausted"); err != nil {
		t.Fatal(err)
	}
	dls, err := svc.ListDeadLetters(ctx, "rg", "kv-ev", ds[0].Sub.Name)
	if err != nil || len(dls) != 1 || dls[0].Attempts != 2 {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
	if n, err := svc.ReplayDeadLetters(ctx, "rg", "kv-ev", ds[0].Sub.Name); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	if ds, _ := q.DueDeliveries(ctx, 10, 10, nil); len(ds) != 1 || ds[0].Attempts != 0 {
		t.Fatalf("replayed: %+v", ds)
	}

	// Near expiry and expiry come from the due index as the clock passes them.
	if n, _ := q.DueExpiries(ctx); n != 0 {
		t.Fatalf("expiry entries due early: %d", n)
	}
	clk.Advance(10*24*time.Hour + time.Second)
	if n, err := q.DueExpiries(ctx); err != nil || n != 1 {
		t.Fatalf("near expiry: %d %v", n, err)
	}
	clk.Advance(30 * 24 * time.Hour)
	if n, err := q.DueExpiries(ctx); err != nil || n != 1 {
		t.Fatalf("expiry: %d %v", n, err)
	}
	if n, err := q.FanOut(ctx); err != nil || n != 2 {
		t.Fatalf("fan out of expiry events: %d %v", n, err)
	}
	types := map[string]int{}
	ds, _ = q.DueDeliveries(ctx, 10, 10, nil)
	for _, d := range ds {
		types[d.Event.Type]++
	}
	if types[service.EventSecretNearExpiry] != 2 || types[service.EventSecretExpired] != 2 {
		t.Fatalf("expiry deliveries: %v", types)
	}

	// A new version makes the old version's entries stale: nothing fires for them.
	exp2 := clk.Now().Add(time.Hour).Unix()
	if _, err := svc.SetSecret(ctx, "kv-ev", "other", service.SecretInput{Value: &v, Expires: &exp2}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSecret(ctx, "kv-ev", "other", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	q.FanOut(ctx)
	before := countDue(t, q, ctx)
	if n, err := q.DueExpiries(ctx); err != nil || n != 2 {
		t.Fatalf("stale entries: %d %v", n, err)
	}
	if n, _ := q.FanOut(ctx); n != 0 || countDue(t, q, ctx) != before {
		t.Fatalf("a stale expiry entry emitted an event")
	}

	// Access-policy changes emit VaultAccessPolicyChanged.
	if _, err := svc.UpdateAccessPolicies(ctx, "rg", "kv-ev", "add", []service.AccessPolicy{{TenantID: tenant, ObjectID: "22222222-2222-2222-2222-222222222222",
		Permissions: service.Permissions{Secrets: []string{"get"}}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.FanOut(ctx); err != nil || n != 1 {
		t.Fatalf("policy event: %d %v", n, err)
	}

	// Deleting a subscription drops its deliveries.
	if ok, err := svc.DeleteEventSubscription(ctx, "rg", "kv-ev", "all"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	ds, _ = q.DueDeliveries(ctx, 100, 100, nil)
	for _, d := range ds {
		if d.Sub.Name == "all" {
			t.Fatalf("delivery to a deleted subscription: %+v", d)
		}
	}
}

func countDue(t *testing.T, q *service.EventQueue, ctx context.Context) int {
	t.Helper()
	ds, err := q.DueDeliveries(ctx, 1000, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

// A purged vault takes its subscriptions and dead letters with it: a vault of the same name
// made later starts with none.
func TestEvents_PurgedVaultTakesSubscriptions(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-gone", 7, false)
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-gone", "sub", service.EventSubscriptionInput{EndpointURL: "https://h.example/"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteVault(ctx, "rg", "kv-gone"); err != nil {
		t.Fatal(err)
	}
	if err := svc.PurgeDeletedVault(ctx, "eastus", "kv-gone"); err != nil {
		t.Fatal(err)
	}
	mkVault(t, svc, ctx, "kv-gone", 7, false)
	if subs, err := svc.ListEventSubscriptions(ctx, "rg", "kv-gone"); err != nil || len(subs) != 0 {
		t.Fatalf("subscriptions after purge: %v %v", subs, err)
	}
	if pend, err := service.Events(svc, nil).PendingValidations(ctx); err != nil || len(pend) != 0 {
		t.Fatalf("pending validations after purge: %d %v", len(pend), err)
	}
}

// One subscription's backlog does not hide another's: a batch takes at most perSub of one, and
// none of a subscription the worker is still delivering to.
func TestEvents_DueDeliveriesFairness(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-fair", 7, false)
	q := service.Events(svc, nil)
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-fair", "busy", service.EventSubscriptionInput{EndpointURL: "https://h.example/a", SubjectBeginsWith: "busy"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-fair", "quiet", service.EventSubscriptionInput{EndpointURL: "https://h.example/b", SubjectBeginsWith: "quiet"}); err != nil {
		t.Fatal(err)
	}
	v := "x"
	for i := range 10 {
		if _, err := svc.SetSecret(ctx, "kv-fair", fmt.Sprintf("busy-%d", i), service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.SetSecret(ctx, "kv-fair", "quiet-1", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.FanOut(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(ds []service.Delivery) map[string]int {
		m := map[string]int{}
		for _, d := range ds {
			m[d.Sub.Name]++
		}
		return m
	}
	ds, err := q.DueDeliveries(ctx, 4, 2, nil)
	if got := count(ds); err != nil || got["busy"] != 2 || got["quiet"] != 1 {
		t.Fatalf("perSub 2: %v %v", got, err)
	}
	var busyKey string
	for _, d := range ds {
		if d.Sub.Name == "busy" {
			busyKey = d.Sub.VaultID + "/busy"
		}
	}
	ds, _ = q.DueDeliveries(ctx, 4, 4, func(sub string) bool { return sub == busyKey })
	if got := count(ds); got["busy"] != 0 || got["quiet"] != 1 {
		t.Fatalf("skipping busy: %v", got)
	}
}

// An event exists exactly when its change committed: a refused write leaves no outbox entry.
func TestEvents_NoEventForAChangeThatDidNotCommit(t *testing.T) {
	svc, _, ctx := newService(t)
	mkVault(t, svc, ctx, "kv-nc", 7, false)
	q := service.Events(svc, nil)
	if _, _, err := svc.PutEventSubscription(ctx, "rg", "kv-nc", "sub", service.EventSubscriptionInput{EndpointURL: "https://h.example/"}); err != nil {
		t.Fatal(err)
	}
	v := "x"
	if _, err := svc.SetSecret(ctx, "kv-nc", "s", service.SecretInput{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteSecret(ctx, "kv-nc", "s"); err != nil {
		t.Fatal(err)
	}
	if n, err := q.FanOut(ctx); err != nil || n != 1 {
		t.Fatalf("the committed set: %d %v", n, err)
	}
	// Setting a deleted-but-recoverable name is refused: no event.
	if _, err := svc.SetSecret(ctx, "kv-nc", "s", service.SecretInput{Value: &v}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("set over a deleted secret: %v", err)
	}
	// A policy update the caller may not make is refused: no event.
	stranger := service.WithCaller(ctx, service.Caller{ObjectID: "stranger", TenantID: tenant})
	if _, err := svc.UpdateAccessPolicies(stranger, "rg", "kv-nc", "add", []service.AccessPolicy{{TenantID: tenant,
		ObjectID: "22222222-2222-2222-2222-222222222222", Permissions: service.Permissions{Secrets: []string{"get"}}}}); err == nil {
		t.Fatal("a stranger updated the policies")
	}
	if n, err := q.FanOut(ctx); err != nil || n != 0 {
		t.Fatalf("refused changes left %d events (%v)", n, err)
	}
}
