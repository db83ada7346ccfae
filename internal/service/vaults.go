package service

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/netacl"
	"github.com/strongroom/strongroom/internal/store"
)

const (
	rgPrefix    = "arm/rg/"
	vaultPrefix = "arm/vault/"
)

// ResourceGroup is an ARM resource group.
type ResourceGroup struct {
	Name     string            `json:"name"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags,omitempty"`
	Created  time.Time         `json:"created"`
}

// Vault is a Key Vault, live or soft-deleted. Properties is stored and returned in ARM's shape.
type Vault struct {
	ID            string            `json:"id"` // internal id: names the vault's DEK and key prefix
	Name          string            `json:"name"`
	ResourceGroup string            `json:"resourceGroup"`
	Location      string            `json:"location"`
	Tags          map[string]string `json:"tags,omitempty"`
	Properties    VaultProperties   `json:"properties"`
	Created       time.Time         `json:"created"`
	CreatedBy     string            `json:"createdBy"`
	Updated       time.Time         `json:"updated"`
	UpdatedBy     string            `json:"updatedBy"`
	Deleted       *VaultDeletion    `json:"deleted,omitempty"`
	// Layout is the secret key layout the vault was created with (LayoutSplit or
	// LayoutColocated); it never changes.
	Layout int `json:"layout,omitempty"`
	// Seq is raised by every write of the record and Tip is the value of the vault's tip
	// record written with it (vaultintegrity.go); both are empty in records written before.
	Seq uint64 `json:"seq,omitempty"`
	Tip []byte `json:"tip,omitempty"`
	// Model is modelEnforced in records written since access policies are enforced. Earlier
	// records stored enableRbacAuthorization false by default while nothing enforced policies
	// (only role assignments ever decided), so they load as RBAC vaults (loaded).
	Model int `json:"model,omitempty"`

	resourceID string // set when the vault enters the cache
	auditID    string // resourceID upper-cased, as audit records carry it (set with resourceID)
	// check is the record's rollback check (vaultintegrity.go): done when the record entered
	// the cache from a write or another node's, pending until first use for those loaded at
	// start. nil means nothing to check.
	check *vaultCheck
	// Derived from Properties by prepare when the record enters the cache, so the data plane
	// parses nothing per request; nil when not prepared (then computed on each use).
	firewall *netacl.Rules
	policies []authz.PolicyEntry
	prepared bool
}

// VaultDeletion marks a soft-deleted vault.
type VaultDeletion struct {
	DeletionDate       time.Time `json:"deletionDate"`
	ScheduledPurgeDate time.Time `json:"scheduledPurgeDate"`
}

// VaultProperties is ARM's vault properties object (fields as on the wire).
type VaultProperties struct {
	TenantID                     string          `json:"tenantId"`
	Sku                          *Sku            `json:"sku"`
	AccessPolicies               []AccessPolicy  `json:"accessPolicies"`
	VaultURI                     string          `json:"vaultUri,omitempty"`
	EnabledForDeployment         *bool           `json:"enabledForDeployment,omitempty"`
	EnabledForDiskEncryption     *bool           `json:"enabledForDiskEncryption,omitempty"`
	EnabledForTemplateDeployment *bool           `json:"enabledForTemplateDeployment,omitempty"`
	EnableSoftDelete             *bool           `json:"enableSoftDelete,omitempty"`
	SoftDeleteRetentionInDays    *int            `json:"softDeleteRetentionInDays,omitempty"`
	EnableRbacAuthorization      *bool           `json:"enableRbacAuthorization,omitempty"`
	EnablePurgeProtection        *bool           `json:"enablePurgeProtection,omitempty"`
	CreateMode                   *string         `json:"createMode,omitempty"`
	NetworkAcls                  *NetworkRuleSet `json:"networkAcls,omitempty"`
	PublicNetworkAccess          string          `json:"publicNetworkAccess,omitempty"`
	ProvisioningState            string          `json:"provisioningState,omitempty"`
}

// Sku is the vault SKU.
type Sku struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

// AccessPolicy is one access-policy entry (validateAccessPolicies; updated by
// UpdateAccessPolicies; decided by authz.PolicyAllows).
type AccessPolicy struct {
	TenantID      string      `json:"tenantId"`
	ObjectID      string      `json:"objectId"`
	ApplicationID string      `json:"applicationId,omitempty"`
	Permissions   Permissions `json:"permissions"`
}

