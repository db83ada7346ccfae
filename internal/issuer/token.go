package issuer

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
)

// maxBodyBytes caps token request bodies.
const maxBodyBytes = 64 << 10

// tokenResponse is Entra's success body. Resource and ExpiresOn appear only when the request
// used the v1 "resource" parameter, as the v1 endpoint returns them.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on,omitempty"`
	Resource     string `json:"resource,omitempty"`
	AccessToken  string `json:"access_token"`
	// User grants only (refresh.go): as the scope's offline_access and openid, and the
	// client_info=1 parameter, ask.
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

// errorResponse is Entra's error body.
type errorResponse struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// serveToken handles the token endpoint; tenant is the path segment, or "" for ADFS.
// grant_type client_credentials (with a client secret or a client assertion: assertion.go),
// password (resource-owner password, for users), device_code and authorization_code
// (interactive.go) and refresh_token (refresh.go) are supported. MSAL's extra fields (claims, client_info,
// x-client-*, telemetry) are ignored, as is any query string.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam("grant_type"))
		return
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			i.writeError(w, r, http.StatusRequestEntityTooLarge, "invalid_request", 90015, "The request body is too large.")
			return
		}
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 90014, "The request body is not a valid form.")
		return
	}
	form := r.PostForm

	grant := form.Get("grant_type")
	switch grant {
	case "":
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam("grant_type"))
		return
	case "client_credentials":
	case "password":
		i.servePassword(w, r, tenant)
		return
	case DeviceCodeGrant, "device_code": // interactive.go; MSAL sends the short name, as Entra accepts
		i.serveDeviceCodeGrant(w, r, tenant)
		return
	case "authorization_code": // interactive.go (PKCE)
		i.serveAuthCodeGrant(w, r, tenant)
		return
	case "refresh_token": // refresh.go
		i.serveRefreshGrant(w, r, tenant)
		return
	default:
		i.writeError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003,
			"The app requested an unsupported grant type. Strongroom supports 'client_credentials', 'password', 'authorization_code', 'refresh_token' and 'urn:ietf:params:oauth:grant-type:device_code'.")
		return
	}
	i.serveClientCredentials(w, r, tenant)
}

// serveClientCredentials serves grant_type=client_credentials: a client secret (in the form or
// by HTTP Basic), or a client assertion (a certificate's or a federated one).
func (i *Issuer) serveClientCredentials(w http.ResponseWriter, r *http.Request, tenant string) {
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok { // client_secret_basic: both parts are form-encoded (RFC 6749 §2.3.1)
		bu, err1 := url.QueryUnescape(u)
		bp, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil || (clientID != "" && clientID != bu) || secret != "" {
			i.writeError(w, r, http.StatusBadRequest, "invalid_request", 90014, "Conflicting or malformed client credentials.")
			return
		}
		clientID, secret = bu, bp
	}
	if clientID == "" {
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam("client_id"))
		return
	}
	if secret == "" {
		if form.Get("client_assertion") != "" { // private_key_jwt or a federated assertion (assertion.go)
			i.serveClientAssertion(w, r, tenant, clientID)
			return
		}
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	scope, v1 := form.Get("scope"), false
	if scope == "" && form.Get("resource") != "" {
		scope, v1 = form.Get("resource")+"/.default", true
	}

	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	tok, err := i.id.IssueToken(r.Context(), identity.TokenRequest{Tenant: tenant, ClientID: clientID,
		ClientSecret: secret, Scope: scope, RemoteIP: ip})
	if err != nil {
		i.note(r, clientID, "", failureReason(err))
		i.writeTokenError(w, r, err, tenant, clientID, scope)
		return
	}
	i.note(r, clientID, tok.ObjectID, "")
	resp := tokenResponse{TokenType: "Bearer", ExpiresIn: tok.ExpiresIn, ExtExpiresIn: tok.ExpiresIn, AccessToken: tok.AccessToken}
	if v1 {
		resp.Resource = tok.Resource
		resp.ExpiresOn = strconv.FormatInt(tok.ExpiresOn.Unix(), 10)
	}
	writeJSON(w, http.StatusOK, "no-store", resp)
}

