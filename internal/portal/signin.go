package portal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Sign-in: the authorization code grant with PKCE (S256) at the built-in issuer, for the
// portal's own application registration. GET /portal/login makes a state, a code verifier and
// the page to return to, seals them into a short-lived HttpOnly cookie bound to this browser
// (LoginCookie), and redirects to /authorize; the issuer signs the person in and redirects to
// /portal/callback with the code and the state. The callback refuses a state that is not the
// cookie's, a missing or expired cookie (no verifier), and any code the issuer refuses (used,
// expired, another verifier); it redeems the code in-process through the token endpoint
// (audited like any token request), starts a new session and drops the login cookie.

// LoginCookie carries a pending sign-in's state and code verifier, sealed.
const LoginCookie = "__Host-sr_login"

const (
	loginTTL       = 10 * time.Minute
	loginStorage   = "id/portal/login" // associated data of the sealed login cookie
	keyPortalApp   = "id/portal/app"   // the portal's application registration
	portalAppName  = "Strongroom portal"
	callbackPath   = "/portal/callback"
	armResource    = "https://management.core.windows.net/"
	dataResource   = "https://vault.azure.net"
	graphResource  = "https://graph.microsoft.com"
	signInScope    = armResource + "/.default openid offline_access"
	defaultLanding = "/portal/vaults"
)

type pendingLogin struct {
	State    string    `json:"state"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next"`
	Expires  time.Time `json:"exp"`
}

func (p *Portal) redirectURI() string { return p.opts.PublicURL + callbackPath }

// safeNext keeps only a path inside the portal: an open redirect would hand the sign-in to
// any site. Dot segments are resolved first, as the browser would resolve them, so
// /portal/../sys/seal-status is not inside; an encoded one (%2e%2e, which browsers resolve
// too) is refused outright.
func safeNext(next string) string {
	if strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return defaultLanding
	}
	p, query, hasQuery := strings.Cut(next, "?")
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	decoded, err := url.PathUnescape(clean)
	if err != nil || strings.TrimSuffix(path.Clean(decoded), "/") != strings.TrimSuffix(decoded, "/") ||
		!strings.HasPrefix(clean, "/portal/") || strings.HasPrefix(clean, "/portal/login") || strings.HasPrefix(clean, "/portal/callback") {
		return defaultLanding
	}
	if hasQuery {
		clean += "?" + query
	}
	return clean
}

// serveSignIn is the sign-in landing page: one button, so that a person knows where they are
// before the issuer's form.
func (p *Portal) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if s, _ := p.loadSession(r.Context(), r); s != nil && r.URL.Query().Get("again") == "" {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusFound)
		return
	}
	p.render(w, r, http.StatusOK, "signin", pageData{Title: "Sign in", Data: map[string]any{
		"Next": safeNext(r.URL.Query().Get("next")), "Again": r.URL.Query().Get("again") != ""}})
}

