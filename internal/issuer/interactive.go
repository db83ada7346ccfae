package issuer

import (
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
)

// The interactive user flows: the device authorization grant (POST .../devicecode, the sign-in
// page at /devicelogin, and polling with grant_type device_code) and the authorization code
// grant with PKCE (GET/POST .../authorize, then grant_type authorization_code). The sign-in
// pages are minimal HTML forms at our origin (UPN and password); they are never framed, never
// cached, and run no script.

// DeviceCodeGrant is the device flow's grant_type.
const DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// registerInteractive adds the interactive flows' routes (called by Register).
func (i *Issuer) registerInteractive(mux *http.ServeMux) {
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", func(w http.ResponseWriter, r *http.Request) {
		i.serveDeviceCode(w, r, r.PathValue("tenant"))
	})
	mux.HandleFunc("POST /adfs/oauth2/devicecode", func(w http.ResponseWriter, r *http.Request) { i.serveDeviceCode(w, r, "") })
	mux.HandleFunc("POST /adfs/oauth2/v2.0/devicecode", func(w http.ResponseWriter, r *http.Request) { i.serveDeviceCode(w, r, "") })
	mux.HandleFunc("GET /devicelogin", i.serveDeviceLogin)
	mux.HandleFunc("POST /devicelogin", i.serveDeviceLogin)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", i.serveAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", i.serveAuthorize)
}

// deviceCodeResponse is Entra's v2 device authorization response.
type deviceCodeResponse struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

func (i *Issuer) serveDeviceCode(w http.ResponseWriter, r *http.Request, tenant string) {
	if !i.parseForm(w, r) {
		return
	}
	clientID, scope := r.PostForm.Get("client_id"), r.PostForm.Get("scope")
	if clientID == "" {
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam("client_id"))
		return
	}
	if scope == "" && r.PostForm.Get("resource") != "" {
		scope = r.PostForm.Get("resource") + "/.default"
	}
	dc, err := i.id.StartDeviceCode(r.Context(), tenant, clientID, scope, remoteIP(r))
	if err != nil {
		i.note(r, clientID, "", failureReason(err))
		if errors.Is(err, identity.ErrTooManyPending) {
			retryAfter(w, identity.DevicePollInterval)
			i.writeError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", 90033, "Too many device code sign-ins are pending. Retry later.")
			return
		}
		i.writePasswordError(w, r, err, tenant, clientID, scope)
		return
	}
	uri := i.publicURL + "/devicelogin"
	writeJSON(w, http.StatusOK, "no-store", deviceCodeResponse{DeviceCode: dc.DeviceCode, UserCode: dc.UserCode, VerificationURI: uri,
		ExpiresIn: dc.ExpiresIn, Interval: dc.Interval,
		Message: fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", uri, dc.UserCode)})
}

// parseForm reads a form body (64 KiB at most); false once an error was answered.
func (i *Issuer) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 90014, "The request body is not a valid form.")
		return false
	}
	return true
}

// serveDeviceCodeGrant answers polls (grant_type device_code) with Entra's errors.
func (i *Issuer) serveDeviceCodeGrant(w http.ResponseWriter, r *http.Request, tenant string) {
	form := r.PostForm
	clientID, code := form.Get("client_id"), form.Get("device_code")
	if code == "" {
		code = form.Get("code") // older MSAL versions
	}
	if clientID == "" || code == "" {
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam(map[bool]string{true: "client_id", false: "device_code"}[clientID == ""]))
		return
	}
	tok, err := i.id.PollDeviceCode(r.Context(), tenant, clientID, code)
	switch {
	case err == nil:
		i.note(r, clientID, tok.ObjectID, "")
		writeJSON(w, http.StatusOK, "no-store", i.userResponse(r, tok))
		return
	case errors.Is(err, identity.ErrAuthorizationPending):
		i.writeError(w, r, http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		return // polling is not a failure worth a reason
	case errors.Is(err, identity.ErrSlowDown):
		i.writeError(w, r, http.StatusBadRequest, "slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast: slow down.")
		return
	}
	i.note(r, clientID, "", deviceFailure(err))
	switch {
	case errors.Is(err, identity.ErrExpiredToken):
		i.writeError(w, r, http.StatusBadRequest, "expired_token", 70019, "Verification code expired.")
	case errors.Is(err, identity.ErrAccessDenied):
		i.writeError(w, r, http.StatusBadRequest, "access_denied", 70000, "The user declined the sign-in request.")
	case errors.Is(err, identity.ErrBadVerificationCode):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 70018, "Invalid verification code.")
	default:
		i.writePasswordError(w, r, err, tenant, clientID, "")
	}
}

