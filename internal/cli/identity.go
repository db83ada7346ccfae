package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/cli/agent"
)

// identityCommand is az's `identity` (user-assigned managed identities, through armmsi) plus
// ours: `identity host` (the application hosts identities are assigned to) and `identity
// agent` (the agent that serves an identity's tokens to the applications on a host).
func (a *app) identityCommand() *cobra.Command {
	return group(&cobra.Command{Use: "identity", Short: "Manage user-assigned managed identities, the hosts they act on, and the identity agent"},
		a.identityCreateCommand(), a.identityListCommand(), a.identityShowCommand(), a.identityDeleteCommand(),
		a.identityHostCommand(), a.identityAgentCommand())
}

func (s *session) identitiesClient() (*armmsi.UserAssignedIdentitiesClient, error) {
	c, err := armmsi.NewUserAssignedIdentitiesClient(s.profile.SubscriptionID, s.cred, s.armOptions())
	if err != nil {
		return nil, fmt.Errorf("creating managed identity client: %w", err)
	}
	return c, nil
}

// flatIdentity is az's output of an identity.
func flatIdentity(id *armmsi.Identity) map[string]any {
	out := map[string]any{"id": id.ID, "name": id.Name, "location": id.Location, "tags": id.Tags, "type": id.Type,
		"resourceGroup": resourceGroupOf(deref(id.ID))}
	if p := id.Properties; p != nil {
		out["clientId"], out["principalId"], out["tenantId"] = p.ClientID, p.PrincipalID, p.TenantID
	}
	return out
}

// resourceGroupOf returns the resource group segment of an ARM id.
func resourceGroupOf(id string) string {
	seg := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(seg); i++ {
		if strings.EqualFold(seg[i], "resourceGroups") {
			return seg[i+1]
		}
	}
	return ""
}

// identityRef is --name/-g or --ids, as az names one identity.
type identityRef struct{ name, rg, ids string }

func (r *identityRef) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVarP(&r.name, "name", "n", "", "name of the identity")
	f.StringVarP(&r.rg, "resource-group", "g", "", "resource group of the identity")
	f.StringVar(&r.ids, "ids", "", "resource id of the identity (instead of --name and --resource-group)")
}

func (r *identityRef) resolve() (rg, name string, err error) {
	if r.ids != "" {
		rg, name = resourceGroupOf(r.ids), r.ids[strings.LastIndex(r.ids, "/")+1:]
		if rg == "" || name == "" {
			return "", "", usageErrorf("argument --ids: %q is not a user-assigned identity's resource id", r.ids)
		}
		return rg, name, nil
	}
	if r.name == "" || r.rg == "" {
		return "", "", usageErrorf("usage error: --name NAME --resource-group NAME | --ids ID")
	}
	return r.rg, r.name, nil
}

func (a *app) identityCreateCommand() *cobra.Command {
	var name, rg, location string
	var tags []string
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a user-assigned managed identity (or update its tags)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if location == "" { // az: the resource group's location
				gc, err := s.groupsClient()
				if err != nil {
					return err
				}
				g, err := gc.Get(ctx, rg, nil)
				if err != nil {
					return notFoundOr(err, "resource group", "getting resource group")
				}
				location = *g.Location
			}
			ic, err := s.identitiesClient()
			if err != nil {
				return err
			}
			resp, err := ic.CreateOrUpdate(ctx, rg, name, armmsi.Identity{Location: to.Ptr(location), Tags: t}, nil)
			if err != nil {
				return notFoundOr(err, "resource group", "creating identity")
			}
			return a.print(flatIdentity(&resp.Identity))
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the identity")
	f.StringVarP(&rg, "resource-group", "g", "", "resource group")
	f.StringVarP(&location, "location", "l", "", "location (default: the resource group's)")
	f.StringArrayVar(&tags, "tags", nil, "space-separated tags: key[=value] [key[=value] ...]")
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("resource-group")
	return c
}

func (a *app) identityListCommand() *cobra.Command {
	var rg string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List user-assigned managed identities (of a resource group, or of the subscription)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			ic, err := s.identitiesClient()
			if err != nil {
				return err
			}
			var out []map[string]any
			if rg != "" {
				out, err = collectPages(cmd.Context(), ic.NewListByResourceGroupPager(rg, nil),
					func(p armmsi.UserAssignedIdentitiesClientListByResourceGroupResponse) []*armmsi.Identity {
						return p.Value
					}, nil, flatIdentity)
			} else {
				out, err = collectPages(cmd.Context(), ic.NewListBySubscriptionPager(nil),
					func(p armmsi.UserAssignedIdentitiesClientListBySubscriptionResponse) []*armmsi.Identity {
						return p.Value
					}, nil, flatIdentity)
			}
			if err != nil {
				return notFoundOr(err, "resource group", "listing identities")
			}
			return a.print(out)
		},
	})
	c.Flags().StringVarP(&rg, "resource-group", "g", "", "resource group")
	return c
}

