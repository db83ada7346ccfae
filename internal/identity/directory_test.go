package identity_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
)

const graphScope = "https://graph.microsoft.com/.default"

// newApp creates an application with a password and its service principal.
func newApp(t *testing.T, s *identity.Service, name string) (identity.Application, identity.ServicePrincipal, identity.PasswordCredential) {
	t.Helper()
	ctx := context.Background()
	app, err := s.CreateApplication(ctx, name)
	if err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	pc, err := s.AddPassword(ctx, app.ID, "ci", time.Time{})
	if err != nil {
		t.Fatalf("AddPassword: %v", err)
	}
	sp, err := s.CreateServicePrincipalForApp(ctx, app.AppID)
	if err != nil {
		t.Fatalf("CreateServicePrincipalForApp: %v", err)
	}
	return app, sp, pc
}

func appToken(t *testing.T, s *identity.Service, appID, secret string) string {
	t.Helper()
	tok, err := s.ClientCredentials(context.Background(), "", appID, secret, vaultScope)
	if err != nil {
		t.Fatalf("ClientCredentials: %v", err)
	}
	return tok.AccessToken
}

func TestDirectory_ApplicationSecretsSignInAndRevoke(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	app, sp, pc := newApp(t, s, "billing-api")
	if app.ID == sp.ID || sp.AppID != app.AppID || sp.ApplicationID != app.ID || !sp.AccountEnabled {
		t.Fatalf("app %+v / sp %+v: want distinct object ids sharing the appId", app, sp)
	}
	if len(pc.SecretText) != 40 || pc.Hint != pc.SecretText[:3] || pc.KeyID == "" || !pc.EndDateTime.After(time.Now().Add(700*24*time.Hour)) {
		t.Fatalf("password credential %+v: want a 40-character secret, its hint and a two-year end", pc)
	}
	got, err := s.GetApplication(ctx, app.AppID) // by appId too
	if err != nil || len(got.PasswordCredentials) != 1 || got.PasswordCredentials[0].SecretText != "" {
		t.Fatalf("GetApplication = %+v, %v: want one credential without its value", got, err)
	}

	tok := appToken(t, s, app.AppID, pc.SecretText)
	c, err := s.Verify(ctx, tok, vaultAudiences)
	if err != nil || c.Principal.ObjectID != sp.ID || c.Principal.Type != identity.TypeServicePrincipal {
		t.Fatalf("Verify = %+v, %v: want the service principal's object id as oid", c.Principal, err)
	}

	// A second password; removing the first revokes only its tokens, at once.
	pc2, err := s.AddPassword(ctx, app.ID, "", time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPassword(ctx, app.ID, "", time.Time{}); !errors.Is(err, identity.ErrObjectConflict) {
		t.Fatalf("third password: %v, want ErrObjectConflict", err)
	}
	tok2 := appToken(t, s, app.AppID, pc2.SecretText)
	if err := s.RemovePassword(ctx, app.ID, pc.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, s, tok); !errors.Is(err, identity.ErrInvalidToken) || !strings.Contains(err.Error(), "credential removed") {
		t.Fatalf("token of a removed password: %v", err)
	}
	mustOK(t, verifyTwice(t, s, tok2))
	if _, err := s.ClientCredentials(ctx, "", app.AppID, pc.SecretText, vaultScope); !errors.Is(err, identity.ErrInvalidClient) {
		t.Fatalf("sign-in with a removed password: %v", err)
	}
	if err := s.RemovePassword(ctx, app.ID, pc.KeyID); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("removing it twice: %v, want ErrInvalidInput", err)
	}

	// Disabling the service principal (Graph's accountEnabled) revokes; enabling gives new tokens.
	if _, err := s.SetServicePrincipalEnabled(ctx, sp.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, s, tok2); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a disabled service principal: %v", err)
	}
	if _, err := s.SetServicePrincipalEnabled(ctx, sp.ID, true); err != nil {
		t.Fatal(err)
	}
	tok3 := appToken(t, s, app.AppID, pc2.SecretText)

	// Deleting the service principal keeps the application; the app cannot sign in.
	if err := s.DeletePrincipal(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, s, tok3); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a deleted service principal: %v", err)
	}
	if _, err := s.ClientCredentials(ctx, "", app.AppID, pc2.SecretText, vaultScope); !errors.Is(err, identity.ErrUnknownClient) {
		t.Fatalf("sign-in without a service principal: %v", err)
	}
	sp2, err := s.CreateServicePrincipalForApp(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateServicePrincipalForApp(ctx, app.AppID); !errors.Is(err, identity.ErrObjectConflict) {
		t.Fatalf("second service principal: %v", err)
	}
	tok4 := appToken(t, s, app.AppID, pc2.SecretText)

	// Deleting the application deletes its service principal too.
	if err := s.DeleteApplication(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if err := verifyTwice(t, s, tok4); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a deleted application: %v", err)
	}
	if _, err := s.GetServicePrincipal(ctx, sp2.ID); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Fatalf("service principal after its application's deletion: %v", err)
	}
}

