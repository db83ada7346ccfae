package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/metrics/scrape"
)

// registerGauges adds the server's state to the registry: seal state and audit health (a
// cluster node's Raft collector is registered when its store opens, storage.go).
func (s *server) registerGauges() {
	s.metrics.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_sealed", Help: "1 while this server is sealed (or uninitialized), 0 while it serves."},
			func() float64 { return b2f(s.sys.Sealed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_initialized", Help: "1 once the data folder holds a keyring."},
			func() float64 { return b2f(s.sys.Status().Initialized) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_audit_healthy", Help: "1 while audit records can be written; 0 once the sink failed (requests are refused)."},
			func() float64 { return b2f(s.audit.Healthy()) }),
	)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scrapeOptions serves /metrics with the serving state's token check (internal/metrics/scrape).
func (s *server) scrapeOptions() scrape.Options {
	return scrape.Options{Registry: s.metrics, Unauthenticated: s.cfg.Metrics.Unauthenticated, PublicURL: s.cfg.PublicURL,
		Serving: func() (*identity.Service, func(context.Context) error) {
			if u := s.sys.Serving(); u != nil {
				return u.Identities, u.AuthorizeMetrics
			}
			return nil, nil
		}}
}

// auditLog is the audit log as request handlers use it: failures are counted.
func (s *server) auditLog() countingAudit {
	return countingAudit{Log: s.audit, failures: s.metrics.AuditWriteFailures}
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
