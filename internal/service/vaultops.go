package service

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/netacl"
	"github.com/strongroom/strongroom/internal/store"
)

var vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// ValidVaultName reports whether name is a legal vault name (3-24 characters, letters, digits
// and hyphens, starting with a letter, ending with a letter or digit, no "--").
func ValidVaultName(name string) bool {
	return vaultNameRE.MatchString(name) && !strings.Contains(name, "--")
}

func vaultNameError(name string) *Error {
	return newErr(ErrBadRequest, "VaultNameNotValid", "", "The vault name '%s' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.", name)
}

func (s *Service) vaultScope(rg, name string) string {
	return s.rgID(rg) + "/providers/Microsoft.KeyVault/vaults/" + name
}

// VaultInput is a create-or-update request.
type VaultInput struct {
	Location   string
	Tags       map[string]string
	Properties VaultProperties
	// AccessPoliciesByDefault makes a new vault that names no enableRbacAuthorization use
	// access policies, as Key Vault does for api-versions before 2026-02-01; otherwise it uses
	// RBAC (2026-02-01 and later). An existing vault keeps its model either way.
	AccessPoliciesByDefault bool
}

// PutVault creates, updates or (createMode "recover") recovers a vault. created is true when a
// new vault was made.
func (s *Service) PutVault(ctx context.Context, rg, name string, in VaultInput) (v *Vault, created bool, err error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/write", false, s.vaultScope(rg, name)); err != nil {
		return nil, false, err
	}
	if !ValidVaultName(name) {
		return nil, false, vaultNameError(name)
	}
	if _, err := s.resourceGroup(ctx, rg); err != nil {
		return nil, false, err
	}
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	old := s.cachedVault(name)
	if err := s.vaultIntegrity(old); err != nil {
		return nil, false, err
	}
	recover := in.Properties.CreateMode != nil && strings.EqualFold(*in.Properties.CreateMode, "recover")
	switch {
	case old != nil && old.Deleted != nil && recover:
		return s.recoverVaultLocked(ctx, old, rg)
	case old != nil && old.Deleted != nil:
		return nil, false, newErr(ErrConflict, "VaultAlreadyExists", "", "The vault name '%s' is already in use. Vault names are globally unique and may still be in the soft deleted state; recover it with createMode 'recover' or purge it first.", name)
	case recover:
		return nil, false, newErr(ErrNotFound, "ResourceNotFound", "", "No deleted vault named '%s' was found to recover.", name)
	case old != nil && !strings.EqualFold(old.ResourceGroup, rg):
		return nil, false, newErr(ErrConflict, "VaultAlreadyExists", "", "The vault name '%s' is already in use. Vault names are globally unique so it is possible that the name is already taken.", name)
	case old != nil:
		upd, err := s.mergeVault(ctx, old, in.Location, in.Tags, &in.Properties, true)
		return upd, false, err
	}
	if err := s.validateNewVault(&in); err != nil {
		return nil, false, err
	}
	c, _ := CallerFrom(ctx)
	now := s.now().UTC()
	p := in.Properties
	p.CreateMode = nil
	p.VaultURI = s.opts.VaultURI(name) + "/"
	p.ProvisioningState = "Succeeded"
	if p.EnableSoftDelete == nil {
		p.EnableSoftDelete = ptr(true)
	}
	if *p.EnableSoftDelete && p.SoftDeleteRetentionInDays == nil {
		p.SoftDeleteRetentionInDays = ptr(90)
	}
	if p.EnableRbacAuthorization == nil {
		p.EnableRbacAuthorization = ptr(!in.AccessPoliciesByDefault)
	}
	if p.PublicNetworkAccess == "" {
		p.PublicNetworkAccess = "Enabled"
	}
	if p.AccessPolicies == nil {
		p.AccessPolicies = []AccessPolicy{}
	}
	v = &Vault{ID: newVaultID(), Name: name, ResourceGroup: rg, Location: in.Location, Tags: in.Tags,
		Properties: p, Created: now, CreatedBy: c.ObjectID, Updated: now, UpdatedBy: c.ObjectID, Layout: LayoutColocated}
	if err := s.enforceVault(ctx, v, "default"); err != nil {
		return nil, false, err
	}
	if err := s.putVaultRecord(ctx, v, store.RequireAbsent(vaultPrefix+strings.ToLower(name))); err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (s *Service) validateNewVault(in *VaultInput) error {
	p := &in.Properties
	switch {
	case in.Location == "":
		return newErr(ErrBadRequest, "LocationRequired", "", "The location property is required for this definition.")
	case p.TenantID == "":
		return newErr(ErrBadRequest, "BadRequest", "", "The parameter properties.tenantId is required.")
	case uuid.Validate(p.TenantID) != nil:
		return newErr(ErrBadRequest, "BadRequest", "", "The parameter properties.tenantId must be a GUID.")
	case p.Sku == nil || p.Sku.Name == "":
		return newErr(ErrBadRequest, "BadRequest", "", "The parameter properties.sku is required.")
	case !strings.EqualFold(p.Sku.Name, "standard") && !strings.EqualFold(p.Sku.Name, "premium"):
		return newErr(ErrBadRequest, "SkuNotSupported", "", "The sku '%s' is not supported; use 'standard' or 'premium'.", p.Sku.Name)
	}
	if p.SoftDeleteRetentionInDays != nil && (*p.SoftDeleteRetentionInDays < 7 || *p.SoftDeleteRetentionInDays > 90) {
		return newErr(ErrBadRequest, "BadRequest", "", "The property softDeleteRetentionInDays must be between 7 and 90.")
	}
	if p.EnablePurgeProtection != nil && *p.EnablePurgeProtection && p.EnableSoftDelete != nil && !*p.EnableSoftDelete {
		return newErr(ErrBadRequest, "BadRequest", "", "Purge protection can only be enabled on a vault with soft delete enabled.")
	}
	if p.EnablePurgeProtection != nil && !*p.EnablePurgeProtection {
		p.EnablePurgeProtection = nil // "false" on create means "not set", as in Azure
	}
	return s.validateCommon(p)
}

