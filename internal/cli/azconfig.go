package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
)

// `az-config`: the cloud registration that points Microsoft's az CLI at a Strongroom server.
//
// az finds every endpoint through its active cloud, so one `az cloud register --cloud-config`
// names them all. The values are the ones the az conformance test (test/az_test.go) runs with.

// azCommand is the az executable --apply runs (a variable so tests can point it elsewhere).
var azCommand = "az"

// azCloudConfig is the JSON `az cloud register --cloud-config` reads. Every endpoint az needs is
// given, so az asks no metadata endpoint for the others.
type azCloudConfig struct {
	Endpoints azCloudEndpoints `json:"endpoints"`
	Suffixes  azCloudSuffixes  `json:"suffixes"`
}

type azCloudEndpoints struct {
	ResourceManager string `json:"resourceManager"`
	// ActiveDirectory ends in /adfs: for any other authority az 2.45's MSAL asks the public
	// cloud's instance discovery first and az has no setting to stop it; for an ADFS authority it
	// asks the server's /adfs/.well-known/openid-configuration instead.
	ActiveDirectory           string `json:"activeDirectory"`
	ActiveDirectoryResourceID string `json:"activeDirectoryResourceId"`
	// ActiveDirectoryGraphResourceID is unused (az 2.45 speaks Microsoft Graph), but without it
	// az cloud register looks the cloud's endpoints up on the network.
	ActiveDirectoryGraphResourceID string `json:"activeDirectoryGraphResourceId"`
	// MicrosoftGraphResourceID is where az sends Graph calls (its base, plus /v1.0) and the
	// audience it asks tokens for; only --cloud-config can set it.
	MicrosoftGraphResourceID string `json:"microsoftGraphResourceId"`
}

type azCloudSuffixes struct {
	// KeyvaultDNS is appended to a vault name to make its host, port included:
	// ".vault.localhost:8443" gives https://myKeyVault.vault.localhost:8443.
	KeyvaultDNS string `json:"keyvaultDns"`
}

// azConfigOutput is what az-config prints.
type azConfigOutput struct {
	Name        string        `json:"name"`
	CloudConfig azCloudConfig `json:"cloudConfig"`
	// Commands are the shell lines that register and select the cloud (what --apply runs).
	Commands []string `json:"commands"`
}

// buildAzConfig derives the cloud registration of the server at serverURL whose vaults live
// under dnsSuffix.
func buildAzConfig(name, serverURL, dnsSuffix string) (*azConfigOutput, error) {
	u, err := url.Parse(strings.TrimSuffix(serverURL, "/"))
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, usageErrorf("invalid --server value %q: expected the server's https origin such as %s", serverURL, defaultServer)
	}
	if strings.TrimSpace(name) == "" {
		return nil, usageErrorf("--name must not be empty")
	}
	suffix := strings.ToLower(strings.Trim(dnsSuffix, "."))
	if suffix == "" || strings.ContainsAny(suffix, "/:@ ") {
		return nil, usageErrorf("invalid --dns-suffix value %q: expected a DNS name such as %s", dnsSuffix, defaultDNSSuffix)
	}
	origin := "https://" + strings.ToLower(u.Host)
	vaultDNS := "." + suffix
	if port := u.Port(); port != "" && port != "443" {
		vaultDNS += ":" + port // vaults are served on the server's own port
	}
	cfg := azCloudConfig{
		Endpoints: azCloudEndpoints{
			ResourceManager:                origin + "/",
			ActiveDirectory:                origin + "/adfs",
			ActiveDirectoryResourceID:      "https://management.core.windows.net/",
			ActiveDirectoryGraphResourceID: "https://graph.windows.net/",
			MicrosoftGraphResourceID:       origin + "/",
		},
		Suffixes: azCloudSuffixes{KeyvaultDNS: vaultDNS},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the cloud config: %w", err)
	}
	return &azConfigOutput{
		Name:        name,
		CloudConfig: cfg,
		Commands: []string{
			"az cloud register --name " + shellQuote(name) + " --cloud-config " + shellQuote(string(raw)),
			"az cloud set --name " + shellQuote(name),
		},
	}, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,/:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (a *app) azConfigCommand() *cobra.Command {
	var name, server, suffix string
	var apply bool
	c := leaf(&cobra.Command{
		Use:   "az-config",
		Short: "Print (or apply) the az cloud registration for a Strongroom server",
		Long: "Print the JSON for `az cloud register --cloud-config` that points Microsoft's az CLI at a\n" +
			"Strongroom server (its management plane, token issuer through the /adfs authority, Microsoft\n" +
			"Graph and vault DNS suffix), and the az commands that register and select it. With --apply,\n" +
			"run them (`az cloud update` when the cloud is registered already). Without --server, the\n" +
			"logged-in profile's server, else " + defaultServer + ".",
		Example: "  strongroom az-config --server https://localhost:8443 --apply\n" +
			"  az login --service-principal -u <clientId> -p <clientSecret> --tenant <tenantId>\n" +
			"  strongroom az-config --server https://localhost:8443 --query cloudConfig",
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadProfile()
			if err != nil && !errors.Is(err, errNotLoggedIn) {
				return err
			}
			if server == "" {
				server = defaultServer
				if p != nil && p.Server != "" {
					server = p.Server
				}
			}
			if !cmd.Flags().Changed("dns-suffix") {
				suffix = profileSuffix(p, server)
			}
			out, err := buildAzConfig(name, server, suffix)
			if err != nil {
				return err
			}
			if apply {
				if err := a.applyAzConfig(cmd, out); err != nil {
					return err
				}
			}
			return a.print(out)
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "Strongroom", "name of the cloud in az")
	f.StringVar(&server, "server", "", "the server's public https origin (default: the profile's, else "+defaultServer+")")
	f.StringVar(&suffix, "dns-suffix", defaultDNSSuffix, "the server's dns_suffix: vaults are {vault}.{dns-suffix}")
	f.BoolVar(&apply, "apply", false, "run az cloud register (or update) and az cloud set")
	return c
}

// applyAzConfig registers the cloud with az (updating it if a cloud of that name exists) and
// makes it az's active cloud. az's own output goes to stderr, so stdout stays one document.
func (a *app) applyAzConfig(cmd *cobra.Command, out *azConfigOutput) error {
	raw, err := json.Marshal(out.CloudConfig)
	if err != nil {
		return fmt.Errorf("encoding the cloud config: %w", err)
	}
	run := func(args ...string) (string, error) {
		var buf bytes.Buffer
		c := exec.CommandContext(cmd.Context(), azCommand, args...)
		c.Stdout, c.Stderr = &buf, &buf
		err := c.Run()
		if errors.Is(err, exec.ErrNotFound) {
			err = fmt.Errorf("%w (install the azure-cli package)", err)
		}
		return buf.String(), err
	}
	msg, err := run("cloud", "register", "--name", out.Name, "--cloud-config", string(raw))
	if err != nil && strings.Contains(msg, "is already registered") {
		msg, err = run("cloud", "update", "--name", out.Name, "--cloud-config", string(raw))
	}
	if err != nil {
		return fmt.Errorf("az cloud register --name %s: %w: %s", out.Name, err, strings.TrimSpace(msg))
	}
	fmt.Fprint(a.stderr, msg)
	if msg, err = run("cloud", "set", "--name", out.Name); err != nil {
		return fmt.Errorf("az cloud set --name %s: %w: %s", out.Name, err, strings.TrimSpace(msg))
	}
	fmt.Fprint(a.stderr, msg)
	return nil
}
