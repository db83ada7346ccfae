package metrics

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request results: the only values of the "result" label (Key Vault's StatusCodeClass, split
// where an operator acts differently on each).
const (
	ResultSuccess      = iota // 1xx, 2xx, 3xx
	ResultClientError         // 4xx but the ones below
	ResultServerError         // 5xx: what Availability counts against the server
	ResultThrottled           // 429
	ResultUnauthorized        // 401
	ResultForbidden           // 403
	numResults
)

var resultNames = [numResults]string{"success", "clienterror", "servererror", "throttled", "unauthorized", "forbidden"}

// ResultName is the "result" label value of a result.
func ResultName(result int) string { return resultNames[result] }

// Result classifies an answered status (0 means the handler wrote nothing: 200).
func Result(status int) int {
	switch {
	case status < 400:
		return ResultSuccess
	case status == 401:
		return ResultUnauthorized
	case status == 403:
		return ResultForbidden
	case status == 429:
		return ResultThrottled
	case status >= 500:
		return ResultServerError
	}
	return ResultClientError
}

// Authentication failure reasons: the only values of that counter's "reason" label. 0 is none.
const (
	AuthnMissingToken  = iota + 1 // no bearer token (or another scheme)
	AuthnInvalidToken             // a bearer token that does not verify (signature, expiry, audience, revoked)
	AuthnUnknownClient            // token endpoint: unknown client id, user or tenant
	AuthnBadCredential            // token endpoint: wrong secret or password, or a refused assertion or code
	AuthnLockedOut                // token endpoint: client id or source address locked out
	AuthnDisabled                 // token endpoint: principal or user disabled
	AuthnOther                    // token endpoint: anything else (busy, server error, scope)
	numAuthn
)

var authnNames = [numAuthn]string{"", "missing_token", "invalid_token", "unknown_client", "bad_credential", "locked_out", "disabled", "other"}

// Authorization failure reasons: the only values of that counter's "reason" label. 0 is none.
const (
	AuthzRBAC         = iota + 1 // no role assignment grants the action at the scope
	AuthzAccessPolicy            // the vault's access policies grant no such permission
	AuthzFirewall                // the vault's network rules refuse the client's address
	AuthzOther                   // any other 403
	numAuthz
)

var authzNames = [numAuthz]string{"", "rbac", "access_policy", "firewall", "other"}

// AuthnReasonName and AuthzReasonName are the "reason" label values.
func AuthnReasonName(r int) string { return authnNames[r] }
func AuthzReasonName(r int) string { return authzNames[r] }

// Values of the "vault" label that are not vault names (a vault name never starts with "_").
const (
	VaultNone    = "_none"    // the request was not addressed to a vault (management plane, token, ...)
	VaultUnknown = "_unknown" // a data-plane host naming no existing vault
	VaultOther   = "_other"   // a vault past the label cap (Options.MaxVaultLabels)
)

// OperationOther is the "operation" label of a request whose operation is not in the table
// (SetOperations): unmatched routes, and anything a newer route table adds before it is listed.
const OperationOther = "Other"

// DefaultMaxVaultLabels is how many vaults get a label of their own unless SetMaxVaultLabels
// says otherwise.
const DefaultMaxVaultLabels = 500

// Request is one answered request as the API edge saw it. No field carries request data but
// Vault, which must name a vault that exists (or be VaultUnknown or empty).
type Request struct {
	Class     int    // route class (ClassData, ...)
	Vault     string // an existing vault's name, VaultUnknown, or "" (not addressed to a vault)
	Operation string // Key Vault operation name from the route table ("SecretGet")
	Status    int
	Authn     int // authentication failure reason, or 0
	Authz     int // authorization failure reason, or 0
	Duration  time.Duration
}

// apiMetrics are the per-vault, per-operation series (ServiceApiHit, ServiceApiLatency), made
// on first use: only combinations that happen exist, and vault labels are capped.
type apiMetrics struct {
	reqs      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	authn     [numClasses][numAuthn]prometheus.Counter
	authz     [numClasses][numAuthz]prometheus.Counter
	ops       atomic.Pointer[opTable]
	maxVaults atomic.Int64

	mu     sync.RWMutex
	series map[seriesKey]*series
	vaults map[string]struct{} // vaults with a label of their own
	// saturation reports each vault's share of its request budget in use (SetSaturation).
	saturation atomic.Pointer[func(yield func(vault string, used float64))]
}

type opTable struct {
	index map[string]uint16
	names []string
}

type seriesKey struct {
	vault  string
	op     uint16
	result uint8
}

type series struct {
	count     prometheus.Counter
	latency   prometheus.Observer
	throttled prometheus.Counter // nil unless the result is ResultThrottled
}

func newAPIMetrics(reg *prometheus.Registry) *apiMetrics {
	a := &apiMetrics{
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strongroom_api_requests_total",
			Help: "Requests answered, by vault, Key Vault operation name and result (Key Vault's ServiceApiHit and ServiceApiResult).",
		}, []string{"vault", "operation", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strongroom_api_request_duration_seconds",
			Help:    "Time to answer a request, audit record included, by vault, operation and result (Key Vault's ServiceApiLatency).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"vault", "operation", "result"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strongroom_throttled_requests_total",
			Help: "Requests refused with 429 because their vault's request budget was spent, by vault.",
		}, []string{"vault"}),
		series: map[seriesKey]*series{},
		vaults: map[string]struct{}{},
	}
	authn := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strongroom_authentication_failures_total",
		Help: "Requests refused because the caller did not authenticate, and failed sign-ins at the token endpoint, by route class and reason.",
	}, []string{"class", "reason"})
	authz := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strongroom_authorization_failures_total",
		Help: "Authenticated requests refused with 403, by route class and reason.",
	}, []string{"class", "reason"})
	for cl := range numClasses {
		for r := 1; r < numAuthn; r++ {
			a.authn[cl][r] = authn.WithLabelValues(classNames[cl], authnNames[r])
		}
		for r := 1; r < numAuthz; r++ {
			a.authz[cl][r] = authz.WithLabelValues(classNames[cl], authzNames[r])
		}
	}
	a.maxVaults.Store(DefaultMaxVaultLabels)
	a.ops.Store(newOpTable(nil))
	reg.MustRegister(a.reqs, a.latency, a.throttled, authn, authz, saturationCollector{a})
	return a
}