// validateCommon checks the properties a create and an update share, and normalises the
// enumerations (which Key Vault accepts in any case) to their canonical spelling in place.
func (s *Service) validateCommon(p *VaultProperties) error {
	if p.AccessPolicies != nil {
		if err := s.validateAccessPolicies("properties.accessPolicies", p.AccessPolicies); err != nil {
			return err
		}
	}
	if p.PublicNetworkAccess != "" {
		v, ok := canonical(p.PublicNetworkAccess, "Enabled", "Disabled")
		if !ok {
			return newErr(ErrBadRequest, "BadRequest", "", "The value '%s' of properties.publicNetworkAccess is invalid; use 'Enabled' or 'Disabled'.", p.PublicNetworkAccess)
		}
		p.PublicNetworkAccess = v
	}
	if n := p.NetworkAcls; n != nil {
		return validateNetworkAcls(n)
	}
	return nil
}

// validateNetworkAcls checks a vault's network rule set and canonicalises it in place. An ip
// rule is stored as given (a single address matches as /32 or /128: netacl.ParseRule).
func validateNetworkAcls(n *NetworkRuleSet) error {
	if n.DefaultAction != "" {
		v, ok := canonical(n.DefaultAction, "Allow", "Deny")
		if !ok {
			return newErr(ErrBadRequest, "BadRequest", "", "The value '%s' of properties.networkAcls.defaultAction is invalid; use 'Allow' or 'Deny'.", n.DefaultAction)
		}
		n.DefaultAction = v
	}
	if n.Bypass != "" {
		v, ok := canonical(n.Bypass, "AzureServices", "None")
		if !ok {
			return newErr(ErrBadRequest, "BadRequest", "", "The value '%s' of properties.networkAcls.bypass is invalid; use 'AzureServices' or 'None'.", n.Bypass)
		}
		n.Bypass = v
	}
	if len(n.IPRules) > MaxIPRules {
		return newErr(ErrBadRequest, "BadRequest", "", "A vault may hold at most %d ip rules; the request has %d.", MaxIPRules, len(n.IPRules))
	}
	for i := range n.IPRules {
		r := &n.IPRules[i]
		r.Value = strings.TrimSpace(r.Value)
		if _, err := netacl.ParseRule(r.Value); err != nil {
			return newErr(ErrBadRequest, "BadRequest", "", "The value '%s' of properties.networkAcls.ipRules[%d] is not a valid IP address or CIDR range (for example 203.0.113.7 or 203.0.113.0/24).", r.Value, i)
		}
	}
	return nil
}

