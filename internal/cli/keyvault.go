package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (a *app) keyvaultCommand() *cobra.Command {
	return group(&cobra.Command{Use: "keyvault", Short: "Manage key vaults and their secrets"},
		a.vaultCreateCommand(), a.vaultShowCommand(), a.vaultListCommand(), a.vaultUpdateCommand(),
		a.vaultDeleteCommand(), a.vaultListDeletedCommand(), a.vaultShowDeletedCommand(),
		a.vaultPurgeCommand(), a.vaultRecoverCommand(), a.vaultSetPolicyCommand(), a.vaultDeletePolicyCommand(),
		a.networkRuleCommand(), a.vaultHostsCommand(), a.secretCommand())
}

// vaultSettings are the optional vault properties shared by create and update, in az's names.
type vaultSettings struct {
	retentionDays       int32
	purgeProtection     bool
	rbacAuthorization   bool
	forDeployment       bool
	forDiskEncryption   bool
	forTemplateDeploy   bool
	publicNetworkAccess string
	defaultAction       string
	bypass              string
	sku                 string
	tags                []string
	flags               *pflag.FlagSet
}

func (v *vaultSettings) register(f *pflag.FlagSet, create bool) {
	v.flags = f
	retentionDefault := int32(0) // update: unchanged unless given
	if create {
		retentionDefault = 90
	}
	f.Int32Var(&v.retentionDays, "retention-days", retentionDefault, "soft-delete retention in days (7-90)")
	f.BoolVar(&v.purgeProtection, "enable-purge-protection", false, "enable purge protection (cannot be turned off again)")
	if create {
		// As az since 2.61: new vaults use RBAC unless --enable-rbac-authorization false.
		f.BoolVar(&v.rbacAuthorization, "enable-rbac-authorization", true, "authorize data-plane access with RBAC (false: access policies, and the caller gets one)")
	} else {
		f.BoolVar(&v.rbacAuthorization, "enable-rbac-authorization", false, "authorize data-plane access with RBAC instead of access policies")
	}
	f.BoolVar(&v.forDeployment, "enabled-for-deployment", false, "allow virtual machines to retrieve certificates stored as secrets")
	f.BoolVar(&v.forDiskEncryption, "enabled-for-disk-encryption", false, "allow disk encryption to retrieve secrets")
	f.BoolVar(&v.forTemplateDeploy, "enabled-for-template-deployment", false, "allow template deployments to retrieve secrets")
	f.StringVar(&v.publicNetworkAccess, "public-network-access", "", "Enabled or Disabled")
	f.StringVar(&v.defaultAction, "default-action", "", "network ACL default action: Allow or Deny")
	f.StringVar(&v.bypass, "bypass", "", "network ACL bypass: AzureServices or None")
	f.StringArrayVar(&v.tags, "tags", nil, "space-separated tags: key[=value] [key[=value] ...]")
	if create {
		f.StringVar(&v.sku, "sku", "standard", "standard or premium")
	}
}

func (v *vaultSettings) changed(name string) bool { return v.flags.Changed(name) }

// boolIf returns a pointer to b when the flag was given, nil otherwise (the field stays unset).
func (v *vaultSettings) boolIf(name string, b bool) *bool {
	if v.changed(name) {
		return to.Ptr(b)
	}
	return nil
}

// networkACLs returns the network rule set for the given flags, starting from az's defaults on
// create; nil on update when neither flag was given.
func (v *vaultSettings) networkACLs(create bool) *armkeyvault.NetworkRuleSet {
	if !create && !v.changed("default-action") && !v.changed("bypass") {
		return nil
	}
	acl := &armkeyvault.NetworkRuleSet{}
	if create {
		acl.Bypass = to.Ptr(armkeyvault.NetworkRuleBypassOptionsAzureServices)
		acl.DefaultAction = to.Ptr(armkeyvault.NetworkRuleActionAllow)
	}
	if v.bypass != "" {
		acl.Bypass = to.Ptr(armkeyvault.NetworkRuleBypassOptions(v.bypass))
	}
	if v.defaultAction != "" {
		acl.DefaultAction = to.Ptr(armkeyvault.NetworkRuleAction(v.defaultAction))
	}
	return acl
}

