package issuer

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/strongroom/strongroom/internal/identity"
)

// The host-agent listener: identity agents fetch managed-identity tokens over mutual TLS, the
// host proved by the client certificate it got at registration (identity.VerifyHostCertificate).
// It is the mTLS form of the main listener's POST /providers/Strongroom.Identity/hostAgent/token
// (which proves the host with a signed assertion instead), for a deployment that gives agents
// a listener of their own:
//
//	POST /token   {"resource","clientId"|"objectId"|"miResId","current"} ->
//	              {"access_token","expires_on","expires_in","resource","token_type","client_id","object_id","mi_res_id"}
//
// Every request, whatever its path or method, is refused with 401 before it is routed unless
// the connection carries the certificate a host record holds now; nothing else is served.

// HostAgentTLSConfig is the listener's TLS configuration: the server's certificate, TLS 1.2 or
// later, and a client certificate required on every connection (checked per request against
// the host records, which live in the sealed store, so not by a CA pool fixed at start).
func HostAgentTLSConfig(serverCert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert},
		ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{"http/1.1"}}
}

// HostAgentOutcome is one request's outcome, for the caller's audit record: the host the
// certificate proved ("" when none), the identity a token was minted for, and the status.
type HostAgentOutcome struct {
	Host, ObjectID string
	Status         int
	Failure        string
}

// HostAgentHandler serves the host-agent listener for id; audit (if not nil) receives every
// request's outcome.
func HostAgentHandler(id *identity.Service, audit func(r *http.Request, o HostAgentOutcome)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := HostAgentOutcome{}
		defer func() {
			if audit != nil {
				audit(r, o)
			}
		}()
		fail := func(status int, code, msg string) {
			o.Status, o.Failure = status, code
			writeJSON(w, status, "no-store", map[string]any{"error": map[string]string{"code": code, "message": msg}})
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			fail(http.StatusUnauthorized, "InvalidHostCredential", "A host certificate is required.")
			return
		}
		h, err := id.VerifyHostCertificate(r.Context(), r.TLS.PeerCertificates[0].Raw)
		if err != nil {
			if !errors.Is(err, identity.ErrHostCredential) && !errors.Is(err, identity.ErrHostNotFound) {
				fail(http.StatusInternalServerError, "InternalServerError", "The host certificate could not be checked.")
				return
			}
			fail(http.StatusUnauthorized, "InvalidHostCredential", "The host certificate is invalid, or the host was removed.")
			return
		}
		o.Host = h.Name
		if r.URL.Path != "/token" {
			fail(http.StatusNotFound, "NotFound", "The host-agent listener serves POST /token only.")
			return
		}
		if r.Method != http.MethodPost {
			fail(http.StatusMethodNotAllowed, "MethodNotAllowed", "Use POST.")
			return
		}
		var in struct {
			Resource string `json:"resource"`
			ClientID string `json:"clientId"`
			ObjectID string `json:"objectId"`
			MIResID  string `json:"miResId"`
			Current  string `json:"current"`
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil || json.Unmarshal(body, &in) != nil || in.Resource == "" {
			fail(http.StatusBadRequest, "BadRequest", "The body must be JSON naming a resource.")
			return
		}
		n := 0
		for _, v := range []string{in.ClientID, in.ObjectID, in.MIResID} {
			if v != "" {
				n++
			}
		}
		if n > 1 {
			fail(http.StatusBadRequest, "BadRequest", "Name the identity with at most one of clientId, objectId and miResId.")
			return
		}
		tok, hi, err := id.MintHostToken(r.Context(), h.Name, identity.HostIdentitySelector{ClientID: in.ClientID, ObjectID: in.ObjectID, ResourceID: in.MIResID}, in.Resource, in.Current)
		switch {
		case errors.Is(err, identity.ErrIdentityNotAssigned):
			fail(http.StatusForbidden, "IdentityNotAssigned", "The requested identity is not assigned to this host.")
		case errors.Is(err, identity.ErrNoHostIdentity), errors.Is(err, identity.ErrAmbiguousIdentity):
			fail(http.StatusBadRequest, "IdentityNotSpecified", err.Error())
		case errors.Is(err, identity.ErrUnknownResource), errors.Is(err, identity.ErrInvalidScope):
			fail(http.StatusBadRequest, "AADSTS500011", "AADSTS500011: The resource principal named "+echo(in.Resource)+" was not found in the tenant.")
		case errors.Is(err, identity.ErrPrincipalDisabled):
			fail(http.StatusForbidden, "IdentityDisabled", "The identity is disabled.")
		case errors.Is(err, identity.ErrHostNotFound), errors.Is(err, identity.ErrHostCredential):
			fail(http.StatusUnauthorized, "InvalidHostCredential", "The host certificate is invalid, or the host was removed.")
		case err != nil:
			fail(http.StatusInternalServerError, "InternalServerError", "The token could not be minted.")
		default:
			o.Status, o.ObjectID = http.StatusOK, hi.PrincipalID
			writeJSON(w, http.StatusOK, "no-store", map[string]any{"access_token": tok.AccessToken, "expires_on": tok.ExpiresOn.Unix(),
				"expires_in": tok.ExpiresIn, "resource": tok.Resource, "token_type": "Bearer", "client_id": hi.ClientID,
				"object_id": hi.PrincipalID, "mi_res_id": hi.ResourceID})
		}
	})
}