func newOpTable(names []string) *opTable {
	t := &opTable{index: map[string]uint16{OperationOther: 0}, names: []string{OperationOther}}
	for _, n := range names {
		if _, dup := t.index[n]; !dup && n != "" && len(t.names) < 1<<16 {
			t.index[n] = uint16(len(t.names))
			t.names = append(t.names, n)
		}
	}
	return t
}

// SetOperations fixes the "operation" label's values: the API's route table. Any other
// operation is counted as OperationOther.
func (r *Registry) SetOperations(names []string) { r.api.ops.Store(newOpTable(names)) }

// SetMaxVaultLabels caps how many vaults get a label of their own; the others share VaultOther.
func (r *Registry) SetMaxVaultLabels(n int) {
	if n <= 0 {
		n = DefaultMaxVaultLabels
	}
	r.api.maxVaults.Store(int64(n))
}

// SetSaturation sets where scrapes read each vault's share of its request budget in use
// (SaturationShoeBox): f yields vault names and values in [0, 1]. Nil clears it.
func (r *Registry) SetSaturation(f func(yield func(vault string, used float64))) {
	if f == nil {
		r.api.saturation.Store(nil)
		return
	}
	r.api.saturation.Store(&f)
}

// ObserveRequest counts one answered request by vault, operation and result, and its
// authentication or authorization failure. It allocates nothing once the request's series
// exist.
func (r *Registry) ObserveRequest(q Request) {
	a := r.api
	t := a.ops.Load()
	op := t.index[q.Operation] // 0, OperationOther, when absent
	vault := q.Vault
	if vault == "" {
		vault = VaultNone
	}
	res := Result(q.Status)
	k := seriesKey{vault: vault, op: op, result: uint8(res)}
	a.mu.RLock()
	s := a.series[k]
	a.mu.RUnlock()
	if s == nil {
		s = a.newSeries(k, t)
	}
	s.count.Inc()
	s.latency.Observe(q.Duration.Seconds())
	if s.throttled != nil {
		s.throttled.Inc()
	}
	if q.Class >= 0 && q.Class < numClasses {
		if q.Authn > 0 && q.Authn < numAuthn {
			a.authn[q.Class][q.Authn].Inc()
		}
		if q.Authz > 0 && q.Authz < numAuthz {
			a.authz[q.Class][q.Authz].Inc()
		}
	}
}

