package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// `keyvault hosts`: /etc/hosts has no wildcards and many resolvers do not resolve *.localhost,
// so a client other than this CLI (which dials *.localhost itself) needs one line per vault name.

// defaultDNSSuffix is the server's default dns_suffix.
const defaultDNSSuffix = "vault.localhost"

func (a *app) vaultHostsCommand() *cobra.Command {
	var names []string
	var server, suffix string
	c := leaf(&cobra.Command{
		Use:   "hosts",
		Short: "Print /etc/hosts lines that resolve vault names to the server",
		Long: "Print one /etc/hosts line per vault, \"<address> <vault>.<dns-suffix>\", for clients that cannot\n" +
			"resolve the vaults' names (glibc and Node do not resolve *.localhost; /etc/hosts has no\n" +
			"wildcards). Without --vault-name it lists the vaults the logged-in account can list. The address\n" +
			"is 127.0.0.1 for a localhost server, else the server host's address. The output is plain text\n" +
			"whatever --output says.",
		Example: "  strongroom keyvault hosts | sudo tee -a /etc/hosts\n" +
			"  strongroom keyvault hosts --vault-name myKeyVault --vault-name other --server https://localhost:8443",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := loadProfile()
			if err != nil && !errors.Is(err, errNotLoggedIn) {
				return err
			}
			if server == "" {
				if p == nil {
					return usageErrorf("--server is required when not logged in")
				}
				server = p.Server
			}
			if !cmd.Flags().Changed("dns-suffix") {
				suffix = profileSuffix(p, server)
			}
			if len(names) == 0 {
				if p == nil {
					return errNotLoggedIn // listing vaults needs an account; or name them
				}
				if names, err = a.listVaultNames(ctx); err != nil {
					return err
				}
			}
			addr, err := serverAddress(ctx, net.DefaultResolver.LookupHost, server)
			if err != nil {
				return err
			}
			lines, err := hostsLines(addr, suffix, names)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), lines)
			return err
		},
	})
	f := c.Flags()
	f.StringSliceVarP(&names, "vault-name", "n", nil, "vault name (repeat, or separate with commas); default: every vault the account can list")
	f.StringVar(&server, "server", "", "the server's public base URL, whose host's address the lines name (default: the logged-in server)")
	f.StringVar(&suffix, "dns-suffix", defaultDNSSuffix, "the server's dns_suffix (default: the logged-in server's)")
	return c
}

// listVaultNames lists the subscription's vaults through armkeyvault, sorted.
func (a *app) listVaultNames(ctx context.Context) ([]string, error) {
	vc, err := a.vaults()
	if err != nil {
		return nil, err
	}
	var names []string
	pager := vc.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing vaults: %w", err)
		}
		for _, v := range page.Value {
			if v != nil && v.Name != nil {
				names = append(names, *v.Name)
			}
		}
	}
	slices.SortFunc(names, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	return names, nil
}

// profileSuffix is the logged-in server's vault suffix without its port, when server is that
// server (or unset), else the server default.
func profileSuffix(p *Profile, server string) string {
	if p == nil || p.KeyVaultDNS == "" || !strings.EqualFold(strings.TrimSuffix(server, "/"), strings.TrimSuffix(p.Server, "/")) {
		return defaultDNSSuffix
	}
	s := strings.TrimPrefix(p.KeyVaultDNS, ".")
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	return s
}

// serverAddress is the address vault names should resolve to: loopback for a localhost server,
// the literal address of an IP URL, else the first address lookup gives for the host (IPv4
// first: most hosts files and clients try it first).
func serverAddress(ctx context.Context, lookup func(context.Context, string) ([]string, error), server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return "", usageErrorf("invalid --server value %q: expected an https URL such as %s", server, defaultServer)
	}
	host := u.Hostname()
	if isLocalhost(host) {
		return "127.0.0.1", nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return "", fmt.Errorf("resolving the server host %s: %w", host, err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolving the server host %s: no address", host)
	}
	slices.SortStableFunc(ips, func(x, y net.IP) int {
		return boolRank(x.To4() == nil) - boolRank(y.To4() == nil)
	})
	return ips[0].String(), nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hostsLines are "<addr> <vault>.<suffix>" lines, one per distinct vault name (lower case, as
// clients build the host), in the order given. Names are checked against Key Vault's rules
// (3-24 letters, digits and hyphens, starting with a letter) so nothing else reaches a hosts file.
func hostsLines(addr, suffix string, names []string) (string, error) {
	suffix = strings.ToLower(strings.Trim(suffix, "."))
	if suffix == "" || strings.ContainsAny(suffix, " \t\n/:") {
		return "", usageErrorf("invalid --dns-suffix value %q", suffix)
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if !validVaultName(n) {
			return "", usageErrorf("invalid vault name %q: 3-24 letters, digits and hyphens, starting with a letter", n)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		fmt.Fprintf(&b, "%s %s.%s\n", addr, n, suffix)
	}
	return b.String(), nil
}

// validVaultName is Key Vault's vault name rule: 3-24 letters, digits and hyphens, starting
// with a letter, ending with a letter or digit, no "--".
func validVaultName(n string) bool { return refVault.MatchString(n) && !strings.Contains(n, "--") }
