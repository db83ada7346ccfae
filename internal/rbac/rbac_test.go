package rbac_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const (
	admin = "aaaaaaaa-0000-0000-0000-000000000001"
	bob   = "bbbbbbbb-0000-0000-0000-000000000002"
	sre   = "cccccccc-0000-0000-0000-000000000003"
	vault = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"
)

type env struct {
	st  store.Store
	kr  *keyring.Keyring
	ctx context.Context
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, kr: kr, ctx: ctx}
}

func (e *env) service(t testing.TB) *rbac.Service {
	t.Helper()
	s, err := rbac.New(e.ctx, e.st, e.kr, rbac.Options{AdminObjectID: admin})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ask(s *rbac.Service, principal, action string, data bool, scope string, groups ...string) authz.Decision {
	return s.Decide(authz.Request{PrincipalID: principal, Groups: groups, Action: authz.Action(action), DataAction: data, Scope: scope})
}

const getSecret = "Microsoft.KeyVault/vaults/secrets/getSecret/action"

func TestBootstrapAdminHoldsOwnerAndKeyVaultAdministrator(t *testing.T) {
	s := newEnv(t).service(t)
	if d := ask(s, admin, "Microsoft.KeyVault/vaults/write", false, vault); !d.Allowed {
		t.Fatalf("owner denied: %+v", d)
	}
	if d := ask(s, admin, getSecret, true, vault+"/secrets/x"); !d.Allowed {
		t.Fatalf("key vault administrator denied: %+v", d)
	}
	if d := ask(s, bob, getSecret, true, vault+"/secrets/x"); d.Allowed {
		t.Fatalf("stranger allowed: %+v", d)
	}
	owner, _ := rbac.BuiltIn(rbac.OwnerID)
	if owner.Allows(getSecret, true) {
		t.Fatal("Owner carries data actions; Azure's does not")
	}
	list := s.ListAssignments(func(*rbac.Assignment) bool { return true })
	if len(list) != 3 || !list[0].BuiltIn {
		t.Fatalf("assignments = %+v", list)
	}
	if _, _, err := s.DeleteAssignment(context.Background(), list[0].Name); !errors.Is(err, rbac.ErrProtected) {
		t.Fatalf("deleting a bootstrap assignment: %v", err)
	}
}

func TestAssignmentLifecycleAcrossNodes(t *testing.T) {
	e := newEnv(t)
	a, b := e.service(t), e.service(t) // two services over one store: b learns only through KeysApplied
	in := rbac.Assignment{Name: "11111111-2222-3333-4444-555555555555", Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: sre, PrincipalType: "Group"}
	got, err := a.CreateAssignment(e.ctx, in, admin)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != vault+"/providers/Microsoft.Authorization/roleAssignments/"+in.Name || got.CreatedBy != admin {
		t.Fatalf("created %+v", got)
	}
	if d := ask(a, bob, getSecret, true, vault+"/secrets/x", sre); !d.Allowed || d.AssignmentID != got.ID() {
		t.Fatalf("group member denied on the writing node: %+v", d)
	}
	if d := ask(b, bob, getSecret, true, vault+"/secrets/x", sre); d.Allowed {
		t.Fatal("the other node allowed before it applied the write")
	}
	if err := b.KeysApplied(e.ctx, []string{"rbac/assignment/" + in.Name}); err != nil {
		t.Fatal(err)
	}
	if d := ask(b, bob, getSecret, true, vault+"/secrets/x", sre); !d.Allowed {
		t.Fatalf("the other node denied after applying: %+v", d)
	}
	if d := ask(b, bob, "Microsoft.KeyVault/vaults/secrets/setSecret/action", true, vault+"/secrets/x", sre); d.Allowed {
		t.Fatal("secrets user may write")
	}

	// The same triple again, under the same or another name, exists; the same name with another
	// role is not an update.
	if _, err := b.CreateAssignment(e.ctx, in, admin); !errors.Is(err, rbac.ErrAssignmentExists) {
		t.Fatalf("same assignment again: %v", err)
	}
	other := in
	other.Name = "99999999-2222-3333-4444-555555555555"
	if _, err := a.CreateAssignment(e.ctx, other, admin); !errors.Is(err, rbac.ErrAssignmentExists) {
		t.Fatalf("same triple, other name: %v", err)
	}
	changed := in
	changed.RoleID = rbac.KeyVaultReaderID
	if _, err := a.CreateAssignment(e.ctx, changed, admin); !errors.Is(err, rbac.ErrAssignmentChanged) {
		t.Fatalf("same name, other role: %v", err)
	}

	if _, found, err := b.DeleteAssignment(e.ctx, in.Name); err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	if err := a.KeysApplied(e.ctx, []string{"rbac/assignment/" + in.Name}); err != nil {
		t.Fatal(err)
	}
	if d := ask(a, bob, getSecret, true, vault+"/secrets/x", sre); d.Allowed {
		t.Fatal("a deleted assignment still grants")
	}
	if _, found, err := a.DeleteAssignment(e.ctx, in.Name); err != nil || found {
		t.Fatalf("second delete: %v %v", found, err)
	}
	// Deleted, the triple may be assigned again.
	if _, err := a.CreateAssignment(e.ctx, other, admin); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
	if got := e.service(t).ListAssignments(func(x *rbac.Assignment) bool { return !x.BuiltIn }); len(got) != 1 || got[0].Name != other.Name {
		t.Fatalf("after restart: %+v", got)
	}
}

func TestCreateAssignmentRefusesAnUnknownRole(t *testing.T) {
	e := newEnv(t)
	s := e.service(t)
	_, err := s.CreateAssignment(e.ctx, rbac.Assignment{Name: "11111111-2222-3333-4444-555555555555", Scope: vault, RoleID: "00000000-0000-0000-0000-000000000000", PrincipalID: bob}, admin)
	if !errors.Is(err, rbac.ErrUnknownRole) {
		t.Fatalf("err = %v", err)
	}
}

func TestDeleteAssignmentsWithin(t *testing.T) {
	e := newEnv(t)
	s := e.service(t)
	for i, scope := range []string{vault, vault + "/secrets/x", vault + "2", "/subscriptions/s"} {
		name := "11111111-2222-3333-4444-55555555555" + string(rune('0'+i))
		if _, err := s.CreateAssignment(e.ctx, rbac.Assignment{Name: name, Scope: scope, RoleID: rbac.KeyVaultReaderID, PrincipalID: bob}, admin); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteAssignmentsWithin(e.ctx, vault)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	left := s.ListAssignments(func(a *rbac.Assignment) bool { return !a.BuiltIn })
	if len(left) != 2 || left[0].Scope != "/subscriptions/s" || left[1].Scope != vault+"2" {
		t.Fatalf("left %+v", left)
	}
}

func TestCustomRoles(t *testing.T) {
	e := newEnv(t)
	a, b := e.service(t), e.service(t)
	def := rbac.RoleDefinition{Role: authz.Role{ID: "DDDDDDDD-0000-0000-0000-000000000001", Name: "Secret Lister",
		Permissions:      []authz.Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}, NotDataActions: []string{getSecret}}},
		AssignableScopes: []string{"/subscriptions/s"}}}
	got, created, err := a.PutRoleDefinition(e.ctx, def, admin)
	if err != nil || !created || got.ID != "dddddddd-0000-0000-0000-000000000001" {
		t.Fatalf("put: %+v %v %v", got, created, err)
	}
	if _, _, err := a.PutRoleDefinition(e.ctx, rbac.RoleDefinition{Role: authz.Role{ID: "dddddddd-0000-0000-0000-000000000002", Name: "secret lister"}}, admin); !errors.Is(err, rbac.ErrRoleNameExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := a.PutRoleDefinition(e.ctx, rbac.RoleDefinition{Role: authz.Role{ID: "dddddddd-0000-0000-0000-000000000002", Name: "Owner"}}, admin); !errors.Is(err, rbac.ErrRoleNameExists) {
		t.Fatalf("a built-in name: %v", err)
	}
	if _, _, err := a.PutRoleDefinition(e.ctx, rbac.RoleDefinition{Role: authz.Role{ID: rbac.OwnerID, Name: "Mine"}}, admin); !errors.Is(err, rbac.ErrRoleBuiltIn) {
		t.Fatalf("a built-in id: %v", err)
	}
	if _, err := a.CreateAssignment(e.ctx, rbac.Assignment{Name: "11111111-2222-3333-4444-555555555555", Scope: vault, RoleID: got.ID, PrincipalID: bob}, admin); err != nil {
		t.Fatal(err)
	}
	if err := b.KeysApplied(e.ctx, []string{"rbac/role/" + got.ID, "rbac/assignment/11111111-2222-3333-4444-555555555555"}); err != nil {
		t.Fatal(err)
	}
	if d := ask(b, bob, "Microsoft.KeyVault/vaults/secrets/readMetadata/action", true, vault); !d.Allowed {
		t.Fatalf("custom role denied: %+v", d)
	}
	if d := ask(b, bob, getSecret, true, vault); d.Allowed {
		t.Fatal("custom role's notDataActions ignored")
	}
	if _, _, err := a.DeleteRoleDefinition(e.ctx, got.ID); !errors.Is(err, rbac.ErrRoleInUse) {
		t.Fatalf("deleting a role in use: %v", err)
	}
	if _, _, err := a.DeleteAssignment(e.ctx, "11111111-2222-3333-4444-555555555555"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := a.DeleteRoleDefinition(e.ctx, got.ID); err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	if _, ok := e.service(t).Role(got.ID); ok {
		t.Fatal("deleted role back after restart")
	}
	// Its name is free again.
	if _, _, err := a.PutRoleDefinition(e.ctx, rbac.RoleDefinition{Role: authz.Role{ID: "dddddddd-0000-0000-0000-000000000002", Name: "Secret Lister"}}, admin); err != nil {
		t.Fatalf("reusing a freed name: %v", err)
	}
}

func TestBuiltInRolesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rbac.BuiltInRoles {
		if seen[r.ID] || seen[r.Name] || len(r.ID) != 36 || !r.BuiltIn || len(r.Permissions) != 1 {
			t.Errorf("role %+v", r)
		}
		seen[r.ID], seen[r.Name] = true, true
	}
	user, _ := rbac.BuiltIn(rbac.KeyVaultSecretsUserID)
	if !user.Allows(getSecret, true) || user.Allows("Microsoft.KeyVault/vaults/secrets/setSecret/action", true) || user.Allows("Microsoft.KeyVault/vaults/read", false) {
		t.Error("Key Vault Secrets User")
	}
	contributor, _ := rbac.BuiltIn(rbac.ContributorID)
	if !contributor.Allows("Microsoft.KeyVault/vaults/write", false) || contributor.Allows(authz.ActionRoleAssignmentWrite, false) {
		t.Error("Contributor")
	}
	// Azure's wildcards never reach the server's operator actions; only its operator role does.
	for _, id := range []string{rbac.OwnerID, rbac.ContributorID, rbac.ReaderID, rbac.UserAccessAdministratorID} {
		r, _ := rbac.BuiltIn(id)
		for _, a := range []string{"Strongroom/operator/principals/secrets/write", "Strongroom/operator/keyring/read", "Strongroom/operator/metrics/read"} {
			if r.Allows(a, false) {
				t.Errorf("%s allows %s", r.Name, a)
			}
		}
	}
	op, _ := rbac.BuiltIn(rbac.StrongroomOperatorID)
	if !op.Allows("Strongroom/operator/principals/secrets/write", false) || op.Allows("Microsoft.KeyVault/vaults/write", false) {
		t.Error("Strongroom Operator")
	}
}

func TestTimeBoundAssignmentEndsByTheClock(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s, err := rbac.New(e.ctx, e.st, e.kr, rbac.Options{AdminObjectID: admin, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	in := rbac.Assignment{Name: "11111111-2222-3333-4444-555555555555", Scope: vault, RoleID: rbac.KeyVaultSecretsUserID, PrincipalID: bob,
		StartsAt: now.Add(time.Minute), EndsAt: now.Add(time.Hour)}
	if _, err := s.CreateAssignment(e.ctx, in, admin); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, false}, {time.Minute, true}, {59 * time.Minute, true}, {time.Hour, false}, {2 * time.Hour, false}} {
		now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(c.at)
		if d := ask(s, bob, getSecret, true, vault); d.Allowed != c.want {
			t.Errorf("at +%v: allowed=%v, want %v", c.at, d.Allowed, c.want)
		}
	}
}