// MaxIPRules is how many ip rules one vault holds (Key Vault's limit).
const MaxIPRules = 1000

// MaxAccessPolicies is how many access-policy entries one vault holds (Key Vault's limit).
const MaxAccessPolicies = 1024

// canonical returns the one of choices equal to v ignoring case.
func canonical(v string, choices ...string) (string, bool) {
	for _, c := range choices {
		if strings.EqualFold(v, c) {
			return c, true
		}
	}
	return "", false
}

// secretPermissions are the access-policy permissions Key Vault defines for secrets.
var secretPermissions = []string{"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge",
	"rotate", "getrotationpolicy", "setrotationpolicy"}

// validateAccessPolicies checks access-policy entries: the deployment's tenant, GUID object and
// application ids, known secret permissions (any case; stored as given, as Key Vault does, like
// the key, certificate and storage lists, which are not checked: Strongroom serves secrets only),
// and at most MaxAccessPolicies entries. field names the list in error messages.
func (s *Service) validateAccessPolicies(field string, aps []AccessPolicy) error {
	if len(aps) > MaxAccessPolicies {
		return newErr(ErrBadRequest, "BadRequest", "", "A vault may hold at most %d access policies; %s has %d.", MaxAccessPolicies, field, len(aps))
	}
	for i, ap := range aps {
		switch {
		case ap.TenantID == "" || ap.ObjectID == "":
			return newErr(ErrBadRequest, "BadRequest", "", "%s[%d] needs a tenantId and an objectId.", field, i)
		case !strings.EqualFold(ap.TenantID, s.opts.TenantID):
			return newErr(ErrBadRequest, "BadRequest", "", "%s[%d].tenantId '%s' is not the tenant of this deployment ('%s'); access policies may name only its principals.", field, i, ap.TenantID, s.opts.TenantID)
		case uuid.Validate(ap.ObjectID) != nil:
			return newErr(ErrBadRequest, "BadRequest", "", "%s[%d].objectId '%s' is not a GUID.", field, i, ap.ObjectID)
		case ap.ApplicationID != "" && uuid.Validate(ap.ApplicationID) != nil:
			return newErr(ErrBadRequest, "BadRequest", "", "%s[%d].applicationId '%s' is not a GUID.", field, i, ap.ApplicationID)
		}
		for j, perm := range ap.Permissions.Secrets {
			if _, ok := canonical(perm, secretPermissions...); !ok {
				return newErr(ErrBadRequest, "BadRequest", "", "Invalid value found at %s[%d].permissions.secrets[%d]: '%s'. Secret permissions are %s.", field, i, j, perm, strings.Join(secretPermissions, ", "))
			}
		}
	}
	return nil
}

// PatchVault applies the fields present in props and tags.
func (s *Service) PatchVault(ctx context.Context, rg, name string, tags map[string]string, props *VaultProperties) (*Vault, error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/write", false, s.vaultScope(rg, name)); err != nil {
		return nil, err
	}
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	v, err := s.liveVault(rg, name)
	if err != nil {
		return nil, err
	}
	return s.mergeVault(ctx, v, "", tags, props, false)
}

