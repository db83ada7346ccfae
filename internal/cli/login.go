package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/spf13/cobra"
)

// defaultServer is where `strongroom server` listens by default.
const defaultServer = "https://localhost:8443"

// subscription is one entry of ARM's GET /subscriptions.
type subscription struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	DisplayName    string `json:"displayName"`
	State          string `json:"state"`
}

// accountUser is az's "user" object of an account entry.
type accountUser struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// account is az's shape of a subscription in `az login` and `az account show` output.
type account struct {
	CloudName        string      `json:"cloudName,omitempty"`
	EnvironmentName  string      `json:"environmentName,omitempty"`
	HomeTenantID     string      `json:"homeTenantId"`
	ID               string      `json:"id"`
	IsDefault        bool        `json:"isDefault"`
	ManagedByTenants []any       `json:"managedByTenants"`
	Name             string      `json:"name"`
	State            string      `json:"state"`
	TenantID         string      `json:"tenantId"`
	User             accountUser `json:"user"`
}

// cloudMetadata is the part of ARM's /metadata/endpoints document the CLI uses.
type cloudMetadata struct {
	Name            string `json:"name"`
	ResourceManager string `json:"resourceManager"`
	Authentication  struct {
		LoginEndpoint string   `json:"loginEndpoint"`
		Audiences     []string `json:"audiences"`
		Tenant        string   `json:"tenant"`
	} `json:"authentication"`
	Suffixes struct {
		KeyVaultDNS string `json:"keyVaultDns"`
	} `json:"suffixes"`
}

func (a *app) loginCommand() *cobra.Command {
	var server, caFile, username, password, tenant string
	var servicePrincipal, deviceCode bool
	c := leaf(&cobra.Command{
		Use:   "login",
		Short: "Log in to a Strongroom server as a service principal or a user",
		Long: "Log in to a Strongroom server as a service principal (--service-principal) or as a user\n" +
			"(-u <upn> -p <password>, or --use-device-code to sign in at the server's /devicelogin page,\n" +
			"from any browser). The credentials are checked by getting a token and listing subscriptions,\n" +
			"then stored (mode 0600) in $" + configDirEnv + " (default ~/.strongroom) for the other commands: a\n" +
			"service principal's secret, or a user's access tokens and refresh token (never the password),\n" +
			"which renews the access tokens as they expire until the server revokes it (a password change,\n" +
			"revokeSignInSessions, 90 days unused).",
		Example: "  strongroom login --server https://localhost:8443 --ca-file strongroom-data/tls/ca.pem \\\n" +
			"      --service-principal --username <clientId> --password <clientSecret> --tenant <tenantId>\n" +
			"  strongroom login --server https://localhost:8443 --ca-file strongroom-data/tls/ca.pem \\\n" +
			"      -u alice@contoso.com -p <password>\n" +
			"  strongroom login --server https://localhost:8443 --ca-file strongroom-data/tls/ca.pem --use-device-code",
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case deviceCode && (servicePrincipal || username != "" || password != ""):
				return usageErrorf("--use-device-code takes no --service-principal, --username or --password")
			case !deviceCode && (username == "" || password == ""):
				return usageErrorf("--username and --password are required")
			case servicePrincipal && tenant == "":
				return usageErrorf("--tenant is required with --service-principal")
			}
			p := &Profile{TenantID: tenant, ClientID: username, ClientSecret: password}
			if !servicePrincipal {
				p = &Profile{TenantID: tenant, ClientID: azureCLIClientID, UserName: username}
			}
			var prompt io.Writer
			if deviceCode {
				prompt = cmd.ErrOrStderr()
			}
			u, err := url.Parse(strings.TrimSuffix(server, "/"))
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return usageErrorf("invalid --server value %q: expected an https URL such as %s", server, defaultServer)
			}
			p.Server = u.String()
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading ca file: %w", err)
				}
				p.CAPEM = string(pem)
			}
			accounts, err := login(cmd.Context(), p, password, prompt)
			if err != nil {
				return err
			}
			return a.print(accounts)
		},
	})
	f := c.Flags()
	f.StringVar(&server, "server", defaultServer, "the server's public base URL")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (e.g. <data-dir>/tls/ca.pem)")
	f.BoolVar(&servicePrincipal, "service-principal", false, "log in as a service principal")
	f.StringVarP(&username, "username", "u", "", "the user's principal name, or the service principal's client (application) id")
	f.StringVarP(&password, "password", "p", "", "the user's password, or the service principal's client secret")
	f.StringVarP(&tenant, "tenant", "t", "", "the tenant id")
	f.BoolVar(&deviceCode, "use-device-code", false, "log in as a user with the device code flow (the instructions go to stderr)")
	return c
}

