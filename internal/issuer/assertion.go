package issuer

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
)

// serveClientAssertion answers client_credentials authenticated by a JWT client assertion
// (client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer): a
// certificate assertion (private_key_jwt, what azidentity.ClientCertificateCredential sends) or
// a federated one from an external OpenID Connect issuer (workload identity federation, what
// WorkloadIdentityCredential and ClientAssertionCredential send). The assertion is never
// echoed or logged.
func (i *Issuer) serveClientAssertion(w http.ResponseWriter, r *http.Request, tenant, clientID string) {
	form := r.PostForm
	if t := form.Get("client_assertion_type"); t != identity.ClientAssertionType {
		i.note(r, clientID, "", "token refused: unsupported client assertion type")
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 7000219,
			"The client_assertion_type must be '"+identity.ClientAssertionType+"'.")
		return
	}
	scope, v1 := form.Get("scope"), false
	if scope == "" && form.Get("resource") != "" {
		scope, v1 = form.Get("resource")+"/.default", true
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	tok, err := i.id.AssertionToken(r.Context(), identity.AssertionRequest{Tenant: tenant, ClientID: clientID,
		Assertion: form.Get("client_assertion"), Scope: scope, TokenEndpoint: i.publicURL + r.URL.Path, RemoteIP: ip})
	if err != nil {
		i.note(r, clientID, "", assertionFailure(err))
		i.writeAssertionError(w, r, err, tenant, clientID, scope)
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

// writeAssertionError maps assertion failures to Entra's errors, then falls back to the
// client-credential mapping for the errors both share.
func (i *Issuer) writeAssertionError(w http.ResponseWriter, r *http.Request, err error, tenant, clientID, scope string) {
	switch {
	case errors.Is(err, identity.ErrFederationIssuer):
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 700211,
			"No matching federated identity record found for presented assertion issuer.")
	case errors.Is(err, identity.ErrFederationSubject):
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 700213,
			"No matching federated identity record found for presented assertion subject.")
	case errors.Is(err, identity.ErrFederationAudience):
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 700212,
			"No matching federated identity record found for presented assertion audience.")
	case errors.Is(err, identity.ErrFederationFetch):
		i.writeError(w, r, http.StatusBadRequest, "invalid_request", 50166,
			"Request to External OIDC endpoint failed.")
	case errors.Is(err, identity.ErrUnknownCertificate):
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 700027,
			"Client assertion failed signature validation: the certificate used to sign it is not registered on application '"+echo(clientID)+"' or is not valid now.")
	case errors.Is(err, identity.ErrAssertionReplayed):
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 700027,
			"Client assertion failed validation: its jti was already used.")
	case errors.Is(err, identity.ErrInvalidAssertion) && (strings.HasSuffix(err.Error(), "expired") || strings.HasSuffix(err.Error(), "not yet valid")):
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 700024,
			"Client assertion is not within its valid time range.")
	case errors.Is(err, identity.ErrInvalidAssertion):
		i.writeError(w, r, http.StatusUnauthorized, "invalid_client", 700027,
			"Client assertion failed signature validation.")
	default:
		i.writeTokenError(w, r, err, tenant, clientID, scope)
	}
}

// assertionFailure is the audit record's reason for a refused assertion: fixed words only.
func assertionFailure(err error) string {
	switch {
	case errors.Is(err, identity.ErrFederationIssuer):
		return "token refused: federated assertion from an unregistered issuer"
	case errors.Is(err, identity.ErrFederationSubject):
		return "token refused: federated assertion with an unregistered subject"
	case errors.Is(err, identity.ErrFederationAudience):
		return "token refused: federated assertion with an unregistered audience"
	case errors.Is(err, identity.ErrFederationFetch):
		return "token refused: external issuer keys unavailable"
	case errors.Is(err, identity.ErrUnknownCertificate):
		return "token refused: certificate not registered"
	case errors.Is(err, identity.ErrAssertionReplayed):
		return "token refused: client assertion replayed"
	case errors.Is(err, identity.ErrInvalidAssertion):
		return "token refused: invalid client assertion"
	}
	return failureReason(err)
}
