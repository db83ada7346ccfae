package test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/rbac"
)

// pimClients are the official just-in-time elevation clients for a credential.
type pimClients struct {
	eligReqs  *armauthorization.RoleEligibilityScheduleRequestsClient
	eligs     *armauthorization.RoleEligibilitySchedulesClient
	actReqs   *armauthorization.RoleAssignmentScheduleRequestsClient
	schedules *armauthorization.RoleAssignmentSchedulesClient
	instances *armauthorization.RoleAssignmentScheduleInstancesClient
	policies  *armauthorization.RoleManagementPoliciesClient
}

func (e *env) pimClients(t *testing.T, cred azcore.TokenCredential) pimClients {
	t.Helper()
	opts := e.srv.ARMOptions(e.srv.HTTP2Client()) // as the SDK's default transport: $filter goes unescaped
	var c pimClients
	var errs [6]error
	c.eligReqs, errs[0] = armauthorization.NewRoleEligibilityScheduleRequestsClient(cred, opts)
	c.eligs, errs[1] = armauthorization.NewRoleEligibilitySchedulesClient(cred, opts)
	c.actReqs, errs[2] = armauthorization.NewRoleAssignmentScheduleRequestsClient(cred, opts)
	c.schedules, errs[3] = armauthorization.NewRoleAssignmentSchedulesClient(cred, opts)
	c.instances, errs[4] = armauthorization.NewRoleAssignmentScheduleInstancesClient(cred, opts)
	c.policies, errs[5] = armauthorization.NewRoleManagementPoliciesClient(cred, opts)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c pimClients) makeEligible(ctx context.Context, scope, roleID, principalID, duration string) (armauthorization.RoleEligibilityScheduleRequestsClientCreateResponse, error) {
	return c.eligReqs.Create(ctx, scope, uuid.NewString(), armauthorization.RoleEligibilityScheduleRequest{Properties: &armauthorization.RoleEligibilityScheduleRequestProperties{
		PrincipalID: to.Ptr(principalID), RoleDefinitionID: to.Ptr(roleID), RequestType: to.Ptr(armauthorization.RequestTypeAdminAssign),
		Justification: to.Ptr("on-call rota"),
		ScheduleInfo: &armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfo{StartDateTime: to.Ptr(time.Now().UTC()),
			Expiration: &armauthorization.RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration{
				Type: to.Ptr(armauthorization.TypeAfterDuration), Duration: to.Ptr(duration)}}}}, nil)
}

func (c pimClients) selfRequest(ctx context.Context, scope, roleID, principalID string, typ armauthorization.RequestType, linked, duration string) (armauthorization.RoleAssignmentScheduleRequestsClientCreateResponse, error) {
	p := &armauthorization.RoleAssignmentScheduleRequestProperties{PrincipalID: to.Ptr(principalID), RoleDefinitionID: to.Ptr(roleID), RequestType: to.Ptr(typ)}
	if typ == armauthorization.RequestTypeSelfActivate {
		p.Justification = to.Ptr("incident 4711")
		p.ScheduleInfo = &armauthorization.RoleAssignmentScheduleRequestPropertiesScheduleInfo{StartDateTime: to.Ptr(time.Now().UTC()),
			Expiration: &armauthorization.RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration{
				Type: to.Ptr(armauthorization.TypeAfterDuration), Duration: to.Ptr(duration)}}
		if linked != "" {
			p.LinkedRoleEligibilityScheduleID = to.Ptr(linked)
		}
	}
	return c.actReqs.Create(ctx, scope, uuid.NewString(), armauthorization.RoleAssignmentScheduleRequest{Properties: p}, nil)
}

// activeSchedules counts the caller's activations listed at scope with asTarget(), through both
// the schedules and the schedule instances.
func (c pimClients) activeSchedules(t *testing.T, ctx context.Context, scope string) (int, []*armauthorization.RoleAssignmentSchedule) {
	t.Helper()
	var schedules []*armauthorization.RoleAssignmentSchedule
	sp := c.schedules.NewListForScopePager(scope, &armauthorization.RoleAssignmentSchedulesClientListForScopeOptions{Filter: to.Ptr("asTarget()")})
	for sp.More() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schedules = append(schedules, page.Value...)
	}
	instances := 0
	ip := c.instances.NewListForScopePager(scope, &armauthorization.RoleAssignmentScheduleInstancesClientListForScopeOptions{Filter: to.Ptr("asTarget()")})
	for ip.More() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		instances += len(page.Value)
	}
	if instances != len(schedules) {
		t.Fatalf("%d schedules but %d instances", len(schedules), instances)
	}
	return len(schedules), schedules
}