// serveAuthCodeGrant redeems an authorization code (grant_type authorization_code; a
// confidential client adds its client_secret, and its refresh tokens then need it too).
func (i *Issuer) serveAuthCodeGrant(w http.ResponseWriter, r *http.Request, tenant string) {
	form := r.PostForm
	clientID := form.Get("client_id")
	for _, p := range []string{"client_id", "code", "redirect_uri", "code_verifier"} {
		if form.Get(p) == "" {
			i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam(p))
			return
		}
	}
	tok, err := i.id.RedeemAuthCodeConfidential(r.Context(), tenant, clientID, form.Get("client_secret"), form.Get("code"),
		form.Get("redirect_uri"), form.Get("code_verifier"), remoteIP(r))
	if err != nil {
		i.note(r, clientID, "", deviceFailure(err))
		switch {
		case errors.Is(err, identity.ErrInvalidCode) && strings.Contains(err.Error(), "code_verifier does not match"):
			i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		case errors.Is(err, identity.ErrInvalidCode):
			i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code is invalid, already used or expired.")
		default:
			i.writePasswordError(w, r, err, tenant, clientID, "")
		}
		return
	}
	i.note(r, clientID, tok.ObjectID, "")
	writeJSON(w, http.StatusOK, "no-store", i.userResponse(r, tok))
}

func deviceFailure(err error) string {
	switch {
	case errors.Is(err, identity.ErrExpiredToken):
		return "token refused: device code expired"
	case errors.Is(err, identity.ErrAccessDenied):
		return "token refused: user declined"
	case errors.Is(err, identity.ErrBadVerificationCode):
		return "token refused: invalid device code"
	case errors.Is(err, identity.ErrInvalidCode):
		return "token refused: invalid authorization code"
	}
	return failureReason(err)
}