// writeTokenError is the one mapping from identity errors to Entra's token errors.
func (i *Issuer) writeTokenError(w http.ResponseWriter, r *http.Request, err error, tenant, clientID, scope string) {
	switch {
	case errors.Is(err, identity.ErrUnknownTenant):
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 90002, tenantNotFound(tenant))
	case errors.Is(err, identity.ErrUnknownResource):
		i.writeError(w, r, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf(
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			echo(resourceOf(scope)), i.id.TenantID()))
	case errors.Is(err, identity.ErrInvalidScope) && strings.TrimSpace(scope) == "":
		i.writeError(w, r, http.StatusBadRequest, "invalid_scope", 70011,
			"The provided request must include a 'scope' input parameter.")
	case errors.Is(err, identity.ErrInvalidScope):
		i.writeError(w, r, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
			echo(scope)))
	case errors.Is(err, identity.ErrUnknownClient):
		i.writeError(w, r, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			echo(clientID), i.id.TenantID()))
	case errors.Is(err, identity.ErrLockedOut):
		var le *identity.LockoutError
		errors.As(err, &le)
		secs := retryAfter(w, le.RetryAfter)
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50053, fmt.Sprintf(
			"The account is locked because of too many sign-in attempts with an incorrect client id or secret. Retry after %d seconds.", secs))
	case errors.Is(err, identity.ErrBusy):
		retryAfter(w, identity.BusyRetryAfter)
		i.writeError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
			"The server is too busy to issue a token now. Retry later.")
	case errors.Is(err, identity.ErrPrincipalDisabled):
		i.writeError(w, r, http.StatusBadRequest, "unauthorized_client", 7000112, fmt.Sprintf(
			"Application '%s' is disabled.", echo(clientID)))
	case errors.Is(err, identity.ErrInvalidClient):
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.",
			echo(clientID)))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		retryAfter(w, identity.BusyRetryAfter)
		i.writeError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
			"The server is too busy to issue a token now. Retry later.")
	default:
		i.writeError(w, r, http.StatusInternalServerError, "server_error", 50000,
			"There was an error issuing a token.")
	}
}

// writeError writes Entra's error body. The description ends with the trace id, correlation id
// and timestamp, as Entra's do; correlation_id echoes the client-request-id header when it is
// a GUID.
func (i *Issuer) writeError(w http.ResponseWriter, r *http.Request, status int, code string, aadsts int, msg string) {
	trace := w.Header().Get("X-Ms-Request-Id") // the HTTP edge's request id, which the audit record carries
	if trace == "" {
		trace = uuid.NewString()
	}
	corr := uuid.NewString()
	if c, err := uuid.Parse(r.Header.Get("client-request-id")); err == nil {
		corr = c.String()
	}
	ts := i.now().UTC().Format("2006-01-02 15:04:05Z")
	w.Header().Set("client-request-id", corr)
	w.Header().Set("x-ms-request-id", trace)
	writeJSON(w, status, "no-store", errorResponse{
		Error: code,
		Description: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, msg, trace, corr, ts),
		ErrorCodes:    []int{aadsts},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
	})
}

func missingParam(name string) string {
	return fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)
}

func tenantNotFound(tenant string) string {
	return fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", echo(tenant))
}

// echo bounds a client-supplied public identifier before it goes into an error message. Never
// pass it a secret or a token.
func echo(s string) string {
	const max = 100
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// retryAfter sets Retry-After to d in whole seconds (at least 1) and returns them.
func retryAfter(w http.ResponseWriter, d time.Duration) int {
	secs := max(int((d+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return secs
}

// failureReason is the audit record's description of a refused token request: a few fixed
// words, never the secret.
func failureReason(err error) string {
	var le *identity.LockoutError
	switch {
	case errors.As(err, &le) && le.BySource:
		return "token refused: source address locked out"
	case errors.As(err, &le):
		return "token refused: client id locked out"
	case errors.Is(err, identity.ErrBusy), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "token refused: hash queue full"
	case errors.Is(err, identity.ErrUnknownClient):
		return "token refused: unknown client id"
	case errors.Is(err, identity.ErrInvalidClient):
		return "token refused: wrong client secret"
	case errors.Is(err, identity.ErrPrincipalDisabled):
		return "token refused: principal disabled"
	case errors.Is(err, identity.ErrUnknownTenant):
		return "token refused: unknown tenant"
	case errors.Is(err, identity.ErrInvalidScope):
		return "token refused: invalid scope"
	case errors.Is(err, identity.ErrUnknownResource):
		return "token refused: unknown resource"
	case errors.Is(err, identity.ErrUnknownUser):
		return "token refused: unknown user"
	case errors.Is(err, identity.ErrInvalidGrant):
		return "token refused: wrong password"
	case errors.Is(err, identity.ErrUserDisabled):
		return "token refused: user disabled"
	}
	return "token refused: server error"
}
