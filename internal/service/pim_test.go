package service_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// The principals of the PIM tests (GUIDs, as PIM requests need).
const (
	pimAdmin = "aaaaaaaa-0000-4000-8000-000000000001"
	pimBob   = "bbbbbbbb-0000-4000-8000-000000000002" // eligible
	pimCarol = "cccccccc-0000-4000-8000-000000000003" // approver
	pimDave  = "dddddddd-0000-4000-8000-000000000004" // bystander
	pimSRE   = "eeeeeeee-0000-4000-8000-000000000005" // a group bob is in
	pimSub   = "/subscriptions/sub"
	pimRG    = "/subscriptions/sub/resourceGroups/rg"
	pimRG2   = "/subscriptions/sub/resourceGroups/rg2"
	getData  = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
)

type pimEnv struct {
	t      *testing.T
	svc    *service.Service
	roles  *rbac.Service
	clk    *clock
	groups map[string][]string
}

func newPIMEnv(t *testing.T) *pimEnv {
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
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	roles, err := rbac.New(ctx, st, kr, rbac.Options{AdminObjectID: pimAdmin, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{pimBob: {pimSRE}}
	svc, err := service.New(ctx, st, kr, service.Options{SubscriptionID: "sub", TenantID: tenant,
		VaultURI:   func(n string) string { return "https://" + n + ".vault.localhost" },
		Authorizer: roles, Roles: roles, Now: clk.Now,
		GroupsOf: func(oid string) []string { return groups[strings.ToLower(oid)] }})
	if err != nil {
		t.Fatal(err)
	}
	e := &pimEnv{t: t, svc: svc, roles: roles, clk: clk, groups: groups}
	for _, rg := range []string{"rg", "rg2"} {
		if _, _, err := svc.PutResourceGroup(e.as(pimAdmin), rg, "eastus", nil); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *pimEnv) as(oid string) context.Context {
	return service.WithCaller(context.Background(), service.Caller{ObjectID: oid, TenantID: tenant})
}

// canRead asks the authorizer, by the clock, whether oid may read a secret of a vault in rg.
func (e *pimEnv) canRead(oid string) bool {
	return e.roles.Decide(authz.Request{PrincipalID: oid, Groups: e.groups[oid], Action: getData, DataAction: true,
		Scope: pimRG + "/providers/Microsoft.KeyVault/vaults/kv/secrets/s"}).Allowed
}

func (e *pimEnv) eligible(principal, scope, duration string) rbac.ScheduleRequest {
	e.t.Helper()
	r, err := e.svc.RequestRoleEligibility(e.as(pimAdmin), scope, uuid.NewString(), service.ScheduleRequestInput{
		PrincipalID: principal, RoleDefinitionID: "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.KeyVaultSecretsUserID,
		RequestType: "AdminAssign", Schedule: service.ScheduleInfo{ExpirationType: "AfterDuration", Duration: duration}})
	if err != nil {
		e.t.Fatalf("AdminAssign: %v", err)
	}
	if r.Status != rbac.StatusProvisioned || r.TargetSchedule == "" {
		e.t.Fatalf("AdminAssign = %+v", r)
	}
	return r
}

func (e *pimEnv) activate(who, scope, duration, justification string) (rbac.ScheduleRequest, error) {
	return e.svc.RequestRoleAssignment(e.as(who), scope, uuid.NewString(), service.ScheduleRequestInput{
		PrincipalID: who, RoleDefinitionID: rbac.KeyVaultSecretsUserID, RequestType: "SelfActivate", Justification: justification,
		Schedule: service.ScheduleInfo{ExpirationType: "AfterDuration", Duration: duration}})
}

func (e *pimEnv) deactivate(who, scope string) (rbac.ScheduleRequest, error) {
	return e.svc.RequestRoleAssignment(e.as(who), scope, uuid.NewString(), service.ScheduleRequestInput{
		PrincipalID: who, RoleDefinitionID: rbac.KeyVaultSecretsUserID, RequestType: "SelfDeactivate"})
}

func (e *pimEnv) setPolicy(scope string, rules ...service.PolicyRuleInput) {
	e.t.Helper()
	if _, err := e.svc.UpdateRoleManagementPolicy(e.as(pimAdmin), scope, rbac.PolicyName(scope, rbac.KeyVaultSecretsUserID), rules); err != nil {
		e.t.Fatalf("policy: %v", err)
	}
}

func wantCode(t *testing.T, err error, kind error, code, inMessage string) {
	t.Helper()
	var e *service.Error
	if !errors.As(err, &e) || !errors.Is(err, kind) || e.Code != code || !strings.Contains(e.Message, inMessage) {
		t.Fatalf("err = %v (%#v), want %v %s mentioning %q", err, e, kind, code, inMessage)
	}
}

func (e *pimEnv) mySchedules(who string) []rbac.Activation {
	e.t.Helper()
	list, err := e.svc.ListRoleAssignmentSchedules(e.as(who), pimSub, service.PIMFilter{AsTarget: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// TestPIM_ActivationWindow: denied before activation, allowed during, denied after expiry by
// the clock alone, allowed again after a new activation and denied on the request after an
// early deactivation.
func TestPIM_ActivationWindow(t *testing.T) {
	e := newPIMEnv(t)
	e.eligible(pimBob, pimSub, "P30D")
	if e.canRead(pimBob) {
		t.Fatal("eligible but not activated: allowed")
	}
	if elig, err := e.svc.ListRoleEligibilitySchedules(e.as(pimBob), pimRG, service.PIMFilter{AsTarget: true}); err != nil || len(elig) != 1 {
		t.Fatalf("own eligibilities: %v %v", elig, err)
	}
	r, err := e.activate(pimBob, pimRG, "PT1H", "incident 42")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != rbac.StatusProvisioned || r.LinkedEligibility == "" {
		t.Fatalf("activation = %+v", r)
	}
	if !e.canRead(pimBob) {
		t.Fatal("activated: denied")
	}
	if list, err := e.svc.ListRoleAssignments(e.as(pimAdmin), pimRG, service.AssignmentFilter{PrincipalID: pimBob}); err != nil || len(list) != 1 ||
		!list[0].EndsAt.Equal(e.clk.Now().Add(time.Hour)) {
		t.Fatalf("role assignments while active: %+v, %v", list, err)
	}
	if got := e.mySchedules(pimBob); len(got) != 1 || !got[0].EndsAt.Equal(e.clk.Now().Add(time.Hour)) || got[0].MemberType != "Direct" {
		t.Fatalf("schedules = %+v", got)
	}
	if _, err := e.activate(pimBob, pimRG, "PT1H", "again"); err == nil {
		t.Fatal("a second activation while the first runs was accepted")
	}
	e.clk.Advance(59 * time.Minute)
	if !e.canRead(pimBob) {
		t.Fatal("denied before the end of the window")
	}
	e.clk.Advance(time.Minute)
	if e.canRead(pimBob) {
		t.Fatal("allowed at the end of the window")
	}
	if got := e.mySchedules(pimBob); len(got) != 0 {
		t.Fatalf("expired activation still listed: %+v", got)
	}
	if list, err := e.svc.ListRoleAssignments(e.as(pimAdmin), pimRG, service.AssignmentFilter{PrincipalID: pimBob}); err != nil || len(list) != 0 {
		t.Fatalf("role assignments after expiry: %+v, %v", list, err) // an ended activation is no assignment
	}

	// Again (the expired one is replaced), then ended early.
	if _, err := e.activate(pimBob, pimRG, "PT2H", "incident 43"); err != nil {
		t.Fatal(err)
	}
	if !e.canRead(pimBob) {
		t.Fatal("second activation: denied")
	}
	if _, err := e.deactivate(pimDave, pimRG); err == nil {
		t.Fatal("a bystander deactivated nothing successfully")
	}
	d, err := e.deactivate(pimBob, pimRG)
	if err != nil || d.Status != rbac.StatusRevoked {
		t.Fatalf("deactivate = %+v, %v", d, err)
	}
	if e.canRead(pimBob) {
		t.Fatal("allowed after deactivation")
	}
	_, err = e.deactivate(pimBob, pimRG)
	wantCode(t, err, service.ErrNotFound, "RoleAssignmentDoesNotExist", "no active activation")
}

// TestPIM_ActivationRefused: every policy rule and eligibility check refuses, and a refused
// request grants nothing.
func TestPIM_ActivationRefused(t *testing.T) {
	e := newPIMEnv(t)
	e.eligible(pimBob, pimRG, "P30D")
	cases := []struct {
		name, who, scope, duration, justification string
		setup                                     func()
		kind                                      error
		code, msg                                 string
	}{
		{"over the default maximum", pimBob, pimRG, "PT9H", "j", nil, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "ExpirationRule"},
		{"no justification", pimBob, pimRG, "PT1H", " ", nil, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "JustificationRule"},
		{"not a duration", pimBob, pimRG, "8 hours", "j", nil, service.ErrBadRequest, "InvalidScheduleInfo", "ISO 8601"},
		{"not eligible", pimDave, pimRG, "PT1H", "j", nil, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule"},
		{"above the eligibility", pimBob, pimSub, "PT1H", "j", nil, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule"},
		{"beside the eligibility", pimBob, pimRG2, "PT1H", "j", nil, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule"},
		{"over a lowered maximum", pimBob, pimRG, "PT3H", "j", func() {
			e.setPolicy(pimRG, service.PolicyRuleInput{ID: service.RuleExpirationEndUser, MaximumDuration: ptr("PT2H")})
		}, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "PT2H"},
		{"ticket required", pimBob, pimRG, "PT1H", "j", func() {
			e.setPolicy(pimRG, service.PolicyRuleInput{ID: service.RuleEnablementEndUser, EnabledRules: &[]string{"Justification", "Ticketing"}})
		}, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "TicketingRule"},
		{"justification required by the subscription's policy", pimBob, pimRG, "PT1H", "", func() {
			e.setPolicy(pimRG, service.PolicyRuleInput{ID: service.RuleEnablementEndUser, EnabledRules: &[]string{}})
			e.setPolicy(pimSub, service.PolicyRuleInput{ID: service.RuleEnablementEndUser, EnabledRules: &[]string{"Justification"}})
		}, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "JustificationRule"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			_, err := e.activate(c.who, c.scope, c.duration, c.justification)
			wantCode(t, err, c.kind, c.code, c.msg)
			if e.canRead(c.who) || len(e.mySchedules(c.who)) != 0 {
				t.Fatal("a refused activation granted")
			}
		})
	}
	t.Run("someone else's activation", func(t *testing.T) {
		_, err := e.svc.RequestRoleAssignment(e.as(pimDave), pimRG, uuid.NewString(), service.ScheduleRequestInput{
			PrincipalID: pimBob, RoleDefinitionID: rbac.KeyVaultSecretsUserID, RequestType: "SelfActivate", Justification: "j",
			Schedule: service.ScheduleInfo{Duration: "PT1H"}})
		wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "its own roles")
	})
	t.Run("MFA cannot be required", func(t *testing.T) {
		_, err := e.svc.UpdateRoleManagementPolicy(e.as(pimAdmin), pimRG, rbac.PolicyName(pimRG, rbac.KeyVaultSecretsUserID),
			[]service.PolicyRuleInput{{ID: service.RuleEnablementEndUser, EnabledRules: &[]string{"MultiFactorAuthentication"}}})
		wantCode(t, err, service.ErrBadRequest, "MultiFactorAuthenticationNotSupported", "multi-factor")
	})
	t.Run("policy writes need roleManagementPolicies/write", func(t *testing.T) {
		_, err := e.svc.UpdateRoleManagementPolicy(e.as(pimBob), pimRG, rbac.PolicyName(pimRG, rbac.KeyVaultSecretsUserID),
			[]service.PolicyRuleInput{{ID: service.RuleEnablementEndUser, EnabledRules: &[]string{}}})
		wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "roleManagementPolicies/write")
	})
}

// TestPIM_Eligibility: only a principal that may write assignments of the role makes anyone
// eligible; eligibilities respect the policy's maximum; AdminRemove ends the activations made
// from the eligibility at once.
func TestPIM_Eligibility(t *testing.T) {
	e := newPIMEnv(t)
	in := service.ScheduleRequestInput{PrincipalID: pimBob, RoleDefinitionID: rbac.KeyVaultSecretsUserID, RequestType: "AdminAssign",
		Schedule: service.ScheduleInfo{Duration: "P30D"}}
	_, err := e.svc.RequestRoleEligibility(e.as(pimBob), pimRG, uuid.NewString(), in)
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "roleAssignments/write")
	long := in
	long.Schedule = service.ScheduleInfo{Duration: "P400D"}
	_, err = e.svc.RequestRoleEligibility(e.as(pimAdmin), pimRG, uuid.NewString(), long)
	wantCode(t, err, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "ExpirationRule")
	forever := in
	forever.Schedule = service.ScheduleInfo{ExpirationType: "NoExpiration"}
	_, err = e.svc.RequestRoleEligibility(e.as(pimAdmin), pimRG, uuid.NewString(), forever)
	wantCode(t, err, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "ExpirationRule")

	e.eligible(pimBob, pimRG, "P30D")
	_, err = e.svc.RequestRoleEligibility(e.as(pimAdmin), pimRG, uuid.NewString(), in)
	wantCode(t, err, service.ErrConflict, "RoleAssignmentExists", "already exists")

	if _, err := e.activate(pimBob, pimRG, "PT1H", "j"); err != nil {
		t.Fatal(err)
	}
	remove := in
	remove.RequestType = "AdminRemove"
	if r, err := e.svc.RequestRoleEligibility(e.as(pimAdmin), pimRG, uuid.NewString(), remove); err != nil || r.Status != rbac.StatusRevoked {
		t.Fatalf("AdminRemove = %+v, %v", r, err)
	}
	if e.canRead(pimBob) {
		t.Fatal("the activation outlived its eligibility's removal")
	}
	_, err = e.activate(pimBob, pimRG, "PT1H", "j")
	wantCode(t, err, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule")

	// An eligibility ends by the clock, and an activation cannot outlast it.
	e.eligible(pimBob, pimRG, "PT2H")
	e.clk.Advance(90 * time.Minute)
	if _, err := e.activate(pimBob, pimRG, "PT1H", "j"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(31 * time.Minute)
	if e.canRead(pimBob) {
		t.Fatal("the activation outlasted its eligibility")
	}
	_, err = e.activate(pimBob, pimRG, "PT1H", "j")
	wantCode(t, err, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule")
}

// TestPIM_GroupEligibility: a group's eligibility lets its members activate for themselves.
func TestPIM_GroupEligibility(t *testing.T) {
	e := newPIMEnv(t)
	e.eligible(pimSRE, pimSub, "P30D")
	_, err := e.activate(pimDave, pimRG, "PT1H", "j")
	wantCode(t, err, service.ErrBadRequest, "RoleAssignmentRequestPolicyValidationFailed", "EligibilityRule")
	if e.canRead(pimBob) {
		t.Fatal("allowed before activation")
	}
	if _, err := e.activate(pimBob, pimRG, "PT1H", "on call"); err != nil {
		t.Fatal(err)
	}
	got := e.mySchedules(pimBob)
	if len(got) != 1 || got[0].MemberType != "Group" || got[0].PrincipalID != pimBob {
		t.Fatalf("schedules = %+v", got)
	}
	if !e.canRead(pimBob) || e.canRead(pimDave) {
		t.Fatal("the activation grants the wrong principals")
	}
	// Leaving the group ends what the group's eligibility gave, on the next decision.
	e.groups[pimBob] = nil
	if e.canRead(pimBob) {
		t.Fatal("the group's activation outlived the membership")
	}
	e.groups[pimBob] = []string{pimSRE}
	if !e.canRead(pimBob) {
		t.Fatal("back in the group, within the window: denied")
	}
}

// TestPIM_Approval: a request that needs approval grants nothing until a listed approver (never
// the requestor) approves it; the window starts at approval; a denied request grants nothing.
func TestPIM_Approval(t *testing.T) {
	e := newPIMEnv(t)
	e.eligible(pimBob, pimSub, "P30D")
	e.setPolicy(pimSub, service.PolicyRuleInput{ID: service.RuleApprovalEndUser, IsApprovalRequired: ptr(true),
		Approvers: &[]rbac.Approver{{ID: pimCarol, UserType: "User"}}})

	r, err := e.activate(pimBob, pimRG, "PT1H", "deploy") // the subscription's policy applies below it
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != rbac.StatusPendingApproval || e.canRead(pimBob) || len(e.mySchedules(pimBob)) != 0 {
		t.Fatalf("pending request granted, or wrong status: %+v", r)
	}
	pending, err := e.svc.ListScheduleRequests(e.as(pimCarol), rbac.RequestAssignment, pimSub, service.PIMFilter{AsApprover: true})
	if err != nil || len(pending) != 1 || pending[0].Name != r.Name {
		t.Fatalf("asApprover() = %+v, %v", pending, err)
	}
	if other, _ := e.svc.ListScheduleRequests(e.as(pimDave), rbac.RequestAssignment, pimSub, service.PIMFilter{AsApprover: true}); len(other) != 0 {
		t.Fatalf("a bystander's asApprover() = %+v", other)
	}
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimBob), pimRG, r.Name, true, "")
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "cannot approve")
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimDave), pimRG, r.Name, true, "")
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "not an approver")
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimAdmin), pimRG, r.Name, true, "")
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "not an approver")
	if e.canRead(pimBob) {
		t.Fatal("refused approvals granted")
	}

	e.clk.Advance(30 * time.Minute)
	ok, err := e.svc.ReviewRoleAssignmentRequest(e.as(pimCarol), pimRG, r.Name, true, "go ahead")
	if err != nil || ok.Status != rbac.StatusProvisioned || ok.ReviewedBy != pimCarol {
		t.Fatalf("approve = %+v, %v", ok, err)
	}
	if !e.canRead(pimBob) {
		t.Fatal("approved: denied")
	}
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimCarol), pimRG, r.Name, false, "")
	wantCode(t, err, service.ErrConflict, "RequestNotPending", "not pending")
	e.clk.Advance(59 * time.Minute)
	if !e.canRead(pimBob) {
		t.Fatal("the window did not start at approval")
	}
	e.clk.Advance(time.Minute)
	if e.canRead(pimBob) {
		t.Fatal("allowed after the approved window")
	}

	// Denied; while it is pending, a second request for the same role is refused.
	r2, err := e.activate(pimBob, pimRG, "PT1H", "again")
	if _, err := e.activate(pimBob, pimRG, "PT1H", "and again"); err == nil {
		t.Fatal("a second pending request was accepted")
	} else {
		wantCode(t, err, service.ErrConflict, "PendingRoleAssignmentRequest", "already pending")
	}
	if err != nil || r2.Status != rbac.StatusPendingApproval {
		t.Fatalf("second request = %+v, %v", r2, err)
	}
	no, err := e.svc.ReviewRoleAssignmentRequest(e.as(pimCarol), pimRG, r2.Name, false, "not now")
	if err != nil || no.Status != rbac.StatusDenied {
		t.Fatalf("deny = %+v, %v", no, err)
	}
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimCarol), pimRG, r2.Name, true, "")
	wantCode(t, err, service.ErrConflict, "RequestNotPending", "not pending")
	if e.canRead(pimBob) {
		t.Fatal("a denied request granted")
	}

	// Unanswered requests time out.
	r3, err := e.activate(pimBob, pimRG, "PT1H", "late")
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(25 * time.Hour)
	_, err = e.svc.ReviewRoleAssignmentRequest(e.as(pimCarol), pimRG, r3.Name, true, "")
	wantCode(t, err, service.ErrConflict, "RequestTimedOut", "in time")
	if got, err := e.svc.GetScheduleRequest(e.as(pimBob), rbac.RequestAssignment, pimRG, r3.Name); err != nil || got.Status != rbac.StatusTimedOut {
		t.Fatalf("timed-out request = %+v, %v", got, err)
	}
	if e.canRead(pimBob) {
		t.Fatal("a timed-out request granted")
	}

	// A lower scope's policy cannot drop the approval a higher one requires.
	e.setPolicy(pimRG, service.PolicyRuleInput{ID: service.RuleApprovalEndUser, IsApprovalRequired: ptr(false)})
	if r4, err := e.activate(pimBob, pimRG, "PT1H", "lax"); err != nil || r4.Status != rbac.StatusPendingApproval {
		t.Fatalf("activation under a lax lower policy = %+v, %v", r4, err)
	}
}