func TestDirectory_CreateRefusals(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	if _, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "alice@contoso.com", DisplayName: "Alice", Password: "Passw0rd!!", AccountEnabled: true}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"app without a name", func() error { _, err := s.CreateApplication(ctx, " "); return err }, identity.ErrInvalidInput},
		{"app name with control characters", func() error { _, err := s.CreateApplication(ctx, "a\nb"); return err }, identity.ErrInvalidInput},
		{"sp for an unknown app", func() error {
			_, err := s.CreateServicePrincipalForApp(ctx, "00000000-0000-0000-0000-000000000001")
			return err
		}, identity.ErrInvalidInput},
		{"password ending in the past", func() error {
			app, _ := s.CreateApplication(ctx, "x")
			_, err := s.AddPassword(ctx, app.ID, "", time.Now().Add(-time.Hour))
			return err
		}, identity.ErrInvalidInput},
		{"password for an unknown app", func() error {
			_, err := s.AddPassword(ctx, "00000000-0000-0000-0000-000000000001", "", time.Time{})
			return err
		}, identity.ErrObjectNotFound},
		{"user without @", func() error {
			_, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "alice", DisplayName: "A", Password: "Passw0rd!!"})
			return err
		}, identity.ErrInvalidInput},
		{"user with a slash", func() error {
			_, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "a/b@contoso.com", DisplayName: "A", Password: "Passw0rd!!"})
			return err
		}, identity.ErrInvalidInput},
		{"user with a weak password", func() error {
			_, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "bob@contoso.com", DisplayName: "B", Password: "password"})
			return err
		}, identity.ErrInvalidInput},
		{"UPN taken in another case", func() error {
			_, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "ALICE@Contoso.com", DisplayName: "A2", Password: "Passw0rd!!"})
			return err
		}, identity.ErrObjectConflict},
		{"group without mailNickname", func() error {
			_, err := s.CreateGroup(ctx, identity.GroupInput{DisplayName: "sre", SecurityEnabled: true})
			return err
		}, identity.ErrInvalidInput},
		{"member of an unknown group", func() error {
			return s.AddMember(ctx, "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002")
		}, identity.ErrObjectNotFound},
		{"role with an unknown template", func() error {
			_, err := s.AssignDirectoryRole(ctx, s.AdminObjectID(), "00000000-0000-0000-0000-000000000003", "/")
			return err
		}, identity.ErrInvalidInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var ie *identity.InputError
			if errors.Is(c.want, identity.ErrInvalidInput) && (!errors.As(err, &ie) || ie.Msg == "") {
				t.Fatalf("err = %v: want an *InputError with a message", err)
			}
		})
	}
	// Nothing half-written: the refused user left no UPN behind, the taken UPN still resolves.
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 {
		t.Fatalf("ListUsers = %d users, %v; want 1", len(users), err)
	}
	if oid, typ, err := s.ResolvePrincipal(ctx, "Alice@CONTOSO.com"); err != nil || oid != users[0].ID || typ != identity.TypeUser {
		t.Fatalf("ResolvePrincipal by UPN = %q %q %v", oid, typ, err)
	}
}

