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
}

// accessClaims is the JWT payload, shaped like an Entra ID v2 app-only access token.
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
	Ver            string `json:"ver"` // "2.0"
}

// ClientCredentials authenticates a client by id and secret and mints an access token for the
// resource scope names. tenant may be "" (ADFS endpoints: the default tenant), the tenant id,
// "organizations" or "common". scope must name exactly one resource with the "/.default"
// suffix (MSAL's OIDC scopes "openid profile offline_access email" are ignored); the audience
// is the scope minus that suffix, otherwise verbatim, so
// "https://management.core.windows.net//.default" gives "https://management.core.windows.net/".
//
// The request's shape (tenant, scope) is checked first; then the secret is hashed, for unknown
// clients too. Errors: ErrUnknownTenant, ErrInvalidScope, ErrUnknownClient (which is also
// ErrInvalidClient), ErrInvalidClient, or a context or storage error.
func (s *Service) ClientCredentials(ctx context.Context, tenant, clientID, clientSecret, scope string) (Token, error) {
	if _, err := s.ResolveTenant(tenant); err != nil {
		return Token{}, err
	}
	aud, err := AudienceFromScope(scope)
	if err != nil {
		return Token{}, err
	}
	rec, err := s.loadByAppID(ctx, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	}
	var creds []secretRecord
	if rec != nil {
		creds = rec.Secrets
	}
	ok, err := s.checkSecret(ctx, clientSecret, creds)
	switch {
	case err != nil:
		return Token{}, fmt.Errorf("authenticating client: %w", err)
	case rec == nil:
		return Token{}, fmt.Errorf("authenticating client: %w", ErrUnknownClient)
	case !ok:
		return Token{}, fmt.Errorf("authenticating client: %w", ErrInvalidClient)
	}
	tok, err := s.mint(rec.principal(), aud)
	if err != nil {
		return Token{}, fmt.Errorf("minting token: %w", err)
	}
	return tok, nil
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

// mint signs an access token for p and aud with the active key.
func (s *Service) mint(p Principal, aud string) (Token, error) {
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
	}
	raw, err := s.sign(c)
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: raw, ExpiresIn: int(exp.Sub(now) / time.Second), ExpiresOn: exp, Resource: aud}, nil
}

// sign serializes payload as a compact RS256 JWS with typ "JWT" and the active kid.
func (s *Service) sign(payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.active.priv, KeyID: s.active.kid}},
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
