// Package issuer serves Strongroom's OAuth 2.0 / OpenID Connect endpoints in the shapes Entra ID
// and AD FS use, so that unmodified MSAL-based clients (azidentity for Go, @azure/identity for
// JS, MSAL Python under the az CLI) can get tokens from identity.Service:
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration   OIDC discovery (Entra v2)
//	GET  /{tenant}/discovery/v2.0/keys                     JWKS
//	POST /{tenant}/oauth2/v2.0/token                       token endpoint (client_credentials with a
//	                                                       secret or client assertion, password,
//	                                                       device_code, authorization_code,
//	                                                       refresh_token)
//	POST /{tenant}/oauth2/v2.0/devicecode                  device authorization (and /adfs/oauth2/devicecode)
//	GET  /devicelogin                                      the device flow's sign-in page (POST signs in)
//	GET  /{tenant}/oauth2/v2.0/authorize                   authorization code + PKCE sign-in (POST signs in)
//	GET  /adfs/.well-known/openid-configuration            discovery for az's ADFS-style authority
//	POST /adfs/oauth2/v2.0/token, /adfs/oauth2/token       token endpoint, default tenant
//	GET  /adfs/discovery/keys                              JWKS
//	GET  /common/discovery/instance                        instance discovery (harmless extra)
//	GET  /common/UserRealm/{user} (and userrealm)          home realm discovery: always "Managed"
//
// {tenant} is the tenant id (any case), "organizations" or "common"; anything else is answered
// with Entra's AADSTS90002 error. The issuer in every document is the real tenant's
// (PublicURL/{tenant id}/v2.0); MSAL checks only that its scheme and host match the authority.
//
// Invariants: client secrets and tokens are never logged, never echoed in errors, and never
// cached by HTTP intermediaries (token responses carry Cache-Control: no-store). Request bodies
// are capped at 64 KiB; secrets are read from the form body (or HTTP Basic), never the query.
//
// An Issuer is safe for concurrent use.
package issuer

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

// Issuer serves the token endpoints for one identity.Service.
type Issuer struct {
	id        *identity.Service
	publicURL string // no trailing "/"
	host      string // host[:port] of publicURL
	now       func() time.Time
	attempt   func(r *http.Request, a Attempt)
}

// OnAttempt registers fn, the HTTP edge's audit hook, which then receives the outcome of every
// token request that named a client id: the client id as sent (bounded), the principal's object
// id on success, and on failure a short fixed reason. It never receives the secret. Call it
// before serving.
func (i *Issuer) OnAttempt(fn func(r *http.Request, a Attempt)) {
	i.attempt = fn
}

// Attempt is what the audit record of a token request may carry: never a secret, a password or
// a token.
type Attempt struct {
	ClientID string // the client id as sent (bounded)
	UPN      string // the user name a user grant named (bounded), "" for applications
	ObjectID string // the principal's object id, when the request succeeded
	Failure  string // a short fixed reason, when it failed
}

func (i *Issuer) note(r *http.Request, clientID, objectID, failure string) {
	i.noteUser(r, clientID, "", objectID, failure)
}

// noteUser reports a user grant's attempt: the public client it came through and the user.
func (i *Issuer) noteUser(r *http.Request, clientID, upn, objectID, failure string) {
	if i.attempt != nil {
		i.attempt(r, Attempt{ClientID: echo(clientID), UPN: echo(upn), ObjectID: objectID, Failure: failure})
	}
}

// New returns an Issuer whose documents name publicURL (scheme://host[:port]; it should equal
// the identity service's PublicURL, since token issuers are derived from it).
func New(id *identity.Service, publicURL string) *Issuer {
	publicURL = strings.TrimSuffix(publicURL, "/")
	host := publicURL
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		host = u.Host
	}
	// Workload identity federation reaches external issuers over HTTPS (federation.go).
	id.SetIssuerKeyFetcher(NewOIDCFetcher(os.Getenv(FederationCAFileEnv)))
	return &Issuer{id: id, publicURL: publicURL, host: host, now: time.Now}
}

// Register adds the issuer's routes (listed in the package documentation) to mux. The
// "/{tenant}/..." patterns have a wildcard first segment, so mux must not also hold a pattern
// that can match the same paths without being more or less specific (e.g. "/subscriptions/"
// or "GET /subscriptions/{rest...}"): ServeMux panics on such a conflict at registration.
func (i *Issuer) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", i.serveTenantKeys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		i.serveToken(w, r, r.PathValue("tenant"))
	})
	mux.HandleFunc("GET /adfs/.well-known/openid-configuration", i.serveADFSDiscovery)
	mux.HandleFunc("POST /adfs/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) { i.serveToken(w, r, "") })
	mux.HandleFunc("POST /adfs/oauth2/token", func(w http.ResponseWriter, r *http.Request) { i.serveToken(w, r, "") })
	mux.HandleFunc("GET /adfs/discovery/keys", i.serveKeys)
	mux.HandleFunc("GET /common/discovery/instance", i.serveInstanceDiscovery)
	// MSAL asks where a user signs in before a password grant (MSAL Go spells it UserRealm,
	// MSAL Python userrealm).
	mux.HandleFunc("GET /common/UserRealm/{user}", i.serveUserRealm)
	mux.HandleFunc("GET /common/userrealm/{user}", i.serveUserRealm)
	i.registerInteractive(mux) // device code and authorization code (interactive.go)
}

