package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/metrics"
)

type okRecorder struct{}

func (okRecorder) Record(context.Context, audit.Event) error { return nil }
func (okRecorder) Healthy() bool                             { return true }

// TestStartAuditSinks builds the config's sinks, delivers a record to an HTTP receiver with its
// header, and exports the counters without the URL's path or query.
func TestStartAuditSinks(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Collector-Key") == "k1" {
			got.Store(string(b))
		}
	}))
	defer srv.Close()
	cfg := config.AuditSinksConfig{HTTP: []config.HTTPSinkConfig{{URL: srv.URL + "/in?sig=abc", InsecureHTTP: true,
		Headers: map[string]string{"X-Collector-Key": "k1"}, Queue: config.SinkQueueConfig{FlushInterval: 10 * time.Millisecond}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("vault.localhost")
	rec, closeSinks, err := startAuditSinks(cfg, okRecorder{}, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks()
	if err := rec.Record(context.Background(), audit.Event{Operation: "SecretGet", Status: 200, RequestID: "req-42"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s, _ := got.Load().(string); !strings.Contains(s, `"requestId":"req-42"`) {
		t.Fatalf("the receiver got %q", s)
	}
	w := httptest.NewRecorder()
	reg.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if !strings.Contains(body, `strongroom_audit_extra_sink_records_sent_total{sink="http:`+srv.URL+`"} 1`) || strings.Contains(body, "sig=abc") {
		t.Errorf("metrics:\n%s", grepLines(body, "extra_sink"))
	}

	none, closeNone, err := startAuditSinks(config.AuditSinksConfig{}, okRecorder{}, nil, nil)
	if err != nil || none != (okRecorder{}) || closeNone() != nil {
		t.Errorf("no sinks: %v, %v", none, err)
	}
	bad := config.AuditSinksConfig{Syslog: []config.SyslogSinkConfig{{Network: "tls", Address: "x:1", CAFile: "/nonexistent/ca.pem"}}}
	if _, _, err := startAuditSinks(bad, okRecorder{}, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("a missing CA file: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
