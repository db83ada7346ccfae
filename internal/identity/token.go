package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"

	"github.com/strongroom/strongroom/internal/store"
)

const (
	defaultScopeSuffix = "/.default"
	maxAudienceLen     = 512
)

// oidcScopes are the OpenID Connect scopes MSAL adds to every request; they name no resource.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

// Token is a minted access token.
type Token struct {
	AccessToken string
	ExpiresIn   int       // whole seconds from now until ExpiresOn (3599 for a 1h lifetime)
	ExpiresOn   time.Time // the token's exp
	Resource    string    // the audience
	ObjectID    string    // the principal's
	UPN         string    // user tokens: the user's principal name (for audit records)
	// User grants only, as the request's OIDC scopes asked: an ID token (openid) and a
	// refresh token (offline_access; refresh.go).
	IDToken      string
	RefreshToken string
}

// accessClaims is the JWT payload, shaped like an Entra ID v2 app-only access token, plus two
// claims of ours that verification checks against the principal's current state.
type accessClaims struct {
	Aud            string `json:"aud"`
	Iss            string `json:"iss"`
	Iat            int64  `json:"iat"`
	Nbf            int64  `json:"nbf"`
	Exp            int64  `json:"exp"`
	AppDisplayName string `json:"app_displayname,omitempty"`
	AppID          string `json:"appid"`
	Azp            string `json:"azp"`
	Azpacr         string `json:"azpacr"` // "1": client secret
	Idtyp          string `json:"idtyp"`  // "app"
	Oid            string `json:"oid"`
	Sub            string `json:"sub"`
	Tid            string `json:"tid"`
	Uti            string `json:"uti"`
	Ver            string `json:"ver"`     // "2.0"
	Cred           string `json:"sr_cred"` // key id of the client secret that minted the token
	Gen            uint64 `json:"sr_gen"`  // the principal's generation when it was minted

	// User tokens only (idtyp "user").
	Name       string                       `json:"name,omitempty"`
	Upn        string                       `json:"upn,omitempty"`
	Scp        string                       `json:"scp,omitempty"`
	Groups     []string                     `json:"groups,omitempty"`
	ClaimNames map[string]string            `json:"_claim_names,omitempty"`
	ClaimSrcs  map[string]map[string]string `json:"_claim_sources,omitempty"`
}

// ErrLockedOut means too many sign-ins failed recently for the client id or the caller's
// network: the request was refused before its secret was checked. The error is a *LockoutError.
var ErrLockedOut = errors.New("locked out after too many failed sign-ins")

// LockoutError says how long a lockout lasts.
type LockoutError struct {
	RetryAfter time.Duration
	// BySource is true when the caller's network is locked out, false when the client id is.
	BySource bool
}

func (e *LockoutError) Error() string {
	what := "client id"
	if e.BySource {
		what = "source address"
	}
	return fmt.Sprintf("%s for %s: %v", what, e.RetryAfter.Round(time.Second), ErrLockedOut)
}

// Is makes errors.Is(err, ErrLockedOut) hold.
func (e *LockoutError) Is(target error) bool { return target == ErrLockedOut }

// TokenRequest is one client-credentials request.
type TokenRequest struct {
	Tenant, ClientID, ClientSecret, Scope string
	// RemoteIP is the caller's address, for the per-source failure limit; "" skips that limit.
	RemoteIP string
}

// ClientCredentials is IssueToken without a caller address (no per-source limit).
func (s *Service) ClientCredentials(ctx context.Context, tenant, clientID, clientSecret, scope string) (Token, error) {
	return s.IssueToken(ctx, TokenRequest{Tenant: tenant, ClientID: clientID, ClientSecret: clientSecret, Scope: scope})
}

// IssueToken authenticates a client by id and secret and mints an access token for the
// resource the scope names. The tenant may be "" (ADFS endpoints: the default tenant), the
// tenant id, "organizations" or "common". The scope must name exactly one resource with the
// "/.default" suffix (MSAL's OIDC scopes "openid profile offline_access email" are ignored); the
// audience is the scope minus that suffix, otherwise verbatim, so
// "https://management.core.windows.net//.default" gives "https://management.core.windows.net/".
//
// The request's shape (tenant, scope) is checked first, then the failure limits (lockout.go): a
// familiar pair of client id and source (familiar.go) is limited by its own failures only, any
// other request by those of the client id and of the caller's network; a locked-out request is
// refused without hashing. Then the secret of a known client is hashed in the bounded hash
// queue. A wrong secret counts one failure (against the pair, or against both the client id and
// the source); an unknown client id costs no hash and counts nothing, since it says nothing
// about any principal's secret. Errors: ErrUnknownTenant,
// ErrInvalidScope, *LockoutError (ErrLockedOut), ErrBusy, ErrUnknownClient (which is also
// ErrInvalidClient), ErrInvalidClient, ErrPrincipalDisabled, or a context or storage error.
func (s *Service) IssueToken(ctx context.Context, req TokenRequest) (Token, error) {
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
	rec, creds, err := s.loadClient(ctx, req.ClientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	}
	credID, err := s.checkSecret(ctx, req.ClientSecret, creds)
	if err == nil && rec != nil {
		g.outcome(credID != "")
	}
	switch {
	case err != nil:
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	case rec == nil:
		return Token{}, fmt.Errorf("authenticating client: %w", ErrUnknownClient)
	case credID == "":
		return Token{}, fmt.Errorf("authenticating client: %w", ErrInvalidClient)
	case rec.Disabled:
		return Token{}, fmt.Errorf("authenticating client: %w", ErrPrincipalDisabled)
	}
	tok, err := s.mint(rec, credID, aud)
	if err != nil {
		return Token{}, fmt.Errorf("minting token: %w", err)
	}
	return tok, nil
}

