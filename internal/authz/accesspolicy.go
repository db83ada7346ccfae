package authz

import "strings"

// Access policies: the data-plane permission model of vaults with enableRbacAuthorization
// false. Each entry grants a principal (user, group, service principal or managed identity, by
// object id) a list of secret permissions on the whole vault; there is no finer scope and no
// deny. These functions are pure like Decide: the caller passes the vault's entries and every
// object id the caller counts as (its own and its groups', transitively).

// PolicyEntry is one access-policy entry, reduced to what a decision needs.
type PolicyEntry struct {
	ObjectID string
	// ApplicationID, when set, makes the entry a compound identity: it grants ObjectID only
	// while acting through that application (see PolicyAllowsApp).
	ApplicationID string
	Secrets       []string // secret permissions as stored, any case
}

// The secret permissions of an access policy.
const (
	PermAll     = "all"
	PermGet     = "get"
	PermList    = "list"
	PermSet     = "set"
	PermDelete  = "delete"
	PermBackup  = "backup"
	PermRestore = "restore"
	PermRecover = "recover"
	PermPurge   = "purge"
	// Rotation (ours: Key Vault has them for keys only).
	PermRotate            = "rotate"
	PermGetRotationPolicy = "getrotationpolicy"
	PermSetRotationPolicy = "setrotationpolicy"
)

const secretsDataPrefix = "microsoft.keyvault/vaults/secrets/"

// policyPermissions maps each secret data action (lower case, after the prefix) to the
// permission Key Vault requires for the operations that pass it: getSecret is Get Secret;
// readMetadata is Get Secrets, Get Secret Versions, Get Deleted Secrets (all "list" in Key
// Vault's REST reference) and Get Deleted Secret; update is Update Secret (Key Vault requires
// "set" for it); the rest map one to one.
var policyPermissions = map[string]string{
	"getsecret/action":     PermGet,
	"setsecret/action":     PermSet,
	"readmetadata/action":  PermList,
	"update/action":        PermSet,
	"delete":               PermDelete,
	"backup/action":        PermBackup,
	"restore/action":       PermRestore,
	"recover/action":       PermRecover,
	"purge/action":         PermPurge,
	"rotate/action":        PermRotate,
	"rotationpolicy/read":  PermGetRotationPolicy,
	"rotationpolicy/write": PermSetRotationPolicy,
}

// PolicyPermission returns the access-policy secret permission that dataAction
// ("Microsoft.KeyVault/vaults/secrets/getSecret/action", any case) requires; ok is false for
// an action no access policy can grant (anything that is not a secret data action), which
// callers must deny.
func PolicyPermission(dataAction string) (perm string, ok bool) {
	if len(dataAction) < len(secretsDataPrefix) || !strings.EqualFold(dataAction[:len(secretsDataPrefix)], secretsDataPrefix) {
		return "", false
	}
	perm, ok = policyPermissions[strings.ToLower(dataAction[len(secretsDataPrefix):])]
	return perm, ok
}

// PolicyAllows reports whether an entry grants perm to one of principalIDs, and which entry's
// object id did (for the audit record). "all" grants every permission; ids and permissions
// compare case-insensitively. Compound-identity entries (ApplicationID set) never match here:
// this form knows no application, and an entry meant for a user acting through one app must
// not grant that user through any other. Use PolicyAllowsApp when the caller's application
// (the token's appid) is known.
func PolicyAllows(entries []PolicyEntry, principalIDs []string, perm string) (objectID string, ok bool) {
	return PolicyAllowsApp(entries, principalIDs, "", perm)
}

// PolicyAllowsApp is PolicyAllows for a caller acting through application appID (its token's
// appid/azp). A plain entry matches any of principalIDs whatever the application; a compound
// entry matches only when its ObjectID is one of principalIDs and its ApplicationID is appID
// (Key Vault's "authorized application": the user's access holds only through that app).
// An empty appID matches no compound entry.
func PolicyAllowsApp(entries []PolicyEntry, principalIDs []string, appID, perm string) (objectID string, ok bool) {
	if perm == "" {
		return "", false
	}
	for _, e := range entries {
		if e.ApplicationID != "" && (appID == "" || !strings.EqualFold(e.ApplicationID, appID)) {
			continue
		}
		if !policyHas(principalIDs, e.ObjectID) {
			continue
		}
		for _, p := range e.Secrets {
			if strings.EqualFold(p, perm) || strings.EqualFold(p, PermAll) {
				return e.ObjectID, true
			}
		}
	}
	return "", false
}

func policyHas(list []string, v string) bool {
	if v == "" {
		return false
	}
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// PolicyDenialMessage is Key Vault's message for a data-plane request an access-policy vault
// refuses (error code Forbidden, inner code ForbiddenByPolicy): appID, objectID and issuer are
// the caller's token claims (appid, oid, iss), perm the permission it lacks ("get"), vault and
// location the vault's name and region.
func PolicyDenialMessage(appID, objectID, issuer, perm, vault, location string) string {
	return "The user, group or application 'appid=" + appID + ";oid=" + objectID + ";iss=" + issuer +
		"' does not have secrets " + perm + " permission on key vault '" + vault + ";location=" + location +
		"'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
}

// PolicyDenialInnerCode is the inner error code of an access-policy denial (Key Vault's current
// one; older responses said AccessDenied).
const PolicyDenialInnerCode = "ForbiddenByPolicy"
