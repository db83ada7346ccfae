// Package identity owns Strongroom's directory and token authority: the deployment's tenant and
// subscription ids, the directory in Microsoft Graph v1.0 terms (applications and their client
// secrets, service principals, users with argon2id-hashed passwords, groups with nested
// membership, directory role assignments), the token-signing key, and minting and verifying the Entra-shaped access tokens that every
// other part of Strongroom trusts. It knows nothing about HTTP; package issuer serves it.
//
// Invariants:
//
//   - Client secrets exist in plaintext only in memory, only while being created (returned once
//     to the caller) or checked. The store holds an argon2id hash with a per-secret random salt
//     and the KDF parameters used; checks compare in constant time. An unknown client id costs
//     no hash (its answer names it unknown anyway). Sign-in failures are limited per client id
//     and per source network before anything is hashed, and hashes run in a bounded queue
//     (lockout.go, secret.go).
//   - Tokens carry the key id of the secret (or user password) that minted them and the
//     principal's generation; every verification checks both, and that the principal exists,
//     has the token's identity type and is enabled, against an in-memory copy of the principal
//     and directory records kept current on every node (state.go, dirstate.go). Group
//     membership and directory roles are answered from that copy too (GroupsOf, PrincipalType,
//     ResolvePrincipal, AuthorizeDirectoryWrite): never from a token's groups claim.
//   - Directory writes are single store batches with compare-and-set preconditions: deleting an
//     object deletes its memberships and role assignments in the same batch; a membership is
//     written only while both its group and its member are unchanged.
//   - The RSA signing key reaches the store only sealed by the keyring's system data key. JWKS
//     publishes public keys only.
//   - Every record is sealed with keyring.SystemKeyID under its own storage key, so nothing in
//     this package is ever written in plaintext and a record moved to another key fails to open.
//   - Errors never contain a secret or a token. Verification failures say why in a few words.
//
// Records are sealed by the keyring, each under its own data key wrapped by the active term.
//
// Storage layout (every value is a sealed JSON record carrying "v": 1; readers reject other
// versions):
//
//	id/deployment            deploymentRecord: tenant id, subscription id, active signing key id
//	id/admin                 adminRecord: object and app id of the bootstrap admin principal
//	id/signkey/<kid>         signingKeyRecord: PKCS#8 RSA private key; kid = RFC 7638 thumbprint
//	id/principal/<objectId>  principalRecord: a service principal (and, for principals made
//	                         before applications existed, its hashed secrets)
//	id/appid/<appId>         appIndexRecord: appId → service principal object id (objectId, ""
//	                         while the app has none) and application object id (applicationId)
//	id/application/<id>      applicationRecord: application object, its hashed client secrets
//	                         (Graph passwordCredentials: keyId, displayName, endDateTime, hint)
//	id/user/<objectId>       userRecord: user, its argon2id password hash, enabled, generation
//	id/upn/<lower-case UPN>  upnIndexRecord: user principal name → user object id
//	id/group/<id>            groupRecord: displayName, mailNickname, securityEnabled
//	id/member/<gid>/<mid>    memberRecord: one direct membership (member id and type)
//	id/dirrole/<id>          dirRoleRecord: directory role assignment (principalId,
//	                         roleDefinitionId = built-in role template id, directoryScopeId "/")
//	id/appcreds/<id>         appCredsRecord: an application's certificates (keyCredentials, DER),
//	                         federated identity credentials (issuer, subject, audiences; tokens
//	                         either mints find their id on a marker secret of the service
//	                         principal, assertion.go) and the redirect URIs /authorize may
//	                         send codes to (authcode.go)
//	id/jti/<hour>/<hash>     jtiRecord: a used client assertion id (hash = hex SHA-256 of
//	                         appId|jti; hour = its expiry's Unix hour, swept by key once past)
//	id/devicecode/<hash>     deviceCodeRecord: a pending device authorization (hash = hex SHA-256
//	                         of the device code; client, scope, user code, expiry, status, user)
//	id/usercode/<code>       userCodeRecord: user code → device code hash
//	id/authcode/<hash>       authCodeRecord: an unredeemed authorization code (hash = hex SHA-256
//	                         of the code; client, redirect URI, PKCE S256 challenge, user, expiry)
//	id/rtfamily/<familyId>   refreshFamilyRecord: one sign-in's refresh tokens (refresh.go): user,
//	                         client, the password key id, generation and session epoch it is bound
//	                         to, creation and last use, hex SHA-256 of the current token and of the
//	                         last rotated ones (never a token)
//	id/rtuser/<objectId>     refreshUserRecord: the user's families (id, client, creation), for the
//	                         per-user caps and for deleting them when the user is revoked
//
// User grants asking for offline_access also get an opaque refresh token (refresh.go), and for
// openid an ID token (idtoken.go).
//
// Tokens are RS256 JWTs shaped like Entra ID v2 access tokens (aud, iss, iat, nbf, exp,
// app_displayname, appid, azp, azpacr, idtyp "app", oid, sub, tid, uti, ver "2.0"; user tokens
// add name, upn, scp and groups, or the overage claim past 200 groups, with idtyp "user"), plus
// sr_cred (the minting secret's or password's key id) and sr_gen (the principal's generation).
// Tokens are minted only for resources some plane serves (ServesResource). The issuer is
// PublicURL + "/" + tenantID + "/v2.0" whichever endpoint minted the token (including the ADFS
// one, which has no tenant in its path).
//
// A Service is safe for concurrent use.
package identity