// Transitive membership through nesting, cycles and diamonds; removal counts at once.
func TestDirectory_GroupsOfTransitive(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	u, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "u@contoso.com", DisplayName: "U", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	g := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		grp, err := s.CreateGroup(ctx, identity.GroupInput{DisplayName: n, MailNickname: n, SecurityEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		g[n] = grp.ID
	}
	add := func(parent, member string) {
		t.Helper()
		if err := s.AddMember(ctx, parent, member); err != nil {
			t.Fatalf("AddMember: %v", err)
		}
	}
	add(g["a"], u.ID)   // u ∈ a
	add(g["b"], g["a"]) // a ∈ b
	add(g["c"], g["b"]) // b ∈ c
	add(g["a"], g["c"]) // c ∈ a: a cycle a→b→c→a
	add(g["d"], g["a"]) // a ∈ d and
	add(g["d"], g["b"]) // b ∈ d: a diamond
	want := func(id string, names ...string) {
		t.Helper()
		var ids []string
		for _, n := range names {
			ids = append(ids, g[n])
		}
		slices.Sort(ids)
		if got := s.GroupsOf(id); !slices.Equal(got, ids) {
			t.Fatalf("GroupsOf = %v, want %v", got, ids)
		}
	}
	want(u.ID, "a", "b", "c", "d")
	want(g["c"], "a", "b", "d")
	want(g["e"])
	if got := s.GroupsOf("not-an-object"); got != nil {
		t.Fatalf("GroupsOf(unknown) = %v", got)
	}
	if err := s.AddMember(ctx, g["a"], u.ID); !errors.Is(err, identity.ErrObjectConflict) {
		t.Fatalf("adding a member twice: %v", err)
	}
	if err := s.AddMember(ctx, g["a"], g["a"]); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("group in itself: %v", err)
	}
	if got := s.CheckMemberGroups(u.ID, []string{g["c"], g["e"]}); !slices.Equal(got, []string{g["c"]}) {
		t.Fatalf("CheckMemberGroups = %v", got)
	}
	members, err := s.ListMembers(ctx, g["a"])
	if err != nil || len(members) != 2 {
		t.Fatalf("ListMembers(a) = %+v, %v; want the user and group c", members, err)
	}

	if err := s.RemoveMember(ctx, g["b"], g["a"]); err != nil {
		t.Fatal(err)
	}
	want(u.ID, "a", "d") // b and c only through a ∈ b, now gone; d directly
	if err := s.RemoveMember(ctx, g["b"], g["a"]); !errors.Is(err, identity.ErrObjectNotFound) {
		t.Fatalf("removing a non-member: %v", err)
	}
	if err := s.DeleteGroup(ctx, g["d"]); err != nil {
		t.Fatal(err)
	}
	want(u.ID, "a")
	if typ, ok := s.PrincipalType(g["a"]); !ok || typ != identity.TypeGroup {
		t.Fatalf("PrincipalType(group) = %q %v", typ, ok)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	want(u.ID)
	if members, _ := s.ListMembers(ctx, g["a"]); len(members) != 1 {
		t.Fatalf("members of a after the user's deletion = %+v, want group c only", members)
	}
}

// Another node (a second service on the store) sees directory writes once told the keys were
// applied: memberships, secrets, users and directory roles, with no store read per request.
func TestDirectory_KeysAppliedOnOtherNode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writer := e.service(t, identity.Options{}, false)
	other := e.service(t, identity.Options{}, false)
	if _, _, err := writer.EnsureBootstrap(ctx); err != nil {
		t.Fatal(err)
	}

	app, sp, pc := newApp(t, writer, "replicated")
	u, err := writer.CreateUser(ctx, identity.UserInput{UserPrincipalName: "u@contoso.com", DisplayName: "U", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	grp, err := writer.CreateGroup(ctx, identity.GroupInput{DisplayName: "g", MailNickname: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.AddMember(ctx, grp.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	ra, err := writer.AssignDirectoryRole(ctx, u.ID, identity.RoleGroupsAdministrator, "/")
	if err != nil {
		t.Fatal(err)
	}
	// The refresh-everything marker picks up all of it (as after a restore).
	if err := other.KeysApplied(ctx, []string{keyring.RingKey}); err != nil {
		t.Fatal(err)
	}
	tok := appToken(t, writer, app.AppID, pc.SecretText)
	mustOK(t, verifyTwice(t, other, tok))
	if got := other.GroupsOf(u.ID); !slices.Equal(got, []string{grp.ID}) {
		t.Fatalf("other GroupsOf = %v", got)
	}
	if err := other.AuthorizeDirectoryWrite(u.ID, identity.DirWriteGroups); err != nil {
		t.Fatalf("other node: groups administrator refused: %v", err)
	}
	if err := other.AuthorizeDirectoryWrite(u.ID, identity.DirWriteUsers); !errors.Is(err, identity.ErrDirectoryForbidden) {
		t.Fatalf("other node: groups administrator writing users: %v", err)
	}
	if oid, typ, err := other.ResolvePrincipal(ctx, app.AppID); err != nil || oid != sp.ID || typ != identity.TypeServicePrincipal {
		t.Fatalf("other ResolvePrincipal(appId) = %q %q %v", oid, typ, err)
	}

	// Each change, applied by key, counts on the other node's next call.
	steps := []struct {
		name  string
		write func() error
		keys  []string
		check func() error
	}{
		{"member removed", func() error { return writer.RemoveMember(ctx, grp.ID, u.ID) },
			[]string{"id/member/" + grp.ID + "/" + u.ID}, func() error {
				if got := other.GroupsOf(u.ID); got != nil {
					return fmt.Errorf("GroupsOf = %v, want none", got)
				}
				return nil
			}},
		{"role removed", func() error { return writer.DeleteDirectoryRoleAssignment(ctx, ra.ID) },
			[]string{"id/dirrole/" + ra.ID}, func() error {
				if err := other.AuthorizeDirectoryWrite(u.ID, identity.DirWriteGroups); !errors.Is(err, identity.ErrDirectoryForbidden) {
					return fmt.Errorf("authorized after the role's removal: %v", err)
				}
				return nil
			}},
		{"secret removed", func() error { return writer.RemovePassword(ctx, app.ID, pc.KeyID) },
			[]string{"id/application/" + app.ID}, func() error {
				if err := verifyTwice(t, other, tok); !errors.Is(err, identity.ErrInvalidToken) {
					return fmt.Errorf("token of a removed secret verified: %v", err)
				}
				return nil
			}},
		{"user deleted", func() error { return writer.DeleteUser(ctx, u.ID) },
			[]string{"id/user/" + u.ID}, func() error {
				if _, ok := other.PrincipalType(u.ID); ok {
					return fmt.Errorf("deleted user still known")
				}
				return nil
			}},
	}
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if err := other.KeysApplied(ctx, st.keys); err != nil {
			t.Fatalf("%s: KeysApplied: %v", st.name, err)
		}
		if err := st.check(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
}

func TestDirectory_Roles(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	b, _, err := s.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, sp, _ := newApp(t, s, "app-admin")
	for _, p := range []identity.DirPermission{identity.DirWriteApplications, identity.DirWriteUsers, identity.DirWriteGroups, identity.DirWriteRoles} {
		if err := s.AuthorizeDirectoryWrite(b.ObjectID, p); err != nil {
			t.Fatalf("bootstrap admin refused %d: %v", p, err)
		}
		if err := s.AuthorizeDirectoryWrite(sp.ID, p); !errors.Is(err, identity.ErrDirectoryForbidden) {
			t.Fatalf("principal without a role allowed %d: %v", p, err)
		}
	}
	ra, err := s.AssignDirectoryRole(ctx, sp.ID, identity.RoleApplicationAdministrator, "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignDirectoryRole(ctx, sp.ID, identity.RoleApplicationAdministrator, "/"); !errors.Is(err, identity.ErrObjectConflict) {
		t.Fatalf("duplicate assignment: %v", err)
	}
	if err := s.AuthorizeDirectoryWrite(sp.ID, identity.DirWriteApplications); err != nil {
		t.Fatal(err)
	}
	if err := s.AuthorizeDirectoryWrite(sp.ID, identity.DirWriteUsers); err == nil {
		t.Fatal("application administrator may write users")
	}
	list := s.ListDirectoryRoleAssignments()
	if len(list) != 2 || list[0].PrincipalID != b.ObjectID || list[0].RoleDefinitionID != identity.RoleGlobalAdministrator || list[1].ID != ra.ID {
		t.Fatalf("ListDirectoryRoleAssignments = %+v", list)
	}
	if err := s.DeleteDirectoryRoleAssignment(ctx, list[0].ID); !errors.Is(err, identity.ErrProtectedPrincipal) {
		t.Fatalf("deleting the bootstrap admin's role: %v", err)
	}
	// Deleting the principal deletes its assignments in the same write.
	if err := s.DeletePrincipal(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if got := s.ListDirectoryRoleAssignments(); len(got) != 1 {
		t.Fatalf("assignments after the principal's deletion = %+v", got)
	}
}

func TestDirectory_ServesResource(t *testing.T) {
	s := newEnv(t).service(t, identity.Options{}, false)
	for res, want := range map[string]bool{
		"https://vault.azure.net":              true,
		"https://vault.azure.net/":             true,
		"https://vault.localhost:8443":         true,
		"https://vault.localhost:9443":         true, // another node's port
		"https://vault.localhost":              true,
		"https://management.core.windows.net/": true,
		"https://management.azure.com":         true,
		"https://graph.microsoft.com":          true,
		"https://GRAPH.microsoft.com/":         true,
		"https://localhost:8443":               true,
		"https://localhost:8443/":              true,
		"https://evil.example":                 false,
		"https://vault.localhost.evil.example": false,
		"http://vault.localhost:8443":          false,
		"https://vault.localhost:8443/path":    false,
		"https://x.vault.localhost:8443":       false,
		"api://strongroom":                     false,
		"https://vault.localhost:99999":        false,
	} {
		if got := s.ServesResource(res); got != want {
			t.Errorf("ServesResource(%q) = %v, want %v", res, got, want)
		}
	}
	_, err := s.ClientCredentials(context.Background(), "", "00000000-0000-0000-0000-000000000001", "x", "https://evil.example/.default")
	if !errors.Is(err, identity.ErrUnknownResource) {
		t.Fatalf("token for an unserved resource: %v", err)
	}
}

func TestDirectory_PasswordSignIn(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	u, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "Alice@Contoso.com", DisplayName: "Alice", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	grp, _ := s.CreateGroup(ctx, identity.GroupInput{DisplayName: "sre", MailNickname: "sre", SecurityEnabled: true})
	if err := s.AddMember(ctx, grp.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	const azClient = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
	req := identity.PasswordRequest{ClientID: azClient, Username: "alice@contoso.com", Password: "Passw0rd!!",
		Scope: "https://management.core.windows.net//.default offline_access openid profile", RemoteIP: "192.0.2.1"}
	tok, err := s.PasswordToken(ctx, req)
	if err != nil {
		t.Fatalf("PasswordToken: %v", err)
	}
	c, err := s.Verify(ctx, tok.AccessToken, []string{"https://management.core.windows.net/"})
	if err != nil || c.Principal.ObjectID != u.ID || c.Principal.Type != identity.TypeUser || c.UPN != "Alice@Contoso.com" ||
		c.IdentityType != "user" || c.Principal.AppID != azClient || c.Principal.DisplayName != "Alice" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	claims := decodeClaims(t, tok.AccessToken)
	if claims["scp"] != "user_impersonation" || fmt.Sprint(claims["groups"]) != "["+grp.ID+"]" || claims["tid"] != s.TenantID() {
		t.Fatalf("claims = %v", claims)
	}

	cases := []struct {
		name string
		req  func(r identity.PasswordRequest) identity.PasswordRequest
		want error
	}{
		{"wrong password", func(r identity.PasswordRequest) identity.PasswordRequest { r.Password = "Passw0rd!?"; return r }, identity.ErrInvalidGrant},
		{"unknown user", func(r identity.PasswordRequest) identity.PasswordRequest { r.Username = "bob@contoso.com"; return r }, identity.ErrUnknownUser},
		{"not a client id", func(r identity.PasswordRequest) identity.PasswordRequest { r.ClientID = "az"; return r }, identity.ErrInvalidClient},
		{"unserved resource", func(r identity.PasswordRequest) identity.PasswordRequest {
			r.Scope = "https://evil.example/.default"
			return r
		}, identity.ErrUnknownResource},
		{"no scope", func(r identity.PasswordRequest) identity.PasswordRequest { r.Scope = "openid"; return r }, identity.ErrInvalidScope},
		{"other tenant", func(r identity.PasswordRequest) identity.PasswordRequest { r.Tenant = "contoso"; return r }, identity.ErrUnknownTenant},
	}
	for _, tc := range cases {
		if _, err := s.PasswordToken(ctx, tc.req(req)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}

	// A new password revokes the old one's tokens.
	if _, err := s.SetUserPassword(ctx, u.ID, "short"); !errors.Is(err, identity.ErrInvalidInput) {
		t.Fatalf("weak new password: %v", err)
	}
	if _, err := s.SetUserPassword(ctx, u.ID, "N3w-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	if err := verifyAud(s, tok.AccessToken); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a replaced password: %v", err)
	}
	if _, err := s.PasswordToken(ctx, req); !errors.Is(err, identity.ErrInvalidGrant) {
		t.Fatalf("old password signs in: %v", err)
	}
	req.Password = "N3w-Passw0rd"
	if tok, err = s.PasswordToken(ctx, req); err != nil {
		t.Fatal(err)
	}

	// Disabling revokes at once; deleting too; the lockout applies as for client secrets.
	if _, err := s.SetUserEnabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := verifyAud(s, tok.AccessToken); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a disabled user: %v", err)
	}
	if _, err := s.PasswordToken(ctx, req); !errors.Is(err, identity.ErrUserDisabled) {
		t.Fatalf("disabled user signs in: %v", err)
	}
	if _, err := s.SetUserEnabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	bad := req
	bad.Password, bad.RemoteIP = "Wr0ng-pass1", "198.51.100.7"
	for range identity.ClientFailureLimit {
		if _, err := s.PasswordToken(ctx, bad); !errors.Is(err, identity.ErrInvalidGrant) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	before := s.HashCount()
	if _, err := s.PasswordToken(ctx, bad); !errors.Is(err, identity.ErrLockedOut) {
		t.Fatalf("after %d failures: %v, want ErrLockedOut", identity.ClientFailureLimit, err)
	}
	if s.HashCount() != before {
		t.Fatal("a locked-out sign-in was hashed")
	}
	// The familiar source (where Alice signed in) is not locked out by the stranger's guesses.
	tok2, err := s.PasswordToken(ctx, req)
	if err != nil {
		t.Fatalf("familiar source locked out: %v", err)
	}
	if err := s.DeleteUser(ctx, "ALICE@contoso.com"); err != nil {
		t.Fatal(err)
	}
	if err := verifyAud(s, tok2.AccessToken); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("token of a deleted user: %v", err)
	}
}

func verifyAud(s *identity.Service, tok string) error {
	_, err := s.Verify(context.Background(), tok, []string{"https://management.core.windows.net/"})
	return err
}

// Past 200 groups a user token carries the overage claim instead of the list.
func TestDirectory_GroupsOverage(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	u, _ := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "u@contoso.com", DisplayName: "U", Password: "Passw0rd!!", AccountEnabled: true})
	prev := u.ID
	for i := range 201 {
		g, err := s.CreateGroup(ctx, identity.GroupInput{DisplayName: fmt.Sprint("g", i), MailNickname: fmt.Sprint("g", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, g.ID, prev); err != nil {
			t.Fatal(err)
		}
		prev = g.ID
	}
	if n := len(s.GroupsOf(u.ID)); n != 201 {
		t.Fatalf("GroupsOf has %d groups, want 201", n)
	}
	tok, err := s.PasswordToken(ctx, identity.PasswordRequest{ClientID: "04b07795-8ddb-461a-bbee-02f9e1bf7b46", Username: "u@contoso.com",
		Password: "Passw0rd!!", Scope: graphScope})
	if err != nil {
		t.Fatal(err)
	}
	c := decodeClaims(t, tok.AccessToken)
	if _, ok := c["groups"]; ok || c["_claim_names"] == nil || c["_claim_sources"] == nil {
		t.Fatalf("claims = %v: want the overage claim and no groups", c)
	}
}

func decodeClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	_, c := payloadOf(t, raw)
	return c
}

// BenchmarkGroupsOf measures the authorization path's question at 200 nested groups: a user in
// the innermost of a chain of 100 and in 100 more flat groups, each also holding other members.
func BenchmarkGroupsOf(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	s, err := identity.New(ctx, e.st, e.kr, identity.FastKDF(identity.Options{PublicURL: testPublicURL}))
	if err != nil {
		b.Fatal(err)
	}
	u, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "u@contoso.com", DisplayName: "U", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		b.Fatal(err)
	}
	prev := u.ID
	for i := range 200 {
		g, err := s.CreateGroup(ctx, identity.GroupInput{DisplayName: fmt.Sprint("g", i), MailNickname: fmt.Sprint("g", i)})
		if err != nil {
			b.Fatal(err)
		}
		member := prev
		if i >= 100 {
			member = u.ID // flat
		}
		if err := s.AddMember(ctx, g.ID, member); err != nil {
			b.Fatal(err)
		}
		if i < 100 {
			prev = g.ID // nested chain
		}
	}
	if n := len(s.GroupsOf(u.ID)); n != 200 {
		b.Fatalf("GroupsOf = %d groups, want 200", n)
	}
	b.Run("cached-serial", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if len(s.GroupsOf(u.ID)) != 200 {
				b.Fatal("wrong answer")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if len(s.GroupsOf(u.ID)) != 200 {
					b.Fatal("wrong answer")
				}
			}
		})
	})
	b.Run("after-change", func(b *testing.B) {
		// The first call after a membership change walks the graph again.
		b.ReportAllocs()
		for range b.N {
			identity.InvalidateGroups(s)
			if len(s.GroupsOf(u.ID)) != 200 {
				b.Fatal("wrong answer")
			}
		}
	})
}

// Concurrent membership writes and GroupsOf readers: no race, and the final answer matches
// the final memberships.
func TestDirectory_ConcurrentMembership(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).service(t, identity.Options{}, false)
	u, err := s.CreateUser(ctx, identity.UserInput{UserPrincipalName: "u@contoso.com", DisplayName: "U", Password: "Passw0rd!!", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for i := range 8 {
		g, err := s.CreateGroup(ctx, identity.GroupInput{DisplayName: fmt.Sprint("g", i), MailNickname: fmt.Sprint("g", i)})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g.ID)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			_ = s.GroupsOf(u.ID)
		}
	}()
	errs := make(chan error, len(groups))
	for i, g := range groups {
		go func() {
			err := s.AddMember(ctx, g, u.ID)
			if err == nil && i%2 == 1 {
				err = s.RemoveMember(ctx, g, u.ID)
			}
			errs <- err
		}()
	}
	for range groups {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	var want []string
	for i, g := range groups {
		if i%2 == 0 {
			want = append(want, g)
		}
	}
	slices.Sort(want)
	if got := s.GroupsOf(u.ID); !slices.Equal(got, want) {
		t.Fatalf("GroupsOf = %v, want %v", got, want)
	}
}
