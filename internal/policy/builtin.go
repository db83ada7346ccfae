package policy

import (
	"encoding/json"
	"strings"
	"time"
)

// Modes of a definition: Data rules look at secrets inside vaults, Indexed ones at vaults.
const (
	ModeKeyVaultData = "Microsoft.KeyVault.Data"
	ModeIndexed      = "Indexed"
	ModeAll          = "All"
)

// Resource types and the aliases the built-ins read.
const (
	TypeSecret = "Microsoft.KeyVault.Data/vaults/secrets"
	TypeVault  = "Microsoft.KeyVault/vaults"

	aliasSecretExpires     = "Microsoft.KeyVault.Data/vaults/secrets/attributes.expiresOn"
	aliasSecretNotBefore   = "Microsoft.KeyVault.Data/vaults/secrets/attributes.notBefore"
	aliasSecretCreated     = "Microsoft.KeyVault.Data/vaults/secrets/attributes.createdOn"
	aliasSecretUpdated     = "Microsoft.KeyVault.Data/vaults/secrets/attributes.updatedOn"
	aliasSecretEnabled     = "Microsoft.KeyVault.Data/vaults/secrets/attributes.enabled"
	aliasSecretContentType = "Microsoft.KeyVault.Data/vaults/secrets/contentType"

	aliasVaultCreateMode    = "Microsoft.KeyVault/vaults/createMode"
	aliasVaultSoftDelete    = "Microsoft.KeyVault/vaults/enableSoftDelete"
	aliasVaultPurgeProtect  = "Microsoft.KeyVault/vaults/enablePurgeProtection"
	aliasVaultRBAC          = "Microsoft.KeyVault/vaults/enableRbacAuthorization"
	aliasVaultDefaultAction = "Microsoft.KeyVault/vaults/networkAcls.defaultAction"
	aliasVaultPublicAccess  = "Microsoft.KeyVault/vaults/publicNetworkAccess"
	aliasVaultRetention     = "Microsoft.KeyVault/vaults/softDeleteRetentionInDays"
	aliasVaultIPRules       = "Microsoft.KeyVault/vaults/networkAcls.ipRules[*]"
	aliasVaultSku           = "Microsoft.KeyVault/vaults/sku.name"
)

// SecretFields are the facts of a secret version that Data rules read.
type SecretFields struct {
	Name               string
	Created, Updated   time.Time
	Expires, NotBefore *time.Time
	ContentType        string
	Enabled            bool
	Tags               map[string]string
}

// SecretResource is a secret version as a Data rule sees it.
func SecretResource(f SecretFields) Resource {
	r := Resource{"type": TypeSecret, "name": f.Name, "tags": tagMap(f.Tags),
		strings.ToLower(aliasSecretCreated): f.Created.UTC().Format(TimeFormat),
		strings.ToLower(aliasSecretUpdated): f.Updated.UTC().Format(TimeFormat),
		strings.ToLower(aliasSecretEnabled): f.Enabled}
	if f.Expires != nil {
		r[strings.ToLower(aliasSecretExpires)] = f.Expires.UTC().Format(TimeFormat)
	}
	if f.NotBefore != nil {
		r[strings.ToLower(aliasSecretNotBefore)] = f.NotBefore.UTC().Format(TimeFormat)
	}
	if f.ContentType != "" {
		r[strings.ToLower(aliasSecretContentType)] = f.ContentType
	}
	return r
}

// VaultFields are the facts of a vault that Indexed rules read (nil: not set).
type VaultFields struct {
	Name, Location, Sku         string
	CreateMode                  string
	SoftDelete, PurgeProtection *bool
	RBAC                        *bool
	DefaultAction, PublicAccess string
	RetentionDays               *int
	IPRules                     []string
	Tags                        map[string]string
}

