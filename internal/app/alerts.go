package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom/strongroom/internal/alerts"
	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/service"
)

// startAlerts starts the alert engine, which watches every audit record rec receives, and
// returns the recorder the HTTP layer writes to (it passes Intend and Resolve through) and
// what the alert routes serve. It runs on every unseal; the engine stops with ctx.
func (s *server) startAlerts(ctx context.Context, svc *service.Service, rec httpapi.AuditLog) (httpapi.AuditLog, httpapi.AlertsAPI) {
	cfg := &s.cfg.Alerts
	if cfg.Disabled {
		return rec, nil
	}
	m := alertMetricsFor(s.metrics)
	log := s.log.With("component", "alerts")
	d := alerts.NewDispatcher(alerts.DispatchOptions{
		Webhooks: s.alertWebhooks(cfg, log), MaxAttempts: cfg.WebhookAttempts, Backoff: cfg.WebhookBackoff,
		Post:   outbound.New(outbound.Options{Allowed: cfg.AllowedPrefixes(), AllowHTTP: true, Timeout: orDefault(cfg.WebhookTimeout, 10*time.Second)}),
		Failed: m.webhookFailures.Inc, Log: log,
	})
	node := s.cfg.Cluster.NodeID
	if node == "" {
		node, _ = os.Hostname()
	}
	var now func() time.Time
	if cfg.TestClockFile != "" { // config refuses it outside STRONGROOM_DEV=1
		now = testClock(cfg.TestClockFile) // events.go
		log.Warn("alerts: using a test clock offset file", "file", cfg.TestClockFile)
	}
	eng := alerts.New(alerts.Options{Now: now,
		Rules: configuredRules(cfg), IsHoneytoken: service.Alerting(svc).IsHoneytoken, AuditHealthy: s.audit.Healthy, AuditTrouble: s.auditTrouble, Node: node,
		QueueSize: cfg.QueueSize, History: cfg.History, Dropped: m.dropped.Inc, Log: log,
		Fired: func(al alerts.Alert) {
			m.fired.WithLabelValues(string(al.Kind)).Inc()
			d.Send(al)
		},
	})
	s.alertEngine.Store(eng) // rotation failures reach it (rotation.go)
	api := &alertsAPI{eng: eng, svc: svc, log: log}
	service.Alerting(svc).Watch(func() { api.refresh(ctx) })
	api.refresh(ctx)
	d.Run(ctx)
	go eng.Run(ctx)
	return alertingAudit{AuditLog: rec, eng: eng}, api
}

// auditTrouble is the audit sink's trouble short of failing, for the AuditSink rule: a file
// system about to fill (the log would then fail closed and refuse every request).
func (s *server) auditTrouble() string {
	if st := s.audit.Stats(); st.LowDisk {
		return fmt.Sprintf("the audit log's file system is nearly full (%d bytes free); requests will be refused when it is", st.FreeBytes)
	}
	return ""
}

// alertingAudit hands every record the audit log wrote to the alert engine, after the write
// (a record that failed is not observed: its request is refused). Observing never blocks.
type alertingAudit struct {
	httpapi.AuditLog
	eng *alerts.Engine
}

func (a alertingAudit) Record(ctx context.Context, e audit.Event) error {
	if err := a.AuditLog.Record(ctx, e); err != nil {
		return err
	}
	a.eng.Observe(e)
	return nil
}

// alertsAPI is what the alert routes serve (httpapi.AlertsAPI).
type alertsAPI struct {
	eng *alerts.Engine
	svc *service.Service
	log interface {
		Error(msg string, args ...any)
	}
}

func (a *alertsAPI) ParseRule(name string, props []byte) (alerts.Rule, error) {
	return alerts.ParseRule(name, props)
}
func (a *alertsAPI) Rules() []alerts.RuleInfo      { return a.eng.Rules() }
func (a *alertsAPI) Alerts(max int) []alerts.Alert { return a.eng.Alerts(max) }

