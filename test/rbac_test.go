package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/rbac"
)

// principal is a service principal made for a test, with its own credential.
type principal struct {
	objectID, appID, secret string
	cred                    azcore.TokenCredential
}

// newPrincipal makes a service principal with no role (POST /sys/principals, as `operator
// principal create` does).
func (e *env) newPrincipal(t *testing.T, name string) principal {
	t.Helper()
	armTok, err := e.cred.GetToken(context.Background(), policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", e.srv.URL+"/sys/principals", strings.NewReader(`{"displayName":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+armTok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		ObjectID     string `json:"objectId"`
		AppID        string `json:"appId"`
		ClientSecret string `json:"clientSecret"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil || p.ClientSecret == "" {
		t.Fatalf("creating a principal: HTTP %d", resp.StatusCode)
	}
	return principal{objectID: p.ObjectID, appID: p.AppID, secret: p.ClientSecret, cred: e.srv.CredentialFor(e.hc, p.AppID, p.ClientSecret)}
}

// objectIDOf is the oid claim of cred's ARM token.
func (e *env) objectIDOf(t *testing.T, cred azcore.TokenCredential) string {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policyScopes("https://management.core.windows.net//.default"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OID string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.OID == "" {
		t.Fatalf("token without oid: %v", err)
	}
	return c.OID
}

func policyScopes(scope string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{scope}}
}

// rbacClients are the official Microsoft.Authorization clients for a credential.
type rbacClients struct {
	defs    *armauthorization.RoleDefinitionsClient
	assigns *armauthorization.RoleAssignmentsClient
}

func (e *env) rbacClients(t *testing.T, cred azcore.TokenCredential) rbacClients {
	t.Helper()
	h2 := e.srv.HTTP2Client() // as the SDK's default transport: ListForScope sends $filter unescaped
	defs, err := armauthorization.NewRoleDefinitionsClient(cred, e.srv.ARMOptions(h2))
	if err != nil {
		t.Fatal(err)
	}
	assigns, err := armauthorization.NewRoleAssignmentsClient(e.srv.Admin.SubscriptionID, cred, e.srv.ARMOptions(h2))
	if err != nil {
		t.Fatal(err)
	}
	return rbacClients{defs, assigns}
}

func (c rbacClients) assign(ctx context.Context, scope, roleID, principalID string) (string, error) {
	return c.assignAs(ctx, scope, roleID, principalID, "ServicePrincipal")
}

func (c rbacClients) assignAs(ctx context.Context, scope, roleID, principalID, principalType string) (string, error) {
	name := uuid.NewString()
	_, err := c.assigns.Create(ctx, scope, name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		PrincipalID: to.Ptr(principalID), RoleDefinitionID: to.Ptr("/providers/Microsoft.Authorization/roleDefinitions/" + roleID),
		PrincipalType: to.Ptr(armauthorization.PrincipalType(principalType))}}, nil)
	return name, err
}

// nestedGroups makes two groups through Graph, member ∈ inner ∈ outer, and returns outer's id.
func (e *env) nestedGroups(t *testing.T, member string) string {
	t.Helper()
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	tok := g.token(e.cred)
	ids := make([]string, 2)
	for i, name := range []string{"inner", "outer"} {
		nick := name + "-" + uuid.NewString()[:8]
		m := g.must(tok, "POST", "/v1.0/groups", `{"displayName":"`+nick+`","mailNickname":"`+nick+`","securityEnabled":true}`, 201)
		ids[i], _ = m["id"].(string)
	}
	ref := func(id string) string { return `{"@odata.id":"` + e.publicURL + `/v1.0/directoryObjects/` + id + `"}` }
	g.must(tok, "POST", "/v1.0/groups/"+ids[0]+"/members/$ref", ref(member), 204)
	g.must(tok, "POST", "/v1.0/groups/"+ids[1]+"/members/$ref", ref(ids[0]), 204)
	return ids[1]
}

func (e *env) vaultScope(rg, vault string) string {
	return "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + vault
}

// TestRBAC_AssignReadRevoke: the official SDK finds a built-in role by name, assigns it to an
// application at one vault, the application reads there and nowhere else, cannot write or
// grant itself more, and loses access on the request after the assignment is deleted.
func TestRBAC_AssignReadRevoke(t *testing.T) {
	for _, op := range []string{"RoleDefinitions.List", "RoleDefinitions.Get", "RoleAssignments.Create", "RoleAssignments.Get",
		"RoleAssignments.ListForScope", "RoleAssignments.Delete"} {
		recordClient(t, "go", "armauthorization "+op)
	}
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.rbacClients(t, e.cred)
	kv := e.createVault(t, "rg-rbac", "kv-rbac", nil)
	e.createVault(t, "rg-rbac", "kv-rbac-other", nil)
	if _, err := kv.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("hunter2")}, nil); err != nil {
		t.Fatal(err)
	}
	app := e.newPrincipal(t, "billing-api")
	scope := e.vaultScope("rg-rbac", "kv-rbac")

	// Role definitions by name, with the raw (unescaped) filter the SDK sends.
	pager := admin.defs.NewListPager("/subscriptions/"+e.srv.Admin.SubscriptionID, &armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr("roleName eq 'Key Vault Secrets User'")})
	var roleID string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			roleID = *d.Name
			if *d.Properties.RoleType != "BuiltInRole" || len(d.Properties.Permissions[0].DataActions) != 2 {
				t.Fatalf("definition %+v", d.Properties)
			}
		}
	}
	if roleID != rbac.KeyVaultSecretsUserID {
		t.Fatalf("role id = %q", roleID)
	}
	got, err := admin.defs.Get(ctx, scope, rbac.OwnerID, nil)
	if err != nil || *got.Properties.RoleName != "Owner" || len(got.Properties.Permissions[0].DataActions) != 0 {
		t.Fatalf("Owner: %+v %v", got, err)
	}

	appKV := e.srv.Secrets("kv-rbac", app.cred, e.hc)
	_, err = appKV.GetSecret(ctx, "db-password", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "Microsoft.KeyVault/vaults/secrets/getSecret/action")

	name, err := admin.assign(ctx, scope, roleID, app.objectID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.assign(ctx, scope, roleID, app.objectID)
	wantStatus(t, err, 409, "RoleAssignmentExists")

	if s, err := appKV.GetSecret(ctx, "db-password", "", nil); err != nil || *s.Value != "hunter2" {
		t.Fatalf("read after assignment: %v", err)
	}
	_, err = appKV.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "Microsoft.KeyVault/vaults/secrets/setSecret/action")
	_, err = e.srv.Secrets("kv-rbac-other", app.cred, e.hc).GetSecret(ctx, "db-password", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")

	// It cannot grant itself more.
	_, err = e.rbacClients(t, app.cred).assign(ctx, scope, rbac.KeyVaultSecretsOfficerID, app.objectID)
	wantStatus(t, err, 403, "AuthorizationFailed")

	// Listing: at the vault, atScope() and by principal, as az and the SDK ask.
	for _, filter := range []string{"", "atScope()", "principalId eq '" + app.objectID + "'"} {
		opts := &armauthorization.RoleAssignmentsClientListForScopeOptions{}
		if filter != "" {
			opts.Filter = to.Ptr(filter)
		}
		found := false
		lp := admin.assigns.NewListForScopePager(scope, opts)
		for lp.More() {
			page, err := lp.NextPage(ctx)
			if err != nil {
				t.Fatalf("list %q: %v", filter, err)
			}
			for _, a := range page.Value {
				if *a.Name == name {
					found = *a.Properties.Scope == scope && *a.Properties.PrincipalID == app.objectID &&
						strings.HasSuffix(*a.Properties.RoleDefinitionID, "/"+roleID)
				}
			}
		}
		if !found {
			t.Fatalf("list %q misses the assignment", filter)
		}
	}

	if a, err := admin.assigns.Get(ctx, scope, name, nil); err != nil || *a.Name != name || *a.Properties.PrincipalID != app.objectID ||
		*a.Properties.Scope != scope || !strings.HasSuffix(*a.Properties.RoleDefinitionID, "/"+roleID) {
		t.Fatalf("get assignment: %+v, %v", a.RoleAssignment, err)
	}
	if _, err := admin.assigns.Delete(ctx, scope, name, nil); err != nil {
		t.Fatal(err)
	}
	_, err = appKV.GetSecret(ctx, "db-password", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")
	if _, err := admin.assigns.Get(ctx, scope, name, nil); err == nil {
		t.Fatal("deleted assignment still readable")
	}
}

// forbiddenBy asserts a 403 with the given inner code whose message names want.
func forbiddenBy(t *testing.T, err error, inner, want string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || !strings.Contains(err.Error(), inner) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want 403 %s naming %q", err, inner, want)
	}
}

// TestRBAC_BuiltInRoleMatrix assigns every built-in role that concerns secrets at every kind of
// scope (subscription, resource group, vault, secret, another vault) and runs every data-plane
// secret operation and the vault-management operations through the official SDKs, asserting
// each allow or deny against what the role definitions say.
func TestRBAC_BuiltInRoleMatrix(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.rbacClients(t, e.cred)
	adminKV := e.createVault(t, "rg-m", "kv-m1", nil)
	e.createVault(t, "rg-m", "kv-m2", nil)
	e.createVault(t, "rg-m2", "kv-m3", nil)
	who := e.newPrincipal(t, "matrix")
	bystander := e.newPrincipal(t, "bystander")
	kv := e.srv.Secrets("kv-m1", who.cred, e.hc)
	vaults, err := armkeyvault.NewVaultsClient(e.srv.Admin.SubscriptionID, who.cred, e.srv.ARMOptions(e.hc))
	if err != nil {
		t.Fatal(err)
	}
	whoRBAC := e.rbacClients(t, who.cred)
	vault := e.vaultScope("rg-m", "kv-m1")
	outer := e.nestedGroups(t, who.objectID) // who ∈ inner ∈ outer
	fx := &fixtures{t: t, kv: adminKV}
	fx.backup = fx.backupOf("bk")

	scopes := []struct{ name, scope string }{
		{"subscription", "/subscriptions/" + e.srv.Admin.SubscriptionID},
		{"resource group", "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/rg-m"},
		{"vault", vault},
		{"secret", vault + "/secrets/s"},
		{"another vault", e.vaultScope("rg-m", "kv-m2")},
		{"another resource group", "/subscriptions/" + e.srv.Admin.SubscriptionID + "/resourceGroups/rg-m2"},
	}
	roles := []string{rbac.KeyVaultSecretsUserID, rbac.KeyVaultSecretsOfficerID, rbac.KeyVaultReaderID, rbac.KeyVaultAdministratorID,
		rbac.KeyVaultDataAccessAdminID, rbac.KeyVaultContributorID, rbac.OwnerID, rbac.ContributorID, rbac.ReaderID, rbac.UserAccessAdministratorID,
		rbac.KeyVaultCertificateUserID, rbac.KeyVaultCryptoOfficerID}

	// Each operation: the actions it needs, each at a scope (all must be granted), and how to run it.
	type need struct{ action, scope string }
	data := func(action, obj string) need {
		return need{"Microsoft.KeyVault/vaults/secrets/" + action, vault + obj}
	}
	ops := []struct {
		name  string
		needs []need
		data  bool
		run   func() error
	}{
		{"get", []need{data("getSecret/action", "/secrets/s")}, true, func() error { _, err := kv.GetSecret(ctx, "s", "", nil); return err }},
		{"set", []need{data("setSecret/action", "/secrets/s")}, true, func() error {
			_, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v2")}, nil)
			return err
		}},
		{"list", []need{data("readMetadata/action", "/secrets")}, true, func() error {
			_, err := kv.NewListSecretPropertiesPager(nil).NextPage(ctx)
			return err
		}},
		{"versions", []need{data("readMetadata/action", "/secrets/s")}, true, func() error {
			_, err := kv.NewListSecretPropertiesVersionsPager("s", nil).NextPage(ctx)
			return err
		}},
		{"update", []need{data("update/action", "/secrets/s")}, true, func() error {
			_, err := kv.UpdateSecretProperties(ctx, "s", "", azsecrets.UpdateSecretPropertiesParameters{ContentType: to.Ptr("text/plain")}, nil)
			return err
		}},
		{"backup", []need{data("backup/action", "/secrets/s")}, true, func() error { _, err := kv.BackupSecret(ctx, "s", nil); return err }},
		{"delete", []need{data("delete", "/secrets/dl")}, true, func() error { _, err := kv.DeleteSecret(ctx, "dl", nil); return err }},
		{"get deleted", []need{data("readMetadata/action", "/secrets/rec")}, true, func() error { _, err := kv.GetDeletedSecret(ctx, "rec", nil); return err }},
		{"recover", []need{data("recover/action", "/secrets/rec")}, true, func() error { _, err := kv.RecoverDeletedSecret(ctx, "rec", nil); return err }},
		{"purge", []need{data("purge/action", "/secrets/pur")}, true, func() error { _, err := kv.PurgeDeletedSecret(ctx, "pur", nil); return err }},
		{"restore", []need{data("restore/action", "/secrets"), data("restore/action", "/secrets/bk")}, true, func() error {
			_, err := kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: fx.backup}, nil)
			return err
		}},
		{"vault read", []need{{"Microsoft.KeyVault/vaults/read", vault}}, false, func() error { _, err := vaults.Get(ctx, "rg-m", "kv-m1", nil); return err }},
		{"vault write", []need{{"Microsoft.KeyVault/vaults/write", vault}}, false, func() error {
			_, err := vaults.Update(ctx, "rg-m", "kv-m1", armkeyvault.VaultPatchParameters{Tags: map[string]*string{"k": to.Ptr("v")}}, nil)
			return err
		}},
		{"assignment list", []need{{"Microsoft.Authorization/roleAssignments/read", vault}}, false, func() error {
			_, err := whoRBAC.assigns.NewListForScopePager(vault, nil).NextPage(ctx)
			return err
		}},
		{"assign secrets user", []need{{"Microsoft.Authorization/roleAssignments/write", vault}}, false, func() error {
			name, err := whoRBAC.assign(ctx, vault, rbac.KeyVaultSecretsUserID, bystander.objectID)
			if err == nil {
				_, err = admin.assigns.Delete(ctx, vault, name, nil)
			}
			return err
		}},
		{"assign owner", []need{{"Microsoft.Authorization/roleAssignments/write", vault}, {"owner-target", ""}}, false, func() error {
			name, err := whoRBAC.assign(ctx, vault, rbac.OwnerID, bystander.objectID)
			if err == nil {
				_, err = admin.assigns.Delete(ctx, vault, name, nil)
			}
			return err
		}},
	}

	cells, mismatches := 0, 0
	grants := []struct{ name, principal, ptype string }{{"directly", who.objectID, "ServicePrincipal"}, {"through a nested group", outer, "Group"}}
	for _, roleID := range roles {
		role := fetchRole(t, admin, roleID) // the definition as the API serves it
		for _, sc := range scopes {
			for _, via := range grants {
				fx.reset()
				name, err := admin.assignAs(ctx, sc.scope, roleID, via.principal, via.ptype)
				if err != nil {
					t.Fatalf("assigning %s at %s %s: %v", role.name, sc.name, via.name, err)
				}
				for _, op := range ops {
					want := true
					for _, n := range op.needs {
						if n.action == "owner-target" { // the Data Access Administrator's condition
							want = want && !role.conditional
							continue
						}
						want = want && role.allows(n.action, op.data) && scopeContains(sc.scope, n.scope)
					}
					err := op.run()
					cells++
					got, ok := outcome(err, op.data)
					if !ok || got != want {
						mismatches++
						t.Errorf("%s at %s %s: %s: allowed=%v, want %v (%v)", role.name, sc.name, via.name, op.name, got, want, err)
					}
				}
				if _, err := admin.assigns.Delete(ctx, sc.scope, name, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("authorization matrix: %d roles × %d scopes × %d grants × %d operations = %d cells, %d mismatches", len(roles), len(scopes), len(grants), len(ops), cells, mismatches)
}

// servedRole is a role definition read through the API, with its own evaluation of Azure's
// rules (independent of the server's matcher): some permission block allows the action and
// the same block does not exclude it; "*" matches any run of characters, case-insensitively.
type servedRole struct {
	name        string
	perms       []*armauthorization.Permission
	conditional bool // Key Vault Data Access Administrator: may assign only the Key Vault data roles
}

func fetchRole(t *testing.T, c rbacClients, id string) servedRole {
	t.Helper()
	d, err := c.defs.Get(context.Background(), "/", id, nil)
	if err != nil {
		t.Fatalf("role %s: %v", id, err)
	}
	return servedRole{name: *d.Properties.RoleName, perms: d.Properties.Permissions, conditional: id == rbac.KeyVaultDataAccessAdminID}
}

func (r servedRole) allows(action string, data bool) bool {
	for _, p := range r.perms {
		allow, deny := p.Actions, p.NotActions
		if data {
			allow, deny = p.DataActions, p.NotDataActions
		}
		if anyPattern(allow, action) && !anyPattern(deny, action) {
			return true
		}
	}
	return false
}

func anyPattern(patterns []*string, action string) bool {
	for _, p := range patterns {
		re := "(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(*p), `\*`, ".*") + "$"
		if regexp.MustCompile(re).MatchString(action) {
			return true
		}
	}
	return false
}

// outcome classifies an operation's result: allowed (2xx), denied (403 in Key Vault's or ARM's
// words); ok is false for anything else.
func outcome(err error, data bool) (allowed, ok bool) {
	if err == nil {
		return true, true
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 {
		return false, false
	}
	if data {
		return false, strings.Contains(err.Error(), "ForbiddenByRbac")
	}
	return false, re.ErrorCode == "AuthorizationFailed"
}

func scopeContains(parent, child string) bool {
	p, c := strings.ToLower(strings.TrimRight(parent, "/")), strings.ToLower(child)
	return c == p || strings.HasPrefix(c, p+"/")
}

// fixtures keeps the matrix's secrets in the state each round starts from: "s" and "dl" live,
// "rec" and "pur" soft-deleted, "bk" absent (so its backup can be restored).
type fixtures struct {
	t      *testing.T
	kv     *azsecrets.Client
	backup []byte
}

func (f *fixtures) backupOf(name string) []byte {
	ctx := context.Background()
	if _, err := f.kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("b")}, nil); err != nil {
		f.t.Fatal(err)
	}
	b, err := f.kv.BackupSecret(ctx, name, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Value
}

func (f *fixtures) reset() {
	ctx := context.Background()
	for _, n := range []string{"s", "dl"} {
		f.absent(n)
		if _, err := f.kv.SetSecret(ctx, n, azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, n := range []string{"rec", "pur"} {
		f.absent(n)
		if _, err := f.kv.SetSecret(ctx, n, azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.kv.DeleteSecret(ctx, n, nil); err != nil {
			f.t.Fatal(err)
		}
	}
	f.absent("bk")
}

// absent deletes and purges name, live or deleted.
func (f *fixtures) absent(name string) {
	ctx := context.Background()
	if _, err := f.kv.DeleteSecret(ctx, name, nil); err != nil && !isStatus(err, 404) {
		f.t.Fatal(err)
	}
	if _, err := f.kv.PurgeDeletedSecret(ctx, name, nil); err != nil && !isStatus(err, 404) {
		f.t.Fatal(err)
	}
}

func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// TestAccessPolicyVault_DataPlane: on a vault with enableRbacAuthorization false, its access
// policies alone decide the data plane (a role assignment grants nothing there), each secret
// permission allows exactly its operations, and switching the vault to RBAC switches models.
func TestAccessPolicyVault_DataPlane(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	adminKV := e.createVault(t, "rg-ap", "kv-ap", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
	if _, err := adminKV.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err == nil {
		t.Fatal("the admin wrote to an access-policy vault without a policy")
	} else {
		forbiddenBy(t, err, "ForbiddenByPolicy", "does not have secrets set permission on key vault 'kv-ap;location=eastus'")
	}
	app := e.newPrincipal(t, "ap-app")
	kv := e.srv.Secrets("kv-ap", app.cred, e.hc)
	setPolicy := func(kind armkeyvault.AccessPolicyUpdateKind, objectID string, perms ...armkeyvault.SecretPermissions) {
		t.Helper()
		ps := make([]*armkeyvault.SecretPermissions, len(perms))
		for i := range perms {
			ps[i] = &perms[i]
		}
		_, err := e.vaults.UpdateAccessPolicy(ctx, "rg-ap", "kv-ap", kind, armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{
			AccessPolicies: []*armkeyvault.AccessPolicyEntry{{TenantID: to.Ptr(e.srv.Admin.TenantID), ObjectID: to.Ptr(objectID),
				Permissions: &armkeyvault.Permissions{Secrets: ps}}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	adminOID := e.objectIDOf(t, e.cred)
	setPolicy(armkeyvault.AccessPolicyUpdateKindAdd, adminOID, armkeyvault.SecretPermissionsAll)
	if _, err := adminKV.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatalf("admin with 'all': %v", err)
	}

	// A role assignment does not reach an access-policy vault's data plane.
	if _, err := e.rbacClients(t, e.cred).assign(ctx, e.vaultScope("rg-ap", "kv-ap"), rbac.KeyVaultSecretsOfficerID, app.objectID); err != nil {
		t.Fatal(err)
	}
	_, err := kv.GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByPolicy", "does not have secrets get permission")

	setPolicy(armkeyvault.AccessPolicyUpdateKindAdd, app.objectID, armkeyvault.SecretPermissionsGet)
	if got, err := kv.GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "v" {
		t.Fatalf("get with 'get': %v", err)
	}
	_, err = kv.NewListSecretPropertiesPager(nil).NextPage(ctx)
	forbiddenBy(t, err, "ForbiddenByPolicy", "does not have secrets list permission")
	_, err = kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("w")}, nil)
	forbiddenBy(t, err, "ForbiddenByPolicy", "does not have secrets set permission")

	setPolicy(armkeyvault.AccessPolicyUpdateKindAdd, app.objectID, armkeyvault.SecretPermissionsList)
	if _, err := kv.NewListSecretPropertiesPager(nil).NextPage(ctx); err != nil {
		t.Fatalf("list with 'list': %v", err)
	}
	setPolicy(armkeyvault.AccessPolicyUpdateKindRemove, app.objectID, armkeyvault.SecretPermissionsGet)
	_, err = kv.GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByPolicy", "get permission")

	// Switched to RBAC, the policies stop counting and the role assignment starts to.
	if _, err := e.vaults.Update(ctx, "rg-ap", "kv-ap", armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{EnableRbacAuthorization: to.Ptr(true)}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("w")}, nil); err != nil {
		t.Fatalf("secrets officer on an RBAC vault: %v", err)
	}
}

// TestRBAC_DeletedVaultTakesItsAssignments: deleting a vault deletes the role assignments at it
// and below it, as Key Vault does, so recovering it or making a new vault of the same name
// grants nobody the old access.
func TestRBAC_DeletedVaultTakesItsAssignments(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.rbacClients(t, e.cred)
	e.createVault(t, "rg-del", "kv-del", nil)
	app := e.newPrincipal(t, "del-app")
	scope := e.vaultScope("rg-del", "kv-del")
	if _, err := admin.assign(ctx, scope, rbac.KeyVaultSecretsUserID, app.objectID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.assign(ctx, scope+"/secrets/s", rbac.KeyVaultSecretsOfficerID, app.objectID); err != nil {
		t.Fatal(err)
	}
	sub := "/subscriptions/" + e.srv.Admin.SubscriptionID
	count := func() int {
		n := 0
		p := admin.assigns.NewListForScopePager(sub, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("principalId eq '" + app.objectID + "'")})
		for p.More() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d assignments before the delete, want 2", n)
	}
	if _, err := e.vaults.Delete(ctx, "rg-del", "kv-del", nil); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d assignments after the delete, want 0", n)
	}
	e.createVault(t, "rg-del", "kv-del", &armkeyvault.VaultProperties{CreateMode: to.Ptr(armkeyvault.CreateModeRecover)})
	_, err := e.srv.Secrets("kv-del", app.cred, e.hc).GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")
}

// TestAccessPolicy_PermissionMatrix: on an access-policy vault, every secret permission granted
// alone, directly and through a nested group, against every data-plane secret operation; each
// cell allowed exactly when the permission is the one Key Vault requires for the operation (or
// "all"), and a policy on one vault never reaching another.
func TestAccessPolicy_PermissionMatrix(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	off := &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)}
	adminKV := e.createVault(t, "rg-apm", "kv-apm", off)
	e.createVault(t, "rg-apm", "kv-apm2", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
	who := e.newPrincipal(t, "apm")
	outer := e.nestedGroups(t, who.objectID)
	update := func(vault string, kind armkeyvault.AccessPolicyUpdateKind, objectID string, perms ...string) {
		t.Helper()
		ps := make([]*armkeyvault.SecretPermissions, len(perms))
		for i := range perms {
			p := armkeyvault.SecretPermissions(perms[i])
			ps[i] = &p
		}
		_, err := e.vaults.UpdateAccessPolicy(ctx, "rg-apm", vault, kind, armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{
			AccessPolicies: []*armkeyvault.AccessPolicyEntry{{TenantID: to.Ptr(e.srv.Admin.TenantID), ObjectID: to.Ptr(objectID),
				Permissions: &armkeyvault.Permissions{Secrets: ps}}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	adminOID := e.objectIDOf(t, e.cred)
	update("kv-apm", armkeyvault.AccessPolicyUpdateKindAdd, adminOID, "all")
	update("kv-apm2", armkeyvault.AccessPolicyUpdateKindAdd, adminOID, "all")
	if _, err := e.srv.Secrets("kv-apm2", e.cred, e.hc).SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	fx := &fixtures{t: t, kv: adminKV}
	fx.backup = fx.backupOf("bk")
	kv, other := e.srv.Secrets("kv-apm", who.cred, e.hc), e.srv.Secrets("kv-apm2", who.cred, e.hc)
	ops := []struct {
		name, needs string
		run         func() error
	}{
		{"get", "get", func() error { _, err := kv.GetSecret(ctx, "s", "", nil); return err }},
		{"set", "set", func() error {
			_, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v2")}, nil)
			return err
		}},
		{"list", "list", func() error { _, err := kv.NewListSecretPropertiesPager(nil).NextPage(ctx); return err }},
		{"versions", "list", func() error { _, err := kv.NewListSecretPropertiesVersionsPager("s", nil).NextPage(ctx); return err }},
		{"update", "set", func() error {
			_, err := kv.UpdateSecretProperties(ctx, "s", "", azsecrets.UpdateSecretPropertiesParameters{ContentType: to.Ptr("text/plain")}, nil)
			return err
		}},
		{"backup", "backup", func() error { _, err := kv.BackupSecret(ctx, "s", nil); return err }},
		{"delete", "delete", func() error { _, err := kv.DeleteSecret(ctx, "dl", nil); return err }},
		{"get deleted", "get", func() error { _, err := kv.GetDeletedSecret(ctx, "rec", nil); return err }},
		{"recover", "recover", func() error { _, err := kv.RecoverDeletedSecret(ctx, "rec", nil); return err }},
		{"purge", "purge", func() error { _, err := kv.PurgeDeletedSecret(ctx, "pur", nil); return err }},
		{"restore", "restore", func() error {
			_, err := kv.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: fx.backup}, nil)
			return err
		}},
		{"get on another vault", "(none)", func() error { _, err := other.GetSecret(ctx, "s", "", nil); return err }},
	}
	grants := []struct{ name, principal string }{{"directly", who.objectID}, {"through a nested group", outer}}
	cells, mismatches := 0, 0
	for _, perm := range []string{"get", "list", "set", "delete", "backup", "restore", "recover", "purge", "all"} {
		for _, via := range grants {
			fx.reset()
			update("kv-apm", armkeyvault.AccessPolicyUpdateKindAdd, via.principal, perm)
			for _, op := range ops {
				want := op.needs == perm || perm == "all" && op.needs != "(none)"
				err := op.run()
				cells++
				got := err == nil
				var re *azcore.ResponseError
				denied := errors.As(err, &re) && re.StatusCode == 403 && strings.Contains(err.Error(), "ForbiddenByPolicy")
				if got != want || !got && !denied {
					mismatches++
					t.Errorf("%s %s: %s: allowed=%v, want %v (%v)", perm, via.name, op.name, got, want, err)
				}
			}
			update("kv-apm", armkeyvault.AccessPolicyUpdateKindRemove, via.principal) // the whole entry
		}
	}
	t.Logf("access-policy matrix: 9 permissions × %d grants × %d operations = %d cells, %d mismatches", len(grants), len(ops), cells, mismatches)
}

// TestRBAC_EscalationsRefused: the ways a principal with some rights might reach more, each
// refused: widening a custom role held elsewhere from a scope it owns, deleting it from there,
// Azure wildcards reaching the server's operator calls, a custom role naming them, a
// resource group's assignments outliving it, and the Data Access Administrator's condition
// blocking deletes it is meant to allow.
func TestRBAC_EscalationsRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.rbacClients(t, e.cred)
	e.createVault(t, "rg-esc", "kv-esc", nil)
	sub := "/subscriptions/" + e.srv.Admin.SubscriptionID
	vault := e.vaultScope("rg-esc", "kv-esc")
	roleDef := func(c rbacClients, scope, id string, assignable string, actions ...string) error {
		_, err := c.defs.CreateOrUpdate(ctx, scope, id, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
			RoleName: to.Ptr("reader-" + id[:8]), RoleType: to.Ptr("CustomRole"), AssignableScopes: []*string{to.Ptr(assignable)},
			Permissions: []*armauthorization.Permission{{Actions: to.SliceOfPtrs(actions...)}}}}, nil)
		return err
	}

	t.Run("a custom role held elsewhere cannot be widened or deleted from an owned scope", func(t *testing.T) {
		x := e.newPrincipal(t, "esc-owner")
		id := uuid.NewString()
		if err := roleDef(admin, sub, id, sub, "Microsoft.Resources/subscriptions/resourceGroups/read"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.assign(ctx, sub, id, x.objectID); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.assign(ctx, vault, rbac.OwnerID, x.objectID); err != nil {
			t.Fatal(err)
		}
		xc := e.rbacClients(t, x.cred)
		wantStatus(t, roleDef(xc, vault, id, vault, "*"), 403, "AuthorizationFailed")
		_, err := xc.defs.Delete(ctx, vault, id, nil)
		wantStatus(t, err, 403, "AuthorizationFailed")
		_, err = xc.assign(ctx, sub, rbac.OwnerID, x.objectID)
		wantStatus(t, err, 403, "AuthorizationFailed")
		// Narrowing it under an assignment it would leave outside is refused too, for the admin.
		wantStatus(t, roleDef(admin, sub, id, vault, "Microsoft.Resources/subscriptions/resourceGroups/read"), 409, "RoleDefinitionHasAssignments")
	})
	t.Run("Azure wildcards do not reach operator calls, and no custom role may name them", func(t *testing.T) {
		x := e.newPrincipal(t, "esc-contributor")
		if _, err := admin.assign(ctx, "/", rbac.ContributorID, x.objectID); err != nil {
			t.Fatal(err)
		}
		tok, err := x.cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/sys/principals/"+e.objectIDOf(t, e.cred)+"/secrets", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("a Contributor at / minting the admin a secret: %d, want 403", resp.StatusCode)
		}
		wantStatus(t, roleDef(admin, sub, uuid.NewString(), sub, "Strongroom/operator/*"), 400, "InvalidActionOrNotAction")
	})
	t.Run("a deleted resource group takes its assignments", func(t *testing.T) {
		x := e.newPrincipal(t, "esc-rg")
		if _, err := e.groups.CreateOrUpdate(ctx, "rg-doomed", armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
			t.Fatal(err)
		}
		rgScope := sub + "/resourceGroups/rg-doomed"
		if _, err := admin.assign(ctx, rgScope, rbac.OwnerID, x.objectID); err != nil {
			t.Fatal(err)
		}
		poller, err := e.groups.BeginDelete(ctx, "rg-doomed", nil)
		if err == nil {
			_, err = poller.PollUntilDone(ctx, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := admin.assigns.NewListForScopePager(sub, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("principalId eq '" + x.objectID + "'")})
		page, err := p.NextPage(ctx)
		if err != nil || len(page.Value) != 0 {
			t.Fatalf("assignments after the group's deletion: %d, %v", len(page.Value), err)
		}
	})
	t.Run("a Data Access Administrator deletes the assignments it may make", func(t *testing.T) {
		x, y := e.newPrincipal(t, "esc-daa"), e.newPrincipal(t, "esc-daa-target")
		if _, err := admin.assign(ctx, vault, rbac.KeyVaultDataAccessAdminID, x.objectID); err != nil {
			t.Fatal(err)
		}
		xc := e.rbacClients(t, x.cred)
		name, err := xc.assign(ctx, vault, rbac.KeyVaultSecretsUserID, y.objectID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := xc.assigns.Delete(ctx, vault, name, nil); err != nil {
			t.Fatalf("deleting the Secrets User assignment it made: %v", err)
		}
		owner, err := admin.assign(ctx, vault, rbac.OwnerID, y.objectID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = xc.assigns.Delete(ctx, vault, owner, nil)
		wantStatus(t, err, 403, "AuthorizationFailed")
	})
}

// A compound access-policy entry (a user acting through one application) does not match a
// token whose client id was merely sent, unauthenticated, by a public client: anyone may send
// any client id, so only a client that proved itself counts as the application.
func TestAccessPolicy_CompoundIdentityNeedsAnAuthenticatedClient(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.createVault(t, "rg-cmp", "kv-cmp", &armkeyvault.VaultProperties{EnableRbacAuthorization: to.Ptr(false)})
	g := &graphClient{t: t, hc: e.srv.HTTP2Client(), origin: e.publicURL}
	tok := g.token(e.cred)
	alice := g.must(tok, "POST", "/v1.0/users", `{"accountEnabled":true,"displayName":"Alice","mailNickname":"alice","userPrincipalName":"alice@contoso.com","passwordProfile":{"password":"Passw0rd!!"}}`, 201)
	aliceID, _ := alice["id"].(string)
	webapp := e.newPrincipal(t, "webapp")
	adminOID := e.objectIDOf(t, e.cred)
	entries := []*armkeyvault.AccessPolicyEntry{
		{TenantID: to.Ptr(e.srv.Admin.TenantID), ObjectID: to.Ptr(adminOID), Permissions: &armkeyvault.Permissions{Secrets: []*armkeyvault.SecretPermissions{to.Ptr(armkeyvault.SecretPermissionsAll)}}},
		{TenantID: to.Ptr(e.srv.Admin.TenantID), ObjectID: to.Ptr(aliceID), ApplicationID: to.Ptr(webapp.appID),
			Permissions: &armkeyvault.Permissions{Secrets: []*armkeyvault.SecretPermissions{to.Ptr(armkeyvault.SecretPermissionsGet)}}},
	}
	if _, err := e.vaults.UpdateAccessPolicy(ctx, "rg-cmp", "kv-cmp", armkeyvault.AccessPolicyUpdateKindAdd,
		armkeyvault.VaultAccessPolicyParameters{Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: entries}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Secrets("kv-cmp", e.cred, e.hc).SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	// Alice signs in by password naming webapp's client id, without its secret.
	form := url.Values{"grant_type": {"password"}, "client_id": {webapp.appID}, "username": {"alice@contoso.com"}, "password": {"Passw0rd!!"},
		"scope": {"https://vault.localhost:" + strconv.Itoa(e.srv.Port) + "/.default"}}
	resp, err := e.hc.PostForm(e.srv.URL+"/"+e.srv.Admin.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.AccessToken == "" {
		t.Fatalf("password sign-in: HTTP %d %v", resp.StatusCode, err)
	}
	req, _ := http.NewRequest("GET", e.srv.VaultURL("kv-cmp")+"secrets/s?api-version=7.4", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	r2, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 403 || !strings.Contains(string(body), "ForbiddenByPolicy") {
		t.Fatalf("a public client naming webapp's id: %d %s, want 403 ForbiddenByPolicy", r2.StatusCode, body)
	}
}
