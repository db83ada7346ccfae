// Package portal is Strongroom's web portal: server-rendered pages under /portal/ on the main
// HTTPS origin, named after the Azure portal's Key Vault blades, from templates and assets
// embedded in the binary (no framework, no CDN, one small same-origin script).
//
// The portal is a client, not a back door. A person signs in through the built-in issuer's
// authorization-code flow with PKCE; the portal keeps the person's tokens on the server, in a
// session record sealed under the keyring (backend for frontend), and the browser holds only
// an opaque session cookie. Every action a page takes is an ordinary API request (ARM, the
// Key Vault data plane, Graph) made in-process through the server's own handler with the
// person's access token, so it is authenticated, authorized and audited exactly as the same
// call from the CLI or an SDK would be; its audit record's clientInfo names the portal. The
// portal's own pages are not audited as such: each one is a view of the API calls it makes.
//
// Every response carries a strict CSP and no-store; every state-changing route is behind
// net/http's CrossOriginProtection; secret values travel only in POST bodies and no-store
// answers, never in a URL, a log line or a cookie.
package portal

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// ClientInfo is the User-Agent of the portal's API calls: the clientInfo of their audit
// records. Reveals and copies add what the person did ("strongroom-portal (reveal)").
const ClientInfo = "strongroom-portal"

// CSP is the Content-Security-Policy of every portal response.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Apps is the part of the directory the portal uses to keep its own application
// registration (its client id and redirect URI).
type Apps interface {
	CreateApplication(ctx context.Context, displayName string) (identity.Application, error)
	GetApplication(ctx context.Context, idOrAppID string) (identity.Application, error)
	SetRedirectURIs(ctx context.Context, idOrAppID string, uris []string) error
	RedirectURIs(ctx context.Context, idOrAppID string) ([]string, error)
}

// Options configure a Portal.
type Options struct {
	PublicURL      string // https://localhost:8443, the origin the portal is served on
	TenantID       string
	SubscriptionID string
	// VaultURI is a vault's data-plane URI (https://{name}.{dns-suffix}:{port}).
	VaultURI func(name string) string
	Store    store.Store
	Keyring  *keyring.Keyring
	Apps     Apps
	// Permits reports whether a person would be allowed an action (service.Permits); it only
	// decides which controls a page shows, never whether a request is served.
	Permits func(objectID, vaultName, under, action string, data bool) bool
	Config  config.PortalConfig
	Log     *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Portal serves /portal/.
type Portal struct {
	opts  Options
	api   http.Handler
	mux   *http.ServeMux
	pages map[string]*template.Template
	csrf  *http.CrossOriginProtection
	// clientID is the portal's application id once registered (signin.go).
	clientMu sync.Mutex
	clientID string
	// refreshMu serializes token refreshes per session: a refresh token redeemed twice is
	// treated as stolen by the issuer and ends the sign-in.
	refreshMu sync.Map // session key -> *sync.Mutex
}

// New builds the portal. SetAPI must be called before it serves.
func New(opts Options) (*Portal, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p := &Portal{opts: opts, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	p.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusForbidden, "This request came from another site and was refused. Go back to the portal and try again.")
	}))
	var err error
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	p.routes()
	return p, nil
}

// SetAPI sets the handler the portal sends its API calls to: the server's own, with
// everything in front of the API (metrics) that a request from the network would pass.
func (p *Portal) SetAPI(h http.Handler) { p.api = h }

// ServeHTTP implements http.Handler for every path under /portal/.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setHeaders(w.Header())
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if r.URL.Path == "/portal" {
		http.Redirect(w, r, "/portal/", http.StatusFound)
		return
	}
	p.csrf.Handler(p.mux).ServeHTTP(w, r)
}

// maxFormBytes bounds a form (a secret value is at most 25 KiB in Key Vault).
const maxFormBytes = 256 << 10

// setHeaders puts the portal's security headers on a response.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// IsPortalPath reports whether path belongs to the portal (/portal and everything under it).
func IsPortalPath(path string) bool {
	return path == "/portal" || strings.HasPrefix(path, "/portal/")
}