// mergeVault applies an update, enforcing the immutable and one-way properties.
func (s *Service) mergeVault(ctx context.Context, old *Vault, location string, tags map[string]string, p *VaultProperties, replaceTags bool) (*Vault, error) {
	if location != "" && !strings.EqualFold(location, old.Location) {
		return nil, newErr(ErrBadRequest, "LocationNotAvailableForResourceType", "", "The location of an existing vault cannot change (it is '%s').", old.Location)
	}
	v := *old
	np := old.Properties
	if p != nil {
		if err := s.validateCommon(p); err != nil {
			return nil, err
		}
		// As in Key Vault, switching the data-plane permission model takes the right to grant
		// roles at the vault (Owner, User Access Administrator), not only vaults/write: it
		// changes who can read every secret.
		if p.EnableRbacAuthorization != nil && *p.EnableRbacAuthorization == old.usesAccessPolicies() {
			if err := s.guard(ctx, "Microsoft.Authorization/roleAssignments/write", false, s.vaultScope(old.ResourceGroup, old.Name)); err != nil {
				return nil, err
			}
		}
		if p.SoftDeleteRetentionInDays != nil && old.Properties.SoftDeleteRetentionInDays != nil && *p.SoftDeleteRetentionInDays != *old.Properties.SoftDeleteRetentionInDays {
			return nil, newErr(ErrBadRequest, "BadRequest", "", "The property softDeleteRetentionInDays cannot be changed once the vault has been created.")
		}
		if p.EnableSoftDelete != nil && !*p.EnableSoftDelete && old.SoftDeleteOn() {
			return nil, newErr(ErrBadRequest, "BadRequest", "", "Soft delete cannot be disabled once it has been enabled.")
		}
		if p.EnablePurgeProtection != nil && !*p.EnablePurgeProtection && old.PurgeProtected() {
			return nil, newErr(ErrBadRequest, "BadRequest", "", "Purge protection cannot be disabled once it has been enabled.")
		}
		if p.TenantID != "" {
			if uuid.Validate(p.TenantID) != nil {
				return nil, newErr(ErrBadRequest, "BadRequest", "", "The parameter properties.tenantId must be a GUID.")
			}
			np.TenantID = p.TenantID
		}
		if p.Sku != nil && p.Sku.Name != "" {
			np.Sku = p.Sku
		}
		if p.AccessPolicies != nil {
			np.AccessPolicies = p.AccessPolicies
		}
		setIf(&np.EnabledForDeployment, p.EnabledForDeployment)
		setIf(&np.EnabledForDiskEncryption, p.EnabledForDiskEncryption)
		setIf(&np.EnabledForTemplateDeployment, p.EnabledForTemplateDeployment)
		setIf(&np.EnableRbacAuthorization, p.EnableRbacAuthorization)
		if p.EnablePurgeProtection != nil && *p.EnablePurgeProtection {
			np.EnablePurgeProtection = ptr(true)
		}
		if p.NetworkAcls != nil {
			np.NetworkAcls = mergeNetworkAcls(old.Properties.NetworkAcls, p.NetworkAcls, replaceTags)
		}
		if p.PublicNetworkAccess != "" {
			np.PublicNetworkAccess = p.PublicNetworkAccess
		}
	}
	if tags != nil || replaceTags {
		v.Tags = tags
	}
	c, _ := CallerFrom(ctx)
	v.Properties = np
	v.Updated, v.UpdatedBy = s.now().UTC(), c.ObjectID
	if err := s.enforceVault(ctx, &v, ""); err != nil {
		return nil, err
	}
	var evOps []store.Op
	if policiesChanged(old, &v) { // in the same batch as the change
		var err error
		if evOps, err = s.accessPolicyEventOps(ctx, &v); err != nil {
			return nil, err
		}
	}
	if err := s.putVaultRecord(ctx, &v, evOps...); err != nil {
		return nil, err
	}
	return &v, nil
}

// mergeNetworkAcls is the rule set an update leaves. A PUT (replace) takes the new one whole;
// a PATCH merges it field by field as an ARM merge patch does (RFC 7396: absent fields keep
// their value, an array given replaces the old one, so "ipRules": [] clears the rules).
func mergeNetworkAcls(old, in *NetworkRuleSet, replace bool) *NetworkRuleSet {
	if replace || old == nil {
		return in
	}
	out := *old
	if in.DefaultAction != "" {
		out.DefaultAction = in.DefaultAction
	}
	if in.Bypass != "" {
		out.Bypass = in.Bypass
	}
	if in.IPRules != nil {
		out.IPRules = in.IPRules
	}
	if in.VirtualNetworkRules != nil {
		out.VirtualNetworkRules = in.VirtualNetworkRules
	}
	return &out
}