func (a *app) vaultCreateCommand() *cobra.Command {
	var name, rg, location string
	var noSelfPerms bool
	var set vaultSettings
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tags, err := parseTags(set.tags)
			if err != nil {
				return err
			}
			if set.sku != "standard" && set.sku != "premium" {
				return usageErrorf("invalid --sku value %q: choose from standard, premium", set.sku)
			}
			s, err := openSession()
			if err != nil {
				return err
			}
			vc, err := s.vaultsClient()
			if err != nil {
				return err
			}
			// Like az: look first, so an existing vault is an error rather than an overwrite.
			if _, err := vc.Get(ctx, rg, name, nil); err == nil {
				return fmt.Errorf("the specified vault: %s already exists", name)
			} else if !isNotFound(err) {
				return fmt.Errorf("checking for an existing vault: %w", err)
			}
			if location == "" {
				if location, err = s.groupLocation(ctx, rg); err != nil {
					return err
				}
			}
			props := set.createProperties(s.profile.TenantID)
			if !set.rbacAuthorization && !noSelfPerms {
				oid, err := s.callerObjectID(ctx)
				if err != nil {
					return err
				}
				props.AccessPolicies = []*armkeyvault.AccessPolicyEntry{selfPolicy(s.profile.TenantID, oid)}
			}
			params := armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr(location), Properties: props}
			if set.changed("tags") {
				params.Tags = tags
			}
			poller, err := vc.BeginCreateOrUpdate(ctx, rg, name, params, nil)
			if err != nil {
				return notFoundOr(err, "resource group", "creating vault")
			}
			res, err := poller.PollUntilDone(ctx, nil)
			if err != nil {
				return fmt.Errorf("creating vault: %w", err)
			}
			return a.printVault(res.Vault)
		},
	})
	f := c.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the vault")
	f.StringVarP(&rg, "resource-group", "g", "", "name of the resource group")
	f.StringVarP(&location, "location", "l", "", "location (default: the resource group's)")
	f.BoolVar(&noSelfPerms, "no-self-perms", false, "do not add an access policy for the caller")
	set.register(f, true)
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("resource-group")
	return c
}

// groupLocation returns the location of resource group rg, where a vault created without
// --location goes.
func (s *session) groupLocation(ctx context.Context, rg string) (string, error) {
	gc, err := s.groupsClient()
	if err != nil {
		return "", err
	}
	g, err := gc.Get(ctx, rg, nil)
	if err != nil {
		return "", notFoundOr(err, "resource group", "getting resource group location")
	}
	return *g.Location, nil
}

// createProperties returns a new vault's properties for the given flags, with az's defaults
// (soft delete on, no access policies: the caller adds its own).
func (v *vaultSettings) createProperties(tenantID string) *armkeyvault.VaultProperties {
	props := &armkeyvault.VaultProperties{
		TenantID:                     to.Ptr(tenantID),
		SKU:                          &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUName(v.sku))},
		AccessPolicies:               []*armkeyvault.AccessPolicyEntry{},
		EnableSoftDelete:             to.Ptr(true),
		SoftDeleteRetentionInDays:    to.Ptr(v.retentionDays),
		EnablePurgeProtection:        v.boolIf("enable-purge-protection", v.purgeProtection),
		EnableRbacAuthorization:      to.Ptr(v.rbacAuthorization), // always sent: the api-version's default differs
		EnabledForDeployment:         v.boolIf("enabled-for-deployment", v.forDeployment),
		EnabledForDiskEncryption:     v.boolIf("enabled-for-disk-encryption", v.forDiskEncryption),
		EnabledForTemplateDeployment: v.boolIf("enabled-for-template-deployment", v.forTemplateDeploy),
		NetworkACLs:                  v.networkACLs(true),
	}
	if !v.purgeProtection && v.changed("enable-purge-protection") {
		props.EnablePurgeProtection = nil // az never sends false: the service rejects it
	}
	if v.publicNetworkAccess != "" {
		props.PublicNetworkAccess = to.Ptr(v.publicNetworkAccess)
	}
	return props
}

