package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// The authorization code grant with PKCE (RFC 7636, S256 only) for users, as Entra's
// /authorize serves it: the client must be a registered application, the redirect URI must
// exactly equal one registered on it (a mismatch is never redirected to), the user signs in
// with UPN and password (the password grant's checks and failure limits), and the code is
// good once, for ten minutes, for that client, redirect URI and code verifier.

const (
	prefixAuthCode  = "id/authcode/" // + hex SHA-256 of the code
	authCodeTTL     = 10 * time.Minute
	maxRedirectURIs = 32
)

// Authorization errors.
var (
	// ErrRedirectURIMismatch means the redirect URI is not one registered on the client (or
	// the client is unknown): the caller must show an error, never redirect.
	ErrRedirectURIMismatch = errors.New("redirect_uri does not match a registered one")
	// ErrInvalidAuthRequest means the request is malformed after its redirect URI checked out
	// (the caller redirects with error=invalid_request); the wrapping error says why.
	ErrInvalidAuthRequest = errors.New("invalid authorization request")
	// ErrInvalidCode means an authorization code is unknown, used, expired, or presented with
	// another client, redirect URI or code verifier (invalid_grant).
	ErrInvalidCode = errors.New("invalid authorization code")
)

// AuthorizeRequest is an /authorize request's parameters.
type AuthorizeRequest struct {
	Tenant, ClientID, RedirectURI, Scope string
	ResponseType                         string // must be "code"
	CodeChallenge, CodeChallengeMethod   string // S256 only
}

type authCodeRecord struct {
	V           int       `json:"v"`
	ClientID    string    `json:"clientId"`
	RedirectURI string    `json:"redirectUri"`
	Challenge   string    `json:"challenge"`
	Audience    string    `json:"aud"`
	Scp         string    `json:"scp"`
	UserID      string    `json:"userId"`
	ExpiresAt   time.Time `json:"expiresAt"`
	OIDC        string    `json:"oidc,omitempty"` // the OIDC scopes asked for (openid, offline_access)
}

func (r *authCodeRecord) version() int { return r.V }

