package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Host assertions: how an identity agent proves its host on each token request. An assertion
// is a compact JWS (ES256 or RS256) signed by the key whose certificate the host got at
// registration:
//
//	header  {"alg":"ES256","typ":"host-assertion+jwt","kid":"<hex SHA-256 of the certificate DER>"}
//	claims  {"iss":<host>,"sub":<host>,"aud":"urn:strongroom:host-agent","iat":..,"exp":..,
//	         "jti":<random>,"bh":<base64url SHA-256 of the request body>}
//
// It binds the one request body it was made for, lives at most HostAssertionMaxAge, and each
// jti is accepted once per node within that time. The server checks the certificate is the one
// the host record holds now (so a host registered again, or removed, is refused at once), that
// the host CA signed it and that it has not expired, then the signature.

const (
	// HostAssertionAudience is the aud of every host assertion.
	HostAssertionAudience = "urn:strongroom:host-agent"
	// HostAssertionType is the typ header of a host assertion.
	HostAssertionType = "host-assertion+jwt"
	// HostAssertionMaxAge bounds exp - iat.
	HostAssertionMaxAge = 5 * time.Minute
	maxHostAssertionLen = 8 << 10
	assertionSkew       = time.Minute
)

type hostAssertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Jti string `json:"jti"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	BH  string `json:"bh"` // base64url SHA-256 of the request body
}

// VerifyHostAssertion checks a host assertion made for body and returns the host it proves.
// Every failure is ErrHostCredential (wrapped with a short reason), or ErrHostNotFound for a
// host that does not exist (any more).
func (s *Service) VerifyHostAssertion(ctx context.Context, assertion string, body []byte) (Host, error) {
	fail := func(why string) (Host, error) { return Host{}, &hostCredError{why} }
	if assertion == "" || len(assertion) > maxHostAssertionLen {
		return fail("malformed assertion")
	}
	jws, err := jose.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return fail("malformed assertion")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != HostAssertionType {
		return fail("wrong assertion type")
	}
	var unverified hostAssertionClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil || unverified.Sub == "" {
		return fail("malformed claims")
	}
	_, rec, err := s.findHost(ctx, unverified.Sub)
	if err != nil {
		return Host{}, err
	}
	if len(rec.CertDER) == 0 {
		return fail("host not registered")
	}
	sum := sha256.Sum256(rec.CertDER)
	if subtle.ConstantTimeCompare([]byte(hdr.KeyID), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return fail("not the host's certificate")
	}
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return fail("unreadable host certificate")
	}
	now := s.now()
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return fail("host certificate expired")
	}
	ca, _, err := s.hostCA(ctx)
	if err != nil {
		return Host{}, err
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return fail("host certificate not issued by the host CA")
	}
	payload, err := jws.Verify(cert.PublicKey)
	if err != nil {
		return fail("bad signature")
	}
	var c hostAssertionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return fail("malformed claims")
	}
	bh := sha256.Sum256(body)
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	switch {
	case c.Iss != rec.Name || c.Sub != rec.Name:
		return fail("wrong subject")
	case c.Aud != HostAssertionAudience:
		return fail("wrong audience")
	case c.Iat == 0 || c.Exp == 0 || exp.Sub(iat) > HostAssertionMaxAge || !exp.After(iat):
		return fail("bad lifetime")
	case now.Before(iat.Add(-assertionSkew)) || now.After(exp.Add(assertionSkew)):
		return fail("expired")
	case c.BH != base64.RawURLEncoding.EncodeToString(bh[:]):
		return fail("not made for this request")
	case len(c.Jti) < 16 || len(c.Jti) > 128:
		return fail("bad jti")
	case !seenAssertions.first(rec.ID+"/"+c.Jti, exp.Add(assertionSkew), now):
		return fail("replayed")
	}
	return s.host(rec), nil
}

type hostCredError struct{ why string }

func (e *hostCredError) Error() string        { return ErrHostCredential.Error() + ": " + e.why }
func (e *hostCredError) Is(target error) bool { return target == ErrHostCredential }

// hostReplayCache remembers assertion ids until they expire. It is process-wide (ids are random
// and carry the host id, so services in one process cannot collide) and bounded: when full it
// drops expired ids, then refuses new ones until some expire (fail closed).
type hostReplayCache struct {
	mu  sync.Mutex
	m   map[string]time.Time
	max int
}

var seenAssertions = &hostReplayCache{m: map[string]time.Time{}, max: 200_000}

// first records id until `until` and reports whether it was not seen before.
func (r *hostReplayCache) first(id string, until, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.m[id]; ok && now.Before(t) {
		return false
	}
	if len(r.m) >= r.max {
		for k, t := range r.m {
			if !now.Before(t) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= r.max {
			return false
		}
	}
	r.m[id] = until
	return true
}

// VerifyHostCertificate checks a client certificate presented on a mutually authenticated TLS
// connection (the host-agent listener, issuer.HostAgentHandler): it must be the certificate
// the host record holds now, issued by the host CA and within its validity. It returns the
// host; failures are ErrHostCredential, or ErrHostNotFound for a removed host.
func (s *Service) VerifyHostCertificate(ctx context.Context, certDER []byte) (Host, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Host{}, &hostCredError{"unreadable certificate"}
	}
	_, rec, err := s.findHost(ctx, cert.Subject.CommonName)
	if err != nil {
		return Host{}, err
	}
	if len(rec.CertDER) == 0 || subtle.ConstantTimeCompare(rec.CertDER, certDER) != 1 {
		return Host{}, &hostCredError{"not the host's certificate"}
	}
	now := s.now()
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return Host{}, &hostCredError{"host certificate expired"}
	}
	ca, _, err := s.hostCA(ctx)
	if err != nil {
		return Host{}, err
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return Host{}, &hostCredError{"host certificate not issued by the host CA"}
	}
	return s.host(rec), nil
}
