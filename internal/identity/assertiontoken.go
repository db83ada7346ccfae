package identity

import (
	"context"
	"crypto/sha1" // #nosec: x5t (RFC 7515 §4.1.7) is defined as a SHA-1 thumbprint
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/strongroom/strongroom/internal/store"
)

// Client assertions at the token endpoint: verifying them (certificate or federated), and
// refusing replays (a jti is accepted once, on every node).

// AssertionRequest is one client-credentials request authenticated by a JWT client assertion:
// signed by a certificate registered on the application (iss = sub = client id), or issued by
// an external OpenID Connect issuer a federated identity credential of the application trusts.
type AssertionRequest struct {
	Tenant, ClientID, Assertion, Scope string
	// TokenEndpoint is the URL the request was sent to (scheme://host/path, no query): a
	// certificate assertion's aud must name it or this tenant's token endpoint.
	TokenEndpoint string
	// RemoteIP is the caller's address, for the per-source failure limit; "" skips that limit.
	RemoteIP string
}

// AssertionToken authenticates a client by a JWT client assertion and mints an access token
// for the resource the scope names (rules as IssueToken). An assertion whose iss is the client
// id is a certificate assertion (assertClientCert); any other is a federated one
// (assertFederated). Failures count against the failure limits like wrong secrets. Errors:
// those of IssueToken, ErrInvalidAssertion, ErrUnknownCertificate, ErrAssertionReplayed and
// the federation errors (ErrFederationIssuer, ErrFederationSubject, ErrFederationAudience,
// ErrFederationFetch); all of these but ErrFederationFetch wrap ErrInvalidClient.
func (s *Service) AssertionToken(ctx context.Context, req AssertionRequest) (Token, error) {
	if _, err := s.ResolveTenant(req.Tenant); err != nil {
		return Token{}, err
	}
	aud, err := s.servedAudience(req.Scope)
	if err != nil {
		return Token{}, err
	}
	clientKey, _ := normalizeID(req.ClientID)
	g, err := s.gate(clientKey, req.RemoteIP)
	if err != nil {
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	}
	tok, known, err := s.assertionToken(ctx, req, aud)
	if known && !errors.Is(err, ErrBusy) && !errors.Is(err, ErrFederationFetch) && !errors.Is(err, ErrPrincipalDisabled) {
		g.outcome(err == nil)
	}
	if err != nil {
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	}
	return tok, nil
}

// assertionToken does AssertionToken's work after the gate; known reports whether the client
// id named an existing service principal (only those count failures).
func (s *Service) assertionToken(ctx context.Context, req AssertionRequest, aud string) (Token, bool, error) {
	if req.Assertion == "" || len(req.Assertion) > maxClientAssertionLen {
		return Token{}, false, fmt.Errorf("%w: malformed", ErrInvalidAssertion)
	}
	var unverified jwt.RegisteredClaims
	hdr, _, err := jwt.NewParser().ParseUnverified(req.Assertion, &unverified)
	if err != nil {
		return Token{}, false, fmt.Errorf("%w: malformed", ErrInvalidAssertion)
	}
	rec, _, err := s.loadClient(ctx, req.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, false, ErrUnknownClient
	}
	if err != nil {
		return Token{}, false, err
	}
	idx, err := s.appIndexOf(ctx, rec.AppID)
	if err != nil {
		return Token{}, true, err
	}
	if idx.ApplicationID == "" {
		// Principals made before applications existed hold no certificates.
		return Token{}, true, fmt.Errorf("%w: the client has no certificate or federated credentials", ErrUnknownCertificate)
	}
	claimed := false
	for range 3 {
		creds, sealed, err := s.loadAppCreds(ctx, idx.ApplicationID)
		if err != nil {
			return Token{}, true, err
		}
		var credID, kind string
		if strings.EqualFold(unverified.Issuer, rec.AppID) {
			var jti string
			var exp time.Time
			credID, jti, exp, err = s.assertClientCert(req, hdr, creds, rec.AppID)
			kind = "keyCredential"
			if err == nil && !claimed { // once: a retry below must not see its own jti as a replay
				err = s.claimJTI(ctx, rec.AppID, jti, exp)
				claimed = true
			}
		} else {
			credID, err = s.assertFederated(ctx, req.Assertion, creds)
			kind = "federatedIdentityCredential"
		}
		if err != nil {
			return Token{}, true, err
		}
		if rec.Disabled {
			return Token{}, true, ErrPrincipalDisabled
		}
		live := func(id string) bool {
			return slices.ContainsFunc(creds.Keys, func(k keyCredRecord) bool { return k.ID == id }) ||
				slices.ContainsFunc(creds.Federated, func(f ficRecord) bool { return f.ID == id })
		}
		err = s.ensureMarker(ctx, rec.ObjectID, idx.ApplicationID, sealed, credID, kind, live)
		if errors.Is(err, store.ErrConflict) {
			continue // the credentials changed meanwhile: check the assertion against them again
		}
		if err != nil {
			return Token{}, true, err
		}
		// The marker write may have changed the principal; mint with its current generation.
		fresh, err := s.loadPrincipal(ctx, rec.ObjectID)
		if err != nil {
			return Token{}, true, err
		}
		if fresh.Disabled {
			return Token{}, true, ErrPrincipalDisabled
		}
		tok, err := s.mint(fresh, credID, aud)
		if err != nil {
			return Token{}, true, fmt.Errorf("minting token: %w", err)
		}
		return tok, true, nil
	}
	return Token{}, true, store.ErrConflict
}

