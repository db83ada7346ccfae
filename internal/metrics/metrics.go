// Package metrics holds Strongroom's Prometheus registry: request counts and latencies by route
// class (Instrument), and by vault, Key Vault operation and result as the API edge reports them
// (ObserveRequest: Key Vault's ServiceApiHit and ServiceApiLatency), throttled requests,
// authentication and authorization failures by reason, each vault's budget saturation, snapshot
// schedule and compaction outcomes, audit write failures, and whatever gauges the server
// registers (seal state, audit, storage, Raft). It is served on the API listener at /metrics.
//
// Invariants: no label value comes from a request's path, query or body, and none names a
// secret or a principal. Route classes, results, reasons and operation names are fixed sets
// (operations: the route table the server hands SetOperations); the one label from a request
// is the vault, and only for a vault that exists, up to a cap (SetMaxVaultLabels), past which
// vaults share one value. Instrumenting a request costs a few clock reads, counter increments
// and histogram observations on label children made once; the status-capturing writer is
// pooled, so a request allocates nothing once its series exist.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Route classes: the only values of the "class" label.
const (
	ClassData      = iota // Key Vault data plane ({vault}.{dns-suffix})
	ClassToken            // token issuance (/.../oauth2/...)
	ClassDiscovery        // OIDC discovery, JWKS, instance discovery
	ClassARM              // management plane (/subscriptions, /tenants, /providers, /metadata)
	ClassGraph            // Graph subset (/v1.0/...)
	ClassSys              // /sys/... (seal, unseal, init, keyring, compaction, cluster join)
	ClassHealth           // /health
	ClassMetrics          // /metrics
	ClassOther            // anything else
	numClasses
)

var classNames = [numClasses]string{"data", "token", "discovery", "arm", "graph", "sys", "health", "metrics", "other"}

// codes are the status codes with their own label value; any other is "other".
var codes = []int{200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503, 504}

// Registry is the server's metrics. It is safe for concurrent use.
type Registry struct {
	reg *prometheus.Registry

	reqs      [numClasses][]prometheus.Counter // by class, then code slot (last = "other")
	latency   [numClasses]prometheus.Observer
	codeSlot  [600]int8 // status -> index into reqs[class]; -1 = "other"
	writers   sync.Pool
	dnsSuffix string
	api       *apiMetrics // by vault, operation and result (requests.go)

	// SnapshotSuccess and SnapshotFailure count scheduled snapshots by result.
	SnapshotSuccess, SnapshotFailure prometheus.Counter
	// SnapshotLastSuccess is the Unix time of the last successful scheduled snapshot.
	SnapshotLastSuccess prometheus.Gauge
	// SnapshotLastBytes is the size of the last scheduled snapshot file.
	SnapshotLastBytes prometheus.Gauge
	// AuditWriteFailures counts audit records that could not be written.
	AuditWriteFailures prometheus.Counter
	// CompactionSuccess and CompactionFailure count store compactions (secure deletion).
	CompactionSuccess, CompactionFailure prometheus.Counter
}