// signInGate is one sign-in's standing with the failure limits (lockout.go, familiar.go).
type signInGate struct {
	s                          *Service
	clientKey, sourceKey, pair string
	familiar                   bool
}

// gate checks the failure limits before anything is hashed: a familiar pair of client key and
// source is limited by its own failures only, any other request by those of the client key and
// of the caller's network. A locked-out request gets a *LockoutError.
func (s *Service) gate(clientKey, remoteIP string) (*signInGate, error) {
	now := s.now()
	g := &signInGate{s: s, clientKey: clientKey, sourceKey: sourceKey(remoteIP)}
	g.pair = pairKey(g.clientKey, g.sourceKey)
	g.familiar = g.clientKey != "" && g.sourceKey != "" && s.familiar.known(g.pair, now)
	if g.familiar {
		if d := s.pairFails.lockedFor(g.pair, now); d > 0 {
			return nil, &LockoutError{RetryAfter: d}
		}
		return g, nil
	}
	if d := s.sourceFails.lockedFor(g.sourceKey, now); g.sourceKey != "" && d > 0 {
		return nil, &LockoutError{RetryAfter: d, BySource: true}
	}
	if d := s.clientFails.lockedFor(g.clientKey, now); g.clientKey != "" && d > 0 {
		return nil, &LockoutError{RetryAfter: d}
	}
	return g, nil
}

// outcome records a checked credential: a failure counts against the pair (familiar) or both
// the client key and the source; a success makes the pair familiar.
func (g *signInGate) outcome(ok bool) {
	s, now := g.s, g.s.now()
	switch {
	case !ok && g.familiar:
		s.pairFails.fail(g.pair, now)
	case !ok:
		if g.clientKey != "" {
			s.clientFails.fail(g.clientKey, now)
		}
		if g.sourceKey != "" {
			s.sourceFails.fail(g.sourceKey, now)
		}
	case g.clientKey != "" && g.sourceKey != "":
		s.familiar.succeeded(g.pair, now)
	}
}

// AudienceFromScope returns the resource a client-credentials scope names; see
// ClientCredentials. Errors wrap ErrInvalidScope.
func AudienceFromScope(scope string) (string, error) {
	var aud string
	for _, sc := range strings.Fields(scope) {
		if oidcScopes[strings.ToLower(sc)] {
			continue
		}
		if aud != "" {
			return "", fmt.Errorf("parsing scope: more than one resource: %w", ErrInvalidScope)
		}
		if !strings.HasSuffix(sc, defaultScopeSuffix) {
			return "", fmt.Errorf("parsing scope: client credentials need a %q scope: %w", defaultScopeSuffix, ErrInvalidScope)
		}
		aud = strings.TrimSuffix(sc, defaultScopeSuffix)
		if aud == "" {
			return "", fmt.Errorf("parsing scope: no resource before %q: %w", defaultScopeSuffix, ErrInvalidScope)
		}
	}
	if aud == "" {
		return "", fmt.Errorf("parsing scope: no resource: %w", ErrInvalidScope)
	}
	if len(aud) > maxAudienceLen || strings.IndexFunc(aud, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("parsing scope: malformed resource: %w", ErrInvalidScope)
	}
	return aud, nil
}

// mint signs an access token for rec, minted with its credential credID, for aud.
func (s *Service) mint(rec *principalRecord, credID, aud string) (Token, error) {
	p := rec.principal()
	now := s.now()
	exp := now.Add(s.lifetime).Truncate(time.Second)
	uti := make([]byte, 16)
	if _, err := rand.Read(uti); err != nil {
		return Token{}, fmt.Errorf("generating token id: %w", err)
	}
	c := accessClaims{
		Aud:            aud,
		Iss:            s.Issuer(p.TenantID),
		Iat:            now.Unix(),
		Nbf:            now.Unix(),
		Exp:            exp.Unix(),
		AppDisplayName: p.DisplayName,
		AppID:          p.AppID,
		Azp:            p.AppID,
		Azpacr:         "1",
		Idtyp:          "app",
		Oid:            p.ObjectID,
		Sub:            p.ObjectID,
		Tid:            p.TenantID,
		Uti:            base64.RawURLEncoding.EncodeToString(uti),
		Ver:            "2.0",
		Cred:           credID,
		Gen:            rec.Generation,
	}
	raw, err := s.sign(c)
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: raw, ExpiresIn: int(exp.Sub(now) / time.Second), ExpiresOn: exp, Resource: aud, ObjectID: p.ObjectID}, nil
}

// sign serializes payload as a compact RS256 JWS with typ "JWT" and the active kid.
func (s *Service) sign(payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	active := s.keys.Load().active
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: active.priv, KeyID: active.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("creating signer: %w", err)
	}
	jws, err := signer.Sign(body)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return jws.CompactSerialize()
}
