package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/metrics"
)

func TestRegistry_Class(t *testing.T) {
	r := metrics.New("vault.localhost")
	cases := []struct {
		host, path string
		want       int
	}{
		{"kv1.vault.localhost:8443", "/secrets/db-password", metrics.ClassData},
		{"KV1.Vault.Localhost", "/secrets/x", metrics.ClassData},
		{"localhost:8443", "/health", metrics.ClassHealth},
		{"localhost:8443", "/metrics", metrics.ClassMetrics},
		{"localhost:8443", "/sys/seal-status", metrics.ClassSys},
		{"localhost:8443", "/tenant-id/oauth2/v2.0/token", metrics.ClassToken},
		{"localhost:8443", "/tenant-id/v2.0/.well-known/openid-configuration", metrics.ClassDiscovery},
		{"localhost:8443", "/subscriptions/s/resourceGroups/rg", metrics.ClassARM},
		{"localhost:8443", "/SUBSCRIPTIONS/s", metrics.ClassARM},
		{"localhost:8443", "/v1.0/me", metrics.ClassGraph},
		{"localhost:8443", "/favicon.ico", metrics.ClassOther},
		{"a.b.vault.localhost", "/secrets/x", metrics.ClassOther},
		{"vault.localhost", "/secrets/x", metrics.ClassOther},
		{"[::1]:8443", "/health", metrics.ClassHealth},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "https://"+c.host+c.path, nil)
		req.Host = c.host
		if got := r.Class(req); got != c.want {
			t.Errorf("Class(%s%s) = %d, want %d", c.host, c.path, got, c.want)
		}
	}
}

// Labels are the route class and a status from a fixed set: nothing from the request reaches
// the scrape.
func TestRegistry_Instrument_NoRequestDataInLabels(t *testing.T) {
	r := metrics.New("vault.localhost")
	h := r.Instrument(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "missing") {
			w.WriteHeader(404)
			return
		}
		if strings.Contains(req.URL.Path, "teapot") {
			w.WriteHeader(418)
			return
		}
		w.Write(okBody)
	}))
	for _, p := range []string{"/secrets/supersecret-name", "/secrets/missing-name", "/secrets/teapot-name"} {
		req := httptest.NewRequest("GET", "https://kv-hidden.vault.localhost"+p+"?value=hunter2", nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, bad := range []string{"supersecret", "missing-name", "kv-hidden", "hunter2", "teapot"} {
		if strings.Contains(body, bad) {
			t.Fatalf("scrape contains %q", bad)
		}
	}
	for _, want := range []string{
		`strongroom_http_requests_total{class="data",code="200"} 1`,
		`strongroom_http_requests_total{class="data",code="404"} 1`,
		`strongroom_http_requests_total{class="data",code="other"} 1`,
		`strongroom_http_request_duration_seconds_count{class="data"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("scrape lacks %q:\n%s", want, body)
		}
	}
}

// Instrumenting a request allocates nothing. The race detector's instrumentation allocates, so
// this runs only without -race; .ci/run has a non-race pass for it (test/ci_test.go checks that).
func TestRegistry_Instrument_NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this package without -race too")
	}
	r := metrics.New("vault.localhost")
	h := r.Instrument(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { w.Write(okBody) }))
	req := httptest.NewRequest("GET", "https://kv1.vault.localhost/secrets/x", nil)
	w := discardWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n > 0 {
		t.Fatalf("instrumenting a request allocates %.1f times", n)
	}
}

var okBody = []byte("ok")

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
