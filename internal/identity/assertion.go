package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // #nosec: x5t (RFC 7515 §4.1.7) is defined as a SHA-1 thumbprint
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
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
