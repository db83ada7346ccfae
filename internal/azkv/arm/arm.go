// Package arm holds the management-plane wire types Strongroom answers: Azure Resource
// Manager's (metadata, subscriptions, tenants, providers, resource groups, Key Vault vaults),
// the small Microsoft Graph subset the az CLI reads, and the bodies of Strongroom's own operator
// routes under /sys. They are what clients decode, field for field (null and absent fields
// included), kept apart from what the store keeps: internal/httpapi converts between them and
// internal/service's types. Like azkv, it knows nothing of storage, authorization or the domain.
package arm

// List is ARM's {"value": [...]}; Value is never nil, so an empty list is [] and not null.
type List[T any] struct {
	Value []T `json:"value"`
}

// PagedList is a list that names its next page; NextLink is null on the last one.
type PagedList[T any] struct {
	Value    []T     `json:"value"`
	NextLink *string `json:"nextLink"`
}

// Metadata is GET /metadata/endpoints, the cloud description az and the SDKs load.
type Metadata struct {
	Name                     string                 `json:"name"`
	ResourceManager          string                 `json:"resourceManager"`
	Portal                   string                 `json:"portal"`
	Graph                    string                 `json:"graph"`
	MicrosoftGraphResourceID string                 `json:"microsoftGraphResourceId"`
	Authentication           MetadataAuthentication `json:"authentication"`
	Suffixes                 MetadataSuffixes       `json:"suffixes"`
}

// MetadataAuthentication is the metadata's authority and token audiences.
type MetadataAuthentication struct {
	LoginEndpoint    string   `json:"loginEndpoint"`
	Audiences        []string `json:"audiences"`
	Tenant           string   `json:"tenant"`
	IdentityProvider string   `json:"identityProvider"`
}

// MetadataSuffixes are the DNS suffixes clients build data-plane hosts from.
type MetadataSuffixes struct {
	KeyVaultDNS string `json:"keyVaultDns"`
}

// Subscription is a subscription as GET /subscriptions/{id} returns it.
type Subscription struct {
	ID                   string               `json:"id"`
	SubscriptionID       string               `json:"subscriptionId"`
	TenantID             string               `json:"tenantId"`
	DisplayName          string               `json:"displayName"`
	State                string               `json:"state"`
	AuthorizationSource  string               `json:"authorizationSource"`
	ManagedByTenants     []ManagedByTenant    `json:"managedByTenants"`
	SubscriptionPolicies SubscriptionPolicies `json:"subscriptionPolicies"`
}

// ManagedByTenant names a tenant that manages a subscription (Strongroom has none).
type ManagedByTenant struct {
	TenantID string `json:"tenantId"`
}

// SubscriptionPolicies are a subscription's fixed policies.
type SubscriptionPolicies struct {
	LocationPlacementID string `json:"locationPlacementId"`
	QuotaID             string `json:"quotaId"`
	SpendingLimit       string `json:"spendingLimit"`
}

// Tenant is an item of GET /tenants.
type Tenant struct {
	ID             string `json:"id"`
	TenantID       string `json:"tenantId"`
	DisplayName    string `json:"displayName"`
	TenantCategory string `json:"tenantCategory"`
}

// Provider is the Microsoft.KeyVault resource provider (GET, and POST .../register).
type Provider struct {
	ID                 string                 `json:"id"`
	Namespace          string                 `json:"namespace"`
	RegistrationState  string                 `json:"registrationState"`
	RegistrationPolicy string                 `json:"registrationPolicy"`
	ResourceTypes      []ProviderResourceType `json:"resourceTypes"`
}

// ProviderResourceType is a resource type a provider serves.
type ProviderResourceType struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
	APIVersions  []string `json:"apiVersions"`
}

// ResourceGroup is a resource group. Tags is null for a group without tags, as ARM sends it.
type ResourceGroup struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Location   string                  `json:"location"`
	Tags       map[string]string       `json:"tags"`
	Properties ResourceGroupProperties `json:"properties"`
}

// ResourceGroupProperties are a resource group's properties.
type ResourceGroupProperties struct {
	ProvisioningState string `json:"provisioningState"`
}

// ResourceGroupInput is the PUT body of a resource group.
type ResourceGroupInput struct {
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

// GenericResource is an item of GET /subscriptions/{id}/resources.
type GenericResource struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

// GraphUser is Graph's GET /v1.0/me: the signed-in principal's ids.
type GraphUser struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
}

// GraphServicePrincipal is an item of Graph's GET /v1.0/servicePrincipals.
type GraphServicePrincipal struct {
	ID                    string   `json:"id"`
	AppID                 string   `json:"appId"`
	ServicePrincipalNames []string `json:"servicePrincipalNames"`
}
