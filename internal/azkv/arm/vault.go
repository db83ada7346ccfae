package arm

// Vault is a Key Vault vault as ARM returns it. Tags is never null ({} without tags).
type Vault struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData SystemData        `json:"systemData"`
	Properties VaultProperties   `json:"properties"`
}

// SystemData is ARM's who-and-when of a resource; times are in ARM's 7-digit UTC form.
type SystemData struct {
	CreatedBy          string `json:"createdBy"`
	CreatedByType      string `json:"createdByType"`
	CreatedAt          string `json:"createdAt"`
	LastModifiedBy     string `json:"lastModifiedBy"`
	LastModifiedByType string `json:"lastModifiedByType"`
	LastModifiedAt     string `json:"lastModifiedAt"`
}

// VaultProperties is the vault properties object, in requests (PUT, PATCH) and responses.
// Pointers tell an absent field from a false or zero one; accessPolicies is null when absent.
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

// Sku is a vault's pricing tier.
type Sku struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

// AccessPolicy is one entry of a vault's access policies.
type AccessPolicy struct {
	TenantID      string      `json:"tenantId"`
	ObjectID      string      `json:"objectId"`
	ApplicationID string      `json:"applicationId,omitempty"`
	Permissions   Permissions `json:"permissions"`
}

// Permissions are an access policy's permissions per object kind.
type Permissions struct {
	Keys         []string `json:"keys,omitempty"`
	Secrets      []string `json:"secrets,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
	Storage      []string `json:"storage,omitempty"`
}

// NetworkRuleSet is a vault's network rules.
type NetworkRuleSet struct {
	Bypass              string     `json:"bypass,omitempty"`
	DefaultAction       string     `json:"defaultAction,omitempty"`
	IPRules             []IPRule   `json:"ipRules,omitempty"`
	VirtualNetworkRules []VNetRule `json:"virtualNetworkRules,omitempty"`
}

// IPRule admits an address range.
type IPRule struct {
	Value string `json:"value"`
}

// VNetRule admits a virtual network subnet.
type VNetRule struct {
	ID                               string `json:"id"`
	IgnoreMissingVnetServiceEndpoint bool   `json:"ignoreMissingVnetServiceEndpoint,omitempty"`
}

// VaultInput is the PUT body of a vault; Properties is required.
type VaultInput struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *VaultProperties  `json:"properties"`
}

// VaultPatch is the PATCH body of a vault; absent fields are unchanged.
type VaultPatch struct {
	Tags       map[string]string `json:"tags"`
	Properties *VaultProperties  `json:"properties"`
}

// DeletedVault is a soft-deleted vault.
type DeletedVault struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	Type       string                 `json:"type"`
	Properties DeletedVaultProperties `json:"properties"`
}

// DeletedVaultProperties describe a soft-deleted vault. Tags is never null.
type DeletedVaultProperties struct {
	VaultID                string            `json:"vaultId"`
	Location               string            `json:"location"`
	Tags                   map[string]string `json:"tags"`
	DeletionDate           string            `json:"deletionDate"`
	ScheduledPurgeDate     string            `json:"scheduledPurgeDate"`
	PurgeProtectionEnabled bool              `json:"purgeProtectionEnabled"`
}

// CheckNameRequest is the body of POST .../checkNameAvailability.
type CheckNameRequest struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// NameAvailability answers it; a taken or invalid name carries a reason and a message.
type NameAvailability struct {
	NameAvailable bool   `json:"nameAvailable"`
	Reason        string `json:"reason,omitempty"`
	Message       string `json:"message,omitempty"`
}

// VaultAccessPolicyParameters is the body of PUT .../vaults/{v}/accessPolicies/{add|replace|remove}
// and of its answer (which carries id, name, type and location too).
type VaultAccessPolicyParameters struct {
	ID         string                       `json:"id,omitempty"`
	Name       string                       `json:"name,omitempty"`
	Type       string                       `json:"type,omitempty"`
	Location   string                       `json:"location,omitempty"`
	Properties *VaultAccessPolicyProperties `json:"properties"`
}

// VaultAccessPolicyProperties lists the entries an access-policy update names (in a request)
// or the vault's resulting entries (in the answer). Never null in an answer.
type VaultAccessPolicyProperties struct {
	AccessPolicies []AccessPolicy `json:"accessPolicies"`
}