func (s *Service) appIndexOf(ctx context.Context, appID string) (appIndexRecord, error) {
	var idx appIndexRecord
	err := s.getRecord(ctx, prefixAppIndex+appID, &idx)
	return idx, err
}

// assertionParser parses client assertions: RS256 or PS256 only, exp and nbf required (as
// Entra requires them), the service's clock with the usual skew.
func (s *Service) assertionParser() *jwt.Parser {
	return jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "PS256"}), jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(), jwt.WithLeeway(clockSkew), jwt.WithTimeFunc(s.now))
}

// assertClientCert verifies a certificate assertion and returns the certificate's key id. The
// header names the certificate by x5t#S256 or x5t (SHA-256 or SHA-1 of its DER, base64url or,
// as MSAL sends it, standard base64); iss and sub are the client id; aud names this token
// endpoint; exp is at most an hour away. It returns the certificate's key id, and the jti and
// exp for claimJTI.
func (s *Service) assertClientCert(req AssertionRequest, hdr *jwt.Token, creds *appCredsRecord, appID string) (credID, jti string, exp time.Time, err error) {
	now := s.now()
	var want func(der []byte) bool
	if v, ok := hdr.Header["x5t#S256"].(string); ok && v != "" {
		tp, ok := decodeThumbprint(v, sha256.Size)
		if !ok {
			return "", "", time.Time{}, fmt.Errorf("%w: malformed x5t#S256", ErrInvalidAssertion)
		}
		want = func(der []byte) bool { s := sha256.Sum256(der); return subtle.ConstantTimeCompare(s[:], tp) == 1 }
	} else if v, ok := hdr.Header["x5t"].(string); ok && v != "" {
		tp, ok := decodeThumbprint(v, sha1.Size)
		if !ok {
			return "", "", time.Time{}, fmt.Errorf("%w: malformed x5t", ErrInvalidAssertion)
		}
		want = func(der []byte) bool { s := sha1.Sum(der); return subtle.ConstantTimeCompare(s[:], tp) == 1 } // #nosec
	} else {
		return "", "", time.Time{}, fmt.Errorf("%w: no x5t or x5t#S256 header", ErrInvalidAssertion)
	}
	i := slices.IndexFunc(creds.Keys, func(k keyCredRecord) bool { return want(k.DER) })
	if i < 0 {
		return "", "", time.Time{}, ErrUnknownCertificate
	}
	k := creds.Keys[i]
	cert, perr := x509.ParseCertificate(k.DER)
	if perr != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: stored certificate unreadable", ErrUnknownCertificate)
	}
	if now.Before(k.StartsAt) || !now.Before(k.EndsAt) || now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return "", "", time.Time{}, fmt.Errorf("%w: the certificate is not valid now", ErrUnknownCertificate)
	}
	var c jwt.RegisteredClaims
	if _, err = s.assertionParser().ParseWithClaims(req.Assertion, &c, func(*jwt.Token) (any, error) { return cert.PublicKey, nil }); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return "", "", time.Time{}, fmt.Errorf("%w: expired", ErrInvalidAssertion)
		case errors.Is(err, jwt.ErrTokenNotValidYet):
			return "", "", time.Time{}, fmt.Errorf("%w: not yet valid", ErrInvalidAssertion)
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return "", "", time.Time{}, fmt.Errorf("%w: no exp or nbf", ErrInvalidAssertion)
		}
		return "", "", time.Time{}, fmt.Errorf("%w: bad signature or algorithm", ErrInvalidAssertion)
	}
	switch {
	case !strings.EqualFold(c.Issuer, appID) || !strings.EqualFold(c.Subject, appID):
		return "", "", time.Time{}, fmt.Errorf("%w: iss and sub must be the client id", ErrInvalidAssertion)
	case !s.tokenEndpointAudience(c.Audience, req.Tenant, req.TokenEndpoint):
		return "", "", time.Time{}, fmt.Errorf("%w: wrong audience", ErrInvalidAssertion)
	case c.ExpiresAt.Time.After(now.Add(maxAssertionLifetime + clockSkew)):
		return "", "", time.Time{}, fmt.Errorf("%w: lifetime too long", ErrInvalidAssertion)
	case c.ID == "":
		return "", "", time.Time{}, fmt.Errorf("%w: no jti", ErrInvalidAssertion)
	}
	return k.ID, c.ID, c.ExpiresAt.Time, nil
}

