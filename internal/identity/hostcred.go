package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/pki"
	"github.com/strongroom/strongroom/internal/store"
)

// A host's credentials: redeeming its one-time registration token for a certificate signed by
// the host CA, and minting tokens for the identities assigned to it.

// RedeemHostRegistration spends a registration token once: csrDER is a PKCS#10 request for
// the key the host generated (its signature is checked); the answer is the host's certificate
// and the host CA's, both PEM. A token is good for one redemption before it expires, even when
// two redemptions race on different nodes (the second one's write fails its precondition).
func (s *Service) RedeemHostRegistration(ctx context.Context, token string, csrDER []byte) (h Host, certPEM, caPEM []byte, err error) {
	rest, ok := strings.CutPrefix(token, hostTokenPrefix)
	dot := strings.LastIndexByte(rest, '.')
	if !ok || dot <= 0 || len(token) > 256 {
		return Host{}, nil, nil, ErrBadRegistrationToken
	}
	name := rest[:dot]
	for range 3 {
		sealed, rec, err := s.findHost(ctx, name)
		if errors.Is(err, ErrHostNotFound) {
			return Host{}, nil, nil, ErrBadRegistrationToken
		}
		if err != nil {
			return Host{}, nil, nil, fmt.Errorf("redeeming registration: %w", err)
		}
		sum := sha256.Sum256([]byte(token))
		want, _ := hex.DecodeString(rec.TokenHash)
		if len(want) != sha256.Size || subtle.ConstantTimeCompare(sum[:], want) != 1 || !s.now().Before(rec.TokenExpires) {
			return Host{}, nil, nil, ErrBadRegistrationToken
		}
		csr, err := x509.ParseCertificateRequest(csrDER)
		if err != nil || csr.CheckSignature() != nil {
			return Host{}, nil, nil, badInput("The certificate request is not a valid, self-signed PKCS#10 request.")
		}
		if !assertionKey(csr.PublicKey) {
			return Host{}, nil, nil, badInput("The certificate request's key must be ECDSA P-256 or RSA of at least 2048 bits (host assertions are ES256 or RS256).")
		}
		ca, caKey, err := s.hostCA(ctx)
		if err != nil {
			return Host{}, nil, nil, fmt.Errorf("redeeming registration: %w", err)
		}
		now := s.now()
		tmpl := &x509.Certificate{
			SerialNumber: pki.Serial(),
			Subject:      pkix.Name{CommonName: rec.Name, Organization: []string{"Strongroom host"}},
			URIs:         []*url.URL{{Scheme: "urn", Opaque: "strongroom:host:" + rec.ID}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(hostCertLifetime),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
		if err != nil {
			return Host{}, nil, nil, fmt.Errorf("signing host certificate: %w", err)
		}
		rec.CertDER, rec.RegisteredAt, rec.TokenHash, rec.TokenExpires = der, now.UTC(), "", time.Time{}
		put, err := s.putRecord(ctx, hostKey(name), rec)
		if err != nil {
			return Host{}, nil, nil, fmt.Errorf("redeeming registration: %w", err)
		}
		err = s.apply(ctx, []store.Op{store.RequireEqual(hostKey(name), sealed), put})
		if errors.Is(err, store.ErrConflict) {
			continue // spent or changed meanwhile: look again (a spent token then fails)
		}
		if err != nil {
			return Host{}, nil, nil, fmt.Errorf("redeeming registration: %w", err)
		}
		return s.host(rec), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
	}
	return Host{}, nil, nil, ErrBadRegistrationToken
}

// hostCA returns the deployment's host CA, making it on first use.
func (s *Service) hostCA(ctx context.Context) (*x509.Certificate, any, error) {
	for range 2 {
		var rec hostCARecord
		err := s.getRecord(ctx, keyHostCA, &rec)
		if err == nil {
			cert, err := x509.ParseCertificate(rec.CertDER)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing host CA: %w", err)
			}
			key, err := x509.ParsePKCS8PrivateKey(rec.KeyDER)
			clear(rec.KeyDER)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing host CA key: %w", err)
			}
			return cert, key, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("loading host CA: %w", err)
		}
		_, der, key, err := pki.NewCA(pkix.Name{CommonName: "Strongroom host CA"})
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding host CA key: %w", err)
		}
		put, err := s.putRecord(ctx, keyHostCA, hostCARecord{V: recordVersion, CertDER: der, KeyDER: keyDER})
		clear(keyDER)
		if err != nil {
			return nil, nil, err
		}
		if err := s.st.Apply(ctx, []store.Op{store.RequireAbsent(keyHostCA), put}); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, nil, fmt.Errorf("storing host CA: %w", err)
		}
		// Stored, or another node stored its own first: load whichever won.
	}
	return nil, nil, fmt.Errorf("loading host CA: %w", store.ErrConflict)
}