// selfPolicy is the access policy az gives the vault's creator: everything on every object type.
func selfPolicy(tenantID, objectID string) *armkeyvault.AccessPolicyEntry {
	return &armkeyvault.AccessPolicyEntry{
		TenantID: to.Ptr(tenantID),
		ObjectID: to.Ptr(objectID),
		Permissions: &armkeyvault.Permissions{
			Keys:         []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsAll)},
			Secrets:      []*armkeyvault.SecretPermissions{to.Ptr(armkeyvault.SecretPermissionsAll)},
			Certificates: []*armkeyvault.CertificatePermissions{to.Ptr(armkeyvault.CertificatePermissionsAll)},
			Storage:      []*armkeyvault.StoragePermissions{to.Ptr(armkeyvault.StoragePermissionsAll)},
		},
	}
}

func (a *app) vaultShowCommand() *cobra.Command {
	var name, rg string
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Show a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			vc, rg, err := a.vaultAndGroup(cmd.Context(), name, rg)
			if err != nil {
				return err
			}
			resp, err := vc.Get(cmd.Context(), rg, name, nil)
			if err != nil {
				return notFoundOr(err, "vault", "getting vault")
			}
			return a.printVault(resp.Vault)
		},
	})
	vaultNameFlags(c, &name, &rg)
	return c
}

func (a *app) vaultUpdateCommand() *cobra.Command {
	var name, rg string
	var set vaultSettings
	c := leaf(&cobra.Command{
		Use:   "update",
		Short: "Update a key vault's properties",
		RunE: func(cmd *cobra.Command, _ []string) error {
			tags, err := parseTags(set.tags)
			if err != nil {
				return err
			}
			vc, rg, err := a.vaultAndGroup(cmd.Context(), name, rg)
			if err != nil {
				return err
			}
			props := &armkeyvault.VaultPatchProperties{
				EnablePurgeProtection:        set.boolIf("enable-purge-protection", set.purgeProtection),
				EnableRbacAuthorization:      set.boolIf("enable-rbac-authorization", set.rbacAuthorization),
				EnabledForDeployment:         set.boolIf("enabled-for-deployment", set.forDeployment),
				EnabledForDiskEncryption:     set.boolIf("enabled-for-disk-encryption", set.forDiskEncryption),
				EnabledForTemplateDeployment: set.boolIf("enabled-for-template-deployment", set.forTemplateDeploy),
				NetworkACLs:                  set.networkACLs(false),
			}
			if set.changed("retention-days") {
				props.SoftDeleteRetentionInDays = to.Ptr(set.retentionDays)
			}
			if set.publicNetworkAccess != "" {
				props.PublicNetworkAccess = to.Ptr(set.publicNetworkAccess)
			}
			params := armkeyvault.VaultPatchParameters{Properties: props}
			if set.changed("tags") {
				params.Tags = tags
			}
			resp, err := vc.Update(cmd.Context(), rg, name, params, nil)
			if err != nil {
				return notFoundOr(err, "vault", "updating vault")
			}
			return a.printVault(resp.Vault)
		},
	})
	vaultNameFlags(c, &name, &rg)
	set.register(c.Flags(), false)
	return c
}

func (a *app) vaultDeleteCommand() *cobra.Command {
	var name, rg string
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete a key vault (soft delete: it can be recovered until purged)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			vc, rg, err := a.vaultAndGroup(cmd.Context(), name, rg)
			if err != nil {
				return err
			}
			if _, err := vc.Delete(cmd.Context(), rg, name, nil); err != nil {
				return notFoundOr(err, "vault", "deleting vault")
			}
			return nil
		},
	})
	vaultNameFlags(c, &name, &rg)
	return c
}

