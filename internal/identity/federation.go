package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Workload identity federation: an application trusts tokens of an external OpenID Connect
// issuer for one subject (Graph federatedIdentityCredentials), and a workload presents such a
// token as its client assertion. The issuer's discovery document and JWKS are fetched (by an
// IssuerKeyFetcher: HTTPS only), cached, and refreshed when a token names an unknown kid (at
// most once per minRefresh per issuer). A token whose issuer no federated credential of the
// application names is refused before anything is fetched.

// DefaultFederationAudience is the audience federated credentials expect by default.
const DefaultFederationAudience = "api://AzureADTokenExchange"

const (
	// maxFederated bounds an application's federated credentials (Entra's limit is 20).
	maxFederated = 20
	// jwksTTL is how long an issuer's keys are used before they are fetched again.
	jwksTTL = time.Hour
	// minRefresh bounds refetches of an issuer's keys on unknown kids (and after failures).
	minRefresh  = 30 * time.Second
	maxFICField = 600 // issuer and subject lengths (Entra: 600)
)

// Federation errors. All but ErrFederationFetch wrap ErrInvalidClient.
var (
	// ErrFederationIssuer means no federated credential of the application names the
	// assertion's issuer (AADSTS700211); nothing was fetched.
	ErrFederationIssuer = fmt.Errorf("%w: no federated credential for the assertion's issuer", ErrInvalidClient)
	// ErrFederationSubject means the issuer is trusted but not for the assertion's subject
	// (AADSTS700213).
	ErrFederationSubject = fmt.Errorf("%w: no federated credential for the assertion's subject", ErrInvalidClient)
	// ErrFederationAudience means the issuer and subject are trusted but not for the
	// assertion's audience (AADSTS700212).
	ErrFederationAudience = fmt.Errorf("%w: no federated credential for the assertion's audience", ErrInvalidClient)
	// ErrFederationFetch means the issuer's discovery document or keys could not be fetched
	// or were unusable (AADSTS50166-like); the assertion was not checked.
	ErrFederationFetch = errors.New("could not fetch the external issuer's keys")
)