// tokenEndpointAudience reports whether one of auds names this server's token endpoint: the
// one the request reached, or the tenant's (by id or alias), or the ADFS ones.
func (s *Service) tokenEndpointAudience(auds []string, tenant, reached string) bool {
	ok := []string{s.publicURL + "/adfs/oauth2/token", s.publicURL + "/adfs/oauth2/v2.0/token"}
	for _, t := range []string{tenant, s.tenantID, "organizations", "common"} {
		if t != "" {
			ok = append(ok, s.publicURL+"/"+t+"/oauth2/v2.0/token", s.publicURL+"/"+t+"/oauth2/token")
		}
	}
	if reached != "" {
		ok = append(ok, reached)
	}
	for _, a := range auds {
		for _, w := range ok {
			if strings.EqualFold(strings.TrimSuffix(a, "/"), w) {
				return true
			}
		}
	}
	return false
}

// decodeThumbprint decodes a thumbprint header in any base64 alphabet, padded or not.
func decodeThumbprint(v string, size int) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(v); err == nil && len(b) == size {
			return b, true
		}
	}
	return nil, false
}

// credExt is per-Service state of this file and federation.go: the jti replay cache and the
// external issuers' keys. It lives beside the Service (credExts) rather than in it.
type credExt struct {
	replay *jtiCache
	fed    *federation

	mu       sync.Mutex
	jtiSwept time.Time // last sweepJTIs
}

var credExts sync.Map // *Service -> *credExt

func (s *Service) ext() *credExt {
	if v, ok := credExts.Load(s); ok {
		return v.(*credExt)
	}
	v, _ := credExts.LoadOrStore(s, &credExt{replay: newJTICache(defaultReplayEntries), fed: newFederation(s)})
	return v.(*credExt)
}

// claimJTI refuses an assertion id already used by appID within its lifetime: on this node
// from memory, and across a cluster by a store record created only if absent (keyed by the
// hour its assertion expires in, so whole past hours are swept by key).
func (s *Service) claimJTI(ctx context.Context, appID, jti string, exp time.Time) error {
	now := s.now()
	if !s.ext().replay.remember(appID+"|"+jti, exp.Add(clockSkew), now) {
		return ErrAssertionReplayed
	}
	sum := sha256.Sum256([]byte(appID + "|" + jti))
	key := prefixJTI + strconv.FormatInt(exp.Add(clockSkew).Unix()/3600, 10) + "/" + hex.EncodeToString(sum[:])
	put, err := s.putRecord(ctx, key, jtiRecord{V: recordVersion})
	if err != nil {
		return err
	}
	switch err := s.st.Apply(ctx, []store.Op{store.RequireAbsent(key), put}); {
	case errors.Is(err, store.ErrConflict):
		return ErrAssertionReplayed
	case err != nil:
		return fmt.Errorf("recording client assertion id: %w", err)
	}
	s.sweepJTIs(ctx, now)
	return nil
}

// jtiRecord marks a used client assertion id; its key says all there is to know.
type jtiRecord struct {
	V int `json:"v"`
}

func (r *jtiRecord) version() int { return r.V }

// sweepJTIs deletes the records of hours that ended before now, at most every ten minutes.
func (s *Service) sweepJTIs(ctx context.Context, now time.Time) {
	x := s.ext()
	x.mu.Lock()
	due := now.Sub(x.jtiSwept) >= 10*time.Minute
	if due {
		x.jtiSwept = now
	}
	x.mu.Unlock()
	if !due {
		return
	}
	current := now.Unix() / 3600
	var ops []store.Op
	_ = s.st.Scan(ctx, prefixJTI, "", func(k string, _ []byte) bool {
		hour, _, _ := strings.Cut(strings.TrimPrefix(k, prefixJTI), "/")
		if h, err := strconv.ParseInt(hour, 10, 64); err == nil && h < current {
			ops = append(ops, store.Delete(k))
		}
		return len(ops) < 1000
	})
	if len(ops) > 0 {
		_ = s.st.Apply(ctx, ops) // best effort: the next sweep retries
	}
}

// defaultReplayEntries bounds remembered jtis; past it, expired ones are dropped and, if that
// is not enough, new assertions are refused (failing closed) until some expire.
const defaultReplayEntries = 200_000

// jtiCache remembers client assertion ids until their expiry on this node, in front of the
// store records that catch a replay to another node (claimJTI).
type jtiCache struct {
	mu  sync.Mutex
	max int
	m   map[string]time.Time
}

func newJTICache(max int) *jtiCache { return &jtiCache{max: max, m: map[string]time.Time{}} }

// remember records id until until and reports whether it was not already recorded.
func (c *jtiCache) remember(id string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.m[id]; ok && now.Before(exp) {
		return false
	}
	if len(c.m) >= c.max {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return false
		}
	}
	c.m[id] = until
	return true
}