func (a *app) vaultListCommand() *cobra.Command {
	var rg string
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List key vaults",
		RunE: func(cmd *cobra.Command, _ []string) error {
			vc, err := a.vaults()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var items []any
			if rg != "" {
				pager := vc.NewListByResourceGroupPager(rg, nil)
				for pager.More() {
					page, err := pager.NextPage(ctx)
					if err != nil {
						return notFoundOr(err, "resource group", "listing vaults")
					}
					for _, v := range page.Value {
						items = append(items, v)
					}
				}
			} else {
				// az lists the subscription's vaults through the generic resources query.
				pager := vc.NewListPager(nil)
				for pager.More() {
					page, err := pager.NextPage(ctx)
					if err != nil {
						return fmt.Errorf("listing vaults: %w", err)
					}
					for _, v := range page.Value {
						items = append(items, v)
					}
				}
			}
			return a.printVaults(items)
		},
	})
	c.Flags().StringVarP(&rg, "resource-group", "g", "", "list only the vaults in this resource group")
	return c
}

func (a *app) vaultListDeletedCommand() *cobra.Command {
	return leaf(&cobra.Command{
		Use:   "list-deleted",
		Short: "List soft-deleted key vaults",
		RunE: func(cmd *cobra.Command, _ []string) error {
			vc, err := a.vaults()
			if err != nil {
				return err
			}
			deleted := []*armkeyvault.DeletedVault{}
			pager := vc.NewListDeletedPager(nil)
			for pager.More() {
				page, err := pager.NextPage(cmd.Context())
				if err != nil {
					return fmt.Errorf("listing deleted vaults: %w", err)
				}
				deleted = append(deleted, page.Value...)
			}
			return a.print(deleted)
		},
	})
}

func (a *app) vaultShowDeletedCommand() *cobra.Command {
	var name, location string
	c := leaf(&cobra.Command{
		Use:   "show-deleted",
		Short: "Show a soft-deleted key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			vc, err := a.vaults()
			if err != nil {
				return err
			}
			dv, err := findDeletedVault(cmd.Context(), vc, name, location)
			if err != nil {
				return err
			}
			return a.print(dv)
		},
	})
	deletedVaultFlags(c, &name, &location)
	return c
}

func (a *app) vaultPurgeCommand() *cobra.Command {
	var name, location string
	var noWait bool
	c := leaf(&cobra.Command{
		Use:   "purge",
		Short: "Permanently delete a soft-deleted key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			vc, err := a.vaults()
			if err != nil {
				return err
			}
			dv, err := findDeletedVault(ctx, vc, name, location)
			if err != nil {
				return err
			}
			poller, err := vc.BeginPurgeDeleted(ctx, name, deref(dv.Properties.Location), nil)
			if err != nil {
				return notFoundOr(err, "deleted vault", "purging vault")
			}
			if noWait {
				return nil
			}
			if _, err := poller.PollUntilDone(ctx, nil); err != nil {
				return fmt.Errorf("purging vault: %w", err)
			}
			return nil
		},
	})
	deletedVaultFlags(c, &name, &location)
	c.Flags().BoolVar(&noWait, "no-wait", false, "do not wait for the purge to finish")
	return c
}

func (a *app) vaultRecoverCommand() *cobra.Command {
	var name, location, rg string
	var noWait bool
	c := leaf(&cobra.Command{
		Use:   "recover",
		Short: "Recover a soft-deleted key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			vc, err := s.vaultsClient()
			if err != nil {
				return err
			}
			dv, err := findDeletedVault(ctx, vc, name, location)
			if err != nil {
				return err
			}
			if rg == "" {
				rg = resourceGroupFromID(deref(dv.Properties.VaultID))
			}
			// As az does: a PUT of the vault with createMode "recover" and no access policies.
			params := armkeyvault.VaultCreateOrUpdateParameters{
				Location: dv.Properties.Location,
				Properties: &armkeyvault.VaultProperties{
					TenantID:   to.Ptr(s.profile.TenantID),
					SKU:        &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)},
					CreateMode: to.Ptr(armkeyvault.CreateModeRecover),
				},
			}
			poller, err := vc.BeginCreateOrUpdate(ctx, rg, name, params, nil)
			if err != nil {
				return notFoundOr(err, "deleted vault", "recovering vault")
			}
			if noWait {
				return nil
			}
			res, err := poller.PollUntilDone(ctx, nil)
			if err != nil {
				return fmt.Errorf("recovering vault: %w", err)
			}
			return a.printVault(res.Vault)
		},
	})
	deletedVaultFlags(c, &name, &location)
	c.Flags().StringVarP(&rg, "resource-group", "g", "", "resource group to recover into (default: the original one)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "do not wait for the recovery to finish")
	return c
}