// Permissions lists access-policy permissions per object kind.
type Permissions struct {
	Keys         []string `json:"keys,omitempty"`
	Secrets      []string `json:"secrets,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
	Storage      []string `json:"storage,omitempty"`
}

// NetworkRuleSet is the vault firewall configuration (validateNetworkAcls; enforced on the data
// plane through VaultRef.NetworkRules and netacl).
type NetworkRuleSet struct {
	Bypass              string     `json:"bypass,omitempty"`
	DefaultAction       string     `json:"defaultAction,omitempty"`
	IPRules             []IPRule   `json:"ipRules,omitempty"`
	VirtualNetworkRules []VNetRule `json:"virtualNetworkRules,omitempty"`
}

// IPRule is one allowed address range.
type IPRule struct {
	Value string `json:"value"`
}

// VNetRule is one allowed subnet.
type VNetRule struct {
	ID                               string `json:"id"`
	IgnoreMissingVnetServiceEndpoint bool   `json:"ignoreMissingVnetServiceEndpoint,omitempty"`
}

// SoftDeleteOn reports whether deleting objects keeps them recoverable.
func (v *Vault) SoftDeleteOn() bool {
	return v.Properties.EnableSoftDelete == nil || *v.Properties.EnableSoftDelete
}

// RetentionDays is the soft-delete retention (0 when soft delete is off).
func (v *Vault) RetentionDays() int {
	if !v.SoftDeleteOn() {
		return 0
	}
	if d := v.Properties.SoftDeleteRetentionInDays; d != nil {
		return *d
	}
	return 90
}

// PurgeProtected reports whether purge protection is on.
func (v *Vault) PurgeProtected() bool {
	return v.Properties.EnablePurgeProtection != nil && *v.Properties.EnablePurgeProtection
}

// RecoveryLevel derives Key Vault's recoveryLevel from the vault's settings.
func (v *Vault) RecoveryLevel() string {
	days := v.RetentionDays()
	switch {
	case days == 0:
		return "Purgeable"
	case days == 90 && v.PurgeProtected():
		return "Recoverable"
	case days == 90:
		return "Recoverable+Purgeable"
	case v.PurgeProtected():
		return "CustomizedRecoverable"
	default:
		return "CustomizedRecoverable+Purgeable"
	}
}

// ResourceID is the vault's ARM id.
func (s *Service) ResourceID(v *Vault) string {
	if v.resourceID != "" {
		return v.resourceID // cached vaults carry it: it is on every data-plane request
	}
	return s.rgID(v.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + v.Name
}

func (s *Service) rgID(rg string) string {
	return "/subscriptions/" + s.opts.SubscriptionID + "/resourceGroups/" + rg
}

// SubscriptionScope is the ARM scope of the deployment's subscription.
func (s *Service) SubscriptionScope() string { return "/subscriptions/" + s.opts.SubscriptionID }

var rgNameRE = regexp.MustCompile(`^[-\w\._\(\)]{1,90}$`)

// PutResourceGroup creates or updates a resource group; created is true for a new one.
func (s *Service) PutResourceGroup(ctx context.Context, name, location string, tags map[string]string) (rg ResourceGroup, created bool, err error) {
	if err := s.guard(ctx, "Microsoft.Resources/subscriptions/resourceGroups/write", false, s.rgID(name)); err != nil {
		return rg, false, err
	}
	if !rgNameRE.MatchString(name) || strings.HasSuffix(name, ".") {
		return rg, false, newErr(ErrBadRequest, "InvalidResourceGroup", "", "The provided resource group name '%s' has these invalid characters or length. The name can only include alphanumeric, underscore, parentheses, hyphen, period (except at end), and Unicode characters that match the allowed characters, up to 90 characters.", name)
	}
	if location == "" {
		return rg, false, newErr(ErrBadRequest, "LocationRequired", "", "The location property is required for this definition.")
	}
	key := rgPrefix + strings.ToLower(name)
	err = retry(func() error {
		var old ResourceGroup
		raw, found, err := s.get(ctx, keyring.SystemKeyID, key, &old)
		if err != nil {
			return err
		}
		rg = ResourceGroup{Name: name, Location: location, Tags: tags, Created: s.now().UTC()}
		ops := []store.Op{store.RequireAbsent(key)}
		if found {
			if !strings.EqualFold(old.Location, location) {
				return newErr(ErrConflict, "InvalidResourceGroupLocation", "", "Invalid resource group location '%s'. The Resource group already exists in location '%s'.", location, old.Location)
			}
			rg.Name, rg.Created = old.Name, old.Created
			ops = []store.Op{store.RequireEqual(key, raw)}
		}
		created = !found
		sealed, err := s.seal(ctx, keyring.SystemKeyID, key, rg)
		if err != nil {
			return err
		}
		return s.apply(ctx, append(ops, store.Put(key, sealed)))
	})
	return rg, created, err
}

// GetResourceGroup returns one resource group.
func (s *Service) GetResourceGroup(ctx context.Context, name string) (ResourceGroup, error) {
	if err := s.guard(ctx, "Microsoft.Resources/subscriptions/resourceGroups/read", false, s.rgID(name)); err != nil {
		return ResourceGroup{}, err
	}
	return s.resourceGroup(ctx, name)
}

func (s *Service) resourceGroup(ctx context.Context, name string) (ResourceGroup, error) {
	var rg ResourceGroup
	_, found, err := s.get(ctx, keyring.SystemKeyID, rgPrefix+strings.ToLower(name), &rg)
	if err != nil {
		return rg, err
	}
	if !found {
		return rg, newErr(ErrNotFound, "ResourceGroupNotFound", "", "Resource group '%s' could not be found.", name)
	}
	return rg, nil
}

// ListResourceGroups returns every resource group, sorted by name.
func (s *Service) ListResourceGroups(ctx context.Context) ([]ResourceGroup, error) {
	if err := s.guard(ctx, "Microsoft.Resources/subscriptions/resourceGroups/read", false, s.SubscriptionScope()); err != nil {
		return nil, err
	}
	var out []ResourceGroup
	var openErr error
	err := s.st.Scan(ctx, rgPrefix, "", func(key string, raw []byte) bool {
		var rg ResourceGroup
		if openErr = s.open(ctx, keyring.SystemKeyID, key, raw, &rg); openErr != nil {
			return false
		}
		out = append(out, rg)
		return true
	})
	if err == nil {
		err = openErr
	}
	return out, err
}

// DeleteResourceGroup deletes a resource group and (soft-)deletes the vaults in it.
func (s *Service) DeleteResourceGroup(ctx context.Context, name string) error {
	if err := s.guard(ctx, "Microsoft.Resources/subscriptions/resourceGroups/delete", false, s.rgID(name)); err != nil {
		return err
	}
	if _, err := s.resourceGroup(ctx, name); err != nil {
		return err
	}
	for _, v := range s.vaultSnapshot() {
		if v.Deleted == nil && strings.EqualFold(v.ResourceGroup, name) {
			if err := s.deleteVault(ctx, v.Name); err != nil {
				return fmt.Errorf("deleting vault %s of resource group %s: %w", v.Name, name, err)
			}
		}
	}
	// Its managed identities go too, as in Azure: their principals are deleted, so their tokens
	// stop verifying and no host gets one for them any more.
	if s.opts.DeleteIdentitiesIn != nil {
		if err := s.opts.DeleteIdentitiesIn(ctx, name); err != nil {
			return fmt.Errorf("deleting the managed identities of resource group %s: %w", name, err)
		}
	}
	// The group's role assignments (and eligibilities) go with it, as its vaults' did, so a group
	// made again under the name inherits none.
	roleOps, roleNames := s.opts.Roles.DeletionOpsWithin(s.rgID(name))
	if err := s.apply(ctx, append(roleOps, store.Delete(rgPrefix+strings.ToLower(name)))); err != nil {
		return err
	}
	return s.opts.Roles.Refresh(ctx, roleNames)
}

func (s *Service) vaultSnapshot() []*Vault {
	s.vaultMu.RLock()
	defer s.vaultMu.RUnlock()
	out := slices.Collect(maps.Values(s.vaults))
	slices.SortFunc(out, func(a, b *Vault) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// cachedVault returns the cached vault by name (live or deleted), or nil.
func (s *Service) cachedVault(name string) *Vault {
	s.vaultMu.RLock()
	defer s.vaultMu.RUnlock()
	return s.vaults[strings.ToLower(name)]
}

// putVaultRecord writes v guarded by the state the cache saw, then updates the cache.
func (s *Service) putVaultRecord(ctx context.Context, v *Vault, extra ...store.Op) error {
	key := vaultPrefix + strings.ToLower(v.Name)
	v.Model = modelEnforced
	v.Seq++
	v.Tip = newTip()
	sealed, err := s.seal(ctx, keyring.SystemKeyID, key, v)
	if err != nil {
		return err
	}
	if err := s.apply(ctx, append(extra, store.Put(key, sealed), store.Put(vaultTipKey(v), bytes.Clone(v.Tip)))); err != nil {
		return err
	}
	v.prepare()
	s.vaultMu.Lock()
	v.resourceID = s.rgID(v.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + v.Name
	v.auditID = strings.ToUpper(v.resourceID)
	s.vaults[strings.ToLower(v.Name)] = v
	s.vaultMu.Unlock()
	return nil
}

// Name is the vault's name in its own spelling ("" when not found).
func (r VaultRef) Name() string {
	if r.err != nil {
		return ""
	}
	return r.v.Name
}

// NetworkRules is the vault's firewall as the cached record holds it, for the data plane's
// check before any operation (no store read; the rules are compiled once, by prepare). ok is
// false when the vault was not found, or its rules admit every address (public access on,
// default action Allow): the caller then need not resolve the client at all. The rules are
// shared and must not be modified.
func (r VaultRef) NetworkRules() (rules *netacl.Rules, ok bool) {
	if r.err != nil {
		return nil, false
	}
	fw := r.v.firewall
	if !r.v.prepared {
		p := &r.v.Properties
		open := netacl.Rules{PublicNetworkAccess: p.PublicNetworkAccess}
		if p.NetworkAcls != nil {
			open.DefaultAction = p.NetworkAcls.DefaultAction
		}
		if open.Open() {
			return nil, false // nothing allocated on the common path
		}
		fw = r.v.compileFirewall()
	}
	if fw.Open() {
		return nil, false
	}
	return fw, true
}

// PolicyEntries is the vault's access policies as authz.PolicyAllows decides with them (secret
// permissions only), prepared once per record; shared, must not be modified.
func (v *Vault) PolicyEntries() []authz.PolicyEntry {
	if v.prepared {
		return v.policies
	}
	return v.policyEntries()
}

// prepare computes what requests derive from the record, before it enters the cache (where it
// is immutable). Every path that puts a record in the cache should call it: putVaultRecord
// does; a record that was not prepared is served correctly, computing these on each use.
func (v *Vault) prepare() {
	v.firewall, v.policies, v.prepared = v.compileFirewall(), v.policyEntries(), true
}

func (v *Vault) compileFirewall() *netacl.Rules {
	p := &v.Properties
	r := netacl.Rules{PublicNetworkAccess: p.PublicNetworkAccess}
	if n := p.NetworkAcls; n != nil {
		r.DefaultAction, r.Bypass = n.DefaultAction, n.Bypass
		for _, ipr := range n.IPRules {
			r.IPRules = append(r.IPRules, ipr.Value)
		}
	}
	return netacl.Compile(r)
}

func (v *Vault) policyEntries() []authz.PolicyEntry {
	out := make([]authz.PolicyEntry, len(v.Properties.AccessPolicies))
	for i, ap := range v.Properties.AccessPolicies {
		out[i] = authz.PolicyEntry{ObjectID: ap.ObjectID, ApplicationID: ap.ApplicationID, Secrets: ap.Permissions.Secrets}
	}
	return out
}

// modelEnforced marks vault records written since their permission model is enforced.
const modelEnforced = 1

// loaded completes a record read from the store for the cache: a record from before the
// permission model was enforced keeps the behaviour it had, role-based access (it is written
// back with its model on its next change).
func (v *Vault) loaded() {
	if v.Model < modelEnforced {
		on := true
		v.Properties.EnableRbacAuthorization = &on
	}
}