// serveLogin starts a sign-in.
func (p *Portal) serveLogin(w http.ResponseWriter, r *http.Request) {
	clientID, err := p.ensureClient(r.Context())
	if err != nil {
		p.opts.Log.Error("portal application registration", "err", err)
		p.renderError(w, r, http.StatusInternalServerError, "The portal could not prepare the sign-in. The server log says why.")
		return
	}
	pl := pendingLogin{State: randomToken(24), Verifier: randomToken(48), Next: safeNext(r.URL.Query().Get("next")),
		Expires: p.opts.Now().Add(loginTTL).UTC()}
	raw, _ := json.Marshal(pl)
	sealed, err := p.opts.Keyring.Seal(r.Context(), keyring.SystemKeyID, loginStorage, raw)
	clear(raw)
	if err != nil {
		p.renderError(w, r, http.StatusInternalServerError, "The portal could not prepare the sign-in.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: LoginCookie, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: "/",
		MaxAge: int(loginTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	sum := sha256.Sum256([]byte(pl.Verifier))
	q := url.Values{
		"client_id":             {clientID},
		"response_type":         {"code"},
		"redirect_uri":          {p.redirectURI()},
		"scope":                 {signInScope},
		"state":                 {pl.State},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"response_mode":         {"query"},
	}
	if hint := r.URL.Query().Get("login_hint"); hint != "" && len(hint) < 256 {
		q.Set("login_hint", hint)
	}
	http.Redirect(w, r, "/"+url.PathEscape(p.opts.TenantID)+"/oauth2/v2.0/authorize?"+q.Encode(), http.StatusFound)
}

// callbackErrors are the words shown for the OAuth error codes an authorization answer may
// carry (RFC 6749 4.1.2.1, OpenID Connect 3.1.2.6).
var callbackErrors = map[string]string{
	"access_denied":             "the sign-in was refused or cancelled.",
	"invalid_request":           "the issuer could not read the sign-in request.",
	"invalid_scope":             "the issuer does not know the access the portal asked for.",
	"unauthorized_client":       "the portal's application may not sign people in this way.",
	"unsupported_response_type": "the issuer does not support the portal's kind of sign-in.",
	"server_error":              "the issuer failed.",
	"temporarily_unavailable":   "the issuer is busy.",
	"interaction_required":      "the issuer needs you to sign in again.",
	"login_required":            "the issuer needs you to sign in again.",
	"consent_required":          "the portal's access has not been consented to.",
}

// oauthCodeRE is what an OAuth error code looks like; anything else is not shown.
var oauthCodeRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// callbackErrorText says why a sign-in failed in the portal's own words. The answer's
// error_description is not shown: anyone can send a person a callback link whose description
// says whatever they like ("call this number"), on the portal's own origin.
func callbackErrorText(code string) string {
	why, ok := callbackErrors[code]
	if !ok {
		why = "the issuer refused it."
	}
	msg := "The sign-in did not complete: " + why + " Sign in again."
	if oauthCodeRE.MatchString(code) {
		msg += " (OAuth error " + code + ")"
	}
	return msg
}

// readLogin opens the login cookie; nil when it is missing, altered or expired.
func (p *Portal) readLogin(r *http.Request) *pendingLogin {
	c, err := r.Cookie(LoginCookie)
	if err != nil {
		return nil
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	raw, err := p.opts.Keyring.Open(r.Context(), keyring.SystemKeyID, loginStorage, sealed)
	if err != nil {
		return nil
	}
	var pl pendingLogin
	err = json.Unmarshal(raw, &pl)
	clear(raw)
	if err != nil || !p.opts.Now().Before(pl.Expires) || pl.Verifier == "" {
		return nil
	}
	return &pl
}

// serveCallback finishes a sign-in.
func (p *Portal) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clearCookie(w, LoginCookie) // one attempt per login cookie, whatever the outcome
	if e := q.Get("error"); e != "" {
		p.renderError(w, r, http.StatusBadRequest, callbackErrorText(e))
		return
	}
	pl := p.readLogin(r)
	switch {
	case pl == nil:
		p.renderError(w, r, http.StatusBadRequest, "This sign-in was not started in this browser, or it took longer than 10 minutes. Sign in again.")
		return
	case q.Get("code") == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pl.State)) != 1:
		p.renderError(w, r, http.StatusBadRequest, "The sign-in answer does not belong to the sign-in this browser started. Sign in again.")
		return
	}
	clientID, err := p.ensureClient(r.Context())
	if err != nil {
		p.renderError(w, r, http.StatusInternalServerError, "The portal could not finish the sign-in.")
		return
	}
	tok, status, err := p.tokenRequest(r, url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {q.Get("code")}, "redirect_uri": {p.redirectURI()}, "code_verifier": {pl.Verifier}, "scope": {signInScope}})
	if err != nil {
		p.opts.Log.Info("portal sign-in refused by the issuer", "status", status)
		p.renderError(w, r, http.StatusBadRequest, "The sign-in could not be completed: "+err.Error()+" Sign in again.")
		return
	}
	claims := jwtClaims(tok.AccessToken)
	s := &session{UserID: claims["oid"], UPN: claims["upn"], Name: claims["name"], Refresh: tok.RefreshToken,
		Tokens: map[string]accessToken{"arm": {Token: tok.AccessToken, Expires: p.opts.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}}}
	if s.UserID == "" || claims["idtyp"] != "user" {
		p.renderError(w, r, http.StatusBadRequest, "The portal is for people: sign in with a user of the directory.")
		return
	}
	id, err := p.newSession(r.Context(), s)
	if err != nil {
		p.opts.Log.Error("portal session", "err", err)
		p.renderError(w, r, http.StatusInternalServerError, "The portal could not start your session.")
		return
	}
	// An older session of this browser ends here, so a cookie from before sign-in is useless.
	if old, _ := p.loadSession(r.Context(), r); old != nil {
		_ = p.endSession(r.Context(), old)
	}
	setSessionCookie(w, id)
	http.Redirect(w, r, safeNext(pl.Next), http.StatusSeeOther)
}