// VaultResource is a vault as an Indexed rule sees it.
func VaultResource(f VaultFields) Resource {
	r := Resource{"type": TypeVault, "name": f.Name, "location": f.Location, "tags": tagMap(f.Tags)}
	set := func(alias string, v any) { r[strings.ToLower(alias)] = v }
	if f.CreateMode != "" {
		set(aliasVaultCreateMode, f.CreateMode)
	}
	if f.SoftDelete != nil {
		set(aliasVaultSoftDelete, *f.SoftDelete)
	}
	if f.PurgeProtection != nil {
		set(aliasVaultPurgeProtect, *f.PurgeProtection)
	}
	if f.RBAC != nil {
		set(aliasVaultRBAC, *f.RBAC)
	}
	if f.DefaultAction != "" {
		set(aliasVaultDefaultAction, f.DefaultAction)
	}
	if f.PublicAccess != "" {
		set(aliasVaultPublicAccess, f.PublicAccess)
	}
	if f.RetentionDays != nil {
		set(aliasVaultRetention, float64(*f.RetentionDays))
	}
	if f.Sku != "" {
		set(aliasVaultSku, f.Sku)
	}
	rules := make([]any, 0, len(f.IPRules))
	for _, ip := range f.IPRules {
		rules = append(rules, map[string]any{"value": ip})
	}
	set(aliasVaultIPRules, rules)
	return r
}

func tagMap(tags map[string]string) map[string]any {
	m := make(map[string]any, len(tags))
	for k, v := range tags {
		m[k] = v
	}
	return m
}

// Definition is a policy definition as ARM serves it.
type Definition struct {
	ID         string               `json:"id"`
	Name       string               `json:"name"`
	Type       string               `json:"type"`
	Properties DefinitionProperties `json:"properties"`
}

// DefinitionProperties are a definition's properties.
type DefinitionProperties struct {
	DisplayName string                  `json:"displayName"`
	PolicyType  string                  `json:"policyType"` // BuiltIn or Custom
	Mode        string                  `json:"mode"`
	Description string                  `json:"description,omitempty"`
	Metadata    map[string]any          `json:"metadata,omitempty"`
	Version     string                  `json:"version,omitempty"`
	Parameters  map[string]ParameterDef `json:"parameters,omitempty"`
	PolicyRule  json.RawMessage         `json:"policyRule"`
}

// ParameterDef is one parameter a definition takes.
type ParameterDef struct {
	Type          string         `json:"type"` // String, Integer, Boolean, Array, Object, Float, DateTime
	Metadata      map[string]any `json:"metadata,omitempty"`
	AllowedValues []any          `json:"allowedValues,omitempty"`
	DefaultValue  any            `json:"defaultValue,omitempty"`
}

// DefinitionType is the ARM type of a definition.
const DefinitionType = "Microsoft.Authorization/policyDefinitions"

func effectParam(values ...any) map[string]ParameterDef {
	return map[string]ParameterDef{"effect": {Type: "String", AllowedValues: values, DefaultValue: values[0],
		Metadata: map[string]any{"displayName": "Effect", "description": "Enable or disable the execution of the policy"}}}
}

func intParam(p map[string]ParameterDef, name, display, desc string, def int) map[string]ParameterDef {
	p[name] = ParameterDef{Type: "Integer", DefaultValue: float64(def), Metadata: map[string]any{"displayName": display, "description": desc}}
	return p
}

func builtIn(id, name, mode, version, desc string, params map[string]ParameterDef, rule string) Definition {
	return Definition{ID: "/providers/" + DefinitionType + "/" + id, Name: id, Type: DefinitionType, Properties: DefinitionProperties{
		DisplayName: name, PolicyType: "BuiltIn", Mode: mode, Description: desc, Version: version, Parameters: params,
		Metadata: map[string]any{"version": version, "category": "Key Vault"}, PolicyRule: json.RawMessage(rule)}}
}

const secretType = `{"field": "type", "equals": "Microsoft.KeyVault.Data/vaults/secrets"}`
const vaultType = `{"field": "type", "equals": "Microsoft.KeyVault/vaults"}`
const notRecover = `{"field": "Microsoft.KeyVault/vaults/createMode", "notEquals": "recover"}`
const thenEffect = `"then": {"effect": "[parameters('effect')]"}`

