package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/spf13/cobra"
)

// The permission flags take several space-separated values, as az's nargs='*' lists do.
func init() {
	multiValueFlags = append(multiValueFlags, "--secret-permissions", "--key-permissions",
		"--certificate-permissions", "--storage-permissions", "--ip-address")
}

// secretPermissionChoices are az's choices for --secret-permissions.
var secretPermissionChoices = []string{"all", "backup", "delete", "get", "getrotationpolicy", "list", "purge", "recover", "restore", "rotate", "set", "setrotationpolicy"}

// policyFlags are the principal and permission flags of set-policy and delete-policy.
type policyFlags struct {
	objectID, spn, upn, applicationID string
	secrets, keys, certificates       []string
	storage                           []string
}

func (p *policyFlags) registerPrincipal(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&p.objectID, "object-id", "", "a GUID that identifies the principal that will receive permissions")
	f.StringVar(&p.spn, "spn", "", "name of a service principal that will receive permissions")
	f.StringVar(&p.upn, "upn", "", "name of a user principal that will receive permissions")
	f.StringVar(&p.applicationID, "application-id", "", "application id of the client making request on behalf of a principal (compound identity)")
}

func (p *policyFlags) registerPermissions(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&p.secrets, "secret-permissions", nil, "space-separated list of secret permissions to assign: "+strings.Join(secretPermissionChoices, ", "))
	f.StringArrayVar(&p.keys, "key-permissions", nil, "space-separated list of key permissions to assign")
	f.StringArrayVar(&p.certificates, "certificate-permissions", nil, "space-separated list of certificate permissions to assign")
	f.StringArrayVar(&p.storage, "storage-permissions", nil, "space-separated list of storage permissions to assign")
}

// principalChosen checks that exactly one of --object-id, --spn and --upn was given, as az does.
func (p *policyFlags) principalChosen() error {
	n := 0
	for _, v := range []string{p.objectID, p.spn, p.upn} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usageErrorf("usage error: --object-id OBJECT_ID | --spn SPN | --upn UPN")
	}
	return nil
}

// distinctPermissions lower-cases a permission list and drops repeats and empty values (a bare
// flag); nil when the flag was not given, so the entry's old list is kept.
func distinctPermissions(c *cobra.Command, flag string, values []string) []string {
	if !c.Flags().Changed(flag) {
		return nil
	}
	out := []string{}
	for _, v := range values {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (a *app) vaultSetPolicyCommand() *cobra.Command {
	var name, rg string
	var pf policyFlags
	c := leaf(&cobra.Command{
		Use:   "set-policy",
		Short: "Update security policy settings for a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.principalChosen(); err != nil {
				return err
			}
			secrets := distinctPermissions(cmd, "secret-permissions", pf.secrets)
			for _, p := range secrets {
				if !slices.Contains(secretPermissionChoices, p) {
					return usageErrorf("argument --secret-permissions: invalid choice: '%s' (choose from '%s')", p, strings.Join(secretPermissionChoices, "', '"))
				}
			}
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			vc, rg, err := a.vaultAndGroup(ctx, name, rg)
			if err != nil {
				return err
			}
			oid, err := s.principalObjectID(ctx, pf)
			if err != nil {
				return err
			}
			vault, err := vc.Get(ctx, rg, name, nil)
			if err != nil {
				return notFoundOr(err, "vault", "getting vault")
			}
			tenant := deref(vault.Properties.TenantID)
			// As az: the entry of the same identity keeps each list no flag replaces.
			entry := &armkeyvault.AccessPolicyEntry{TenantID: to.Ptr(tenant), ObjectID: to.Ptr(oid), Permissions: &armkeyvault.Permissions{}}
			if pf.applicationID != "" {
				entry.ApplicationID = to.Ptr(pf.applicationID)
			}
			if old := findPolicy(vault.Properties.AccessPolicies, tenant, oid, pf.applicationID); old != nil && old.Permissions != nil {
				*entry.Permissions = *old.Permissions
			}
			p := entry.Permissions
			if secrets != nil {
				p.Secrets = ptrs[armkeyvault.SecretPermissions](secrets)
			}
			if v := distinctPermissions(cmd, "key-permissions", pf.keys); v != nil {
				p.Keys = ptrs[armkeyvault.KeyPermissions](v)
			}
			if v := distinctPermissions(cmd, "certificate-permissions", pf.certificates); v != nil {
				p.Certificates = ptrs[armkeyvault.CertificatePermissions](v)
			}
			if v := distinctPermissions(cmd, "storage-permissions", pf.storage); v != nil {
				p.Storage = ptrs[armkeyvault.StoragePermissions](v)
			}
			// One entry replaced in place (Vaults_UpdateAccessPolicy), so a concurrent change to
			// another entry is not overwritten by a PUT of the whole vault.
			if _, err := vc.UpdateAccessPolicy(ctx, rg, name, armkeyvault.AccessPolicyUpdateKindReplace, armkeyvault.VaultAccessPolicyParameters{
				Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: []*armkeyvault.AccessPolicyEntry{entry}}}, nil); err != nil {
				return notFoundOr(err, "vault", "setting access policy")
			}
			return a.printVaultAfter(ctx, vc, rg, name)
		},
	})
	vaultNameFlags(c, &name, &rg)
	pf.registerPrincipal(c)
	pf.registerPermissions(c)
	return c
}

