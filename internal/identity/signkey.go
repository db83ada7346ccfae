package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/store"
)

const rsaBits = 2048

// signingKey is an RS256 key. priv never leaves this package except sealed.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	jwk  jose.JSONWebKey // public half, as published
	// verifyUntil is set once the key was rotated out: tokens it signed verify until then (the
	// longest lifetime plus clock skew after the rotation) and not after. Zero: no end.
	verifyUntil time.Time
}

// usable reports whether k still verifies tokens at now.
func (k *signingKey) usable(now time.Time) bool {
	return k.verifyUntil.IsZero() || now.Before(k.verifyUntil)
}

// keySet is the signing keys loaded from the store: active signs, every usable key verifies.
type keySet struct {
	active *signingKey
	byKID  map[string]*signingKey
}

type signingKeyRecord struct {
	V         int       `json:"v"`
	KeyID     string    `json:"kid"`
	Alg       string    `json:"alg"`   // "RS256"
	PKCS8     []byte    `json:"pkcs8"` // DER
	CreatedAt time.Time `json:"createdAt"`
	// VerifyUntil (Unix seconds) is set when the key is rotated out; see signingKey.
	VerifyUntil int64 `json:"verifyUntil,omitempty"`
}

func (r *signingKeyRecord) version() int { return r.V }

func generateSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	return newSigningKey(priv)
}

// newSigningKey derives the kid (RFC 7638 SHA-256 thumbprint, base64url) and public JWK.
func newSigningKey(priv *rsa.PrivateKey) (*signingKey, error) {
	jwk := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("computing key thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return &signingKey{kid: jwk.KeyID, priv: priv, jwk: jwk}, nil
}

func (s *Service) putSigningKey(ctx context.Context, k *signingKey) (op store.Op, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return op, fmt.Errorf("encoding signing key: %w", err)
	}
	rec := signingKeyRecord{V: recordVersion, KeyID: k.kid, Alg: string(jose.RS256), PKCS8: der, CreatedAt: s.now().UTC()}
	if !k.verifyUntil.IsZero() {
		rec.VerifyUntil = k.verifyUntil.Unix()
	}
	op, err = s.putRecord(ctx, prefixSigningKey+k.kid, rec)
	clear(der)
	return op, err
}

// reloadSigningKeys re-reads the deployment record and the signing keys (after a rotation,
// here or on another node).
func (s *Service) reloadSigningKeys(ctx context.Context) error {
	var dep deploymentRecord
	if err := s.getRecord(ctx, keyDeployment, &dep); err != nil {
		return fmt.Errorf("reloading signing keys: %w", err)
	}
	return s.loadSigningKeys(ctx, dep.SigningKeyID)
}

// loadSigningKeys loads every stored signing key (all usable ones verify; activeKID signs).
func (s *Service) loadSigningKeys(ctx context.Context, activeKID string) error {
	type raw struct {
		key    string
		sealed []byte
	}
	var recs []raw
	err := s.st.Scan(ctx, prefixSigningKey, "", func(key string, value []byte) bool {
		recs = append(recs, raw{key, value})
		return true
	})
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	ks := &keySet{byKID: make(map[string]*signingKey, len(recs))}
	for _, r := range recs {
		var rec signingKeyRecord
		if err := s.openRecord(ctx, r.key, r.sealed, &rec); err != nil {
			return fmt.Errorf("loading signing keys: %w", err)
		}
		k, err := parseSigningKey(rec)
		if err != nil {
			return fmt.Errorf("loading signing key %q: %w", strings.TrimPrefix(r.key, prefixSigningKey), err)
		}
		if rec.VerifyUntil != 0 && k.kid != activeKID {
			k.verifyUntil = time.Unix(rec.VerifyUntil, 0)
		}
		ks.byKID[k.kid] = k
	}
	ks.active = ks.byKID[activeKID]
	if ks.active == nil {
		return fmt.Errorf("loading signing keys: active key %q is missing", activeKID)
	}
	s.keys.Store(ks)
	return nil
}

func parseSigningKey(rec signingKeyRecord) (*signingKey, error) {
	if rec.Alg != string(jose.RS256) {
		return nil, fmt.Errorf("unsupported algorithm %q", rec.Alg)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(rec.PKCS8)
	clear(rec.PKCS8)
	if err != nil {
		return nil, fmt.Errorf("parsing key: %w", err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parsing key: not an RSA key")
	}
	k, err := newSigningKey(priv)
	if err != nil {
		return nil, err
	}
	if k.kid != rec.KeyID {
		return nil, fmt.Errorf("stored kid does not match the key's thumbprint")
	}
	return k, nil
}

// JWKS returns the public signing keys that still verify (no private material), active first,
// for the discovery endpoint.
func (s *Service) JWKS() jose.JSONWebKeySet {
	ks, now := s.keys.Load(), s.now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ks.active.jwk}}
	kids := make([]string, 0, len(ks.byKID))
	for kid, k := range ks.byKID {
		if k != ks.active && k.usable(now) {
			kids = append(kids, kid)
		}
	}
	slices.Sort(kids)
	for _, kid := range kids {
		set.Keys = append(set.Keys, ks.byKID[kid].jwk)
	}
	return set
}