func setIf[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

func ptr[T any](v T) *T { return &v }

func (s *Service) liveVault(rg, name string) (*Vault, error) {
	v := s.cachedVault(name)
	if err := s.vaultIntegrity(v); err != nil {
		return nil, err
	}
	if v == nil || v.Deleted != nil || (rg != "" && !strings.EqualFold(v.ResourceGroup, rg)) {
		return nil, newErr(ErrNotFound, "ResourceNotFound", "", "The Resource 'Microsoft.KeyVault/vaults/%s' under resource group '%s' was not found.", name, rg)
	}
	return v, nil
}

// GetVault returns a live vault.
func (s *Service) GetVault(ctx context.Context, rg, name string) (*Vault, error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/read", false, s.vaultScope(rg, name)); err != nil {
		return nil, err
	}
	if _, err := s.resourceGroup(ctx, rg); err != nil {
		return nil, err
	}
	return s.liveVault(rg, name)
}

// ListVaults returns live vaults, in one resource group when rg is not empty.
func (s *Service) ListVaults(ctx context.Context, rg string) ([]*Vault, error) {
	scope := s.SubscriptionScope()
	if rg != "" {
		scope = s.rgID(rg)
	}
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/read", false, scope); err != nil {
		return nil, err
	}
	if rg != "" {
		if _, err := s.resourceGroup(ctx, rg); err != nil {
			return nil, err
		}
	}
	var out []*Vault
	for _, v := range s.vaultSnapshot() {
		if v.Deleted == nil && (rg == "" || strings.EqualFold(v.ResourceGroup, rg)) {
			out = append(out, v)
		}
	}
	if err := s.anyRolledBack(out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVault soft-deletes a vault (or purges it when soft delete is off).
func (s *Service) DeleteVault(ctx context.Context, rg, name string) error {
	if err := s.guard(ctx, "Microsoft.KeyVault/vaults/delete", false, s.vaultScope(rg, name)); err != nil {
		return err
	}
	if _, err := s.liveVault(rg, name); err != nil {
		return err
	}
	return s.deleteVault(ctx, name)
}

func (s *Service) deleteVault(ctx context.Context, name string) error {
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	old := s.cachedVault(name)
	if err := s.vaultIntegrity(old); err != nil {
		return err
	}
	if old == nil || old.Deleted != nil {
		return nil
	}
	// The vault's role assignments go in the same batch, as in Key Vault: recovering the vault
	// does not bring them back, and a vault later made with its name inherits none.
	roleOps, roleNames := s.opts.Roles.DeletionOpsWithin(s.ResourceID(old))
	var err error
	if !old.SoftDeleteOn() {
		err = s.purgeVaultLocked(ctx, old, roleOps...)
	} else {
		v := *old
		now := s.now().UTC()
		v.Deleted = &VaultDeletion{DeletionDate: now, ScheduledPurgeDate: now.Add(time.Duration(old.RetentionDays()) * 24 * time.Hour)}
		err = s.putVaultRecord(ctx, &v, append(roleOps, putDue(vaultDueKey(&v)))...) // indexed in the same batch (purgedue.go)
	}
	if err != nil {
		return err
	}
	return s.opts.Roles.Refresh(ctx, roleNames)
}

// ListDeletedVaults returns the soft-deleted vaults.
func (s *Service) ListDeletedVaults(ctx context.Context) ([]*Vault, error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/deletedVaults/read", false, s.SubscriptionScope()); err != nil {
		return nil, err
	}
	var out []*Vault
	for _, v := range s.vaultSnapshot() {
		if v.Deleted != nil {
			out = append(out, v)
		}
	}
	if err := s.anyRolledBack(out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetDeletedVault returns one soft-deleted vault.
func (s *Service) GetDeletedVault(ctx context.Context, location, name string) (*Vault, error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/deletedVaults/read", false, s.SubscriptionScope()); err != nil {
		return nil, err
	}
	return s.deletedVault(location, name)
}

func (s *Service) deletedVault(location, name string) (*Vault, error) {
	v := s.cachedVault(name)
	if err := s.vaultIntegrity(v); err != nil {
		return nil, err
	}
	if v == nil || v.Deleted == nil || (location != "" && !strings.EqualFold(location, v.Location)) {
		return nil, newErr(ErrNotFound, "ResourceNotFound", "", "The deleted vault '%s' was not found in location '%s'.", name, location)
	}
	return v, nil
}

// PurgeDeletedVault destroys a soft-deleted vault and everything in it, now.
func (s *Service) PurgeDeletedVault(ctx context.Context, location, name string) error {
	if err := s.guard(ctx, "Microsoft.KeyVault/locations/deletedVaults/purge/action", false, s.SubscriptionScope()); err != nil {
		return err
	}
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	v, err := s.deletedVault(location, name)
	if err != nil {
		return err
	}
	if v.PurgeProtected() {
		return newErr(ErrConflict, "ConflictError", "", "Operation 'purge' is not allowed because purge protection is enabled for vault '%s'. It will be purged automatically after its scheduled purge date, %s.", v.Name, v.Deleted.ScheduledPurgeDate.Format(time.RFC3339))
	}
	return s.purgeVaultLocked(ctx, v)
}

// purgeVaultLocked destroys the vault (destroyVault) and drops it from the cache. The caller
// holds vaultWrite.
func (s *Service) purgeVaultLocked(ctx context.Context, v *Vault, guard ...store.Op) error {
	if err := s.destroyVault(ctx, v, append(append([]store.Op(nil), guard...), vaultEventDropOps(v.ID)...)...); err != nil {
		return err
	}
	s.noteSubscription(evSubPrefix+v.ID+"/", false)
	s.vaultMu.Lock()
	delete(s.vaults, strings.ToLower(v.Name))
	s.vaultMu.Unlock()
	return nil
}

func (s *Service) recoverVaultLocked(ctx context.Context, old *Vault, rg string) (*Vault, bool, error) {
	if !strings.EqualFold(old.ResourceGroup, rg) {
		return nil, false, newErr(ErrConflict, "ConflictError", "", "The deleted vault '%s' belongs to resource group '%s'; recover it there.", old.Name, old.ResourceGroup)
	}
	v := *old
	v.Deleted = nil
	c, _ := CallerFrom(ctx)
	v.Updated, v.UpdatedBy = s.now().UTC(), c.ObjectID
	if err := s.enforceVault(ctx, &v, "recover"); err != nil {
		return nil, false, err
	}
	if err := s.putVaultRecord(ctx, &v, dropDue(vaultDueKey(old))); err != nil {
		return nil, false, err
	}
	return &v, false, nil
}

// NameAvailable answers checkNameAvailability.
func (s *Service) NameAvailable(ctx context.Context, name string) (ok bool, reason, message string, err error) {
	if err := s.guard(ctx, "Microsoft.KeyVault/checkNameAvailability/read", false, s.SubscriptionScope()); err != nil {
		return false, "", "", err
	}
	if !ValidVaultName(name) {
		return false, "AccountNameInvalid", vaultNameError(name).Message, nil
	}
	if s.cachedVault(name) != nil {
		return false, "AlreadyExists", "The vault name '" + name + "' is already in use.", nil
	}
	return true, "", "", nil
}

// LookupVault returns a live vault for the data plane by name (no authorization: callers
// authorize the data-plane action against the vault's scope).
func (s *Service) lookupVault(name string) (*Vault, error) {
	v := s.cachedVault(name)
	if v == nil {
		return nil, newErr(ErrNotFound, "VaultNotFound", "", "The vault '%s' was not found.", name)
	}
	if v.check != nil { // after the nil test: the data plane's hot path
		if err := s.vaultIntegrity(v); err != nil {
			return nil, err
		}
	}
	if v.Deleted != nil {
		return nil, newErr(ErrNotFound, "VaultNotFound", "", "The vault '%s' was not found.", name)
	}
	return v, nil
}
