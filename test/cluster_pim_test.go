package test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// TestCluster_ActivationReachesEveryNode: an activation made through the leader grants on a
// follower's own copy (stale reads are decided there) once the follower applied it, and its
// early end takes the grant away on every node.
func TestCluster_ActivationReachesEveryNode(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader, follower := c.Leader(10*time.Second), c.Follower()
	le := clusterEnv(t, c, leader)
	ctx := context.Background()
	admin := le.createVault(t, "rg-cpim", "kv-cpim", rbacVault())
	if _, err := admin.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	app := le.newPrincipal(t, "cluster-jit")
	appCred := c.CredentialAs(testenv.Admin{TenantID: leader.Admin.TenantID, SubscriptionID: leader.Admin.SubscriptionID, ClientID: app.appID, ClientSecret: app.secret}, le.hc)
	stale := func(node *testenv.Server) *azsecrets.Client {
		kv, err := azsecrets.NewClient(node.VaultURL("kv-cpim"), appCred, &azsecrets.ClientOptions{
			ClientOptions: policy.ClientOptions{Transport: le.hc, Retry: policy.RetryOptions{MaxRetries: -1}, PerCallPolicies: []policy.Policy{staleRead{}}}})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	eventually := func(what string, kv *azsecrets.Client, allowed bool) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			_, err = kv.GetSecret(ctx, "s", "", nil)
			if allowed && err == nil || !allowed && isStatus(err, 403) {
				return
			}
		}
		t.Fatalf("%s: last answer %v, want allowed=%v", what, err, allowed)
	}
	clients := func(cred azcore.TokenCredential) pimClients {
		var p pimClients
		var err error
		if p.eligReqs, err = armauthorization.NewRoleEligibilityScheduleRequestsClient(cred, leader.ARMOptions(le.hc)); err != nil {
			t.Fatal(err)
		}
		if p.actReqs, err = armauthorization.NewRoleAssignmentScheduleRequestsClient(cred, leader.ARMOptions(le.hc)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	scope := le.vaultScope("rg-cpim", "kv-cpim")
	roleID := "/subscriptions/" + leader.Admin.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.KeyVaultSecretsUserID
	if _, err := clients(le.cred).makeEligible(ctx, scope, roleID, app.objectID, "P30D"); err != nil {
		t.Fatal(err)
	}
	self := clients(appCred)
	if _, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfActivate, "", "PT1H"); err != nil {
		t.Fatal(err)
	}
	eventually("a follower's own copy after the activation", stale(follower), true)
	if _, err := self.selfRequest(ctx, scope, roleID, app.objectID, armauthorization.RequestTypeSelfDeactivate, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		eventually("node "+n.URL+" after the deactivation", stale(n), false)
	}
}
