package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
)

const (
	// clockSkew is tolerated on nbf and exp.
	clockSkew = 5 * time.Minute
	// maxTokenLen rejects absurd bearer values before any parsing (ours are ~1 KiB).
	maxTokenLen = 16 << 10
	// defaultCacheEntries bounds the verification cache.
	defaultCacheEntries = 100_000
)

// Claims is what a verified token says.
type Claims struct {
	Principal Principal
	Audience  string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	TokenID   string // uti
	Issuer    string // iss
	// IdentityType is the token's idtyp claim ("app" for service principals, "user").
	IdentityType string
	// UPN is a user token's user principal name. Group membership is deliberately not here:
	// authorization asks GroupsOf, which is current, never the token's groups claim.
	UPN string
	// CredentialID is the key id of the client secret that minted the token (sr_cred).
	CredentialID string
	// Generation is the principal's generation the token was minted at (sr_gen).
	Generation uint64
	// ClientAuthenticated is true when the client the token names (appid) proved itself with a
	// credential when it was minted (azpacr 1 or 2), false for a public client (azpacr 0), whose
	// client id anyone may send.
	ClientAuthenticated bool

	keyID string // the signing key's kid
}

// invalid wraps ErrInvalidToken with a short reason; it never includes the token.
func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// Verify checks a bearer token and returns its claims. It accepts only RS256 compact JWTs
// signed by one of our keys (by kid), whose iss is this tenant's issuer (the one Issuer
// returns; the ADFS endpoints mint the same issuer), whose nbf and exp hold within 5 minutes of
// clock skew, and whose aud matches one of audiences. Audiences match case-insensitively after
// removing one trailing "/" from each side, so "https://vault.azure.net" and
// "https://vault.azure.net/" are the same audience (Entra treats them as one resource), while
// "https://vault.azure.net" and "https://vault.azure.net:443" are not.
//
// Successful verifications are cached by the token's SHA-256 for the token's validity window
// (nbf and exp, with skew), so repeated requests with one token cost a hash and a map lookup;
// the audience, the window, the signing key's retirement and the principal's current state
// (state.go: enabled, same generation, minting credential still present; two in-memory map
// lookups) are still checked on every call. Failures wrap ErrInvalidToken.
func (s *Service) Verify(_ context.Context, raw string, audiences []string) (Claims, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return Claims{}, invalid("malformed token")
	}
	now := s.now()
	// Hash the string's bytes in place: a []byte(raw) copy of a 1 KiB token per request is
	// measurable on the read path, and Sum256 only reads its input.
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	ks := s.keys.Load()
	c, ok := s.cache.get(key, now)
	if !ok {
		var err error
		if c, err = s.verifyToken(ks, raw, now); err != nil {
			return Claims{}, err
		}
		// Cached before the audience and revocation checks: both run on every hit anyway.
		s.cache.put(key, c, now)
	} else if err := s.keyUsable(ks, &c, now); err != nil {
		return Claims{}, err
	}
	if err := s.checkUse(&c, audiences); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Recheck repeats, for claims Verify returned for a token earlier, every check Verify makes on a
// cached token: the validity window, the signing key's retirement, the audience and the
// principal's current state. A caller that kept a token's claims (a connection sending the same
// token again, compared in full and in constant time) skips the token's hash and the cache.
func (s *Service) Recheck(c Claims, audiences []string) error {
	now := s.now()
	if now.Before(c.NotBefore.Add(-clockSkew)) {
		return invalid("not yet valid")
	}
	if !now.Before(c.Expiry.Add(clockSkew)) {
		return invalid("expired")
	}
	if err := s.keyUsable(s.keys.Load(), &c, now); err != nil {
		return err
	}
	return s.checkUse(&c, audiences)
}

// keyUsable checks that the key that signed a token verified earlier is not retired.
func (s *Service) keyUsable(ks *keySet, c *Claims, now time.Time) error {
	if k := ks.byKID[c.keyID]; k == nil || !k.usable(now) {
		return invalid("retired signing key")
	}
	return nil
}

// checkUse is what every use of verified claims checks: the audience asked for, and that the
// principal and the credential that minted the token still stand.
func (s *Service) checkUse(c *Claims, audiences []string) error {
	if !audienceAllowed(c.Audience, audiences) {
		return invalid("wrong audience")
	}
	if why := s.checkRevocation(c); why != "" {
		return invalid(why)
	}
	return nil
}

