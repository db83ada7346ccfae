package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/auditsink"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/metrics"
)

// startAuditSinks wraps rec, the primary recorder, with the config's extra sinks (audit.sinks):
// each record rec has written is then queued for them, and a sink's trouble never reaches a
// request. With no sinks it returns rec and a no-op close. Call it once per process (it
// registers the sinks' metrics with reg, which may be nil); close stops the sinks.
func startAuditSinks(cfg config.AuditSinksConfig, rec audit.Recorder, reg *metrics.Registry, log *slog.Logger) (audit.Recorder, func() error, error) {
	if len(cfg.Syslog) == 0 && len(cfg.HTTP) == 0 {
		return rec, func() error { return nil }, nil
	}
	var outs []auditsink.Output
	closeAll := func() {
		for _, o := range outs {
			o.Sink.Close()
		}
	}
	for i, sc := range cfg.Syslog {
		facility, err := config.SyslogFacility(sc.Facility)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.sinks.syslog[%d]: %w", i, err)
		}
		tc, err := sinkTLS(sc.CAFile)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.sinks.syslog[%d].ca_file: %w", i, err)
		}
		s, err := auditsink.NewSyslog(auditsink.SyslogConfig{Network: sc.Network, Address: sc.Address, Facility: facility, Hostname: sc.Hostname, TLS: tc})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.sinks.syslog[%d]: %w", i, err)
		}
		outs = append(outs, auditsink.Output{Sink: s, Options: sinkOptions(sc.Queue)})
	}
	for i, hc := range cfg.HTTP {
		tc, err := sinkTLS(hc.CAFile)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.sinks.http[%d].ca_file: %w", i, err)
		}
		h := http.Header{}
		for k, v := range hc.Headers {
			h.Set(k, v)
		}
		s, err := auditsink.NewHTTP(auditsink.HTTPConfig{URL: hc.URL, Header: h, TLS: tc})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.sinks.http[%d]: %w", i, err)
		}
		outs = append(outs, auditsink.Output{Sink: s, Options: sinkOptions(hc.Queue)})
	}
	tee := auditsink.New(rec, log.With("component", "audit-sinks"), outs...)
	if reg != nil {
		reg.MustRegister(sinkCollector{tee})
	}
	return tee, tee.Close, nil
}

func sinkOptions(q config.SinkQueueConfig) auditsink.Options {
	return auditsink.Options{QueueSize: q.QueueSize, BatchSize: q.BatchSize, FlushInterval: q.FlushInterval,
		SendTimeout: q.Timeout, MaxAttempts: q.MaxAttempts, MaxBackoff: q.MaxBackoff}
}

// sinkTLS is the TLS configuration that trusts caFile's certificates ("" = the system roots).
func sinkTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// sinkCollector exports the extra sinks' counters, labelled by sink (from the config file: a
// bounded set, without paths, queries or credentials).
type sinkCollector struct{ tee *auditsink.Tee }

var (
	sinkSentDesc     = prometheus.NewDesc("strongroom_audit_extra_sink_records_sent_total", "Audit records an extra sink (audit.sinks) delivered.", []string{"sink"}, nil)
	sinkDroppedDesc  = prometheus.NewDesc("strongroom_audit_extra_sink_records_dropped_total", "Audit records an extra sink lost: its queue was full, or a batch ran out of attempts or was refused.", []string{"sink"}, nil)
	sinkFailuresDesc = prometheus.NewDesc("strongroom_audit_extra_sink_send_failures_total", "Failed sends to an extra audit sink (each retry counts).", []string{"sink"}, nil)
	sinkQueuedDesc   = prometheus.NewDesc("strongroom_audit_extra_sink_queue_records", "Audit records waiting for an extra sink.", []string{"sink"}, nil)
)

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinkSentDesc
	ch <- sinkDroppedDesc
	ch <- sinkFailuresDesc
	ch <- sinkQueuedDesc
}

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]int{}
	for _, st := range c.tee.Stats() {
		name := st.Name
		if n := seen[st.Name]; n > 0 { // two sinks to one destination
			name = fmt.Sprintf("%s#%d", st.Name, n+1)
		}
		seen[st.Name]++
		ch <- prometheus.MustNewConstMetric(sinkSentDesc, prometheus.CounterValue, float64(st.Sent), name)
		ch <- prometheus.MustNewConstMetric(sinkDroppedDesc, prometheus.CounterValue, float64(st.Dropped), name)
		ch <- prometheus.MustNewConstMetric(sinkFailuresDesc, prometheus.CounterValue, float64(st.Failures), name)
		ch <- prometheus.MustNewConstMetric(sinkQueuedDesc, prometheus.GaugeValue, float64(st.Queued), name)
	}
}