// azureCLIClientID is the application id az signs users in through; the server takes any.
const azureCLIClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

// login completes p from the server's cloud metadata, checks the credentials (for a user,
// getting the tokens the profile keeps instead of the password, by the device flow when
// prompt is set, which gets its instructions), picks the first subscription and saves the
// profile. It returns the subscriptions as az prints them.
func login(ctx context.Context, p *Profile, password string, prompt io.Writer) ([]account, error) {
	hc, err := newHTTPClient([]byte(p.CAPEM))
	if err != nil {
		return nil, err
	}
	meta, err := fetchMetadata(ctx, hc, p.Server)
	if err != nil {
		return nil, err
	}
	applyMetadata(p, meta)
	if p.UserName != "" || prompt != nil {
		if p.TenantID == "" {
			p.TenantID = firstNonEmpty(meta.Authentication.Tenant, "organizations")
		}
		if prompt != nil {
			err = deviceLogin(ctx, p, hc, prompt)
		} else {
			err = passwordLogin(ctx, p, hc, password)
		}
		if err != nil {
			return nil, err
		}
	}
	s, err := newSession(p)
	if err != nil {
		return nil, err
	}
	if _, err := s.armToken(ctx); err != nil {
		return nil, fmt.Errorf("logging in: %w", err)
	}
	subs, err := listSubscriptions(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", err)
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("no subscriptions found for %s", p.ClientID)
	}
	cur := subs[0]
	p.SubscriptionID, p.SubscriptionName, p.SubscriptionState = cur.SubscriptionID, cur.DisplayName, cur.State
	if err := saveProfile(p); err != nil {
		return nil, err
	}
	accounts := make([]account, len(subs))
	for i, sub := range subs {
		accounts[i] = newAccount(p, sub, i == 0)
		accounts[i].CloudName = p.CloudName
	}
	return accounts, nil
}

// newAccount shapes a subscription as az does.
func newAccount(p *Profile, sub subscription, isDefault bool) account {
	tenant := firstNonEmpty(sub.TenantID, p.TenantID)
	return account{
		HomeTenantID:     tenant,
		ID:               sub.SubscriptionID,
		IsDefault:        isDefault,
		ManagedByTenants: []any{},
		Name:             sub.DisplayName,
		State:            sub.State,
		TenantID:         tenant,
		User:             loginUser(p),
	}
}

func loginUser(p *Profile) accountUser {
	if p.UserName != "" {
		return accountUser{Name: p.UserName, Type: "user"}
	}
	return accountUser{Name: p.ClientID, Type: "servicePrincipal"}
}

// fetchMetadata reads the server's az-style cloud metadata. A server without the document
// (404) gets the defaults it would have published.
func fetchMetadata(ctx context.Context, hc *http.Client, server string) (*cloudMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/metadata/endpoints?api-version=2022-09-01", nil)
	if err != nil {
		return nil, fmt.Errorf("fetching cloud metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching cloud metadata: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching cloud metadata: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return &cloudMetadata{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching cloud metadata: the server answered %s", resp.Status)
	}
	// Newer api-versions of Azure's endpoint answer with an array of clouds; accept both.
	body = bytes.TrimSpace(body)
	var meta cloudMetadata
	if len(body) > 0 && body[0] == '[' {
		var all []cloudMetadata
		if err := json.Unmarshal(body, &all); err != nil {
			return nil, fmt.Errorf("parsing cloud metadata: %w", err)
		}
		if len(all) == 0 {
			return &cloudMetadata{}, nil
		}
		meta = all[0]
	} else if err := json.Unmarshal(body, &meta); err != nil {
		return nil, fmt.Errorf("parsing cloud metadata: %w", err)
	}
	return &meta, nil
}

