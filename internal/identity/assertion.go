package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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
	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// Certificate credentials (Graph keyCredentials) and the client assertions signed with them
// (OAuth private_key_jwt, what azidentity.ClientCertificateCredential sends).
//
// An application's certificate and federated credentials live in one record of their own,
// id/appcreds/<application object id>, beside the application record. A token minted with one
// of them carries its id as sr_cred, like a client secret's, and verification finds that id
// on the service principal record: the first sign-in with a credential writes a marker there
// (a secretRecord that expired at the epoch, so no secret check ever hashes it and no secret
// ever matches it), and removing the credential removes the marker in the same batch. The
// marker write is conditional on the credentials record being unchanged, so a sign-in racing
// a removal cannot bring the marker back. Verification therefore needs nothing beyond the
// principal states every node already keeps current: removing a certificate or federated
// credential revokes its tokens on the next request, on every node.

// ClientAssertionType is the client_assertion_type of JWT client assertions (RFC 7523).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	prefixAppCreds = "id/appcreds/"
	prefixJTI      = "id/jti/" // + hour of expiry + "/" + hex SHA-256 of appId|jti
	// maxKeyCredentials bounds an application's certificates (each one is a candidate for
	// every assertion naming its thumbprint; Entra's limit is larger, ours is plenty).
	maxKeyCredentials = 8
	// maxAssertionLifetime bounds exp - now of a client assertion, and so how long its jti is
	// remembered (MSAL signs them for 10 minutes).
	maxAssertionLifetime = time.Hour
	// maxClientAssertionLen bounds assertions before any parsing (with an x5c chain they are a few KiB).
	maxClientAssertionLen = 16 << 10
	// credMarkerPrefix marks the service principal secret records that only carry a certificate's
	// or federated credential's id for verification (see above).
	credMarkerPrefix = "strongroom:"
	keyCertType      = "AsymmetricX509Cert"
	keyCertUsage     = "Verify"
)

// credMarkerEnd is the end of every marker: long past, so markers are never usable as secrets.
var credMarkerEnd = time.Unix(1, 0).UTC()

// Client assertion errors. Each wraps ErrInvalidClient, so callers that only care that the
// client did not authenticate can test for that alone.
var (
	// ErrInvalidAssertion means a client assertion was malformed, badly signed, for another
	// audience or client, or outside its validity window; the wrapping error says which.
	ErrInvalidAssertion = fmt.Errorf("%w: invalid client assertion", ErrInvalidClient)
	// ErrUnknownCertificate means the assertion names a certificate the application does not
	// hold (or one outside its validity).
	ErrUnknownCertificate = fmt.Errorf("%w: certificate not registered on the application", ErrInvalidClient)
	// ErrAssertionReplayed means the assertion's jti was already used within its lifetime.
	ErrAssertionReplayed = fmt.Errorf("%w: client assertion replayed", ErrInvalidClient)
)

// appCredsRecord holds an application's certificate and federated credentials.
type appCredsRecord struct {
	V             int             `json:"v"`
	ApplicationID string          `json:"applicationId"`
	AppID         string          `json:"appId"`
	Keys          []keyCredRecord `json:"keys,omitempty"`
	Federated     []ficRecord     `json:"federated,omitempty"`
	// RedirectURIs are where /authorize may send codes (authcode.go).
	RedirectURIs []string `json:"redirectUris,omitempty"`
}

func (r *appCredsRecord) version() int { return r.V }

// keyCredRecord is one certificate (public data only).
type keyCredRecord struct {
	ID          string    `json:"id"` // Graph keyId
	DisplayName string    `json:"displayName,omitempty"`
	DER         []byte    `json:"der"`
	StartsAt    time.Time `json:"startsAt"`
	EndsAt      time.Time `json:"endsAt"`
	CreatedAt   time.Time `json:"createdAt"`
}

// KeyCredential is a certificate registered on an application, in Graph's terms.
type KeyCredential struct {
	KeyID       string
	DisplayName string
	Type        string // "AsymmetricX509Cert"
	Usage       string // "Verify"
	// CustomKeyIdentifier is the certificate's SHA-1 thumbprint, as Graph reports it.
	CustomKeyIdentifier []byte
	StartDateTime       time.Time
	EndDateTime         time.Time
	// Key is the certificate (DER). Graph answers it only when asked with $select=keyCredentials.
	Key []byte
}

// KeyCredentialInput is one entry of Graph's keyCredentials (PATCH) or addKey's keyCredential.
type KeyCredentialInput struct {
	// KeyID names an existing credential to keep when Key is empty (a PATCH that repeats the
	// credentials it read back); with Key set it is the new credential's id ("" for a fresh one).
	KeyID       string
	Type, Usage string
	DisplayName string
	Key         []byte // the certificate, DER
	Start, End  time.Time
}