// ficRecord is one federated identity credential.
type ficRecord struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Issuer      string    `json:"issuer"`
	Subject     string    `json:"subject"`
	Audiences   []string  `json:"audiences"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// FederatedCredential is a Graph federatedIdentityCredential.
type FederatedCredential struct {
	ID          string
	Name        string
	Issuer      string
	Subject     string
	Audiences   []string
	Description string
}

func (r *ficRecord) credential() FederatedCredential {
	return FederatedCredential{ID: r.ID, Name: r.Name, Issuer: r.Issuer, Subject: r.Subject,
		Audiences: slices.Clone(r.Audiences), Description: r.Description}
}

// validateFIC checks a new federated credential as Graph does: a name of letters, digits,
// '-' and '_' (at most 120), an https issuer URL, a subject, and exactly one audience
// (defaulting to api://AzureADTokenExchange).
func validateFIC(in FederatedCredential) (FederatedCredential, error) {
	const res = "FederatedIdentityCredential"
	if in.Name == "" || len(in.Name) > 120 || strings.IndexFunc(in.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return in, badInput("Invalid value specified for property 'name' of resource '%s'.", res)
	}
	u, err := url.Parse(in.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(in.Issuer) > maxFICField {
		return in, badInput("Invalid value specified for property 'issuer' of resource '%s': an https URL is required.", res)
	}
	if in.Subject == "" || len(in.Subject) > maxFICField || strings.IndexFunc(in.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return in, badInput("Invalid value specified for property 'subject' of resource '%s'.", res)
	}
	if len(in.Audiences) == 0 {
		in.Audiences = []string{DefaultFederationAudience}
	}
	if len(in.Audiences) != 1 || in.Audiences[0] == "" || len(in.Audiences[0]) > maxFICField {
		return in, badInput("Invalid value specified for property 'audiences' of resource '%s': exactly one audience is required.", res)
	}
	if len(in.Description) > 600 {
		return in, badInput("Invalid value specified for property 'description' of resource '%s'.", res)
	}
	return in, nil
}

// CreateFederatedCredential adds a federated identity credential to an application (by object
// id or appId). Names are unique per application, as are issuer and subject pairs.
func (s *Service) CreateFederatedCredential(ctx context.Context, idOrAppID string, in FederatedCredential) (FederatedCredential, error) {
	in, err := validateFIC(in)
	if err != nil {
		return FederatedCredential{}, err
	}
	rec := ficRecord{ID: uuid.NewString(), Name: in.Name, Issuer: in.Issuer, Subject: in.Subject, Audiences: in.Audiences,
		Description: in.Description, CreatedAt: s.now().UTC()}
	err = s.updateAppCreds(ctx, idOrAppID, func(c *appCredsRecord) ([]string, error) {
		if len(c.Federated) >= maxFederated {
			return nil, conflict("The application already has %d federated identity credentials, the most it may hold.", maxFederated)
		}
		for _, f := range c.Federated {
			if strings.EqualFold(f.Name, rec.Name) {
				return nil, conflict("A federated identity credential named '%s' already exists on the application.", rec.Name)
			}
			if f.Issuer == rec.Issuer && f.Subject == rec.Subject {
				return nil, conflict("A federated identity credential with this issuer and subject already exists on the application.")
			}
		}
		c.Federated = append(c.Federated, rec)
		return nil, nil
	})
	if err != nil {
		return FederatedCredential{}, fmt.Errorf("creating federated credential: %w", err)
	}
	return rec.credential(), nil
}

// ListFederatedCredentials returns an application's federated identity credentials.
func (s *Service) ListFederatedCredentials(ctx context.Context, idOrAppID string) ([]FederatedCredential, error) {
	_, app, err := s.findApplication(ctx, idOrAppID)
	if err != nil {
		return nil, fmt.Errorf("listing federated credentials: %w", err)
	}
	rec, _, err := s.loadAppCreds(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("listing federated credentials: %w", err)
	}
	out := make([]FederatedCredential, 0, len(rec.Federated))
	for i := range rec.Federated {
		out = append(out, rec.Federated[i].credential())
	}
	return out, nil
}

// GetFederatedCredential returns one federated identity credential by id or name.
func (s *Service) GetFederatedCredential(ctx context.Context, idOrAppID, idOrName string) (FederatedCredential, error) {
	all, err := s.ListFederatedCredentials(ctx, idOrAppID)
	if err != nil {
		return FederatedCredential{}, err
	}
	for _, f := range all {
		if strings.EqualFold(f.ID, idOrName) || strings.EqualFold(f.Name, idOrName) {
			return f, nil
		}
	}
	return FederatedCredential{}, fmt.Errorf("reading federated credential: %w", ErrObjectNotFound)
}

// FederatedCredentialPatch is Graph's PATCH of a federated identity credential: nil fields
// stay as they are. The name cannot change.
type FederatedCredentialPatch struct {
	Issuer, Subject, Description *string
	Audiences                    *[]string
}

// UpdateFederatedCredential changes a federated identity credential. A change of issuer,
// subject or audiences is a change of trust, so the tokens it minted stop verifying (the next
// sign-in under the new trust mints new ones).
func (s *Service) UpdateFederatedCredential(ctx context.Context, idOrAppID, idOrName string, p FederatedCredentialPatch) (FederatedCredential, error) {
	var out FederatedCredential
	err := s.updateAppCreds(ctx, idOrAppID, func(c *appCredsRecord) ([]string, error) {
		i := slices.IndexFunc(c.Federated, func(f ficRecord) bool {
			return strings.EqualFold(f.ID, idOrName) || strings.EqualFold(f.Name, idOrName)
		})
		if i < 0 {
			return nil, ErrObjectNotFound
		}
		f := c.Federated[i]
		next := f.credential()
		if p.Issuer != nil {
			next.Issuer = *p.Issuer
		}
		if p.Subject != nil {
			next.Subject = *p.Subject
		}
		if p.Audiences != nil {
			next.Audiences = slices.Clone(*p.Audiences)
		}
		if p.Description != nil {
			next.Description = *p.Description
		}
		next, err := validateFIC(next)
		if err != nil {
			return nil, err
		}
		for j, o := range c.Federated {
			if j != i && o.Issuer == next.Issuer && o.Subject == next.Subject {
				return nil, conflict("A federated identity credential with this issuer and subject already exists on the application.")
			}
		}
		trustChanged := next.Issuer != f.Issuer || next.Subject != f.Subject || !slices.Equal(next.Audiences, f.Audiences)
		f.Issuer, f.Subject, f.Audiences, f.Description = next.Issuer, next.Subject, next.Audiences, next.Description
		c.Federated[i] = f
		out = f.credential()
		if trustChanged {
			return []string{f.ID}, nil
		}
		return nil, nil
	})
	if err != nil {
		return FederatedCredential{}, fmt.Errorf("updating federated credential: %w", err)
	}
	return out, nil
}

// DeleteFederatedCredential removes a federated identity credential by id or name; every
// token it minted stops verifying on the next request, on every node.
func (s *Service) DeleteFederatedCredential(ctx context.Context, idOrAppID, idOrName string) error {
	err := s.updateAppCreds(ctx, idOrAppID, func(c *appCredsRecord) ([]string, error) {
		i := slices.IndexFunc(c.Federated, func(f ficRecord) bool {
			return strings.EqualFold(f.ID, idOrName) || strings.EqualFold(f.Name, idOrName)
		})
		if i < 0 {
			return nil, ErrObjectNotFound
		}
		id := c.Federated[i].ID
		c.Federated = slices.Delete(c.Federated, i, i+1)
		return []string{id}, nil
	})
	if err != nil {
		return fmt.Errorf("deleting federated credential: %w", err)
	}
	return nil
}

// assertFederated verifies a federated assertion against the application's federated
// credentials and returns the matching credential's id. The issuer must be one a credential
// names exactly (checked before anything is fetched); the signature is checked with the
// issuer's published keys (RS256 or ES256); exp is required, nbf honoured; then a credential
// must name the subject, and one of the assertion's audiences.
func (s *Service) assertFederated(ctx context.Context, raw string, creds *appCredsRecord) (string, error) {
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &unverified); err != nil {
		return "", fmt.Errorf("%w: malformed", ErrInvalidAssertion)
	}
	iss := unverified.Issuer
	var byIssuer []ficRecord
	for _, f := range creds.Federated {
		if f.Issuer == iss {
			byIssuer = append(byIssuer, f)
		}
	}
	if iss == "" || len(byIssuer) == 0 {
		return "", ErrFederationIssuer
	}
	fed := s.ext().fed
	var c jwt.RegisteredClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew), jwt.WithTimeFunc(s.now), jwt.WithIssuer(iss))
	var fetchErr error
	_, err := parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := fed.key(ctx, iss, kid, t.Method.Alg())
		if err != nil {
			fetchErr = err
		}
		return k, err
	})
	switch {
	case fetchErr != nil:
		return "", fetchErr
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", fmt.Errorf("%w: expired", ErrInvalidAssertion)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "", fmt.Errorf("%w: not yet valid", ErrInvalidAssertion)
	case err != nil:
		return "", fmt.Errorf("%w: bad signature, algorithm or claims", ErrInvalidAssertion)
	}
	var bySubject []ficRecord
	for _, f := range byIssuer {
		if f.Subject == c.Subject {
			bySubject = append(bySubject, f)
		}
	}
	if len(bySubject) == 0 {
		return "", ErrFederationSubject
	}
	for _, f := range bySubject {
		for _, a := range c.Audience {
			if slices.Contains(f.Audiences, a) {
				return f.ID, nil
			}
		}
	}
	return "", ErrFederationAudience
}

// IssuerKeyFetcher fetches an external OpenID Connect issuer's published signing keys: its
// discovery document ({iss}/.well-known/openid-configuration, whose issuer must be iss) and the
// JWKS its jwks_uri names, over HTTPS only. Errors should wrap ErrFederationFetch. Package
// issuer provides the HTTP one; this package never speaks HTTP itself.
type IssuerKeyFetcher interface {
	FetchIssuerKeys(ctx context.Context, iss string) (jose.JSONWebKeySet, error)
}

// SetIssuerKeyFetcher sets how this service reaches external issuers; call it before serving.
// Without one, every federated assertion fails with ErrFederationFetch.
func (s *Service) SetIssuerKeyFetcher(f IssuerKeyFetcher) {
	fed := s.ext().fed
	fed.mu.Lock()
	fed.fetcher = f
	fed.mu.Unlock()
}

// federation caches external issuers' keys.
type federation struct {
	s       *Service
	mu      sync.Mutex
	fetcher IssuerKeyFetcher
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	mu        sync.Mutex // serializes fetches for one issuer
	keys      map[string]jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
	err       error     // last attempt's error, repeated until minRefresh passes
}

func newFederation(s *Service) *federation {
	return &federation{s: s, issuers: map[string]*issuerKeys{}}
}

// key returns iss's public key kid for alg, fetching the issuer's keys when none are cached,
// they are older than jwksTTL, or kid is unknown and the last fetch is older than minRefresh.
func (f *federation) key(ctx context.Context, iss, kid, alg string) (any, error) {
	f.mu.Lock()
	ik := f.issuers[iss]
	if ik == nil {
		ik = &issuerKeys{}
		f.issuers[iss] = ik
	}
	f.mu.Unlock()
	ik.mu.Lock()
	defer ik.mu.Unlock()
	now := f.s.now()
	k, have := ik.find(kid)
	stale := ik.keys == nil || now.Sub(ik.fetched) >= jwksTTL
	if have && !stale {
		return usableKey(k, alg)
	}
	if now.Sub(ik.attempted) >= minRefresh || ik.attempted.IsZero() {
		ik.attempted = now
		keys, err := f.fetch(ctx, iss)
		ik.err = err
		if err == nil {
			ik.keys, ik.fetched = keys, now
		}
	}
	if k, have = ik.find(kid); have {
		return usableKey(k, alg)
	}
	if ik.err != nil && ik.keys == nil {
		return nil, ik.err
	}
	return nil, fmt.Errorf("%w: unknown signing key", ErrInvalidAssertion)
}

// find returns the key named kid (or, when kid is empty and the set holds one key, that key).
func (ik *issuerKeys) find(kid string) (jose.JSONWebKey, bool) {
	if kid == "" && len(ik.keys) == 1 {
		for _, k := range ik.keys {
			return k, true
		}
	}
	k, ok := ik.keys[kid]
	return k, ok && kid != ""
}

// usableKey checks that k suits alg (RS256: RSA of 2048 bits or more; ES256: P-256).
func usableKey(k jose.JSONWebKey, alg string) (any, error) {
	if k.Algorithm != "" && k.Algorithm != alg {
		return nil, fmt.Errorf("%w: key algorithm mismatch", ErrInvalidAssertion)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if alg == "RS256" && pub.N.BitLen() >= 2048 {
			return pub, nil
		}
	case *ecdsa.PublicKey:
		if alg == "ES256" && pub.Curve == elliptic.P256() {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("%w: key unsuitable for %s", ErrInvalidAssertion, alg)
}

// fetch asks the fetcher for iss's keys and keeps the public signing ones by kid.
func (f *federation) fetch(ctx context.Context, iss string) (map[string]jose.JSONWebKey, error) {
	f.mu.Lock()
	fetcher := f.fetcher
	f.mu.Unlock()
	if fetcher == nil {
		return nil, fmt.Errorf("%w: no fetcher configured", ErrFederationFetch)
	}
	set, err := fetcher.FetchIssuerKeys(ctx, iss)
	if err != nil {
		if !errors.Is(err, ErrFederationFetch) {
			err = fmt.Errorf("%w: %v", ErrFederationFetch, err)
		}
		return nil, err
	}
	keys := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			keys[k.KeyID] = k
		}
	}
	return keys, nil
}