func (s *Service) verifyToken(ks *keySet, raw string, now time.Time) (Claims, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return Claims{}, invalid("malformed token")
	}
	kid := jws.Signatures[0].Header.KeyID
	k := ks.byKID[kid]
	if k == nil {
		return Claims{}, invalid("unknown signing key")
	}
	if !k.usable(now) {
		return Claims{}, invalid("retired signing key")
	}
	payload, err := jws.Verify(&k.priv.PublicKey)
	if err != nil {
		return Claims{}, invalid("bad signature")
	}
	var vc accessClaims // aud must be a string: we never mint arrays
	if err := json.Unmarshal(payload, &vc); err != nil {
		return Claims{}, invalid("malformed claims")
	}
	switch {
	case vc.Tid != s.tenantID || vc.Iss != s.Issuer(s.tenantID):
		return Claims{}, invalid("wrong issuer")
	case vc.Ver != "2.0":
		return Claims{}, invalid("unsupported token version")
	case vc.Exp == 0 || vc.Nbf == 0 || vc.Iat == 0:
		return Claims{}, invalid("missing time claims")
	case now.After(time.Unix(vc.Exp, 0).Add(clockSkew)):
		return Claims{}, invalid("expired")
	case now.Before(time.Unix(vc.Nbf, 0).Add(-clockSkew)):
		return Claims{}, invalid("not yet valid")
	case vc.Oid == "" || vc.AppID == "" || vc.Aud == "":
		return Claims{}, invalid("missing subject claims")
	}
	var typ, name string
	switch vc.Idtyp {
	case "app":
		typ, name = TypeServicePrincipal, vc.AppDisplayName
	case "user":
		typ, name = TypeUser, vc.Name
	default:
		return Claims{}, invalid("unsupported identity type")
	}
	return Claims{
		Principal:           Principal{ObjectID: vc.Oid, AppID: vc.AppID, TenantID: vc.Tid, Type: typ, DisplayName: name},
		UPN:                 vc.Upn,
		Audience:            vc.Aud,
		IssuedAt:            time.Unix(vc.Iat, 0),
		NotBefore:           time.Unix(vc.Nbf, 0),
		Expiry:              time.Unix(vc.Exp, 0),
		TokenID:             vc.Uti,
		Issuer:              vc.Iss,
		IdentityType:        vc.Idtyp,
		CredentialID:        vc.Cred,
		Generation:          vc.Gen,
		ClientAuthenticated: vc.Azpacr == "1" || vc.Azpacr == "2",
		keyID:               kid,
	}, nil
}

// audienceAllowed reports whether aud matches one of allowed; see Verify for the rule.
func audienceAllowed(aud string, allowed []string) bool {
	a := strings.TrimSuffix(aud, "/")
	for _, w := range allowed {
		if strings.EqualFold(a, strings.TrimSuffix(w, "/")) {
			return true
		}
	}
	return false
}

// verifyCache remembers verified claims by token hash. It holds at most max entries: when full
// it drops expired entries, and if that frees too little, an arbitrary sixteenth of the rest
// (they will simply be verified again), so inserts stay amortized O(1).
type verifyCache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	claims      Claims
	from, until time.Time // the validity window, skew included
}

func newVerifyCache(max int) *verifyCache {
	return &verifyCache{max: max, m: make(map[[32]byte]cacheEntry)}
}

func (c *verifyCache) get(key [32]byte, now time.Time) (Claims, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || now.Before(e.from) || !now.Before(e.until) {
		return Claims{}, false
	}
	return e.claims, true
}

func (c *verifyCache) put(key [32]byte, claims Claims, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[key] = cacheEntry{claims: claims, from: claims.NotBefore.Add(-clockSkew), until: claims.Expiry.Add(clockSkew)}
}

// evict runs with mu held.
func (c *verifyCache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.until) {
			delete(c.m, k)
		}
	}
	if len(c.m) < c.max {
		return
	}
	drop := max(c.max/16, 1)
	for k := range c.m {
		if drop == 0 {
			break
		}
		delete(c.m, k)
		drop--
	}
}

func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
