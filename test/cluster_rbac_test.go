package test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// TestCluster_RoleAssignmentsReachEveryNode: an assignment made through the leader grants on a
// follower's own copy (stale reads are decided there) as soon as the follower applied it, its
// deletion takes the grant away there too, and a restarted follower and a new leader decide
// the same from their stores.
func TestCluster_RoleAssignmentsReachEveryNode(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader, follower := c.Leader(10*time.Second), c.Follower()
	le := clusterEnv(t, c, leader)
	admin := le.createVault(t, "rg-crbac", "kv-crbac", nil)
	ctx := context.Background()
	if _, err := admin.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	app := le.newPrincipal(t, "cluster-app")
	appCred := c.CredentialAs(testenv.Admin{TenantID: leader.Admin.TenantID, SubscriptionID: leader.Admin.SubscriptionID, ClientID: app.appID, ClientSecret: app.secret}, le.hc)
	stale := func(node *testenv.Server) *azsecrets.Client {
		kv, err := azsecrets.NewClient(node.VaultURL("kv-crbac"), appCred, &azsecrets.ClientOptions{
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
			if allowed && err == nil {
				return
			}
			if !allowed && isStatus(err, 403) {
				return
			}
		}
		t.Fatalf("%s: last answer %v, want allowed=%v", what, err, allowed)
	}
	scope := le.vaultScope("rg-crbac", "kv-crbac")
	roles := le.rbacClients(t, le.cred)
	name, err := roles.assign(ctx, scope, rbac.KeyVaultSecretsUserID, app.objectID)
	if err != nil {
		t.Fatal(err)
	}
	eventually("a follower's own copy after the assignment", stale(follower), true)

	follower.Restart()
	c.Settled(60 * time.Second)
	eventually("a restarted follower", stale(follower), true)

	stepDown(t, c)
	newLeader := c.Settled(60 * time.Second)
	eventually("the new leader", stale(newLeader), true)

	if _, err := le.rbacClients(t, clusterEnv(t, c, newLeader).cred).assigns.Delete(ctx, scope, name, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		eventually("node "+n.URL+" after the deletion", stale(n), false)
	}
}