// New makes a registry with the Go runtime and process collectors and the server's own metrics.
// dnsSuffix identifies data-plane hosts ("{vault}.{dns-suffix}").
func New(dnsSuffix string) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), dnsSuffix: strings.ToLower(dnsSuffix)}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strongroom_http_requests_total",
		Help: "HTTP requests answered, by route class and status code.",
	}, []string{"class", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strongroom_http_request_duration_seconds",
		Help:    "Time from receiving a request's headers to the end of its handler, by route class.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"class"})
	r.reg.MustRegister(reqs, lat)
	for i := range r.codeSlot {
		r.codeSlot[i] = -1
	}
	for i, c := range codes {
		r.codeSlot[c] = int8(i)
	}
	for cl := range numClasses {
		r.latency[cl] = lat.WithLabelValues(classNames[cl])
		for _, c := range codes {
			r.reqs[cl] = append(r.reqs[cl], reqs.WithLabelValues(classNames[cl], strconv.Itoa(c)))
		}
		r.reqs[cl] = append(r.reqs[cl], reqs.WithLabelValues(classNames[cl], "other"))
	}
	snaps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strongroom_snapshot_scheduled_total",
		Help: "Scheduled snapshots attempted on this node, by result.",
	}, []string{"result"})
	r.SnapshotSuccess, r.SnapshotFailure = snaps.WithLabelValues("success"), snaps.WithLabelValues("failure")
	r.SnapshotLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strongroom_snapshot_last_success_timestamp_seconds",
		Help: "Unix time of this node's last successful scheduled snapshot (0: none since start).",
	})
	r.SnapshotLastBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strongroom_snapshot_last_size_bytes",
		Help: "Size of this node's last successful scheduled snapshot file.",
	})
	r.AuditWriteFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strongroom_audit_write_failures_total",
		Help: "Audit records that could not be written (each one withheld or refused a response).",
	})
	compactions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strongroom_store_compactions_total",
		Help: "Compactions of this node's store file (secure deletion after purges), by result.",
	}, []string{"result"})
	r.CompactionSuccess, r.CompactionFailure = compactions.WithLabelValues("success"), compactions.WithLabelValues("failure")
	r.reg.MustRegister(snaps, r.SnapshotLastSuccess, r.SnapshotLastBytes, r.AuditWriteFailures, compactions)
	r.api = newAPIMetrics(r.reg)
	r.writers.New = func() any { return &statusWriter{} }
	return r
}

// MustRegister adds collectors (seal state, Raft) to the registry.
func (r *Registry) MustRegister(cs ...prometheus.Collector) { r.reg.MustRegister(cs...) }

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Class returns the route class of a request. It allocates nothing.
func (r *Registry) Class(req *http.Request) int {
	if r.isDataHost(req.Host) {
		return ClassData
	}
	p := req.URL.Path
	switch {
	case p == "/health":
		return ClassHealth
	case p == "/metrics":
		return ClassMetrics
	case strings.HasPrefix(p, "/sys/"):
		return ClassSys
	case strings.Contains(p, "/oauth2/"):
		return ClassToken
	case strings.Contains(p, "/.well-known/") || strings.Contains(p, "/discovery/"):
		return ClassDiscovery
	case strings.HasPrefix(p, "/v1.0/"):
		return ClassGraph
	case hasPrefixFold(p, "/subscriptions") || hasPrefixFold(p, "/tenants") || hasPrefixFold(p, "/providers") || hasPrefixFold(p, "/metadata"):
		return ClassARM
	}
	return ClassOther
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// isDataHost reports whether host is "{vault}.{dns-suffix}[:port]" with a one-label vault name.
func (r *Registry) isDataHost(host string) bool {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	n := len(host) - len(r.dnsSuffix)
	if n < 2 || host[n-1] != '.' || !strings.EqualFold(host[n:], r.dnsSuffix) {
		return false
	}
	return strings.IndexByte(host[:n-1], '.') < 0
}

// Instrument counts and times every request next serves.
func (r *Registry) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		class := r.Class(req)
		sw := r.writers.Get().(*statusWriter)
		sw.ResponseWriter, sw.status = w, 0
		next.ServeHTTP(sw, req)
		r.Observe(class, sw.status, time.Since(start))
		sw.ResponseWriter = nil
		r.writers.Put(sw)
	})
}

// Observe records one answered request.
func (r *Registry) Observe(class, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	slot := len(codes) // "other"
	if status > 0 && status < len(r.codeSlot) && r.codeSlot[status] >= 0 {
		slot = int(r.codeSlot[status])
	}
	r.reqs[class][slot].Inc()
	r.latency[class].Observe(d.Seconds())
}

// statusWriter remembers the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes flushes on (the cluster's reverse proxy streams through it).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