// pageHeaders keep the sign-in pages out of frames, caches and referrers, with no script.
// formTo is an extra origin the form may lead to (the redirect URI's: browsers apply
// form-action to the redirect that answers the post).
func pageHeaders(w http.ResponseWriter, formTo string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"+formTo+"; frame-ancestors 'none'; base-uri 'none'")
}

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Strongroom sign-in</title>
<style>body{font-family:sans-serif;max-width:28em;margin:4em auto}label,input,button{display:block;margin:.5em 0}input{width:100%}.err{color:#a00}</style></head><body>{{end}}
{{define "device"}}{{template "head"}}<h1>Sign in to a device</h1>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}{{if .Done}}<p>{{.Done}}</p>{{else}}
<form method="post" action="/devicelogin">
<label>Code <input name="user_code" value="{{.UserCode}}" autocomplete="off" required></label>
<label>User name <input name="username" type="email" value="{{.Username}}" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button name="decision" value="approve">Sign in</button><button name="decision" value="deny">Decline</button>
</form>{{end}}</body></html>{{end}}
{{define "authorize"}}{{template "head"}}<h1>Sign in</h1>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label>User name <input name="username" type="email" value="{{.Username}}" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button>Sign in</button>
</form></body></html>{{end}}
{{define "error"}}{{template "head"}}<h1>Sign-in failed</h1><p class="err">{{.Error}}</p></body></html>{{end}}
`))

type pageData struct {
	Error, Done, UserCode, Username, Action string
	Hidden                                  map[string]string
	formTo                                  string // see pageHeaders
}

func renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	pageHeaders(w, d.formTo)
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, d)
}

// signInMessage is what a sign-in page says about a failed sign-in: never which of the user
// name and the password was wrong.
func signInMessage(err error) string {
	var le *identity.LockoutError
	switch {
	case errors.As(err, &le):
		return fmt.Sprintf("Too many failed sign-ins. Try again in %d seconds.", max(int(le.RetryAfter.Seconds()), 1))
	case errors.Is(err, identity.ErrBusy):
		return "The server is busy. Try again in a moment."
	case errors.Is(err, identity.ErrUnknownUser), errors.Is(err, identity.ErrInvalidGrant), errors.Is(err, identity.ErrUserDisabled):
		return "Your account or password is incorrect."
	case errors.Is(err, identity.ErrBadVerificationCode):
		return "That code is not valid. Check it and try again."
	case errors.Is(err, identity.ErrExpiredToken):
		return "That code has expired. Start the sign-in on your device again."
	}
	return "The sign-in could not be completed."
}

func remoteIP(r *http.Request) string {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	return ip
}

// serveDeviceLogin is the device flow's sign-in page.
func (i *Issuer) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, "device", pageData{UserCode: r.URL.Query().Get("otc")})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "device", pageData{Error: "The form could not be read."})
		return
	}
	f := r.PostForm
	in := identity.DeviceSignIn{UserCode: f.Get("user_code"), Username: f.Get("username"), Password: f.Get("password"),
		Approve: f.Get("decision") != "deny", RemoteIP: remoteIP(r)}
	if err := i.id.CompleteDeviceCode(r.Context(), in); err != nil {
		i.note(r, in.Username, "", "device sign-in refused: "+strings.TrimPrefix(failureReason(err), "token refused: "))
		renderPage(w, http.StatusOK, "device", pageData{Error: signInMessage(err), UserCode: in.UserCode, Username: in.Username})
		return
	}
	i.note(r, in.Username, "", "")
	done := "You have signed in. You may close this window and return to your device."
	if !in.Approve {
		done = "You declined the sign-in. You may close this window."
	}
	renderPage(w, http.StatusOK, "device", pageData{Done: done})
}

// authorizeParams are the /authorize parameters carried through the sign-in form.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state",
	"code_challenge", "code_challenge_method", "nonce", "prompt", "login_hint"}

// serveAuthorize is /authorize: GET shows the sign-in form, POST signs in and redirects with
// the code. A client or redirect URI that does not check out gets an error page, never a
// redirect.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	var p url.Values
	if r.Method == http.MethodGet {
		p = r.URL.Query()
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			renderPage(w, http.StatusBadRequest, "error", pageData{Error: "The form could not be read."})
			return
		}
		p = r.PostForm
	}
	req := identity.AuthorizeRequest{Tenant: tenant, ClientID: p.Get("client_id"), RedirectURI: p.Get("redirect_uri"),
		Scope: p.Get("scope"), ResponseType: p.Get("response_type"), CodeChallenge: p.Get("code_challenge"),
		CodeChallengeMethod: p.Get("code_challenge_method")}
	mode := p.Get("response_mode")
	err := i.id.CheckAuthorizeRequest(r.Context(), req)
	if errors.Is(err, identity.ErrRedirectURIMismatch) {
		renderPage(w, http.StatusBadRequest, "error", pageData{Error: "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application '" + echo(req.ClientID) + "'."})
		return
	}
	if err == nil && mode != "" && mode != "query" && mode != "fragment" {
		err = fmt.Errorf("%w: response_mode must be query or fragment", identity.ErrInvalidAuthRequest)
	}
	if err != nil {
		i.redirect(w, r, req.RedirectURI, mode, url.Values{"error": {authorizeErrorCode(err)}, "error_description": {authorizeErrorText(err)}, "state": {p.Get("state")}})
		return
	}
	hidden := map[string]string{}
	for _, k := range authorizeParams {
		if v := p.Get(k); v != "" {
			hidden[k] = v
		}
	}
	form := pageData{Action: "/" + url.PathEscape(tenant) + "/oauth2/v2.0/authorize", Hidden: hidden, Username: p.Get("login_hint")}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		form.formTo = " " + u.Scheme + "://" + u.Host
	}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, "authorize", form)
		return
	}
	form.Username = p.Get("username")
	code, err := i.id.IssueAuthCode(r.Context(), req, p.Get("username"), p.Get("password"), remoteIP(r))
	if err != nil {
		i.note(r, p.Get("username"), "", "authorize refused: "+strings.TrimPrefix(failureReason(err), "token refused: "))
		form.Error = signInMessage(err)
		renderPage(w, http.StatusOK, "authorize", form)
		return
	}
	i.note(r, p.Get("username"), "", "")
	i.redirect(w, r, req.RedirectURI, mode, url.Values{"code": {code}, "state": {p.Get("state")}})
}

// redirect sends the browser to a registered redirect URI with params in its query (or
// fragment), dropping an empty state.
func (i *Issuer) redirect(w http.ResponseWriter, r *http.Request, to, mode string, params url.Values) {
	if params.Get("state") == "" {
		params.Del("state")
	}
	u, err := url.Parse(to)
	if err != nil {
		renderPage(w, http.StatusBadRequest, "error", pageData{Error: "The redirect URI is malformed."})
		return
	}
	if mode == "fragment" {
		u.Fragment = params.Encode()
	} else {
		q := u.Query()
		for k, v := range params {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func authorizeErrorCode(err error) string {
	switch {
	case errors.Is(err, identity.ErrInvalidScope), errors.Is(err, identity.ErrUnknownResource):
		return "invalid_scope"
	case errors.Is(err, identity.ErrInvalidAuthRequest) && strings.Contains(err.Error(), "response_type"):
		return "unsupported_response_type"
	}
	return "invalid_request"
}

func authorizeErrorText(err error) string {
	switch {
	case errors.Is(err, identity.ErrUnknownTenant):
		return "AADSTS90002: Tenant not found."
	case errors.Is(err, identity.ErrUnknownResource):
		return "AADSTS500011: The resource principal was not found in the tenant."
	case errors.Is(err, identity.ErrInvalidScope):
		return "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
	case errors.Is(err, identity.ErrInvalidAuthRequest):
		_, why, _ := strings.Cut(err.Error(), ": ")
		return "AADSTS900144: " + why
	}
	return "AADSTS50000: There was an error processing the request."
}