func (p *Portal) routes() {
	m := p.mux
	m.HandleFunc("GET /portal/static/{file}", p.serveStatic)
	m.HandleFunc("GET /portal/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/portal/vaults", http.StatusFound)
	})
	m.HandleFunc("GET /portal/login", p.serveLogin)
	m.HandleFunc("GET /portal/signin", p.serveSignIn)
	m.HandleFunc("GET /portal/callback", p.serveCallback)
	m.HandleFunc("POST /portal/logout", p.serveLogout)
	m.HandleFunc("GET /portal/signed-out", p.serveSignedOut)
	m.HandleFunc("POST /portal/session/keepalive", p.authed(p.serveKeepAlive))

	m.HandleFunc("GET /portal/vaults", p.authed(p.serveVaults))
	m.HandleFunc("GET /portal/vaults/new", p.authed(p.serveVaultNew))
	m.HandleFunc("GET /portal/deleted-vaults", p.authed(p.serveDeletedVaults))
	m.HandleFunc("POST /portal/deleted-vaults/{location}/{vault}/recover", p.authed(p.serveVaultRecover))
	m.HandleFunc("GET /portal/deleted-vaults/{location}/{vault}/purge", p.authed(p.serveVaultPurgeConfirm))
	m.HandleFunc("POST /portal/deleted-vaults/{location}/{vault}/purge", p.authed(p.serveVaultPurge))
	m.HandleFunc("POST /portal/vaults/new", p.authed(p.serveVaultCreate))
	m.HandleFunc("GET /portal/vaults/{vault}", p.authed(p.serveOverview))
	m.HandleFunc("GET /portal/vaults/{vault}/delete", p.authed(p.serveVaultDeleteConfirm))
	m.HandleFunc("POST /portal/vaults/{vault}/delete", p.authed(p.serveVaultDelete))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets", p.authed(p.serveSecrets))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/new", p.authed(p.serveSecretNew))
	m.HandleFunc("POST /portal/vaults/{vault}/secrets/new", p.authed(p.serveSecretCreate))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/{name}", p.authed(p.serveSecret))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/{name}/new-version", p.authed(p.serveSecretNew))
	m.HandleFunc("POST /portal/vaults/{vault}/secrets/{name}/new-version", p.authed(p.serveSecretCreate))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/{name}/delete", p.authed(p.serveSecretDeleteConfirm))
	m.HandleFunc("POST /portal/vaults/{vault}/secrets/{name}/delete", p.authed(p.serveSecretDelete))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/{name}/rotation", p.authed(p.serveRotation))
	m.HandleFunc("GET /portal/vaults/{vault}/secrets/{name}/versions/{version}", p.authed(p.serveVersion))
	m.HandleFunc("POST /portal/vaults/{vault}/secrets/{name}/versions/{version}/reveal", p.authed(p.serveReveal))
	m.HandleFunc("GET /portal/vaults/{vault}/deleted-secrets", p.authed(p.serveDeleted))
	m.HandleFunc("POST /portal/vaults/{vault}/deleted-secrets/{name}/recover", p.authed(p.serveRecover))
	m.HandleFunc("GET /portal/vaults/{vault}/deleted-secrets/{name}/purge", p.authed(p.servePurgeConfirm))
	m.HandleFunc("POST /portal/vaults/{vault}/deleted-secrets/{name}/purge", p.authed(p.servePurge))
	m.HandleFunc("GET /portal/vaults/{vault}/access", p.authed(p.serveAccess))
	m.HandleFunc("POST /portal/vaults/{vault}/access/role-assignments", p.authed(p.serveRoleAssign))
	m.HandleFunc("GET /portal/vaults/{vault}/access/permission-model", p.authed(p.serveModelSwitchConfirm))
	m.HandleFunc("POST /portal/vaults/{vault}/access/permission-model", p.authed(p.serveModelSwitch))
	m.HandleFunc("POST /portal/vaults/{vault}/access/role-assignments/{id}/delete", p.authed(p.serveRoleUnassign))
	m.HandleFunc("POST /portal/vaults/{vault}/access/access-policies", p.authed(p.servePolicySet))
	m.HandleFunc("POST /portal/vaults/{vault}/access/access-policies/{oid}/delete", p.authed(p.servePolicyRemove))
	m.HandleFunc("GET /portal/vaults/{vault}/networking", p.authed(p.serveNetworking))
	m.HandleFunc("POST /portal/vaults/{vault}/networking", p.authed(p.serveNetworkingSave))
	m.HandleFunc("GET /portal/vaults/{vault}/events", p.authed(p.serveEvents))
	m.HandleFunc("GET /portal/vaults/{vault}/policy", p.authed(p.servePolicy))
	m.HandleFunc("GET /portal/vaults/{vault}/audit", p.authed(p.serveAudit))
	m.HandleFunc("/portal/", p.authed(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusNotFound, "There is no portal page at this address.")
	}))
}

// namesValid reports whether the vault and secret names of the request's path follow Key
// Vault's rules. A vault name becomes the host of the portal's data-plane calls, so one such as
// "kvtest@kvprod" would otherwise reach vault kvprod under another vault's heading.
func namesValid(r *http.Request) bool {
	if strings.Contains(r.Pattern, "{vault}") && !validVaultName(r.PathValue("vault")) {
		return false
	}
	return !strings.Contains(r.Pattern, "{name}") || secretNameRE.MatchString(r.PathValue("name"))
}

// staticTypes are the asset files' content types.
var staticTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

// serveStatic answers an embedded asset (not http.FileServer: its error answers drop
// Cache-Control, and every portal answer keeps no-store).
func (p *Portal) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := staticTypes[path.Ext(name)]
	b, err := fs.ReadFile(assets, "static/"+name)
	if !ok || err != nil {
		p.renderError(w, r, http.StatusNotFound, "There is no such file.")
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}

// parsePages parses each page template with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("listing portal templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parsing portal template %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}