func (k *keyCredRecord) credential() KeyCredential {
	sum := sha1.Sum(k.DER) // #nosec: Graph's customKeyIdentifier is the SHA-1 thumbprint
	return KeyCredential{KeyID: k.ID, DisplayName: k.DisplayName, Type: keyCertType, Usage: keyCertUsage,
		CustomKeyIdentifier: sum[:], StartDateTime: k.StartsAt, EndDateTime: k.EndsAt, Key: slices.Clone(k.DER)}
}

// newKeyCred validates a certificate input and returns its record: an RSA (2048 bits or more)
// X.509 certificate of type AsymmetricX509Cert and usage Verify, whose credential window lies
// within the certificate's.
func (s *Service) newKeyCred(in KeyCredentialInput) (keyCredRecord, error) {
	const res = "KeyCredential"
	if !strings.EqualFold(in.Type, keyCertType) {
		return keyCredRecord{}, badInput("Invalid value specified for property 'type' of resource '%s': only %s is supported.", res, keyCertType)
	}
	if !strings.EqualFold(in.Usage, keyCertUsage) {
		return keyCredRecord{}, badInput("Invalid value specified for property 'usage' of resource '%s': only %s is supported.", res, keyCertUsage)
	}
	cert, err := x509.ParseCertificate(in.Key)
	if err != nil {
		return keyCredRecord{}, badInput("Invalid value specified for property 'key' of resource '%s': not a DER X.509 certificate.", res)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 {
		return keyCredRecord{}, badInput("Invalid value specified for property 'key' of resource '%s': the certificate must hold an RSA key of at least 2048 bits.", res)
	}
	if in.DisplayName != "" {
		if err := validateDisplayName(in.DisplayName); err != nil {
			return keyCredRecord{}, badInput("Invalid value specified for property 'displayName' of resource '%s'.", res)
		}
	}
	start, end := in.Start, in.End
	if start.IsZero() || start.Before(cert.NotBefore) {
		start = cert.NotBefore
	}
	if end.IsZero() || end.After(cert.NotAfter) {
		end = cert.NotAfter
	}
	if !end.After(s.now()) || !end.After(start) {
		return keyCredRecord{}, badInput("Invalid value specified for property 'endDateTime' of resource '%s': the certificate has expired.", res)
	}
	id := in.KeyID
	if id == "" {
		id = uuid.NewString()
	} else if n, ok := normalizeID(id); ok {
		id = n
	} else {
		return keyCredRecord{}, badInput("Invalid value specified for property 'keyId' of resource '%s'.", res)
	}
	return keyCredRecord{ID: id, DisplayName: in.DisplayName, DER: slices.Clone(in.Key), StartsAt: start.UTC(), EndsAt: end.UTC(),
		CreatedAt: s.now().UTC()}, nil
}

// ListKeyCredentials returns an application's certificates (by object id or appId).
func (s *Service) ListKeyCredentials(ctx context.Context, idOrAppID string) ([]KeyCredential, error) {
	_, app, err := s.findApplication(ctx, idOrAppID)
	if err != nil {
		return nil, fmt.Errorf("reading key credentials: %w", err)
	}
	rec, _, err := s.loadAppCreds(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("reading key credentials: %w", err)
	}
	out := make([]KeyCredential, 0, len(rec.Keys))
	for i := range rec.Keys {
		out = append(out, rec.Keys[i].credential())
	}
	return out, nil
}

// SetKeyCredentials replaces an application's certificates, as Graph's PATCH of keyCredentials
// does: an entry with a key adds that certificate, an entry with only the keyId of a held
// certificate keeps it, and every certificate not named is removed (revoking its tokens).
func (s *Service) SetKeyCredentials(ctx context.Context, idOrAppID string, in []KeyCredentialInput) ([]KeyCredential, error) {
	if len(in) > maxKeyCredentials {
		return nil, badInput("An application may hold at most %d key credentials.", maxKeyCredentials)
	}
	fresh := make([]keyCredRecord, 0, len(in))
	for _, k := range in {
		if len(k.Key) == 0 {
			fresh = append(fresh, keyCredRecord{ID: k.KeyID}) // resolved against the record below
			continue
		}
		kc, err := s.newKeyCred(k)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, kc)
	}
	var out []KeyCredential
	err := s.updateAppCreds(ctx, idOrAppID, func(rec *appCredsRecord) ([]string, error) {
		next := make([]keyCredRecord, 0, len(fresh))
		for _, k := range fresh {
			if len(k.DER) == 0 {
				i := slices.IndexFunc(rec.Keys, func(c keyCredRecord) bool { return strings.EqualFold(c.ID, k.ID) })
				if i < 0 {
					return nil, badInput("Invalid value specified for property 'key' of resource 'KeyCredential': keyId '%s' is not held and no key was given.", echoID(k.ID))
				}
				k = rec.Keys[i]
			}
			if slices.ContainsFunc(next, func(c keyCredRecord) bool { return c.ID == k.ID }) {
				return nil, badInput("Duplicate keyId '%s' in keyCredentials.", echoID(k.ID))
			}
			next = append(next, k)
		}
		var removed []string
		for _, old := range rec.Keys {
			if !slices.ContainsFunc(next, func(c keyCredRecord) bool { return c.ID == old.ID }) {
				removed = append(removed, old.ID)
			}
		}
		rec.Keys = next
		out = out[:0]
		for i := range next {
			out = append(out, next[i].credential())
		}
		return removed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("setting key credentials: %w", err)
	}
	return out, nil
}

// AddKeyCredential adds one certificate to an application (Graph's addKey).
func (s *Service) AddKeyCredential(ctx context.Context, idOrAppID string, in KeyCredentialInput) (KeyCredential, error) {
	kc, err := s.newKeyCred(in)
	if err != nil {
		return KeyCredential{}, err
	}
	err = s.updateAppCreds(ctx, idOrAppID, func(rec *appCredsRecord) ([]string, error) {
		if len(rec.Keys) >= maxKeyCredentials {
			return nil, conflict("The application already has %d key credentials, the most it may hold; remove one first (removeKey).", maxKeyCredentials)
		}
		if slices.ContainsFunc(rec.Keys, func(c keyCredRecord) bool { return c.ID == kc.ID || subtle.ConstantTimeCompare(c.DER, kc.DER) == 1 }) {
			return nil, conflict("The application already holds this key credential.")
		}
		rec.Keys = append(rec.Keys, kc)
		return nil, nil
	})
	if err != nil {
		return KeyCredential{}, fmt.Errorf("adding key credential: %w", err)
	}
	return kc.credential(), nil
}

// RemoveKeyCredential removes a certificate by key id (Graph's removeKey); every token it
// minted stops verifying on the next request, on every node.
func (s *Service) RemoveKeyCredential(ctx context.Context, idOrAppID, keyID string) error {
	err := s.updateAppCreds(ctx, idOrAppID, func(rec *appCredsRecord) ([]string, error) {
		i := slices.IndexFunc(rec.Keys, func(c keyCredRecord) bool { return strings.EqualFold(c.ID, keyID) })
		if i < 0 {
			return nil, badInput("No key credential with keyId '%s' was found on the application.", echoID(keyID))
		}
		id := rec.Keys[i].ID
		rec.Keys = slices.Delete(rec.Keys, i, i+1)
		return []string{id}, nil
	})
	if err != nil {
		return fmt.Errorf("removing key credential: %w", err)
	}
	return nil
}

// VerifyKeyProof checks Graph's addKey/removeKey proof of possession: a JWT signed by one of
// the application's current certificates, with aud "00000002-0000-0000-c000-000000000000",
// iss the application's object id, and a lifetime of at most 10 minutes.
func (s *Service) VerifyKeyProof(ctx context.Context, idOrAppID, proof string) error {
	_, app, err := s.findApplication(ctx, idOrAppID)
	if err != nil {
		return fmt.Errorf("checking proof: %w", err)
	}
	rec, _, err := s.loadAppCreds(ctx, app.ID)
	if err != nil {
		return fmt.Errorf("checking proof: %w", err)
	}
	now := s.now()
	for i := range rec.Keys {
		k := &rec.Keys[i]
		cert, err := x509.ParseCertificate(k.DER)
		if err != nil || now.Before(k.StartsAt) || !now.Before(k.EndsAt) {
			continue
		}
		var c jwt.RegisteredClaims
		_, err = s.assertionParser().ParseWithClaims(proof, &c, func(*jwt.Token) (any, error) { return cert.PublicKey, nil })
		if err != nil || !strings.EqualFold(c.Issuer, app.ID) || !slices.Contains(c.Audience, "00000002-0000-0000-c000-000000000000") ||
			c.ExpiresAt == nil || c.ExpiresAt.Time.After(now.Add(10*time.Minute+clockSkew)) {
			continue
		}
		return nil
	}
	return badInput("The proof is not a valid JWT signed by one of the application's certificates.")
}

// loadAppCreds reads an application's credentials record; a missing one is an empty record
// and nil sealed bytes.
func (s *Service) loadAppCreds(ctx context.Context, applicationID string) (*appCredsRecord, []byte, error) {
	key := prefixAppCreds + applicationID
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return &appCredsRecord{V: recordVersion, ApplicationID: applicationID}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var rec appCredsRecord
	if err := s.openRecord(ctx, key, sealed, &rec); err != nil {
		return nil, nil, err
	}
	return &rec, sealed, nil
}

// updateAppCreds applies change to an application's credentials record in one batch that
// also requires the application unchanged and strips the markers of the credentials change
// reports removed from its service principal.
func (s *Service) updateAppCreds(ctx context.Context, idOrAppID string, change func(*appCredsRecord) ([]string, error)) error {
	for range 3 {
		appSealed, app, err := s.findApplication(ctx, idOrAppID)
		if err != nil {
			return err
		}
		rec, sealed, err := s.loadAppCreds(ctx, app.ID)
		if err != nil {
			return err
		}
		rec.AppID = app.AppID
		removed, err := change(rec)
		if err != nil {
			return err
		}
		key := prefixAppCreds + app.ID
		put, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return err
		}
		if len(rec.Keys) == 0 && len(rec.Federated) == 0 && len(rec.RedirectURIs) == 0 {
			put = store.Delete(key) // an application without these credentials has no record
		}
		ops := []store.Op{store.RequireEqual(prefixApplication+app.ID, appSealed), put}
		if sealed == nil {
			ops = append(ops, store.RequireAbsent(key))
		} else {
			ops = append(ops, store.RequireEqual(key, sealed))
		}
		if len(removed) > 0 {
			spOps, err := s.stripMarkerOps(ctx, app.AppID, func(id string) bool { return slices.Contains(removed, id) })
			if err != nil {
				return err
			}
			ops = append(ops, spOps...)
		}
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return store.ErrConflict
}

// stripMarkerOps returns the ops that remove the markers drop selects from the service
// principal of appID (none when it has no service principal or no such marker).
func (s *Service) stripMarkerOps(ctx context.Context, appID string, drop func(id string) bool) ([]store.Op, error) {
	pSealed, p, err := s.findPrincipal(ctx, appID)
	if errors.Is(err, ErrPrincipalNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kept := slices.DeleteFunc(slices.Clone(p.Secrets), func(c secretRecord) bool { return isCredMarker(c) && drop(c.ID) })
	if len(kept) == len(p.Secrets) {
		return nil, nil
	}
	p.Secrets = kept
	pKey := prefixPrincipal + p.ObjectID
	put, err := s.putRecord(ctx, pKey, p)
	if err != nil {
		return nil, err
	}
	return []store.Op{store.RequireEqual(pKey, pSealed), put}, nil
}

func isCredMarker(c secretRecord) bool {
	return strings.HasPrefix(c.DisplayName, credMarkerPrefix) && c.EndsAt.Equal(credMarkerEnd)
}

// ensureMarker makes sure the service principal objectID carries the marker of credential
// credID, written only while the credentials record is still credsSealed. It returns
// store.ErrConflict when that record changed (the caller checks the credential again).
func (s *Service) ensureMarker(ctx context.Context, objectID, applicationID string, credsSealed []byte, credID, kind string, live func(id string) bool) error {
	if st, ok := s.states.get(objectID); ok && slices.Contains(st.creds, credID) {
		return nil
	}
	pSealed, p, err := s.findPrincipal(ctx, objectID)
	if err != nil {
		return err
	}
	// Drop markers of credentials that no longer exist while here.
	p.Secrets = slices.DeleteFunc(p.Secrets, func(c secretRecord) bool { return isCredMarker(c) && !live(c.ID) })
	if !slices.ContainsFunc(p.Secrets, func(c secretRecord) bool { return c.ID == credID }) {
		salt, hash := make([]byte, saltLen), make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return err
		}
		if _, err := rand.Read(hash); err != nil {
			return err
		}
		p.Secrets = append(p.Secrets, secretRecord{ID: credID, Salt: salt, Hash: hash, KDF: s.kdf, CreatedAt: s.now().UTC(),
			DisplayName: credMarkerPrefix + kind, EndsAt: credMarkerEnd})
	}
	pKey, cKey := prefixPrincipal+p.ObjectID, prefixAppCreds+applicationID
	put, err := s.putRecord(ctx, pKey, p)
	if err != nil {
		return err
	}
	return s.apply(ctx, []store.Op{store.RequireEqual(cKey, credsSealed), store.RequireEqual(pKey, pSealed), put})
}

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
	aud, err := AudienceFromScope(req.Scope)
	if err != nil {
		return Token{}, err
	}
	if !s.ServesResource(aud) {
		return Token{}, fmt.Errorf("%w: %s", ErrUnknownResource, aud)
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