// TestPIM_EligibleActivateReadDeactivate: through the official SDK against a real server, the
// admin makes an application eligible for Key Vault Secrets User on a vault; the application,
// denied until then, activates for PT1H with a justification, reads a secret, sees its schedule
// with asTarget(), deactivates, and is denied on the very next request. Every step is audited.
func TestPIM_EligibleActivateReadDeactivate(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	kv := e.createVault(t, "rg-pim", "kv-pim", rbacVault())
	if _, err := kv.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("hunter2")}, nil); err != nil {
		t.Fatal(err)
	}
	app := e.newPrincipal(t, "on-call")
	scope := e.vaultScope("rg-pim", "kv-pim")
	roleID := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.KeyVaultSecretsUserID
	admin, self := e.pimClients(t, e.cred), e.pimClients(t, app.cred)
	appKV := e.srv.Secrets("kv-pim", app.cred, e.hc)

	_, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT1H")
	wantStatus(t, err, 400, "RoleAssignmentRequestPolicyValidationFailed")
	_, err = self.makeEligible(ctx, scope, roleID, app.objectID, "P30D")
	wantStatus(t, err, 403, "AuthorizationFailed") // it cannot make itself eligible

	made, err := admin.makeEligible(ctx, scope, roleID, app.objectID, "P30D")
	if err != nil {
		t.Fatal(err)
	}
	if p := made.Properties; *p.Status != armauthorization.StatusProvisioned || p.TargetRoleEligibilityScheduleID == nil || *p.RequestorID == "" ||
		p.CreatedOn == nil || *p.ExpandedProperties.RoleDefinition.DisplayName != "Key Vault Secrets User" || !strings.EqualFold(*p.Scope, scope) {
		t.Fatalf("AdminAssign = %+v", p)
	}
	_, err = appKV.GetSecret(ctx, "db-password", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret") // eligible is not active

	// The application finds its eligibility with asTarget() and activates it.
	var eligID string
	ep := self.eligs.NewListForScopePager(scope, &armauthorization.RoleEligibilitySchedulesClientListForScopeOptions{Filter: to.Ptr("asTarget()")})
	for ep.More() {
		page, err := ep.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			if strings.HasSuffix(*s.Properties.RoleDefinitionID, rbac.KeyVaultSecretsUserID) {
				eligID = *s.ID
			}
		}
	}
	if eligID != *made.Properties.TargetRoleEligibilityScheduleID {
		t.Fatalf("asTarget() eligibility %q, want %q", eligID, *made.Properties.TargetRoleEligibilityScheduleID)
	}
	if got, err := self.eligs.Get(ctx, scope, eligID[strings.LastIndex(eligID, "/")+1:], nil); err != nil || *got.Properties.PrincipalID != app.objectID {
		t.Fatalf("eligibility get: %v", err)
	}

	act, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, eligID, "PT1H")
	if err != nil {
		t.Fatal(err)
	}
	if p := act.Properties; *p.Status != armauthorization.StatusProvisioned || *p.LinkedRoleEligibilityScheduleID != eligID || p.TargetRoleAssignmentScheduleID == nil {
		t.Fatalf("SelfActivate = %+v", p)
	}
	if s, err := appKV.GetSecret(ctx, "db-password", "", nil); err != nil || *s.Value != "hunter2" {
		t.Fatalf("read while active: %v", err)
	}
	_, err = appKV.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "setSecret") // the role's rights, no more
	n, schedules := self.activeSchedules(t, ctx, scope)
	if n != 1 || *schedules[0].Properties.AssignmentType != armauthorization.AssignmentTypeActivated ||
		time.Until(*schedules[0].Properties.EndDateTime) > time.Hour || time.Until(*schedules[0].Properties.EndDateTime) < 55*time.Minute {
		t.Fatalf("schedules = %d %+v", n, schedules)
	}
	_, err = self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, eligID, "PT1H")
	wantStatus(t, err, 409, "RoleAssignmentExists")

	// Ended early: denied on the next request.
	off, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfDeactivate, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if *off.Properties.Status != armauthorization.StatusRevoked {
		t.Fatalf("SelfDeactivate status %s", *off.Properties.Status)
	}
	_, err = appKV.GetSecret(ctx, "db-password", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")
	if n, _ := self.activeSchedules(t, ctx, scope); n != 0 {
		t.Fatalf("%d activations listed after deactivation", n)
	}
	_, err = self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfDeactivate, "", "")
	wantStatus(t, err, 404, "RoleAssignmentDoesNotExist")

	// Requests can be read back by their requestor.
	if got, err := self.actReqs.Get(ctx, scope, *act.Name, nil); err != nil || *got.Properties.Status != armauthorization.StatusProvisioned {
		t.Fatalf("request get: %v", err)
	}

	ops := auditOps(t, e.srv.DataDir)
	for _, want := range []string{"RoleEligibilityScheduleRequestWrite Success 201", "RoleEligibilityScheduleRequestWrite Failure 403",
		"RoleAssignmentScheduleRequestWrite Success 201", "RoleAssignmentScheduleRequestWrite Failure 400", "RoleAssignmentScheduleRequestWrite Failure 409",
		"RoleEligibilityScheduleList Success 200", "RoleAssignmentScheduleList Success 200", "RoleAssignmentScheduleInstanceList Success 200"} {
		if ops[want] == 0 {
			t.Errorf("no audit record %q in %v", want, ops)
		}
	}
}