// refresh loads the rules set through the API into the engine (after any change on any node).
func (a *alertsAPI) refresh(ctx context.Context) {
	stored, err := service.Alerting(a.svc).Rules(ctx)
	if err != nil {
		a.log.Error("loading alert rules", "err", err)
		return
	}
	var rules []alerts.Rule
	for _, st := range stored {
		r, err := alerts.ParseRule(st.Name, st.Properties)
		if err != nil { // stored by a newer or older server: skipped, not fatal
			a.log.Error("skipping a stored alert rule", "rule", st.Name, "err", err)
			continue
		}
		rules = append(rules, r)
	}
	a.eng.SetOverrides(rules)
}

// configuredRules are the built-in rules with the config file's settings over their defaults.
func configuredRules(cfg *config.AlertsConfig) []alerts.Rule {
	sections := map[alerts.Kind]config.AlertRuleConfig{
		alerts.KindBruteForce: cfg.BruteForce, alerts.KindNewPattern: cfg.NewPattern, alerts.KindRateSpike: cfg.RateSpike,
		alerts.KindHoneytoken: cfg.Honeytoken, alerts.KindAuditSink: cfg.AuditSink, alerts.KindRotation: cfg.RotationFailure,
	}
	var out []alerts.Rule
	for _, k := range alerts.Kinds {
		r, c := alerts.Default(k), sections[k]
		if c.Enabled != nil {
			r.Enabled = *c.Enabled
		}
		if c.Threshold > 0 {
			r.Threshold = c.Threshold
		}
		if c.Window > 0 {
			r.Window = alerts.Duration(c.Window)
		}
		if c.LearningPeriod > 0 {
			r.LearningPeriod = alerts.Duration(c.LearningPeriod)
		}
		if c.Factor > 0 {
			r.Factor = c.Factor
		}
		if c.MinReads > 0 {
			r.MinReads = c.MinReads
		}
		if c.MaxSubjects > 0 {
			r.MaxSubjects = c.MaxSubjects
		}
		out = append(out, r)
	}
	return out
}

// alertWebhooks reads the webhooks' signing secrets; a webhook whose secret cannot be read,
// or whose destination is refused, is left out (and logged) rather than sent unsigned.
func (s *server) alertWebhooks(cfg *config.AlertsConfig, log interface{ Error(string, ...any) }) []alerts.Webhook {
	var out []alerts.Webhook
	for i, w := range cfg.Webhooks {
		secret, err := os.ReadFile(w.SecretFile)
		if err == nil && len(bytes.TrimSpace(secret)) == 0 {
			err = errors.New("the file is empty")
		}
		if err == nil {
			err = outbound.CheckURL(w.URL, outbound.Options{Allowed: cfg.AllowedPrefixes(), AllowHTTP: true})
		}
		if err != nil {
			log.Error("alert webhook left out", "webhook", i, "url", outbound.Redact(w.URL), "err", err)
			continue
		}
		out = append(out, alerts.Webhook{URL: w.URL, Secret: bytes.TrimRight(secret, " \t\r\n")})
	}
	return out
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// alertMetrics are registered once per registry: startAlerts runs on every unseal.
type alertMetrics struct {
	fired           *prometheus.CounterVec
	dropped         prometheus.Counter
	webhookFailures prometheus.Counter
}

var alertMetricsByRegistry sync.Map // *metrics.Registry -> *alertMetrics

func alertMetricsFor(reg *metrics.Registry) *alertMetrics {
	if m, ok := alertMetricsByRegistry.Load(reg); ok {
		return m.(*alertMetrics)
	}
	m := &alertMetrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strongroom_alerts_fired_total",
			Help: "Alerts fired on unusual access, by rule kind (BruteForce, NewPattern, RateSpike, Honeytoken, AuditSink)."}, []string{"rule"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "strongroom_alerts_dropped_records_total",
			Help: "Audit records the alert engine did not check because its queue was full."}),
		webhookFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "strongroom_alert_webhook_failures_total",
			Help: "Alerts given up on for one webhook (attempts spent or queue full)."}),
	}
	if prev, loaded := alertMetricsByRegistry.LoadOrStore(reg, m); loaded {
		return prev.(*alertMetrics)
	}
	for _, k := range alerts.Kinds { // every label value exists from the start
		m.fired.WithLabelValues(string(k))
	}
	reg.MustRegister(m.fired, m.dropped, m.webhookFailures)
	return m
}