// serveUserRealm answers MSAL's home realm discovery: every account here is a managed
// (cloud) account, signed in at this server's token endpoint. It says nothing about whether
// the user exists.
func (i *Issuer) serveUserRealm(w http.ResponseWriter, r *http.Request) {
	_, domain, _ := strings.Cut(r.PathValue("user"), "@")
	writeJSON(w, http.StatusOK, "no-store", map[string]string{
		"ver": "1.0", "account_type": "Managed", "NameSpaceType": "Managed", "domain_name": echo(domain),
		"cloud_instance_name": i.host, "cloud_audience_urn": "urn:federation:MicrosoftOnline",
		"federation_protocol": "", "federation_metadata_url": "",
	})
}

// discoveryDoc is the Entra v2 OpenID configuration, minus what Strongroom has no use for.
type discoveryDoc struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint,omitempty"`
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
}

func (i *Issuer) newDoc(issuer string) discoveryDoc {
	return discoveryDoc{
		Issuer:                            issuer,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
		GrantTypesSupported:               []string{"client_credentials", "password", "authorization_code", DeviceCodeGrant, "refresh_token"},
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "azp",
			"idtyp", "uti", "ver"},
		CloudInstanceName: i.host,
	}
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	tid, err := i.id.ResolveTenant(tenant)
	if err != nil {
		i.writeError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tenant))
		return
	}
	base := i.publicURL + "/" + tenant
	doc := i.newDoc(i.id.Issuer(tid))
	doc.AuthorizationEndpoint = base + "/oauth2/v2.0/authorize"
	doc.TokenEndpoint = base + "/oauth2/v2.0/token"
	doc.JWKSURI = base + "/discovery/v2.0/keys"
	doc.DeviceAuthorizationEndpoint = base + "/oauth2/v2.0/devicecode"
	doc.EndSessionEndpoint = base + "/oauth2/v2.0/logout"
	writeJSON(w, http.StatusOK, "public, max-age=3600", doc)
}

// serveADFSDiscovery answers az's ADFS-style authority (activeDirectory = PublicURL + "/adfs").
// MSAL Python takes token_endpoint from here; the tokens it gets carry the tenant issuer.
func (i *Issuer) serveADFSDiscovery(w http.ResponseWriter, _ *http.Request) {
	base := i.publicURL + "/adfs"
	doc := i.newDoc(base)
	doc.AuthorizationEndpoint = base + "/oauth2/authorize/"
	doc.TokenEndpoint = base + "/oauth2/v2.0/token"
	doc.JWKSURI = base + "/discovery/keys"
	doc.DeviceAuthorizationEndpoint = base + "/oauth2/devicecode"
	writeJSON(w, http.StatusOK, "public, max-age=3600", doc)
}

func (i *Issuer) serveTenantKeys(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if _, err := i.id.ResolveTenant(tenant); err != nil {
		i.writeError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(tenant))
		return
	}
	i.serveKeys(w, r)
}

func (i *Issuer) serveKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "public, max-age=3600", i.id.JWKS())
}

type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// serveInstanceDiscovery answers MSAL's instance discovery as Entra does, naming this host as
// the only cloud alias. The tenant comes from the authorization_endpoint query parameter when
// it points at this host; otherwise the literal "{tenant}" placeholder is returned.
func (i *Issuer) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := "{tenant}"
	if ae, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil && strings.EqualFold(ae.Host, i.host) {
		if seg, _, _ := strings.Cut(strings.TrimPrefix(ae.Path, "/"), "/"); seg != "" {
			if _, err := i.id.ResolveTenant(seg); err == nil {
				tenant = seg
			}
		}
	}
	writeJSON(w, http.StatusOK, "public, max-age=3600", struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		APIVersion              string             `json:"api-version"`
		Metadata                []instanceMetadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: i.publicURL + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                []instanceMetadata{{PreferredNetwork: i.host, PreferredCache: i.host, Aliases: []string{i.host}}},
	})
}

// writeJSON writes v as JSON with the given Cache-Control.
func writeJSON(w http.ResponseWriter, status int, cacheControl string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if cacheControl == "no-store" {
		h.Set("Pragma", "no-cache")
	}
	w.WriteHeader(status)
	w.Write(body)
}