// TestPIM_ApprovalThroughPolicy: the admin finds the role's policy and requires approval by a
// named approver through the official policies client; an activation is then PendingApproval
// and grants nothing; the requestor cannot approve it; the approver approves through our
// endpoint and the activation grants.
func TestPIM_ApprovalThroughPolicy(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	kv := e.createVault(t, "rg-pima", "kv-pima", rbacVault())
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	app, approver := e.newPrincipal(t, "requestor"), e.newPrincipal(t, "approver")
	scope := e.vaultScope("rg-pima", "kv-pima")
	roleID := "/subscriptions/" + e.srv.Admin.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.KeyVaultSecretsUserID
	admin, self := e.pimClients(t, e.cred), e.pimClients(t, app.cred)
	if _, err := admin.makeEligible(ctx, scope, roleID, app.objectID, "P30D"); err != nil {
		t.Fatal(err)
	}

	// Find the policy through the list, then patch its approval rule.
	var policyName string
	pp := admin.policies.NewListForScopePager(scope, nil)
	for pp.More() {
		page, err := pp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Value {
			for _, r := range p.Properties.Rules {
				if x, ok := r.(*armauthorization.RoleManagementPolicyExpirationRule); ok && *x.ID == "Expiration_EndUser_Assignment" && *x.MaximumDuration != "PT8H" {
					t.Fatalf("default maximum %s", *x.MaximumDuration)
				}
			}
			if strings.Contains(*p.Properties.Description, "Key Vault Secrets User") {
				policyName = *p.Name
			}
		}
	}
	if policyName != rbac.PolicyName(scope, rbac.KeyVaultSecretsUserID) {
		t.Fatalf("policy %q", policyName)
	}
	updated, err := admin.policies.Update(ctx, scope, policyName, armauthorization.RoleManagementPolicy{Properties: &armauthorization.RoleManagementPolicyProperties{
		Rules: []armauthorization.RoleManagementPolicyRuleClassification{
			&armauthorization.RoleManagementPolicyApprovalRule{ID: to.Ptr("Approval_EndUser_Assignment"),
				RuleType: to.Ptr(armauthorization.RoleManagementPolicyRuleTypeRoleManagementPolicyApprovalRule),
				Setting: &armauthorization.ApprovalSettings{IsApprovalRequired: to.Ptr(true), ApprovalStages: []*armauthorization.ApprovalStage{{
					ApprovalStageTimeOutInDays: to.Ptr[int32](1),
					PrimaryApprovers:           []*armauthorization.UserSet{{ID: to.Ptr(approver.objectID), UserType: to.Ptr(armauthorization.UserTypeUser)}}}}}},
			&armauthorization.RoleManagementPolicyExpirationRule{ID: to.Ptr("Expiration_EndUser_Assignment"),
				RuleType:        to.Ptr(armauthorization.RoleManagementPolicyRuleTypeRoleManagementPolicyExpirationRule),
				MaximumDuration: to.Ptr("PT2H")},
		}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	approvalOn := false
	for _, r := range updated.Properties.Rules {
		if x, ok := r.(*armauthorization.RoleManagementPolicyApprovalRule); ok {
			approvalOn = *x.Setting.IsApprovalRequired && *x.Setting.ApprovalStages[0].PrimaryApprovers[0].ID == approver.objectID
		}
	}
	if !approvalOn {
		t.Fatal("the approval rule did not take")
	}
	_, err = admin.policies.Update(ctx, scope, policyName, armauthorization.RoleManagementPolicy{Properties: &armauthorization.RoleManagementPolicyProperties{
		Rules: []armauthorization.RoleManagementPolicyRuleClassification{&armauthorization.RoleManagementPolicyEnablementRule{
			ID: to.Ptr("Enablement_EndUser_Assignment"), RuleType: to.Ptr(armauthorization.RoleManagementPolicyRuleTypeRoleManagementPolicyEnablementRule),
			EnabledRules: []*armauthorization.EnablementRules{to.Ptr(armauthorization.EnablementRulesMultiFactorAuthentication)}}}}}, nil)
	wantStatus(t, err, 400, "MultiFactorAuthenticationNotSupported")

	_, err = self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT3H")
	wantStatus(t, err, 400, "RoleAssignmentRequestPolicyValidationFailed") // over the new maximum
	pending, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT1H")
	if err != nil {
		t.Fatal(err)
	}
	if *pending.Properties.Status != armauthorization.StatusPendingApproval || pending.Properties.ApprovalID == nil {
		t.Fatalf("status %s", *pending.Properties.Status)
	}
	appKV := e.srv.Secrets("kv-pima", app.cred, e.hc)
	_, err = appKV.GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")

	// The approver sees it with asApprover().
	ap := e.pimClients(t, approver.cred).actReqs.NewListForScopePager(scope, &armauthorization.RoleAssignmentScheduleRequestsClientListForScopeOptions{Filter: to.Ptr("asApprover()")})
	seen := false
	for ap.More() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			seen = seen || *r.Name == *pending.Name
		}
	}
	if !seen {
		t.Fatal("asApprover() misses the pending request")
	}

	review := func(cred azcore.TokenCredential, verb string) (int, map[string]any) {
		tok, err := cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+scope+"/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/"+*pending.Name+"/"+verb+
			"?api-version=2020-10-01", strings.NewReader(`{"justification":"checked the incident"}`))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if status, _ := review(app.cred, "approve"); status != 403 {
		t.Fatalf("the requestor approving itself: HTTP %d", status)
	}
	if status, _ := review(e.stranger(t), "approve"); status != 403 {
		t.Fatalf("a stranger approving: HTTP %d", status)
	}
	_, err = appKV.GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")
	status, body := review(approver.cred, "approve")
	if props, _ := body["properties"].(map[string]any); status != 200 || props["status"] != "Provisioned" {
		t.Fatalf("approve: HTTP %d %v", status, body)
	}
	if _, err := appKV.GetSecret(ctx, "s", "", nil); err != nil {
		t.Fatalf("read after approval: %v", err)
	}
	if status, _ := review(approver.cred, "deny"); status != 409 {
		t.Fatalf("denying a settled request: HTTP %d", status)
	}
	_, err = self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT1H")
	wantStatus(t, err, 409, "RoleAssignmentExists") // already active: refused before anyone is asked

	// A pending request its requestor cancels through the SDK grants nothing and cannot be approved.
	if _, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfDeactivate, "", ""); err != nil {
		t.Fatal(err)
	}
	again, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT1H")
	if err != nil || *again.Properties.Status != armauthorization.StatusPendingApproval {
		t.Fatalf("second request: %v", err)
	}
	if _, err := self.actReqs.Cancel(ctx, scope, *again.Name, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := self.actReqs.Get(ctx, scope, *again.Name, nil); err != nil || *got.Properties.Status != armauthorization.StatusCanceled {
		t.Fatalf("canceled request: %v", err)
	}
	pending = again
	if status, _ := review(approver.cred, "approve"); status != 409 {
		t.Fatalf("approving a canceled request: HTTP %d", status)
	}
	_, err = appKV.GetSecret(ctx, "s", "", nil)
	forbiddenBy(t, err, "ForbiddenByRbac", "getSecret")
	ops := auditOps(t, e.srv.DataDir)
	if ops["RoleAssignmentScheduleRequestApprove Success 200"] != 1 || ops["RoleAssignmentScheduleRequestApprove Failure 403"] != 2 ||
		ops["RoleAssignmentScheduleRequestCancel Success 200"] != 1 || ops["RoleAssignmentScheduleRequestApprove Failure 409"] != 1 ||
		ops["RoleManagementPolicyWrite Success 200"] != 1 || ops["RoleAssignmentScheduleRequestDeny Failure 409"] != 1 {
		t.Fatalf("audit: %v", ops)
	}
}
