package service_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

// guardExempt lists the exported methods of *service.Service that do not go through guard, each
// with the reason. Every other exported method must deny a caller without a role, which
// TestService_Guard_DeniesStrangers checks by reflection: a new method that skips guard fails it.
var guardExempt = map[string]string{
	"KeysApplied":       "cache plumbing: the Raft FSM calls it on every node with no caller",
	"PurgeExpired":      "runs as the system when retention ends, not for a caller",
	"RunPurger":         "the background loop around PurgeExpired",
	"DueRotations":      "runs scheduled rotations as the system, for no caller (the rotate route is guarded)",
	"RunRotations":      "the background loop around DueRotations",
	"ResourceID":        "formats the ARM id of a vault the caller already holds; no store access",
	"SubscriptionScope": "formats the configured subscription id; no store access",
	"LookupVault":       "finds the vault a data-plane request names, for the operation it is passed to (which is guarded) and for response headers and audit records; no secret data",
	"SetVaultLayout":    "test-only hook from export_test.go",
	"PurgeTick":         "test-only hook from export_test.go (one tick of RunPurger)",
	"Permits":           "asks guard whether another principal would be allowed, to hide the portal's controls; it reads and changes nothing, and the request the control makes is guarded itself",
}

// guardName is the one name every placeholder string argument gets: the resource group, the
// vault and the secret the fixture creates are all called this, so a denial cannot come from a
// missing object.
const guardName = "kv-g"

func TestService_Guard_DeniesStrangers(t *testing.T) {
	svc, _, ctx := newService(t)
	if _, _, err := svc.PutResourceGroup(ctx, guardName, "eastus", nil); err != nil {
		t.Fatal(err)
	}
	days := 90
	if _, _, err := svc.PutVault(ctx, guardName, guardName, service.VaultInput{Location: "eastus", Properties: service.VaultProperties{
		TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}}); err != nil {
		t.Fatal(err)
	}
	value := "x"
	if _, err := svc.SetSecret(ctx, guardName, guardName, service.SecretInput{Value: &value}); err != nil {
		t.Fatal(err)
	}
	before, err := svc.KeyringStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}

	callers := []struct {
		name string
		ctx  context.Context
		want func(e *service.Error) bool
	}{
		{"stranger", service.WithCaller(context.Background(), service.Caller{ObjectID: "eve", TenantID: tenant}), strangerDenied},
		{"no caller", context.Background(), func(e *service.Error) bool { return e.Code == "Forbidden" && e.Inner == "AccessDenied" }},
	}
	rv := reflect.ValueOf(svc)
	rt := rv.Type()
	for i := range rt.NumMethod() {
		m := rt.Method(i)
		if _, ok := guardExempt[m.Name]; ok {
			continue
		}
		for _, c := range callers {
			t.Run(m.Name+"/"+c.name, func(t *testing.T) {
				err := callWithPlaceholders(rv.Method(i), c.ctx)
				var e *service.Error
				if !errors.As(err, &e) || !errors.Is(err, service.ErrForbidden) || !c.want(e) {
					t.Fatalf("err = %#v (%v), want guard's ErrForbidden denial; a method that is not guarded belongs in guardExempt with a reason", e, err)
				}
			})
		}
	}

	t.Run("exemptions exist", func(t *testing.T) {
		var stale []string
		for name := range guardExempt {
			if _, ok := rt.MethodByName(name); !ok {
				stale = append(stale, name)
			}
		}
		sort.Strings(stale)
		if len(stale) > 0 {
			t.Fatalf("guardExempt names methods that no longer exist: %v", stale)
		}
	})

	// Denied calls changed nothing.
	if _, err := svc.GetVault(ctx, guardName, guardName); err != nil {
		t.Fatalf("the vault was changed by denied calls: %v", err)
	}
	if got, err := svc.GetSecret(ctx, guardName, guardName, ""); err != nil || got.Value != value {
		t.Fatalf("the secret was changed by denied calls: %v", err)
	}
	if after, err := svc.KeyringStatus(ctx); err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("the keyring was changed by denied calls: %+v -> %+v, %v", before, after, err)
	}
}

// strangerDenied reports whether e is guard's denial of an authenticated caller without a role:
// Key Vault's ForbiddenByRbac on the data plane, ARM's AuthorizationFailed elsewhere, both naming
// the caller.
func strangerDenied(e *service.Error) bool {
	rbac := e.Code == "Forbidden" && e.Inner == "ForbiddenByRbac" && strings.Contains(e.Message, ";oid=eve\r\n")
	arm := e.Code == "AuthorizationFailed" && e.Inner == "" && strings.Contains(e.Message, "object id 'eve'")
	return rbac || arm
}

// callWithPlaceholders calls m with ctx for its context and a placeholder of each other
// parameter's type, and returns its error result. A panic or a method without an error result
// is reported as an error, so the test names the method.
func callWithPlaceholders(m reflect.Value, ctx context.Context) (err error) {
	mt := m.Type()
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	if mt.NumOut() == 0 || mt.Out(mt.NumOut()-1) != errType {
		return fmt.Errorf("%v has no error result, so it cannot report a denial", mt)
	}
	args := make([]reflect.Value, mt.NumIn())
	for i := range args {
		p := mt.In(i)
		switch {
		case p == ctxType:
			args[i] = reflect.ValueOf(ctx)
		case p.Kind() == reflect.String:
			args[i] = reflect.ValueOf(guardName).Convert(p)
		case p.Kind() >= reflect.Int && p.Kind() <= reflect.Uint64:
			args[i] = reflect.ValueOf(1).Convert(p)
		case p.Kind() == reflect.Struct, p.Kind() == reflect.Pointer, p.Kind() == reflect.Map,
			p.Kind() == reflect.Slice, p.Kind() == reflect.Bool:
			args[i] = reflect.Zero(p)
		default:
			return fmt.Errorf("no placeholder for parameter %d of type %v: add one to callWithPlaceholders", i, p)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panicked before denying: %v", r)
		}
	}()
	out := m.Call(args)
	err, _ = out[len(out)-1].Interface().(error)
	return err
}