// SetRedirectURIs replaces an application's registered redirect URIs (Graph's
// publicClient/web/spa redirectUris, kept as one list). Each is an https URL, or http on a
// loopback host (native apps), without a fragment.
func (s *Service) SetRedirectURIs(ctx context.Context, idOrAppID string, uris []string) error {
	if len(uris) > maxRedirectURIs {
		return badInput("An application may register at most %d redirect URIs.", maxRedirectURIs)
	}
	for _, u := range uris {
		if !validRedirectURI(u) {
			return badInput("Invalid value specified for property 'redirectUris' of resource 'Application': '%s'.", echoID(u))
		}
	}
	err := s.updateAppCreds(ctx, idOrAppID, func(rec *appCredsRecord) ([]string, error) {
		rec.RedirectURIs = slices.Compact(slices.Clone(uris))
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("setting redirect URIs: %w", err)
	}
	return nil
}

// RedirectURIs returns an application's registered redirect URIs.
func (s *Service) RedirectURIs(ctx context.Context, idOrAppID string) ([]string, error) {
	_, app, err := s.findApplication(ctx, idOrAppID)
	if err != nil {
		return nil, fmt.Errorf("reading redirect URIs: %w", err)
	}
	rec, _, err := s.loadAppCreds(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("reading redirect URIs: %w", err)
	}
	return slices.Clone(rec.RedirectURIs), nil
}

func validRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil || len(raw) > 512 {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// CheckAuthorizeRequest validates an /authorize request before the user signs in. First the
// client and redirect URI (ErrRedirectURIMismatch: do not redirect), then everything else
// (ErrInvalidAuthRequest, or ErrInvalidScope / ErrUnknownResource / ErrUnknownTenant: redirect
// with the error).
func (s *Service) CheckAuthorizeRequest(ctx context.Context, req AuthorizeRequest) error {
	if _, err := s.redirectFor(ctx, req.ClientID, req.RedirectURI); err != nil {
		return err
	}
	if _, err := s.ResolveTenant(req.Tenant); err != nil {
		return err
	}
	if req.ResponseType != "code" {
		return fmt.Errorf("%w: response_type must be 'code'", ErrInvalidAuthRequest)
	}
	if req.CodeChallengeMethod != "S256" {
		return fmt.Errorf("%w: code_challenge_method must be 'S256' (PKCE is required)", ErrInvalidAuthRequest)
	}
	if b, err := base64.RawURLEncoding.DecodeString(req.CodeChallenge); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%w: code_challenge must be the base64url SHA-256 of the code verifier", ErrInvalidAuthRequest)
	}
	_, _, err := s.servedUserAudience(req.Scope)
	return err
}

// redirectFor returns the normalized client id when redirectURI is registered on it.
func (s *Service) redirectFor(ctx context.Context, clientID, redirectURI string) (string, error) {
	cid, ok := normalizeID(clientID)
	if !ok || redirectURI == "" {
		return "", ErrRedirectURIMismatch
	}
	idx, err := s.appIndexOf(ctx, cid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && idx.ApplicationID == "") {
		return "", ErrRedirectURIMismatch
	}
	if err != nil {
		return "", err
	}
	rec, _, err := s.loadAppCreds(ctx, idx.ApplicationID)
	if err != nil {
		return "", err
	}
	if !slices.Contains(rec.RedirectURIs, redirectURI) {
		return "", ErrRedirectURIMismatch
	}
	return cid, nil
}

// IssueAuthCode signs the user in (the password grant's checks) for a request
// CheckAuthorizeRequest accepted, and returns a single-use authorization code.
func (s *Service) IssueAuthCode(ctx context.Context, req AuthorizeRequest, username, password, remoteIP string) (string, error) {
	if err := s.CheckAuthorizeRequest(ctx, req); err != nil {
		return "", err
	}
	cid, _ := normalizeID(req.ClientID)
	aud, scp, _ := userAudience(req.Scope)
	user, err := s.authenticateUser(ctx, username, password, remoteIP)
	if err != nil {
		return "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	code := base64.RawURLEncoding.EncodeToString(b)
	key := prefixAuthCode + deviceHash(code)
	put, err := s.putRecord(ctx, key, authCodeRecord{V: recordVersion, ClientID: cid, RedirectURI: req.RedirectURI,
		Challenge: req.CodeChallenge, Audience: aud, Scp: scp, UserID: user.ObjectID, ExpiresAt: s.now().Add(authCodeTTL).UTC(),
		OIDC: oidcOf(req.Scope).String()})
	if err != nil {
		return "", err
	}
	if err := s.st.Apply(ctx, []store.Op{store.RequireAbsent(key), put}); err != nil {
		return "", fmt.Errorf("issuing authorization code: %w", err)
	}
	return code, nil
}

// RedeemAuthCode exchanges an authorization code for a user token: once, before it expires,
// by the client it was issued to, with the same redirect URI and a code verifier whose S256
// is the challenge. The code is used up by any attempt that names it with the right client,
// successful or not (so a stolen code cannot be tried against many verifiers). Errors:
// ErrInvalidCode, ErrUnknownTenant, ErrUnknownUser, ErrUserDisabled, or a storage error.
func (s *Service) RedeemAuthCode(ctx context.Context, tenant, clientID, code, redirectURI, verifier string) (Token, error) {
	return s.RedeemAuthCodeConfidential(ctx, tenant, clientID, "", code, redirectURI, verifier, "")
}

// RedeemAuthCodeConfidential is RedeemAuthCode for a confidential client (a web app holding a
// client secret): with clientSecret set, the client must authenticate (IssueToken's failure
// limits and errors), and a refresh token it gets can be redeemed only with a client secret
// of the application too. remoteIP is for the failure limits.
func (s *Service) RedeemAuthCodeConfidential(ctx context.Context, tenant, clientID, clientSecret, code, redirectURI, verifier, remoteIP string) (Token, error) {
	if _, err := s.ResolveTenant(tenant); err != nil {
		return Token{}, err
	}
	if code == "" || len(code) > 128 {
		return Token{}, ErrInvalidCode
	}
	key := prefixAuthCode + deviceHash(code)
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, ErrInvalidCode
	}
	if err != nil {
		return Token{}, err
	}
	var rec authCodeRecord
	if err := s.openRecord(ctx, key, sealed, &rec); err != nil {
		return Token{}, err
	}
	if cid, _ := normalizeID(clientID); cid != rec.ClientID {
		return Token{}, ErrInvalidCode
	}
	if err := s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Token{}, ErrInvalidCode // redeemed concurrently
		}
		return Token{}, err
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case !s.now().Before(rec.ExpiresAt):
		return Token{}, fmt.Errorf("%w: expired", ErrInvalidCode)
	case redirectURI != rec.RedirectURI:
		return Token{}, fmt.Errorf("%w: redirect_uri differs from the authorization request's", ErrInvalidCode)
	case len(verifier) < 43 || len(verifier) > 128 || strings.Trim(verifier, pkceVerifierChars) != "":
		return Token{}, fmt.Errorf("%w: malformed code_verifier", ErrInvalidCode)
	case subtle.ConstantTimeCompare([]byte(want), []byte(rec.Challenge)) != 1:
		return Token{}, fmt.Errorf("%w: code_verifier does not match the code_challenge", ErrInvalidCode)
	}
	o := oidcOf(rec.OIDC)
	if clientSecret != "" {
		if err := s.authenticateClient(ctx, rec.ClientID, clientSecret, remoteIP); err != nil {
			return Token{}, err
		}
		o.Confidential = true
	}
	return s.mintFor(ctx, rec.UserID, rec.ClientID, rec.Audience, rec.Scp, o)
}

// pkceVerifierChars are RFC 7636's unreserved characters.
const pkceVerifierChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