// applyMetadata fills p's endpoints from meta, defaulting to the server's own origin.
func applyMetadata(p *Profile, meta *cloudMetadata) {
	p.CloudName = firstNonEmpty(meta.Name, "Strongroom")
	p.ResourceManager = strings.TrimSuffix(firstNonEmpty(meta.ResourceManager, p.Server), "/")
	p.Authority = strings.TrimSuffix(firstNonEmpty(meta.Authentication.LoginEndpoint, p.Server), "/")
	p.ARMAudience = defaultARMAudience
	if len(meta.Authentication.Audiences) > 0 && meta.Authentication.Audiences[0] != "" {
		p.ARMAudience = meta.Authentication.Audiences[0]
	}
	p.KeyVaultDNS = strings.TrimPrefix(meta.Suffixes.KeyVaultDNS, ".")
	if p.KeyVaultDNS == "" {
		u, _ := url.Parse(p.Server)
		p.KeyVaultDNS = "vault." + u.Host // the server's default --dns-suffix
	}
}

// listSubscriptions pages through GET /subscriptions on the ARM pipeline.
func listSubscriptions(ctx context.Context, s *session) ([]subscription, error) {
	c, err := s.armClient()
	if err != nil {
		return nil, err
	}
	var subs []subscription
	next := runtime.JoinPaths(c.Endpoint(), "/subscriptions") + "?api-version=2022-12-01"
	for pages := 0; next != "" && pages < 100; pages++ {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return nil, err
		}
		req.Raw().Header.Set("Accept", "application/json")
		resp, err := c.Pipeline().Do(req)
		if err != nil {
			return nil, err
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return nil, runtime.NewResponseError(resp)
		}
		var page struct {
			Value    []subscription `json:"value"`
			NextLink string         `json:"nextLink"`
		}
		if err := runtime.UnmarshalAsJSON(resp, &page); err != nil {
			return nil, err
		}
		for _, sub := range page.Value {
			if sub.SubscriptionID == "" {
				sub.SubscriptionID = strings.TrimPrefix(sub.ID, "/subscriptions/")
			}
			subs = append(subs, sub)
		}
		next = page.NextLink
	}
	return subs, nil
}

func (a *app) logoutCommand() *cobra.Command {
	return leaf(&cobra.Command{
		Use:   "logout",
		Short: "Log out: remove the stored profile and its credentials",
		RunE: func(*cobra.Command, []string) error {
			removed, err := removeProfile()
			if err != nil {
				return err
			}
			if !removed {
				return errors.New("there are no active accounts")
			}
			return nil
		},
	})
}

func (a *app) accountCommand() *cobra.Command {
	show := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show the current subscription",
		RunE: func(*cobra.Command, []string) error {
			p, err := loadProfile()
			if err != nil {
				return err
			}
			return a.print(currentAccount(p))
		},
	})
	list := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the subscriptions of the logged-in account",
		RunE: func(*cobra.Command, []string) error {
			p, err := loadProfile()
			if err != nil {
				return err
			}
			acc := currentAccount(p)
			acc.CloudName, acc.EnvironmentName = p.CloudName, ""
			return a.print([]account{acc})
		},
	})
	return group(&cobra.Command{Use: "account", Short: "Show the logged-in account"}, show, list)
}

// currentAccount is `az account show` for the profile's subscription.
func currentAccount(p *Profile) account {
	acc := newAccount(p, subscription{
		SubscriptionID: p.SubscriptionID, TenantID: p.TenantID,
		DisplayName: p.SubscriptionName, State: p.SubscriptionState,
	}, true)
	acc.EnvironmentName = p.CloudName
	return acc
}
