// Package test holds Strongroom's cross-process tests: real server processes driven by the
// official Azure SDKs for Go.
package test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// env is a running server plus official SDK clients for the bootstrap admin.
type env struct {
	srv    *testenv.Server
	hc     *http.Client
	cred   azcore.TokenCredential
	groups *armresources.ResourceGroupsClient
	vaults *armkeyvault.VaultsClient
	// publicURL is the deployment's public URL (the token authority the challenge names).
	publicURL string
}

func newEnv(t *testing.T, opts *testenv.Options) *env {
	t.Helper()
	srv := testenv.Start(t, opts)
	return envFor(t, srv)
}

func envFor(t *testing.T, srv *testenv.Server) *env {
	t.Helper()
	hc := srv.HTTPClient()
	cred := srv.Credential(hc)
	groups, err := armresources.NewResourceGroupsClient(srv.Admin.SubscriptionID, cred, srv.ARMOptions(hc))
	if err != nil {
		t.Fatal(err)
	}
	vaults, err := armkeyvault.NewVaultsClient(srv.Admin.SubscriptionID, cred, srv.ARMOptions(hc))
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, hc: hc, cred: cred, groups: groups, vaults: vaults, publicURL: srv.URL}
}

// createVault makes a resource group and a vault through ARM and returns a secrets client.
func (e *env) createVault(t *testing.T, rg, name string, props *armkeyvault.VaultProperties) *azsecrets.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := e.groups.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
		t.Fatalf("creating resource group %s: %v", rg, err)
	}
	if props == nil {
		props = &armkeyvault.VaultProperties{}
	}
	props.TenantID = to.Ptr(e.srv.Admin.TenantID)
	props.SKU = &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)}
	if props.AccessPolicies == nil {
		props.AccessPolicies = []*armkeyvault.AccessPolicyEntry{}
	}
	if props.EnableRbacAuthorization == nil {
		// armkeyvault's api-version (2024-11-01) makes access-policy vaults by default, as Key
		// Vault does before 2026-02-01; the suite's vaults use RBAC unless a test says otherwise.
		props.EnableRbacAuthorization = to.Ptr(true)
	}
	poller, err := e.vaults.BeginCreateOrUpdate(ctx, rg, name, armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("eastus"), Properties: props}, nil)
	if err != nil {
		t.Fatalf("creating vault %s: %v", name, err)
	}
	if _, err := poller.PollUntilDone(ctx, nil); err != nil {
		t.Fatalf("creating vault %s: %v", name, err)
	}
	return e.srv.Secrets(name, e.cred, e.hc)
}

// wantStatus asserts err is a ResponseError with the given status and error code.
func wantStatus(t *testing.T, err error, status int, code string) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an HTTP %d %s", err, status, code)
	}
	if re.StatusCode != status || (code != "" && re.ErrorCode != code) {
		t.Fatalf("got HTTP %d %q, want %d %q\n%v", re.StatusCode, re.ErrorCode, status, code, err)
	}
	return re
}