func (a *app) vaultDeletePolicyCommand() *cobra.Command {
	var name, rg string
	var pf policyFlags
	c := leaf(&cobra.Command{
		Use:   "delete-policy",
		Short: "Delete security policy settings for a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.principalChosen(); err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			vc, rg, err := a.vaultAndGroup(ctx, name, rg)
			if err != nil {
				return err
			}
			oid, err := s.principalObjectID(ctx, pf)
			if err != nil {
				return err
			}
			vault, err := vc.Get(ctx, rg, name, nil)
			if err != nil {
				return notFoundOr(err, "vault", "getting vault")
			}
			old := findPolicy(vault.Properties.AccessPolicies, "", oid, pf.applicationID)
			if old == nil {
				return &notFoundError{msg: "No matching policies found"}
			}
			// The entry with every permission it holds: remove leaves it empty, which drops it.
			gone := &armkeyvault.AccessPolicyEntry{TenantID: old.TenantID, ObjectID: old.ObjectID, ApplicationID: old.ApplicationID, Permissions: old.Permissions}
			if gone.Permissions == nil {
				gone.Permissions = &armkeyvault.Permissions{}
			}
			if _, err := vc.UpdateAccessPolicy(ctx, rg, name, armkeyvault.AccessPolicyUpdateKindRemove, armkeyvault.VaultAccessPolicyParameters{
				Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: []*armkeyvault.AccessPolicyEntry{gone}}}, nil); err != nil {
				return notFoundOr(err, "vault", "deleting access policy")
			}
			return a.printVaultAfter(ctx, vc, rg, name)
		},
	})
	vaultNameFlags(c, &name, &rg)
	pf.registerPrincipal(c)
	return c
}

// findPolicy returns the entry for (tenant, objectID, applicationID), ignoring case; an empty
// tenant matches any.
func findPolicy(aps []*armkeyvault.AccessPolicyEntry, tenant, objectID, applicationID string) *armkeyvault.AccessPolicyEntry {
	for _, ap := range aps {
		if ap == nil || !strings.EqualFold(deref(ap.ObjectID), objectID) || !strings.EqualFold(deref(ap.ApplicationID), applicationID) {
			continue
		}
		if tenant == "" || strings.EqualFold(deref(ap.TenantID), tenant) {
			return ap
		}
	}
	return nil
}

func ptrs[T ~string](values []string) []*T {
	out := make([]*T, len(values))
	for i, v := range values {
		out[i] = to.Ptr(T(v))
	}
	return out
}

// printVaultAfter prints the vault as a change left it.
func (a *app) printVaultAfter(ctx context.Context, vc *armkeyvault.VaultsClient, rg, name string) error {
	v, err := vc.Get(ctx, rg, name, nil)
	if err != nil {
		return notFoundOr(err, "vault", "getting vault")
	}
	return a.printVault(v.Vault)
}

// principalObjectID is the object id the flags name: --object-id as given, --spn and --upn
// looked up in the directory (Microsoft Graph at the server's origin) as az does.
func (s *session) principalObjectID(ctx context.Context, pf policyFlags) (string, error) {
	switch {
	case pf.objectID != "":
		return pf.objectID, nil
	case pf.spn != "":
		filter := "servicePrincipalNames/any(c:c eq '" + strings.ReplaceAll(pf.spn, "'", "''") + "')"
		var res struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
		}
		if _, err := s.graphGet(ctx, "/v1.0/servicePrincipals?$filter="+queryEscape(filter), &res); err != nil {
			return "", fmt.Errorf("finding service principal %q: %w", pf.spn, err)
		}
		switch len(res.Value) {
		case 0:
			return "", &notFoundError{msg: fmt.Sprintf("Unable to find service principal with spn '%s'", pf.spn)}
		case 1:
			return res.Value[0].ID, nil
		}
		return "", fmt.Errorf("multiple service principals found with spn '%s': specify --object-id", pf.spn)
	default:
		var u struct {
			ID string `json:"id"`
		}
		status, err := s.graphGet(ctx, "/v1.0/users/"+url.PathEscape(pf.upn), &u)
		if status == http.StatusNotFound || err == nil && u.ID == "" {
			return "", &notFoundError{msg: fmt.Sprintf("Unable to find user with upn '%s'", pf.upn)}
		}
		if err != nil {
			return "", fmt.Errorf("finding user %q: %w", pf.upn, err)
		}
		return u.ID, nil
	}
}

// queryEscape escapes a query value with %20 for spaces, as az's Graph client sends them.
func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// graphGet GETs a Microsoft Graph path at the server's origin with a token for it (the
// audience the cloud registration names as microsoftGraphResourceId) and decodes the answer.
func (s *session) graphGet(ctx context.Context, path string, out any) (int, error) {
	origin := strings.TrimSuffix(s.profile.Server, "/")
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{origin + "/.default"}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, origin+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the directory's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return resp.StatusCode, fmt.Errorf("the directory answered %d %s: %s", resp.StatusCode, e.Error.Code, oneLine(e.Error.Message))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decoding the directory's answer: %w", err)
	}
	return resp.StatusCode, nil
}