func vaultNameFlags(c *cobra.Command, name, rg *string) {
	c.Flags().StringVarP(name, "name", "n", "", "name of the vault")
	c.Flags().StringVarP(rg, "resource-group", "g", "", "resource group of the vault (found automatically if omitted)")
	_ = c.MarkFlagRequired("name")
}

func deletedVaultFlags(c *cobra.Command, name, location *string) {
	c.Flags().StringVarP(name, "name", "n", "", "name of the deleted vault")
	c.Flags().StringVarP(location, "location", "l", "", "location of the deleted vault (found automatically if omitted)")
	_ = c.MarkFlagRequired("name")
}

// vaults opens the session and returns its vaults client.
func (a *app) vaults() (*armkeyvault.VaultsClient, error) {
	s, err := openSession()
	if err != nil {
		return nil, err
	}
	return s.vaultsClient()
}

// vaultAndGroup returns the vaults client and the vault's resource group: rg when given,
// otherwise found from the subscription's vault list, as az does.
func (a *app) vaultAndGroup(ctx context.Context, name, rg string) (*armkeyvault.VaultsClient, string, error) {
	vc, err := a.vaults()
	if err != nil {
		return nil, "", err
	}
	if rg != "" {
		return vc, rg, nil
	}
	pager := vc.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("finding the vault's resource group: %w", err)
		}
		for _, r := range page.Value {
			if r != nil && strings.EqualFold(deref(r.Name), name) {
				if g := resourceGroupFromID(deref(r.ID)); g != "" {
					return vc, g, nil
				}
			}
		}
	}
	return nil, "", &notFoundError{msg: fmt.Sprintf("the resource 'Microsoft.KeyVault/vaults/%s' was not found within the subscription", name)}
}

// findDeletedVault gets a deleted vault by name, searching all locations when none is given.
func findDeletedVault(ctx context.Context, vc *armkeyvault.VaultsClient, name, location string) (*armkeyvault.DeletedVault, error) {
	if location != "" {
		resp, err := vc.GetDeleted(ctx, name, location, nil)
		if err != nil {
			return nil, notFoundOr(err, "deleted vault", "getting deleted vault")
		}
		return &resp.DeletedVault, nil
	}
	pager := vc.NewListDeletedPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing deleted vaults: %w", err)
		}
		for _, dv := range page.Value {
			if dv != nil && dv.Properties != nil && strings.EqualFold(deref(dv.Name), name) {
				return dv, nil
			}
		}
	}
	return nil, &notFoundError{msg: "no deleted vault was found with name " + name}
}

// resourceGroupFromID returns the resourceGroups segment of an ARM id.
func resourceGroupFromID(id string) string {
	parts := strings.Split(id, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return ""
}

// printVault prints a vault's wire JSON plus the resourceGroup field az adds to ARM results.
func (a *app) printVault(v armkeyvault.Vault) error {
	m, err := withResourceGroup(v)
	if err != nil {
		return err
	}
	return a.print(m)
}

func (a *app) printVaults(items []any) error {
	out := make([]any, 0, len(items))
	for _, v := range items {
		m, err := withResourceGroup(v)
		if err != nil {
			return err
		}
		out = append(out, m)
	}
	return a.print(out)
}

// withResourceGroup converts v to its JSON data and adds "resourceGroup" from its id.
func withResourceGroup(v any) (any, error) {
	data, err := toGeneric(v)
	if err != nil {
		return nil, err
	}
	if m, ok := data.(map[string]any); ok {
		if id, ok := m["id"].(string); ok {
			if g := resourceGroupFromID(id); g != "" {
				m["resourceGroup"] = g
			}
		}
	}
	return data, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
