package test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// DefaultAzureCredential configured by the environment alone, as an application deployed with
// AZURE_* variables runs it: EnvironmentCredential's client secret, the authority from
// AZURE_AUTHORITY_HOST. Code supplies only the transport (the test CA and the loopback dialer,
// which SSL_CERT_FILE and /etc/hosts would supply outside a test) and DisableInstanceDiscovery,
// which no environment variable sets. The client keeps its challenge-resource check.
func TestGoSDK_DefaultAzureCredential(t *testing.T) {
	recordClient(t, "go", "azidentity DefaultAzureCredential")
	e := newEnv(t, nil)
	ctx := context.Background()
	e.createVault(t, "rg-dac", "dac-kv", nil)

	env := map[string]string{
		"AZURE_TENANT_ID":      e.srv.Admin.TenantID,
		"AZURE_CLIENT_ID":      e.srv.Admin.ClientID,
		"AZURE_CLIENT_SECRET":  e.srv.Admin.ClientSecret,
		"AZURE_AUTHORITY_HOST": e.publicURL,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	// Variables that would make the chain pick another credential are unset (t.Setenv first,
	// so that the test's end restores them).
	for _, k := range []string{"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME", "AZURE_PASSWORD",
		"AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		ClientOptions:            policy.ClientOptions{Transport: e.hc}, // no Cloud: the authority is AZURE_AUTHORITY_HOST
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := azsecrets.NewClient(e.srv.VaultURL("dac-kv"), cred, &azsecrets.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: e.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	set, err := kv.SetSecret(ctx, "from-env", azsecrets.SetSecretParameters{Value: to.Ptr("configured-by-environment")}, nil)
	if err != nil {
		t.Fatalf("SetSecret with DefaultAzureCredential: %v", err)
	}
	got, err := kv.GetSecret(ctx, "from-env", "", nil)
	if err != nil || *got.Value != "configured-by-environment" || got.ID.Version() != set.ID.Version() {
		t.Fatalf("GetSecret with DefaultAzureCredential: %v", err)
	}
	// The token is the environment's service principal's, issued by the environment's authority.
	tok, err := cred.GetToken(ctx, e.dataScope())
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, tok.Token)
	if c["appid"] != e.srv.Admin.ClientID || !strings.HasPrefix(c["iss"].(string), e.publicURL+"/") {
		t.Fatalf("token claims appid=%v iss=%v, want the environment's client and authority", c["appid"], c["iss"])
	}
}
