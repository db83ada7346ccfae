// Package identity owns Strongroom's directory and token authority: the deployment's tenant and
// subscription ids, principals (service principals for now), their client-secret credentials,
// the token-signing key, and minting and verifying the Entra-shaped access tokens that every
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
//   - Tokens carry the key id of the secret that minted them and the principal's generation;
//     every verification checks both, and that the principal exists and is enabled, against an
//     in-memory copy of the principal records kept current on every node (state.go).
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
//	id/principal/<objectId>  principalRecord: principal and its hashed secrets
//	id/appid/<appId>         appIndexRecord: appId → objectId
//
// Tokens are RS256 JWTs shaped like Entra ID v2 app-only access tokens (aud, iss, iat, nbf, exp,
// app_displayname, appid, azp, azpacr, idtyp "app", oid, sub, tid, uti, ver "2.0"), plus sr_cred
// (the minting secret's key id) and sr_gen (the principal's generation). The issuer is
// PublicURL + "/" + tenantID + "/v2.0" whichever endpoint minted the token (including the ADFS
// one, which has no tenant in its path).
//
// A Service is safe for concurrent use.
package identity
