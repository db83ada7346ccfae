// Package scrape puts the metrics registry in front of a server's handler: every request is
// counted and timed (metrics.Registry.Instrument), and GET /metrics on the API listener is served
// here, node-local (never forwarded to the leader). Unless metrics.unauthenticated is set, a
// scrape needs a management-plane bearer token whose principal may read at scope "/" (action
// Strongroom/operator/metrics/read); while the server is sealed no token can be verified, so it
// answers 503 then. Scrapes are not audited (like /health); refusals use the Key Vault error
// envelope (azkv.WriteError).
package scrape

import (
	"context"
	"net/http"
	"strings"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/service"
)

// Options configures Handler.
type Options struct {
	Registry *metrics.Registry
	// Unauthenticated serves scrapes without a token (config metrics.unauthenticated).
	Unauthenticated bool
	// PublicURL is the server's public URL, an accepted token audience.
	PublicURL string
	// Serving returns the serving state's identities and its check that the caller in ctx may
	// read metrics; ids is nil while the server is sealed.
	Serving func() (ids *identity.Service, authorize func(ctx context.Context) error)
}

// Handler counts and times every request and serves GET /metrics in front of next.
func Handler(o Options, next http.Handler) http.Handler {
	reg := o.Registry
	scrape := reg.Handler()
	return reg.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && reg.Class(r) == metrics.ClassMetrics {
			if o.authorize(w, r) {
				scrape.ServeHTTP(w, r)
			}
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// armAudiences are the management-plane token audiences (as internal/httpapi accepts them).
func (o Options) armAudiences() []string {
	return []string{"https://management.core.windows.net/", "https://management.core.windows.net",
		"https://management.azure.com/", "https://management.azure.com", o.PublicURL + "/", o.PublicURL}
}

// authorize checks the scrape's bearer token; on refusal it has answered.
func (o Options) authorize(w http.ResponseWriter, r *http.Request) bool {
	if o.Unauthenticated {
		return true
	}
	ids, authorize := o.Serving()
	if ids == nil {
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Strongroom is sealed: /metrics needs a token, which cannot be verified while sealed (or set metrics.unauthenticated).")
		return false
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+o.PublicURL+`", resource="https://management.core.windows.net/"`)
		fail(w, http.StatusUnauthorized, "AuthenticationFailed", "/metrics requires a bearer token for the management plane.")
		return false
	}
	claims, err := ids.Verify(r.Context(), strings.TrimSpace(raw), o.armAudiences())
	if err != nil {
		fail(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	}
	p := claims.Principal
	ctx := service.WithCaller(r.Context(), service.Caller{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID, Type: p.Type})
	if err := authorize(ctx); err != nil {
		fail(w, http.StatusForbidden, "AuthorizationFailed", "The caller may not read metrics (action Strongroom/operator/metrics/read at scope /).")
		return false
	}
	return true
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}
