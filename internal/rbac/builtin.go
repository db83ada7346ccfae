package rbac

import "github.com/strongroom/strongroom/internal/authz"

// Built-in role definition GUIDs, as Azure names them (tenant-global ids).
const (
	OwnerID                     = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	ContributorID               = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	ReaderID                    = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	UserAccessAdministratorID   = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	ResourcePolicyContributorID = "36243c78-bf99-498c-9df9-86d9f8d28608"
	KeyVaultAdministratorID     = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
	KeyVaultSecretsOfficerID    = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	KeyVaultSecretsUserID       = "4633458b-17de-408a-b874-0445c86b69e6"
	KeyVaultReaderID            = "21090545-7ca7-4776-b22c-e363652d74d2"
	KeyVaultCertificatesOfficer = "a4417e6f-fecd-4de8-b567-7b0420556985"
	KeyVaultCertificateUserID   = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
	KeyVaultCryptoOfficerID     = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
	KeyVaultCryptoUserID        = "12338af0-0e69-4776-bea7-57ae8d297424"
	KeyVaultCryptoServiceEncID  = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
	KeyVaultCryptoServiceRelID  = "08bbd89e-9f13-488c-ac41-acfcb10c90ab"
	KeyVaultDataAccessAdminID   = "8b54135c-b56d-4d72-a534-26097cfdc8d8"
	KeyVaultContributorID       = "f25e0fa2-a7c8-4377-a976-54943a77a395"
	KeyVaultPurgeOperatorID     = "a68e7c17-0ab2-4c09-9a58-125dae29748c"
	MonitoringReaderID          = "43d0d8ad-25c7-4714-9337-8ba259a9fe05"
	// StrongroomOperatorID is this server's own role: the operator actions (keyring, seal,
	// rekey, principals, signing keys, metrics), which no Azure role's wildcard grants. A fixed
	// GUID of our own, outside Azure's built-in ids.
	StrongroomOperatorID = "5e9f2c1a-7b3d-4c8e-9a6f-0d1e2f3a4b5c"
	// StrongroomAuditReaderID may query the audit log (ActionAuditRecordsRead) and nothing else:
	// Log Analytics Reader's job, without its "*/read", which would also read every vault. A
	// fixed GUID of our own.
	StrongroomAuditReaderID = "3c1f7a52-9e84-4d0b-8a6e-2b5d9c0e7f41"
)

// ActionAuditRecordsRead reads audit records (the audit query route). An operator action, so
// Reader's "*/read" and Key Vault Reader's patterns do not grant it.
const ActionAuditRecordsRead = "Strongroom/operator/auditRecords/read"

// keyVaultControl is the control-plane action list Azure gives the Key Vault data roles that
// carry one (Administrator, the Officers, Reader): reading the vault's children, not the vault.
var keyVaultControl = []string{
	"Microsoft.Authorization/*/read",
	"Microsoft.Insights/alertRules/*",
	"Microsoft.Resources/deployments/*",
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.Support/*",
	"Microsoft.KeyVault/checkNameAvailability/read",
	"Microsoft.KeyVault/deletedVaults/read",
	"Microsoft.KeyVault/locations/*/read",
	"Microsoft.KeyVault/vaults/*/read",
	"Microsoft.KeyVault/operations/read",
}

func builtIn(id, name, description string, p authz.Permission) *authz.Role {
	return &authz.Role{ID: id, Name: name, Description: description, BuiltIn: true,
		Permissions: []authz.Permission{p}, AssignableScopes: []string{"/"}}
}