// MintHostToken mints an access token for one of the identities assigned to the host, for
// resource (an audience such as https://vault.azure.net; a "/.default" suffix is ignored),
// which must be one the planes serve. It reads the host record as stored now, so a removed
// host or an unassigned identity gets nothing. The token's credential is the assignment, which
// unassigning removes (see managed.go). Errors: ErrHostNotFound, ErrHostCredential (never
// registered), ErrNoHostIdentity, ErrAmbiguousIdentity, ErrIdentityNotAssigned,
// ErrInvalidScope, ErrUnknownResource, ErrPrincipalDisabled.
//
// current is the token the agent holds for this request, if any: when it still verifies, was
// minted through this very assignment for aud and has more than hostTokenReuseMargin to live,
// it is answered again instead of a new one (the decision is the same; the agent's cache then
// stays what the server says it may be).
func (s *Service) MintHostToken(ctx context.Context, hostName string, sel HostIdentitySelector, resource, current string) (Token, HostIdentity, error) {
	aud, err := s.servedAudience(strings.TrimSuffix(resource, defaultScopeSuffix) + defaultScopeSuffix)
	if err != nil {
		return Token{}, HostIdentity{}, err
	}
	_, h, err := s.findHost(ctx, hostName)
	if err != nil {
		return Token{}, HostIdentity{}, err
	}
	if len(h.CertDER) == 0 {
		return Token{}, HostIdentity{}, ErrHostCredential
	}
	h.Identities = s.liveAssignments(h.Identities)
	a, err := s.selectHostIdentity(h, sel)
	if err != nil {
		return Token{}, HostIdentity{}, err
	}
	rec, err := s.loadPrincipal(ctx, a.ObjectID)
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, HostIdentity{}, ErrIdentityNotAssigned // the identity was deleted
	}
	if err != nil {
		return Token{}, HostIdentity{}, fmt.Errorf("minting host token: %w", err)
	}
	switch {
	case !hasCredential(rec, a.CredID):
		return Token{}, HostIdentity{}, ErrIdentityNotAssigned
	case rec.Disabled:
		return Token{}, HostIdentity{}, ErrPrincipalDisabled
	}
	if tok, ok := s.reusable(ctx, current, aud, a); ok {
		return tok, s.host(&hostRecord{Identities: []hostIdentityRecord{a}}).Identities[0], nil
	}
	tok, err := s.mint(rec, a.CredID, aud)
	if err != nil {
		return Token{}, HostIdentity{}, fmt.Errorf("minting host token: %w", err)
	}
	hi := s.host(&hostRecord{Identities: []hostIdentityRecord{a}}).Identities[0]
	return tok, hi, nil
}

func (s *Service) selectHostIdentity(h *hostRecord, sel HostIdentitySelector) (hostIdentityRecord, error) {
	var match func(a hostIdentityRecord) bool
	switch {
	case sel.ClientID != "":
		match = func(a hostIdentityRecord) bool { return strings.EqualFold(a.AppID, sel.ClientID) }
	case sel.ObjectID != "":
		match = func(a hostIdentityRecord) bool { return strings.EqualFold(a.ObjectID, sel.ObjectID) }
	case sel.ResourceID != "":
		match = func(a hostIdentityRecord) bool {
			return strings.EqualFold(s.ManagedIdentityID(a.ResourceGroup, a.Name), strings.TrimSuffix(sel.ResourceID, "/"))
		}
	default:
		switch len(h.Identities) {
		case 0:
			return hostIdentityRecord{}, ErrNoHostIdentity
		case 1:
			return h.Identities[0], nil
		}
		return hostIdentityRecord{}, ErrAmbiguousIdentity
	}
	if i := slices.IndexFunc(h.Identities, match); i >= 0 {
		return h.Identities[i], nil
	}
	return hostIdentityRecord{}, ErrIdentityNotAssigned
}

// hostTokenReuseMargin is how long a token must still live to be answered again.
const hostTokenReuseMargin = 5 * time.Minute

// reusable reports whether current may be answered again for assignment a and audience aud.
func (s *Service) reusable(ctx context.Context, current, aud string, a hostIdentityRecord) (Token, bool) {
	if current == "" {
		return Token{}, false
	}
	c, err := s.Verify(ctx, current, []string{aud})
	if err != nil || c.Principal.ObjectID != a.ObjectID || c.CredentialID != a.CredID ||
		!strings.EqualFold(strings.TrimSuffix(c.Audience, "/"), strings.TrimSuffix(aud, "/")) {
		return Token{}, false
	}
	now := s.now()
	if c.Expiry.Sub(now) <= hostTokenReuseMargin {
		return Token{}, false
	}
	return Token{AccessToken: current, ExpiresIn: int(c.Expiry.Sub(now) / time.Second), ExpiresOn: c.Expiry, Resource: c.Audience, ObjectID: a.ObjectID}, true
}

// assertionKey reports whether a host key can sign the host assertions the server accepts.
func assertionKey(pub any) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048
	}
	return false
}