// BuiltIns are Key Vault's built-in definitions for secrets and vaults, with Azure's ids,
// display names, parameters and defaults.
var BuiltIns = []Definition{
	builtIn("98728c90-32c7-4049-8429-847dc0f4fe37", "Key Vault secrets should have an expiration date", ModeKeyVaultData, "1.0.2",
		"Secrets should have a defined expiration date and not be permanent. Secrets that are valid forever provide a potential attacker with more time to compromise them. It is a recommended security practice to set expiration dates on secrets.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+secretType+`, {"field": "`+aliasSecretExpires+`", "exists": false}]}, `+thenEffect+`}`),
	builtIn("342e8053-e12e-4c44-be01-c3c2f318400f", "Secrets should have the specified maximum validity period", ModeKeyVaultData, "1.0.1",
		"Manage your organizational compliance requirements by specifying the maximum amount of time in days that a secret can be valid within your key vault.",
		intParam(effectParam("Audit", "Deny", "Disabled"), "maximumValidityInDays", "The maximum validity period in days", "The maximum number of days a secret can be valid for.", 90),
		`{"if": {"allOf": [`+secretType+`, {"anyOf": [{"field": "`+aliasSecretExpires+`", "exists": false},
			{"field": "`+aliasSecretExpires+`", "greater": "[addDays(field('`+aliasSecretCreated+`'), parameters('maximumValidityInDays'))]"}]}]}, `+thenEffect+`}`),
	builtIn("b0eb591a-5e70-4534-a8bf-04b9c489584a", "Secrets should have more than the specified number of days before expiration", ModeKeyVaultData, "1.0.1",
		"If a secret is too close to expiration, an organizational delay to rotate the secret may result in an outage. Secrets should be rotated prior to expiration with sufficient time to react to a failure.",
		intParam(effectParam("Audit", "Deny", "Disabled"), "minimumDaysBeforeExpiration", "The minimum days before expiration", "Specify the minimum number of days that a secret should remain usable prior to expiration.", 90),
		`{"if": {"allOf": [`+secretType+`, {"field": "`+aliasSecretExpires+`", "exists": true},
			{"field": "`+aliasSecretExpires+`", "less": "[addDays(utcNow(), parameters('minimumDaysBeforeExpiration'))]"}]}, `+thenEffect+`}`),
	builtIn("e8d99835-8a06-45ae-a8e0-87a91941ccfe", "Secrets should not be active for longer than the specified number of days", ModeKeyVaultData, "1.0.1",
		"If your secrets were created with an activation date set in the future, you must ensure that your secrets have not been active for longer than the specified duration.",
		intParam(effectParam("Audit", "Deny", "Disabled"), "maximumValidityInDays", "The maximum validity period in days", "The maximum number of days a secret can be active for.", 365),
		`{"if": {"allOf": [`+secretType+`, {"value": "[utcNow()]", "greater": "[addDays(if(empty(field('`+aliasSecretNotBefore+`')), field('`+aliasSecretCreated+`'), field('`+aliasSecretNotBefore+`')), parameters('maximumValidityInDays'))]"}]}, `+thenEffect+`}`),
	builtIn("75262d3e-ba4a-4f43-85f8-9f72c090e5e3", "Secrets should have content type set", ModeKeyVaultData, "1.0.1",
		"A content type tag helps identify whether a secret is a password, connection string, etc. Different secrets have different rotation requirements. Content type should be set on secrets.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+secretType+`, {"field": "`+aliasSecretContentType+`", "exists": false}]}, `+thenEffect+`}`),
	builtIn("55615ac9-af46-4a59-874e-391cc3dfb490", "Azure Key Vault should have firewall enabled", ModeIndexed, "3.2.1",
		"Enable the key vault firewall so that the key vault is not accessible by default to any public IPs.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, `+notRecover+`, {"anyOf": [{"field": "`+aliasVaultDefaultAction+`", "exists": false}, {"field": "`+aliasVaultDefaultAction+`", "notEquals": "Deny"}]}, {"field": "`+aliasVaultPublicAccess+`", "notEquals": "Disabled"}]}, `+thenEffect+`}`),
	builtIn("405c5871-3e91-4644-8a63-58e19d68ff5b", "Azure Key Vault should disable public network access", ModeIndexed, "1.1.0",
		"Disable public network access for your key vault so that it's not accessible over the public internet.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, `+notRecover+`, {"field": "`+aliasVaultPublicAccess+`", "notEquals": "Disabled"}]}, `+thenEffect+`}`),
	builtIn("0b60c0b2-2dc2-4e1c-b5c9-abbed971de53", "Key vaults should have deletion protection enabled", ModeIndexed, "2.1.0",
		"Malicious deletion of a key vault can lead to permanent data loss. You can prevent permanent data loss by enabling purge protection and soft delete.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, {"anyOf": [{"field": "`+aliasVaultSoftDelete+`", "exists": false}, {"field": "`+aliasVaultSoftDelete+`", "equals": false},
			{"field": "`+aliasVaultPurgeProtect+`", "exists": false}, {"field": "`+aliasVaultPurgeProtect+`", "equals": false}]}]}, `+thenEffect+`}`),
	builtIn("1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d", "Key vaults should have soft delete enabled", ModeIndexed, "3.1.0",
		"Deleting a key vault without soft delete enabled permanently deletes all secrets, keys, and certificates stored in the key vault. Soft delete allows recovery of the deleted key vault for a configurable retention period.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, {"anyOf": [{"field": "`+aliasVaultSoftDelete+`", "exists": false}, {"field": "`+aliasVaultSoftDelete+`", "equals": false}]}]}, `+thenEffect+`}`),
	builtIn("12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5", "Azure Key Vault should use RBAC permission model", ModeIndexed, "1.0.1",
		"Enable RBAC permission model across Key Vaults.",
		effectParam("Audit", "Deny", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, `+notRecover+`, {"anyOf": [{"field": "`+aliasVaultRBAC+`", "exists": false}, {"field": "`+aliasVaultRBAC+`", "equals": false}]}]}, `+thenEffect+`}`),
	builtIn("ac673a9a-f77d-4846-b2d8-a57f8e1c01dc", "Configure key vaults to enable firewall", ModeIndexed, "1.1.1",
		"Enable the key vault firewall so that the key vault is not accessible by default to any public IPs.",
		effectParam("Modify", "Disabled"),
		`{"if": {"allOf": [`+vaultType+`, `+notRecover+`, {"anyOf": [{"field": "`+aliasVaultDefaultAction+`", "exists": false}, {"field": "`+aliasVaultDefaultAction+`", "notEquals": "Deny"}]}]},
		"then": {"effect": "[parameters('effect')]", "details": {"roleDefinitionIds": ["/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"],
			"conflictEffect": "audit", "operations": [{"operation": "addOrReplace", "field": "`+aliasVaultDefaultAction+`", "value": "Deny"}]}}}`),
	builtIn("cf820ca0-f99e-4f3e-84fb-66e913812d21", "Resource logs in Key Vault should be enabled", ModeIndexed, "5.0.0",
		"Audit enabling of resource logs. This enables you to recreate activity trails to use for investigation purposes when a security incident occurs or when your network is compromised.",
		func() map[string]ParameterDef {
			p := effectParam("AuditIfNotExists", "Disabled")
			p["requiredRetentionDays"] = ParameterDef{Type: "String", DefaultValue: "365", Metadata: map[string]any{"displayName": "Required retention (days)", "description": "The required resource logs retention in days"}}
			return p
		}(),
		`{"if": `+vaultType+`, "then": {"effect": "[parameters('effect')]", "details": {"type": "Microsoft.Insights/diagnosticSettings"}}}`),
}

// BuiltIn returns the built-in definition with id (its name, a GUID), any case.
func BuiltIn(id string) (Definition, bool) {
	for _, d := range BuiltIns {
		if strings.EqualFold(d.Name, id) {
			return d, true
		}
	}
	return Definition{}, false
}
