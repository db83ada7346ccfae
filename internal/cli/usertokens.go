package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A user's login without azidentity, which keeps refresh tokens to itself: the CLI talks to the
// token endpoint as MSAL does, signs in once (password grant, or the device flow) for ARM with
// offline_access, redeems the refresh token for the other planes, and keeps the access tokens
// and the newest refresh token in the profile (never the password). When a cached access token
// has expired, the refresh token gets a new one; the server rotates it on every use, so
// refreshes take a lock on the profile and re-read it first (two commands racing with one
// refresh token would otherwise look like a stolen token and end the login).

// userScopeSuffix is what MSAL adds to every user request.
const userScopeSuffix = " openid profile offline_access"

// oauthResponse is the token and device-code endpoints' answer, success or error.
type oauthResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`

	DeviceCode string `json:"device_code"`
	Interval   int    `json:"interval"`
	Message    string `json:"message"`

	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// oauthError is an error answer of the token endpoint; its text is Entra's description
// (AADSTS code and message), which names no secret.
type oauthError struct{ code, description string }

func (e *oauthError) Error() string {
	d := e.description
	if i := strings.Index(d, " Trace ID:"); i > 0 {
		d = d[:i]
	}
	return d
}

// postOAuth posts form to an endpoint of the authority and decodes the answer.
func postOAuth(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (oauthResponse, error) {
	var out oauthResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("the token endpoint answered %s", resp.Status)
	}
	if out.Error != "" {
		return out, &oauthError{code: out.Error, description: out.Description}
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" && out.DeviceCode == "" {
		return out, fmt.Errorf("the token endpoint answered %s", resp.Status)
	}
	return out, nil
}

// oauthURL is an OAuth endpoint of the profile's authority and tenant ("token", "devicecode").
func oauthURL(p *Profile, endpoint string) string {
	return strings.TrimSuffix(p.Authority, "/") + "/" + url.PathEscape(p.TenantID) + "/oauth2/v2.0/" + endpoint
}

// userScopes are the scopes a user's login keeps tokens for: ARM, Graph (the server's origin)
// and the data plane.
func userScopes(p *Profile) []string {
	return []string{p.ARMAudience + "/.default", p.Server + "/.default", "https://" + p.KeyVaultDNS + "/.default"}
}

// completeUserLogin keeps first (ARM's token) and redeems its refresh token for the other
// planes, filling p.Tokens and p.RefreshToken.
func completeUserLogin(ctx context.Context, p *Profile, hc *http.Client, first oauthResponse) error {
	if first.RefreshToken == "" {
		return errors.New("logging in: the server issued no refresh token")
	}
	scopes := userScopes(p)
	now := time.Now()
	p.Tokens = []CachedToken{{Scope: scopes[0], Token: first.AccessToken, ExpiresOn: now.Add(time.Duration(first.ExpiresIn) * time.Second)}}
	p.RefreshToken = first.RefreshToken
	for _, scope := range scopes[1:] {
		if _, err := redeemInto(ctx, p, hc, scope); err != nil {
			return fmt.Errorf("logging in: %w", err)
		}
	}
	return nil
}

// redeemInto redeems p's refresh token for scope and records the new access token and the
// rotated refresh token in p (not on disk).
func redeemInto(ctx context.Context, p *Profile, hc *http.Client, scope string) (CachedToken, error) {
	resp, err := postOAuth(ctx, hc, oauthURL(p, "token"), url.Values{"grant_type": {"refresh_token"}, "client_id": {p.ClientID},
		"refresh_token": {p.RefreshToken}, "scope": {scope + userScopeSuffix}})
	if err != nil {
		return CachedToken{}, err
	}
	tok := CachedToken{Scope: scope, Token: resp.AccessToken, ExpiresOn: time.Now().Add(time.Duration(resp.ExpiresIn) * time.Second)}
	if resp.RefreshToken != "" {
		p.RefreshToken = resp.RefreshToken
	}
	kept := p.Tokens[:0]
	for _, t := range p.Tokens {
		if !sameScope(t.Scope, scope) {
			kept = append(kept, t)
		}
	}
	p.Tokens = append(kept, tok)
	return tok, nil
}

// passwordLogin signs the user in by password (what az login -u -p sends).
func passwordLogin(ctx context.Context, p *Profile, hc *http.Client, password string) error {
	resp, err := postOAuth(ctx, hc, oauthURL(p, "token"), url.Values{"grant_type": {"password"}, "client_id": {p.ClientID},
		"username": {p.UserName}, "password": {password}, "scope": {userScopes(p)[0] + userScopeSuffix}})
	if err != nil {
		return fmt.Errorf("logging in: %w", err)
	}
	return completeUserLogin(ctx, p, hc, resp)
}

// deviceLogin runs the device flow (az login --use-device-code): it prints the server's
// instructions to w and polls until the user has signed in at the verification page.
func deviceLogin(ctx context.Context, p *Profile, hc *http.Client, w io.Writer) error {
	dc, err := postOAuth(ctx, hc, oauthURL(p, "devicecode"), url.Values{"client_id": {p.ClientID},
		"scope": {userScopes(p)[0] + userScopeSuffix}})
	if err != nil {
		return fmt.Errorf("starting device code login: %w", err)
	}
	fmt.Fprintln(w, dc.Message)
	interval := time.Duration(max(dc.Interval, 1)) * time.Second
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		resp, err := postOAuth(ctx, hc, oauthURL(p, "token"), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {p.ClientID}, "device_code": {dc.DeviceCode}})
		var oe *oauthError
		switch {
		case err == nil:
			if p.UserName, err = tokenClaim(resp.AccessToken, "upn"); err != nil {
				return fmt.Errorf("logging in: %w", err)
			}
			return completeUserLogin(ctx, p, hc, resp)
		case errors.As(err, &oe) && oe.code == "authorization_pending":
		case errors.As(err, &oe) && oe.code == "slow_down":
			interval += 5 * time.Second
		default:
			return fmt.Errorf("logging in: %w", err)
		}
	}
}

// refreshToken gets a new access token for scope with the profile's refresh token, under the
// profile lock, and saves the rotated refresh token. Another command may have refreshed first:
// the profile is re-read under the lock and its tokens used when they still serve.
func (c cachedCredential) refreshToken(ctx context.Context, scope string) (CachedToken, error) {
	unlock, err := lockProfile()
	if err != nil {
		return CachedToken{}, err
	}
	defer unlock()
	if cur, err := loadProfile(); err == nil && cur.UserName == c.p.UserName && cur.Server == c.p.Server {
		c.p.Tokens, c.p.RefreshToken = cur.Tokens, cur.RefreshToken
	}
	if t, ok := c.cached(scope); ok {
		return t, nil
	}
	if c.p.RefreshToken == "" {
		return CachedToken{}, errors.New("no refresh token")
	}
	tok, err := redeemInto(ctx, c.p, c.hc, scope)
	if err != nil {
		return CachedToken{}, err
	}
	if err := saveProfile(c.p); err != nil {
		return CachedToken{}, err
	}
	return tok, nil
}

// cached returns an unexpired cached token for scope.
func (c cachedCredential) cached(scope string) (CachedToken, bool) {
	for _, t := range c.p.Tokens {
		if sameScope(t.Scope, scope) && time.Until(t.ExpiresOn) > time.Minute {
			return t, true
		}
	}
	return CachedToken{}, false
}

// lockProfile takes an exclusive lock on the profile directory's lock file.
func lockProfile() (func(), error) {
	dir, err := configDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("locking profile: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".profile.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking profile: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking profile: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
