package app

import (
	"context"
	"net/http"
	"strings"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/service"
)

// GET /metrics on the API listener is node-local (never forwarded to the leader) and, unless
// metrics.unauthenticated is set, needs a management-plane bearer token whose principal may
// read at scope "/" (action Strongroom/operator/metrics/read). While the server is sealed no
// token can be verified, so it answers 503 then unless unauthenticated. Scrapes are not audited
// (like /health); labels never carry names from requests (internal/metrics).

// newMetrics builds the registry with the server's gauges: seal state, audit health and, in
// cluster mode, this node's Raft state.
func (c *core) newMetrics() *metrics.Registry {
	reg := metrics.New(c.cfg.DNSSuffix)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_sealed", Help: "1 while this server is sealed (or uninitialized), 0 while it serves."},
			func() float64 { return b2f(c.sealed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_initialized", Help: "1 once the data folder holds a keyring."},
			func() float64 { return b2f(c.status().Initialized) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_audit_healthy", Help: "1 while audit records can be written; 0 once the sink failed (requests are refused)."},
			func() float64 { return b2f(c.audit.Healthy()) }),
	)
	return reg // a cluster node's Raft collector is registered when its store opens (storage.go)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// withMetrics counts and times every request and serves GET /metrics in front of next.
func (c *core) withMetrics(next http.Handler) http.Handler {
	reg := c.metrics
	scrape := reg.Handler()
	return reg.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && reg.Class(r) == metrics.ClassMetrics {
			if c.authorizeMetrics(w, r) {
				scrape.ServeHTTP(w, r)
			}
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// armAudiences are the management-plane token audiences (as internal/httpapi accepts them).
func (c *core) armAudiences() []string {
	return []string{"https://management.core.windows.net/", "https://management.core.windows.net",
		"https://management.azure.com/", "https://management.azure.com", c.cfg.PublicURL + "/", c.cfg.PublicURL}
}

// authorizeMetrics checks the scrape's bearer token; on refusal it has answered.
func (c *core) authorizeMetrics(w http.ResponseWriter, r *http.Request) bool {
	if c.cfg.Metrics.Unauthenticated {
		return true
	}
	u := c.active.Load()
	if u == nil {
		w.Header().Set("Retry-After", "5")
		c.fail(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Strongroom is sealed: /metrics needs a token, which cannot be verified while sealed (or set metrics.unauthenticated).")
		return false
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+c.cfg.PublicURL+`", resource="https://management.core.windows.net/"`)
		c.fail(w, http.StatusUnauthorized, "AuthenticationFailed", "/metrics requires a bearer token for the management plane.")
		return false
	}
	claims, err := u.ids.Verify(r.Context(), strings.TrimSpace(raw), c.armAudiences())
	if err != nil {
		c.fail(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	}
	p := claims.Principal
	ctx := service.WithCaller(r.Context(), service.Caller{ObjectID: p.ObjectID, AppID: p.AppID, TenantID: p.TenantID, Type: p.Type})
	if err := u.svc.AuthorizeMetrics(ctx); err != nil {
		c.fail(w, http.StatusForbidden, "AuthorizationFailed", "The caller may not read metrics (action Strongroom/operator/metrics/read at scope /).")
		return false
	}
	return true
}

// auditLog is the audit log as request handlers use it: failures are counted.
func (c *core) auditLog() countingAudit {
	return countingAudit{Log: c.audit, failures: c.metrics.AuditWriteFailures}
}

// countingAudit counts audit records that could not be written.
type countingAudit struct {
	*audit.Log
	failures prometheus.Counter
}

func (a countingAudit) Record(ctx context.Context, e audit.Event) error {
	err := a.Log.Record(ctx, e)
	if err != nil {
		a.failures.Inc()
	}
	return err
}

// raftCollector reads this node's Raft state on each scrape.
type raftCollector struct{ cs *cluster.Store }

var (
	raftRoles = []string{"leader", "follower", "candidate", "non-voter", "dr-replica", "shutdown"}
	descRole  = prometheus.NewDesc("strongroom_raft_role", "1 for this node's current Raft role, 0 for the others.", []string{"role"}, nil)
	descGauge = map[string]*prometheus.Desc{
		"term":          prometheus.NewDesc("strongroom_raft_term", "Current Raft term.", nil, nil),
		"commit":        prometheus.NewDesc("strongroom_raft_commit_index", "Highest log index this node knows to be committed.", nil, nil),
		"applied":       prometheus.NewDesc("strongroom_raft_applied_index", "Highest log index applied to this node's state machine file.", nil, nil),
		"last_log":      prometheus.NewDesc("strongroom_raft_last_log_index", "Highest index in this node's log.", nil, nil),
		"snapshot":      prometheus.NewDesc("strongroom_raft_last_snapshot_index", "Index of this node's newest Raft snapshot.", nil, nil),
		"last_contact":  prometheus.NewDesc("strongroom_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", nil, nil),
		"peers":         prometheus.NewDesc("strongroom_raft_peers", "Members in the Raft configuration (voters and non-voters).", nil, nil),
		"voters":        prometheus.NewDesc("strongroom_raft_voters", "Voters in the Raft configuration.", nil, nil),
		"leader_known":  prometheus.NewDesc("strongroom_raft_leader_known", "1 when this node knows a leader.", nil, nil),
		"fsm_pending":   prometheus.NewDesc("strongroom_raft_fsm_pending", "Committed entries waiting to be applied on this node.", nil, nil),
		"snapshot_term": prometheus.NewDesc("strongroom_raft_last_snapshot_term", "Term of this node's newest Raft snapshot.", nil, nil),
	}
)

func (rc *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRole
	for _, d := range descGauge {
		ch <- d
	}
}

func (rc *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := rc.cs.Node().Status()
	for _, role := range raftRoles {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, b2f(st.Role == role), role)
	}
	r := rc.cs.Store.Raft()
	stats := r.Stats()
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(descGauge[name], prometheus.GaugeValue, v)
	}
	gauge("term", float64(st.Term))
	gauge("commit", float64(st.CommitIndex))
	gauge("applied", float64(st.AppliedIndex))
	gauge("last_log", float64(r.LastIndex()))
	gauge("snapshot", float64(st.LastSnapshotIndex))
	gauge("snapshot_term", parseStat(stats["last_snapshot_term"]))
	gauge("fsm_pending", parseStat(stats["fsm_pending"]))
	gauge("last_contact", float64(st.LastContactMs)/1000)
	gauge("leader_known", b2f(st.Leader != ""))
	if f := r.GetConfiguration(); f.Error() == nil {
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		gauge("peers", float64(len(f.Configuration().Servers)))
		gauge("voters", float64(voters))
	}
}

func parseStat(s string) float64 {
	var v float64
	for _, c := range s {
		if c < '0' || c > '9' {
			return v
		}
		v = v*10 + float64(c-'0')
	}
	return v
}