// TestPIM_Reads: the caller sees its own records with asTarget(); other reads need
// roleAssignments/read at the scope.
func TestPIM_Reads(t *testing.T) {
	e := newPIMEnv(t)
	e.eligible(pimBob, pimRG, "P30D")
	if list, err := e.svc.ListRoleEligibilitySchedules(e.as(pimDave), pimRG, service.PIMFilter{AsTarget: true}); err != nil || len(list) != 0 {
		t.Fatalf("a bystander's own = %+v, %v", list, err)
	}
	_, err := e.svc.ListRoleEligibilitySchedules(e.as(pimDave), pimRG, service.PIMFilter{})
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "roleAssignments/read")
	_, err = e.svc.ListRoleEligibilitySchedules(e.as(pimDave), pimRG, service.PIMFilter{PrincipalID: pimBob})
	wantCode(t, err, service.ErrForbidden, "AuthorizationFailed", "roleAssignments/read")
	if list, err := e.svc.ListRoleEligibilitySchedules(e.as(pimAdmin), pimSub, service.PIMFilter{PrincipalID: pimBob}); err != nil || len(list) != 1 {
		t.Fatalf("admin's list = %+v, %v", list, err)
	}
	pols, err := e.svc.ListRoleManagementPolicies(e.as(pimAdmin), pimRG, service.PolicyFilter{RoleDefinitionID: rbac.KeyVaultSecretsUserID})
	if err != nil || len(pols) != 1 || pols[0].ActivationMaximumDuration != "PT8H" || pols[0].Name() != rbac.PolicyName(pimRG, rbac.KeyVaultSecretsUserID) {
		t.Fatalf("policies = %+v, %v", pols, err)
	}
}

func TestParsePIMFilter(t *testing.T) {
	cases := []struct {
		in   string
		want service.PIMFilter
		bad  bool
	}{
		{"asTarget()", service.PIMFilter{AsTarget: true}, false},
		{"asTarget() and principalId eq '" + pimBob + "'", service.PIMFilter{AsTarget: true, PrincipalID: pimBob}, false},
		{"asApprover()", service.PIMFilter{AsApprover: true}, false},
		{"atScope() and roleDefinitionId eq '/providers/Microsoft.Authorization/roleDefinitions/" + rbac.KeyVaultSecretsUserID + "'",
			service.PIMFilter{AtScope: true, RoleDefinitionID: rbac.KeyVaultSecretsUserID}, false},
		{"status eq 'PendingApproval'", service.PIMFilter{Status: "PendingApproval"}, false},
		{"roleDefinitionId eq 'nope'", service.PIMFilter{}, true},
		{"asEveryone()", service.PIMFilter{}, true},
	}
	for _, c := range cases {
		got, err := service.ParsePIMFilter(c.in)
		if (err != nil) != c.bad || !c.bad && got != c.want {
			t.Errorf("ParsePIMFilter(%q) = %+v, %v", c.in, got, err)
		}
	}
}