func (a *app) identityShowCommand() *cobra.Command {
	var ref identityRef
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a user-assigned managed identity",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rg, name, err := ref.resolve()
			if err != nil {
				return err
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			ic, err := s.identitiesClient()
			if err != nil {
				return err
			}
			resp, err := ic.Get(cmd.Context(), rg, name, nil)
			if err != nil {
				return notFoundOr(err, "identity", "getting identity")
			}
			return a.print(flatIdentity(&resp.Identity))
		},
	})
	ref.add(c)
	return c
}

func (a *app) identityDeleteCommand() *cobra.Command {
	var ref identityRef
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a user-assigned managed identity (its service principal and tokens go with it)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			rg, name, err := ref.resolve()
			if err != nil {
				return err
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			ic, err := s.identitiesClient()
			if err != nil {
				return err
			}
			if _, err := ic.Delete(cmd.Context(), rg, name, nil); err != nil {
				return notFoundOr(err, "identity", "deleting identity")
			}
			return nil
		},
	})
	ref.add(c)
	return c
}

// Hosts: /subscriptions/{s}/providers/Strongroom.Identity/hosts (ours; see the server's
// internal/httpapi/arm_msi.go).

const hostsAPIVersion = "api-version=2024-01-01"

// hostCall sends one request to the hosts routes; out (if not nil) receives the JSON answer.
func hostCall(ctx context.Context, s *session, method, suffix string, body, out any) error {
	c, err := s.armClient()
	if err != nil {
		return err
	}
	u := strings.TrimSuffix(c.Endpoint(), "/") + "/subscriptions/" + s.profile.SubscriptionID + "/providers/Strongroom.Identity/hosts" + suffix + "?" + hostsAPIVersion
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return err
	}
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return err
		}
	}
	resp, err := c.Pipeline().Do(req)
	if err != nil {
		return err
	}
	if !runtime.HasStatusCode(resp, http.StatusOK, http.StatusCreated, http.StatusNoContent) {
		return runtime.NewResponseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return runtime.UnmarshalAsJSON(resp, out)
}

func (a *app) identityHostCommand() *cobra.Command {
	return group(&cobra.Command{Use: "host", Short: "Manage the application hosts managed identities act on (register, list, show, remove, assign, unassign)"},
		a.hostRegisterCommand(), a.hostListCommand(), a.hostShowCommand(), a.hostRemoveCommand(),
		a.hostAssignCommand(true), a.hostAssignCommand(false))
}

func (a *app) hostRegisterCommand() *cobra.Command {
	var name string
	var ttl time.Duration
	c := leaf(&cobra.Command{
		Use:   "register",
		Short: "Register an application host (or register it again) and print its one-time registration token",
		Long: "Register an application host and print a one-time registration token, shown only now. Run the identity agent " +
			"on that host once with --registration-token to exchange it for the host's certificate. Registering an existing " +
			"host again gives it a new token; when redeemed, the new certificate replaces the old one.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			var body any
			if ttl != 0 {
				body = map[string]any{"properties": map[string]any{"registrationTokenLifetimeSeconds": int64(ttl / time.Second)}}
			}
			var out map[string]any
			if err := hostCall(cmd.Context(), s, http.MethodPut, "/"+name, body, &out); err != nil {
				return fmt.Errorf("registering host: %w", err)
			}
			return a.print(out)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the host (1-63 letters, digits, '.', '_' or '-')")
	c.Flags().DurationVar(&ttl, "token-lifetime", 0, "how long the registration token lives (default 1h, at most 24h)")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) hostListCommand() *cobra.Command {
	return leaf(&cobra.Command{
		Use:   "list",
		Short: "List application hosts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if err := hostCall(cmd.Context(), s, http.MethodGet, "", nil, &out); err != nil {
				return fmt.Errorf("listing hosts: %w", err)
			}
			if out.Value == nil {
				out.Value = []map[string]any{}
			}
			return a.print(out.Value)
		},
	})
}