// BuiltInRoles are Azure's built-in roles that concern a secrets vault, with their real ids,
// actions and data actions. Owner and Contributor carry no data actions, as in Azure.
var BuiltInRoles = []*authz.Role{
	builtIn(OwnerID, "Owner", "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		authz.Permission{Actions: []string{"*"}}),
	builtIn(ContributorID, "Contributor", "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		authz.Permission{Actions: []string{"*"}, NotActions: []string{
			"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action",
			"Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete",
			"Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
			"Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action",
			"Microsoft.Subscription/enable/action"}}),
	builtIn(ReaderID, "Reader", "View all resources, but does not allow you to make any changes.",
		authz.Permission{Actions: []string{"*/read"}}),
	builtIn(ResourcePolicyContributorID, "Resource Policy Contributor", "Users with rights to create/modify resource policy, create support ticket and read resources/hierarchy.",
		authz.Permission{Actions: []string{"*/read", "Microsoft.Authorization/policyassignments/*", "Microsoft.Authorization/policydefinitions/*",
			"Microsoft.Authorization/policyexemptions/*", "Microsoft.Authorization/policysetdefinitions/*", "Microsoft.PolicyInsights/*", "Microsoft.Support/*"}}),
	builtIn(UserAccessAdministratorID, "User Access Administrator", "Lets you manage user access to Azure resources.",
		authz.Permission{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}),
	builtIn(KeyVaultAdministratorID, "Key Vault Administrator", "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: keyVaultControl, DataActions: []string{"Microsoft.KeyVault/vaults/*"}}),
	builtIn(KeyVaultSecretsOfficerID, "Key Vault Secrets Officer", "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: keyVaultControl, DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}),
	builtIn(KeyVaultSecretsUserID, "Key Vault Secrets User", "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}}),
	builtIn(KeyVaultReaderID, "Key Vault Reader", "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: keyVaultControl, DataActions: []string{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}}),
	builtIn(KeyVaultCertificatesOfficer, "Key Vault Certificates Officer", "Perform any action on the certificates of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: keyVaultControl, DataActions: []string{"Microsoft.KeyVault/vaults/certificatecas/*", "Microsoft.KeyVault/vaults/certificates/*", "Microsoft.KeyVault/vaults/certificatecontacts/write"}}),
	builtIn(KeyVaultCertificateUserID, "Key Vault Certificate User", "Read entire certificate contents including secret and key portion. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{DataActions: []string{"Microsoft.KeyVault/vaults/certificates/read", "Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", "Microsoft.KeyVault/vaults/keys/read"}}),
	builtIn(KeyVaultCryptoOfficerID, "Key Vault Crypto Officer", "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: keyVaultControl, DataActions: []string{"Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"}}),
	builtIn(KeyVaultCryptoUserID, "Key Vault Crypto User", "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{DataActions: []string{"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/update/action", "Microsoft.KeyVault/vaults/keys/backup/action",
			"Microsoft.KeyVault/vaults/keys/encrypt/action", "Microsoft.KeyVault/vaults/keys/decrypt/action", "Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action", "Microsoft.KeyVault/vaults/keys/sign/action", "Microsoft.KeyVault/vaults/keys/verify/action"}}),
	builtIn(KeyVaultCryptoServiceEncID, "Key Vault Crypto Service Encryption User", "Read metadata of keys and perform wrap/unwrap operations. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{Actions: []string{"Microsoft.EventGrid/eventSubscriptions/write", "Microsoft.EventGrid/eventSubscriptions/read", "Microsoft.EventGrid/eventSubscriptions/delete"},
			DataActions: []string{"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action"}}),
	builtIn(KeyVaultCryptoServiceRelID, "Key Vault Crypto Service Release User", "Release keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		authz.Permission{DataActions: []string{"Microsoft.KeyVault/vaults/keys/release/action"}}),
	dataAccessAdmin,
	builtIn(KeyVaultContributorID, "Key Vault Contributor", "Manage key vaults, but does not allow you to assign roles in Azure RBAC, and does not allow you to access secrets, keys, or certificates.",
		authz.Permission{Actions: []string{"Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.KeyVault/*",
			"Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"},
			NotActions: []string{"Microsoft.KeyVault/locations/deletedVaults/purge/action", "Microsoft.KeyVault/hsmPools/*", "Microsoft.KeyVault/managedHsms/*"}}),
	builtIn(StrongroomOperatorID, "Strongroom Operator", "Run the server's operator calls: keyring, seal and rekey, snapshots, principals and their secrets, signing keys, metrics. Held by the bootstrap admin at /.",
		authz.Permission{Actions: []string{"Strongroom/operator/*", "Microsoft.Insights/metrics/read"}}),
	builtIn(StrongroomAuditReaderID, "Strongroom Audit Reader", "Query the audit log of every request (who did what, where, when, with which result); records never hold secret values. Grants no access to vaults or secrets.",
		authz.Permission{Actions: []string{ActionAuditRecordsRead}}),
	builtIn(MonitoringReaderID, "Monitoring Reader", "Can read all monitoring data.",
		authz.Permission{Actions: []string{"*/read", "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"}}),
	builtIn(KeyVaultPurgeOperatorID, "Key Vault Purge Operator", "Allows permanent deletion of soft-deleted vaults.",
		authz.Permission{Actions: []string{"Microsoft.Authorization/*/read", "Microsoft.KeyVault/locations/deletedVaults/purge/action",
			"Microsoft.KeyVault/deletedVaults/read", "Microsoft.KeyVault/locations/deletedVaults/read"}}),
}

// dataAccessAdmin may write and delete role assignments, but (Azure's ABAC condition on the
// role) only of the eight Key Vault data roles.
var dataAccessAdmin = func() *authz.Role {
	r := builtIn(KeyVaultDataAccessAdminID, "Key Vault Data Access Administrator", "Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles. Includes an ABAC condition to constrain role assignments.",
		authz.Permission{Actions: []string{authz.ActionRoleAssignmentWrite, authz.ActionRoleAssignmentDelete, "Microsoft.Authorization/*/read",
			"Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/subscriptions/read",
			"Microsoft.Management/managementGroups/read", "Microsoft.Support/*", "Microsoft.KeyVault/vaults/*/read"}})
	r.AssignableRoles = []string{KeyVaultAdministratorID, KeyVaultCertificatesOfficer, KeyVaultCryptoOfficerID, KeyVaultCryptoServiceEncID,
		KeyVaultCryptoUserID, KeyVaultReaderID, KeyVaultSecretsOfficerID, KeyVaultSecretsUserID}
	return r
}()

// DataAccessAdminCondition is the condition text Azure shows on Key Vault Data Access
// Administrator (what AssignableRoles evaluates).
const DataAccessAdminCondition = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985, 14b46e9e-c2b7-41b4-b07b-48a6ebf60603, e147488a-f6f5-4113-8e2d-b22465e65bf6, 12338af0-0e69-4776-bea7-57ae8d297424, 21090545-7ca7-4776-b22c-e363652d74d2, b86a8fe4-44ce-4948-aee5-eccb2c155cd7, 4633458b-17de-408a-b874-0445c86b69e6})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985, 14b46e9e-c2b7-41b4-b07b-48a6ebf60603, e147488a-f6f5-4113-8e2d-b22465e65bf6, 12338af0-0e69-4776-bea7-57ae8d297424, 21090545-7ca7-4776-b22c-e363652d74d2, b86a8fe4-44ce-4948-aee5-eccb2c155cd7, 4633458b-17de-408a-b874-0445c86b69e6}))"

// builtInByID indexes BuiltInRoles by lower-case GUID.
var builtInByID = func() map[string]*authz.Role {
	m := make(map[string]*authz.Role, len(BuiltInRoles))
	for _, r := range BuiltInRoles {
		m[r.ID] = r
	}
	return m
}()

// BuiltIn returns the built-in role with the given GUID.
func BuiltIn(id string) (*authz.Role, bool) {
	r, ok := builtInByID[id]
	return r, ok
}