// CountAuthnFailure counts an authentication failure outside ObserveRequest (a refused scrape).
func (r *Registry) CountAuthnFailure(class, reason int) {
	if class >= 0 && class < numClasses && reason > 0 && reason < numAuthn {
		r.api.authn[class][reason].Inc()
	}
}

// CountAuthzFailure counts an authorization failure outside ObserveRequest (a refused scrape).
func (r *Registry) CountAuthzFailure(class, reason int) {
	if class >= 0 && class < numClasses && reason > 0 && reason < numAuthz {
		r.api.authz[class][reason].Inc()
	}
}

// newSeries makes (once) the series of k, under the vault label cap.
func (a *apiMetrics) newSeries(k seriesKey, t *opTable) *series {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.series[k]; s != nil {
		return s
	}
	k.vault = strings.Clone(k.vault) // the caller's may point into a request's header
	label := a.vaultLabelLocked(k.vault)
	lk := seriesKey{vault: label, op: k.op, result: k.result}
	s := a.series[lk]
	if s == nil {
		op, res := t.names[k.op], resultNames[k.result]
		s = &series{count: a.reqs.WithLabelValues(label, op, res), latency: a.latency.WithLabelValues(label, op, res)}
		if k.result == ResultThrottled {
			s.throttled = a.throttled.WithLabelValues(label)
		}
		a.series[lk] = s
	}
	a.series[k] = s // a vault past the cap keeps its own key, to the shared series
	return s
}

// vaultLabelLocked is vault's label: its name while under the cap (or once given one).
func (a *apiMetrics) vaultLabelLocked(vault string) string {
	if strings.HasPrefix(vault, "_") {
		return vault
	}
	if _, ok := a.vaults[vault]; ok {
		return vault
	}
	if int64(len(a.vaults)) >= a.maxVaults.Load() {
		return VaultOther
	}
	a.vaults[vault] = struct{}{}
	return vault
}

// saturationCollector reads the vaults' budget use on each scrape.
type saturationCollector struct{ a *apiMetrics }

var descSaturation = prometheus.NewDesc("strongroom_vault_saturation_ratio",
	"Share of the vault's request budget (vault_requests_per_10s) in use now, 0 to 1 (Key Vault's SaturationShoeBox); vaults past the label cap report their maximum as _other.",
	[]string{"vault"}, nil)

func (c saturationCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descSaturation }

func (c saturationCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.a.saturation.Load()
	if f == nil {
		return
	}
	other, anyOther := 0.0, false
	seen := map[string]bool{}
	(*f)(func(vault string, used float64) {
		used = min(max(used, 0), 1)
		c.a.mu.RLock()
		_, labelled := c.a.vaults[vault]
		c.a.mu.RUnlock()
		if !labelled || seen[vault] || strings.HasPrefix(vault, "_") {
			other, anyOther = max(other, used), true
			return
		}
		seen[vault] = true
		ch <- prometheus.MustNewConstMetric(descSaturation, prometheus.GaugeValue, used, vault)
	})
	if anyOther {
		ch <- prometheus.MustNewConstMetric(descSaturation, prometheus.GaugeValue, other, VaultOther)
	}
}
