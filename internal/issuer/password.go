package issuer

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
)

// servePassword answers grant_type=password (resource-owner password credentials, what
// `az login -u -p` sends through MSAL): username, password, client_id (the public client) and
// scope (or the v1 resource). The password is read from the form body only and never echoed.
func (i *Issuer) servePassword(w http.ResponseWriter, r *http.Request, tenant string) {
	form := r.PostForm
	clientID, user, password := form.Get("client_id"), form.Get("username"), form.Get("password")
	for _, p := range []struct{ name, v string }{{"client_id", clientID}, {"username", user}, {"password", password}} {
		if p.v == "" {
			i.writeError(w, r, http.StatusBadRequest, "invalid_request", 900144, missingParam(p.name))
			return
		}
	}
	scope, v1 := form.Get("scope"), false
	if scope == "" && form.Get("resource") != "" {
		scope, v1 = form.Get("resource")+"/.default", true
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	tok, err := i.id.PasswordToken(r.Context(), identity.PasswordRequest{Tenant: tenant, ClientID: clientID,
		Username: user, Password: password, Scope: scope, RemoteIP: ip})
	if err != nil {
		i.noteUser(r, clientID, user, "", failureReason(err))
		i.writePasswordError(w, r, err, tenant, clientID, scope)
		return
	}
	i.noteUser(r, clientID, user, tok.ObjectID, "")
	resp := i.userResponse(r, tok)
	if v1 {
		resp.Resource = tok.Resource
		resp.ExpiresOn = strconv.FormatInt(tok.ExpiresOn.Unix(), 10)
	}
	writeJSON(w, http.StatusOK, "no-store", resp)
}

// writePasswordError maps a user sign-in's errors to Entra's, then falls back to the
// client-credential mapping for the errors both share.
func (i *Issuer) writePasswordError(w http.ResponseWriter, r *http.Request, err error, tenant, clientID, scope string) {
	switch {
	case errors.Is(err, identity.ErrUnknownUser):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50034, fmt.Sprintf(
			"The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", i.id.TenantID()))
	case errors.Is(err, identity.ErrInvalidGrant):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
	case errors.Is(err, identity.ErrUserDisabled):
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50057, "The user account is disabled.")
	case errors.Is(err, identity.ErrLockedOut):
		var le *identity.LockoutError
		errors.As(err, &le)
		secs := retryAfter(w, le.RetryAfter)
		i.writeError(w, r, http.StatusBadRequest, "invalid_grant", 50053, fmt.Sprintf(
			"The account is locked because of too many sign-in attempts with an incorrect user id or password. Retry after %d seconds.", secs))
	case errors.Is(err, identity.ErrUnknownClient):
		i.writeError(w, r, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'.", echo(clientID), i.id.TenantID()))
	case errors.Is(err, identity.ErrInvalidScope) && strings.TrimSpace(scope) != "":
		i.writeError(w, r, http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf(
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", echo(scope)))
	default:
		i.writeTokenError(w, r, err, tenant, clientID, scope)
	}
}

// resourceOf is the resource a scope names, for error messages: the first non-OIDC scope
// without its permission suffix.
func resourceOf(scope string) string {
	for _, sc := range strings.Fields(scope) {
		switch strings.ToLower(sc) {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		if i := strings.LastIndex(sc, "/"); i > 0 {
			return sc[:i]
		}
		return sc
	}
	return scope
}