// serveLogout ends the session server-side and drops the cookie.
func (p *Portal) serveLogout(w http.ResponseWriter, r *http.Request) {
	if s, _ := p.loadSession(r.Context(), r); s != nil {
		if err := p.endSession(r.Context(), s); err != nil {
			p.opts.Log.Error("portal sign-out", "err", err)
			p.renderError(w, r, http.StatusInternalServerError, "Sign-out failed; close the browser to be sure.")
			return
		}
	}
	clearCookie(w, SessionCookie)
	http.Redirect(w, r, "/portal/signed-out", http.StatusSeeOther)
}

func (p *Portal) serveSignedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "signedout", pageData{Title: "Signed out"})
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// tokenRequest posts form to the issuer's token endpoint in-process (audited as a token
// request of the portal's client). The error is fit to show a person: never a token.
func (p *Portal) tokenRequest(r *http.Request, form url.Values) (tokenResponse, int, error) {
	res := p.do(r, "", http.MethodPost, p.host(), "/"+url.PathEscape(p.opts.TenantID)+"/oauth2/v2.0/token",
		"application/x-www-form-urlencoded", []byte(form.Encode()), ClientInfo)
	var tok tokenResponse
	_ = json.Unmarshal(res.body, &tok)
	if res.status != http.StatusOK || tok.AccessToken == "" {
		why := "the issuer refused it."
		if strings.Contains(tok.Description, "AADSTS70008") || strings.Contains(tok.Description, "AADSTS501481") {
			why = "the sign-in code was already used, has expired, or does not match this browser's sign-in."
		}
		return tokenResponse{}, res.status, errors.New("the token request failed: " + why)
	}
	return tok, res.status, nil
}

// jwtClaims reads a token's string claims without verifying it: the portal got it from the
// issuer in-process, and every API call verifies it.
func jwtClaims(tok string) map[string]string {
	out := map[string]string{}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return out
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return out
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return out
	}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

type portalAppRecord struct {
	V     int    `json:"v"`
	AppID string `json:"appId"`
}

// ensureClient returns the portal's client id, registering the application and its redirect
// URI (the public URL's /portal/callback) the first time, or again when an administrator
// deleted it or the public URL changed.
func (p *Portal) ensureClient(ctx context.Context) (string, error) {
	p.clientMu.Lock()
	defer p.clientMu.Unlock()
	if p.clientID != "" {
		if uris, err := p.opts.Apps.RedirectURIs(ctx, p.clientID); err == nil && slices.Contains(uris, p.redirectURI()) {
			return p.clientID, nil
		}
		p.clientID = ""
	}
	var rec portalAppRecord
	sealed, err := p.opts.Store.Get(ctx, keyPortalApp)
	switch {
	case err == nil:
		raw, err := p.opts.Keyring.Open(ctx, keyring.SystemKeyID, keyPortalApp, sealed)
		if err != nil {
			return "", fmt.Errorf("opening the portal's registration: %w", err)
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return "", fmt.Errorf("decoding the portal's registration: %w", err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("reading the portal's registration: %w", err)
	}
	if rec.AppID != "" {
		if _, err := p.opts.Apps.GetApplication(ctx, rec.AppID); err != nil {
			if !errors.Is(err, identity.ErrObjectNotFound) {
				return "", fmt.Errorf("reading the portal's application: %w", err)
			}
			rec.AppID = "" // deleted: register again
		}
	}
	if rec.AppID == "" {
		app, err := p.opts.Apps.CreateApplication(ctx, portalAppName)
		if err != nil {
			return "", fmt.Errorf("registering the portal's application: %w", err)
		}
		rec = portalAppRecord{V: 1, AppID: app.AppID}
		raw, _ := json.Marshal(rec)
		sealed, err := p.opts.Keyring.Seal(ctx, keyring.SystemKeyID, keyPortalApp, raw)
		if err != nil {
			return "", fmt.Errorf("sealing the portal's registration: %w", err)
		}
		if err := p.opts.Store.Apply(ctx, []store.Op{store.Put(keyPortalApp, sealed)}); err != nil {
			return "", fmt.Errorf("recording the portal's registration: %w", err)
		}
		p.opts.Log.Info("registered the portal's application", "appId", rec.AppID)
	}
	uris, err := p.opts.Apps.RedirectURIs(ctx, rec.AppID)
	if err != nil {
		return "", fmt.Errorf("reading the portal's redirect URIs: %w", err)
	}
	if !slices.Contains(uris, p.redirectURI()) {
		if err := p.opts.Apps.SetRedirectURIs(ctx, rec.AppID, append(uris, p.redirectURI())); err != nil {
			return "", fmt.Errorf("registering the portal's redirect URI: %w", err)
		}
	}
	p.clientID = rec.AppID
	return rec.AppID, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
