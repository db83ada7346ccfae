package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"
)

// The rotation verbs of a secret, parallel to az's `keyvault key rotation-policy` and
// `keyvault key rotate` (az has none for secrets; the server's routes are in docs/rotation.md).

const rotationAPIVersion = "7.4"

// dataPlane is a REST client for a vault's data plane, for the routes azsecrets does not know.
func (s *session) dataPlane(vaultURL string) *restClient {
	opts := s.clientOptions()
	pl := runtime.NewPipeline("strongroom.cli", "v1.0.0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(s.cred, []string{"https://vault.azure.net/.default"}, nil)},
	}, &opts)
	return &restClient{base: strings.TrimSuffix(vaultURL, "/"), pl: pl}
}

// rotationTarget resolves the flags to a data-plane client and a secret path.
func rotationTarget(t *secretTarget, what string) (*restClient, string, error) {
	s, err := openSession()
	if err != nil {
		return nil, "", err
	}
	r, err := t.resolve(s)
	if err != nil {
		return nil, "", err
	}
	if err := checkNoVersion(r, what); err != nil {
		return nil, "", err
	}
	return s.dataPlane(r.vaultURL), "/secrets/" + url.PathEscape(r.name) + "/", nil
}

func (a *app) secretRotationPolicyCommand() *cobra.Command {
	return group(&cobra.Command{Use: "rotation-policy", Short: "Show or set a secret's rotation policy"},
		a.secretRotationPolicyShowCommand(), a.secretRotationPolicyUpdateCommand())
}

func (a *app) secretRotationPolicyShowCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a secret's rotation policy (the default notice when it has none)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, path, err := rotationTarget(&t, "rotation-policy show")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := client.do(cmd.Context(), http.MethodGet, path+"rotationpolicy?api-version="+rotationAPIVersion, nil, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	return c
}

func (a *app) secretRotationPolicyUpdateCommand() *cobra.Command {
	var t secretTarget
	var value string
	c := leaf(&cobra.Command{
		Use:   "update",
		Short: "Replace a secret's rotation policy with a JSON document (inline or @file)",
		Long: "The document is Key Vault's key rotation policy (lifetimeActions, attributes.expiryTime) plus a\n" +
			"\"rotator\" object naming what changes the credential: {\"kind\": \"generate\"|\"webhook\"|\"postgres\", ...}.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw := []byte(value)
			if strings.HasPrefix(value, "@") {
				var err error
				if raw, err = os.ReadFile(value[1:]); err != nil {
					return fmt.Errorf("reading policy: %w", err)
				}
			}
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return usageErrorf("the policy is not valid JSON: %v", err)
			}
			client, path, err := rotationTarget(&t, "rotation-policy update")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := client.do(cmd.Context(), http.MethodPut, path+"rotationpolicy?api-version="+rotationAPIVersion, doc, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	c.Flags().StringVar(&value, "value", "", "the policy as JSON, or @file")
	_ = c.MarkFlagRequired("value")
	return c
}

func (a *app) secretRotateCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "rotate",
		Short: "Rotate a secret now with its policy's rotator; prints the new version without its value",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, path, err := rotationTarget(&t, "rotate")
			if err != nil {
				return err
			}
			var out azsecrets.Secret
			if err := client.do(cmd.Context(), http.MethodPost, path+"rotate?api-version="+rotationAPIVersion, nil, &out); err != nil {
				return err
			}
			return a.print(newSecretOut(out))
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	return c
}

func (a *app) secretRotationStatusCommand() *cobra.Command {
	var t secretTarget
	c := leaf(&cobra.Command{
		Use:   "rotation-status",
		Short: "Show a secret's rotation: state, step, attempts, last error, next due",
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, path, err := rotationTarget(&t, "rotation-status")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := client.do(cmd.Context(), http.MethodGet, path+"rotationstatus?api-version="+rotationAPIVersion, nil, &out); err != nil {
				return err
			}
			return a.print(out)
		},
	})
	t.register(c.Flags(), true, false, secretIDHelp)
	return c
}