func (a *app) hostShowCommand() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show an application host and its identities",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := hostCall(cmd.Context(), s, http.MethodGet, "/"+name, nil, &out); err != nil {
				return notFoundOr(err, "host", "getting host")
			}
			return a.print(out)
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the host")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) hostRemoveCommand() *cobra.Command {
	var name string
	c := leaf(&cobra.Command{
		Use:   "remove",
		Short: "Remove an application host: its agent gets no further token and the tokens it got stop working",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			if err := hostCall(cmd.Context(), s, http.MethodDelete, "/"+name, nil, nil); err != nil {
				return fmt.Errorf("removing host: %w", err)
			}
			return nil
		},
	})
	c.Flags().StringVarP(&name, "name", "n", "", "name of the host")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) hostAssignCommand(assign bool) *cobra.Command {
	var host, ident, rg string
	use, short, action := "unassign", "Remove a managed identity from a host (takes effect on the host's next token request)", "/unassignIdentity"
	if assign {
		use, short, action = "assign", "Assign a managed identity to a host, so the host's agent may get its tokens", "/assignIdentity"
	}
	c := leaf(&cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession()
			if err != nil {
				return err
			}
			id := ident
			if !strings.HasPrefix(id, "/") {
				if rg == "" {
					return usageErrorf("usage error: --identity takes a resource id, or a name with --resource-group")
				}
				id = "/subscriptions/" + s.profile.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + ident
			}
			var out map[string]any
			if err := hostCall(cmd.Context(), s, http.MethodPost, "/"+host+action, map[string]string{"identityId": id}, &out); err != nil {
				return notFoundOr(err, "host or identity", use+"ing identity")
			}
			return a.print(out)
		},
	})
	f := c.Flags()
	f.StringVar(&host, "host", "", "name of the host")
	f.StringVar(&ident, "identity", "", "the identity: its resource id, or its name with --resource-group")
	f.StringVarP(&rg, "resource-group", "g", "", "resource group of the identity, when --identity is a name")
	_ = c.MarkFlagRequired("host")
	_ = c.MarkFlagRequired("identity")
	return c
}

func (a *app) identityAgentCommand() *cobra.Command {
	cfg := agent.Config{}
	cache := agent.CacheConfig{}
	c := leaf(&cobra.Command{
		Use:   "agent",
		Short: "Run the identity agent (and, with --cache-listen, the secrets cache) on an application host (loopback only)",
		Long: "Serve managed-identity tokens to the applications on this host, on a loopback address, in the App Service " +
			"protocol (IDENTITY_ENDPOINT, IDENTITY_HEADER) and the MSI_ENDPOINT protocol (az login --identity). The first " +
			"run redeems --registration-token (from `strongroom identity host register`) for the host's certificate, kept in " +
			"--data-dir with mode 0600. The variables applications need are written to <data-dir>/agent.env (mode 0600) and " +
			"printed, but for IDENTITY_HEADER's value, which stays in the data directory.\n\n" +
			"With --cache-listen the agent also serves the Key Vault secrets API over HTTPS at " +
			"https://{vault}.<suffix>:<port>/ to applications that use this agent's managed identities: it reads from the " +
			"server as the application's identity, keeps the last good version of each secret it served in memory only, " +
			"refreshes them every --cache-refresh, and serves them (marked x-strongroom-cache: stale) while the server " +
			"cannot be reached; a secret the server has said is deleted, disabled or no longer readable is never served " +
			"again. Applications trust <data-dir>/cache-ca.pem, a CA name-constrained to the suffix, localhost and the " +
			"loopback addresses (made again at start when an older one is not).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cache.Listen != "" {
				cfg.Cache = &cache
			}
			return agent.Run(cmd.Context(), cfg, a.stdout)
		},
	})
	f := c.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:42356", "loopback address to serve applications on")
	f.StringVar(&cfg.Server, "server", "", "the Strongroom server's URL, https://host:port")
	f.StringVar(&cfg.CAFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (default: system roots)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the host credential and the identity header")
	f.StringVar(&cfg.RegistrationToken, "registration-token", "", "one-time registration token to redeem before serving")
	f.StringVar(&cfg.MTLSServer, "mtls-server", "", "the server's host-agent listener (https://host:port), when it has one: tokens are then fetched over mutual TLS with the host certificate")
	f.BoolVar(&cfg.MSIEndpoint, "msi-endpoint", true, "also serve the MSI_ENDPOINT protocol, which needs no header secret (like IMDS)")
	f.StringVar(&cache.Listen, "cache-listen", "", "also serve the secrets cache over HTTPS on this loopback address, e.g. 127.0.0.1:42357")
	f.StringVar(&cache.DNSSuffix, "cache-dns-suffix", "", "the vault host suffix applications name at the cache (default: the server's, without its port)")
	f.DurationVar(&cache.Refresh, "cache-refresh", 30*time.Second, "how often kept secrets are fetched again")
	f.DurationVar(&cache.MaxStale, "cache-max-stale", 24*time.Hour, "how long after its last fetch a kept secret may still be served while the server cannot be reached")
	_ = c.MarkFlagRequired("server")
	_ = c.MarkFlagRequired("data-dir")
	return c
}
