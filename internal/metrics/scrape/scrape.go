// Package scrape puts the metrics registry in front of a server's handler: every request is
// counted and timed (metrics.Registry.Instrument), and GET /metrics on the API listener is served
// here, node-local (never forwarded to the leader). Unless metrics.public is set, a scrape
// needs a management-plane bearer token whose principal holds Microsoft.Insights/metrics/read
// at scope "/" (Monitoring Reader, Reader, Contributor, Owner, Strongroom Operator); while the
// server is sealed no token can be verified, so it answers 503 then. Scrapes are not audited
// (like /health), but refusals are counted as authentication and authorization failures of
// class "metrics"; they use the Key Vault error envelope (azkv.WriteError).
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
	// Public serves scrapes without a token (config metrics.public).
	Public bool
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
	if o.Public {
		return true
	}
	ids, authorize := o.Serving()
	if ids == nil {
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Strongroom is sealed: /metrics needs a token, which cannot be verified while sealed (or set metrics.public).")
		return false
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		o.Registry.CountAuthnFailure(metrics.ClassMetrics, metrics.AuthnMissingToken)
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+o.PublicURL+`", resource="https://management.core.windows.net/"`)
		fail(w, http.StatusUnauthorized, "AuthenticationFailed", "/metrics requires a bearer token for the management plane.")
		return false
	}
	claims, err := ids.Verify(r.Context(), strings.TrimSpace(raw), o.armAudiences())
	if err != nil {
		o.Registry.CountAuthnFailure(metrics.ClassMetrics, metrics.AuthnInvalidToken)
		fail(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	}
	p := claims.Principal
	ctx := service.WithCaller(r.Context(), service.Caller{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID, Type: p.Type})
	if err := authorize(ctx); err != nil {
		o.Registry.CountAuthzFailure(metrics.ClassMetrics, metrics.AuthzRBAC)
		fail(w, http.StatusForbidden, "AuthorizationFailed", "The caller may not read metrics (action Microsoft.Insights/metrics/read at scope /, granted by Monitoring Reader).")
		return false
	}
	return true
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}
