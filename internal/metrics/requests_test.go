package metrics_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/metrics"
)

func TestResult(t *testing.T) {
	cases := []struct {
		status int
		want   string
	}{
		{0, "success"}, {200, "success"}, {201, "success"}, {204, "success"}, {304, "success"},
		{400, "clienterror"}, {404, "clienterror"}, {409, "clienterror"}, {413, "clienterror"},
		{401, "unauthorized"}, {403, "forbidden"}, {429, "throttled"},
		{500, "servererror"}, {502, "servererror"}, {503, "servererror"}, {599, "servererror"},
	}
	for _, c := range cases {
		if got := metrics.ResultName(metrics.Result(c.status)); got != c.want {
			t.Errorf("Result(%d) = %s, want %s", c.status, got, c.want)
		}
	}
}

func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Each request lands in the series of its vault, operation and result; operations outside the
// table are "Other", requests not to a vault "_none"; failures count by their fixed reason.
func TestObserveRequest_Labels(t *testing.T) {
	r := metrics.New("vault.localhost")
	r.SetOperations([]string{"SecretGet", "SecretSet", "VaultGet", "Authentication"})
	ms := time.Millisecond
	for _, q := range []metrics.Request{
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 200, Duration: 3 * ms},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 200, Duration: 3 * ms},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 404},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretSet", Status: 429},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 403, Authz: metrics.AuthzFirewall},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 403, Authz: metrics.AuthzRBAC},
		{Class: metrics.ClassData, Vault: "kv1", Operation: "Authentication", Status: 401, Authn: metrics.AuthnMissingToken},
		{Class: metrics.ClassData, Vault: metrics.VaultUnknown, Operation: "SecretGet", Status: 401, Authn: metrics.AuthnInvalidToken},
		{Class: metrics.ClassARM, Operation: "VaultGet", Status: 500},
		{Class: metrics.ClassARM, Operation: "GET /subscriptions/s/secret-name", Status: 404},
		{Class: metrics.ClassToken, Operation: "", Status: 401, Authn: metrics.AuthnLockedOut},
	} {
		r.ObserveRequest(q)
	}
	body := scrape(t, r)
	for _, want := range []string{
		`strongroom_api_requests_total{operation="SecretGet",result="success",vault="kv1"} 2`,
		`strongroom_api_requests_total{operation="SecretGet",result="clienterror",vault="kv1"} 1`,
		`strongroom_api_requests_total{operation="SecretSet",result="throttled",vault="kv1"} 1`,
		`strongroom_api_requests_total{operation="SecretGet",result="forbidden",vault="kv1"} 2`,
		`strongroom_api_requests_total{operation="Authentication",result="unauthorized",vault="kv1"} 1`,
		`strongroom_api_requests_total{operation="SecretGet",result="unauthorized",vault="_unknown"} 1`,
		`strongroom_api_requests_total{operation="VaultGet",result="servererror",vault="_none"} 1`,
		`strongroom_api_requests_total{operation="Other",result="clienterror",vault="_none"} 1`,
		`strongroom_api_requests_total{operation="Other",result="unauthorized",vault="_none"} 1`,
		`strongroom_api_request_duration_seconds_count{operation="SecretGet",result="success",vault="kv1"} 2`,
		`strongroom_api_request_duration_seconds_bucket{operation="SecretGet",result="success",vault="kv1",le="0.005"} 2`,
		`strongroom_throttled_requests_total{vault="kv1"} 1`,
		`strongroom_authorization_failures_total{class="data",reason="firewall"} 1`,
		`strongroom_authorization_failures_total{class="data",reason="rbac"} 1`,
		`strongroom_authorization_failures_total{class="arm",reason="access_policy"} 0`,
		`strongroom_authentication_failures_total{class="data",reason="missing_token"} 1`,
		`strongroom_authentication_failures_total{class="data",reason="invalid_token"} 1`,
		`strongroom_authentication_failures_total{class="token",reason="locked_out"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, "secret-name") || strings.Contains(body, "/subscriptions") {
		t.Fatal("an operation outside the table reached a label")
	}
}

// Past the cap, vaults share "_other"; those labelled before keep their own.
func TestObserveRequest_VaultCap(t *testing.T) {
	r := metrics.New("vault.localhost")
	r.SetOperations([]string{"SecretGet"})
	r.SetMaxVaultLabels(3)
	for i := range 10 {
		r.ObserveRequest(metrics.Request{Class: metrics.ClassData, Vault: fmt.Sprintf("kv%d", i), Operation: "SecretGet", Status: 200})
	}
	r.ObserveRequest(metrics.Request{Class: metrics.ClassData, Vault: "kv0", Operation: "SecretGet", Status: 200})
	body := scrape(t, r)
	for _, want := range []string{
		`strongroom_api_requests_total{operation="SecretGet",result="success",vault="kv0"} 2`,
		`strongroom_api_requests_total{operation="SecretGet",result="success",vault="kv2"} 1`,
		`strongroom_api_requests_total{operation="SecretGet",result="success",vault="_other"} 7`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `vault="kv3"`) || strings.Contains(body, `vault="kv9"`) {
		t.Fatalf("a vault past the cap has its own label:\n%s", body)
	}
}

// Saturation is read on each scrape, for labelled vaults; others fold into "_other" (maximum).
func TestSaturation(t *testing.T) {
	r := metrics.New("vault.localhost")
	r.SetOperations([]string{"SecretGet"})
	r.SetMaxVaultLabels(1)
	if strings.Contains(scrape(t, r), "strongroom_vault_saturation_ratio{") {
		t.Fatal("saturation reported before a source was set")
	}
	r.ObserveRequest(metrics.Request{Class: metrics.ClassData, Vault: "kv1", Operation: "SecretGet", Status: 200})
	r.ObserveRequest(metrics.Request{Class: metrics.ClassData, Vault: "kv2", Operation: "SecretGet", Status: 200})
	r.SetSaturation(func(yield func(string, float64)) {
		yield("kv1", 0.25)
		yield("kv2", 1.5) // clamped
		yield("kv3", 0.5)
	})
	body := scrape(t, r)
	for _, want := range []string{`strongroom_vault_saturation_ratio{vault="kv1"} 0.25`, `strongroom_vault_saturation_ratio{vault="_other"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `vault="kv3"`) {
		t.Fatal("an unlabelled vault got a saturation label")
	}
}

// Observing a request whose series exist allocates nothing.
func TestObserveRequest_NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this package without -race too")
	}
	r := metrics.New("vault.localhost")
	r.SetOperations([]string{"SecretGet"})
	host := strings.Repeat("kv1", 1) // not a constant: as a request's header would be
	q := metrics.Request{Class: metrics.ClassData, Vault: host, Operation: "SecretGet", Status: 403, Authz: metrics.AuthzRBAC, Duration: time.Millisecond}
	r.ObserveRequest(q)
	if n := testing.AllocsPerRun(200, func() { r.ObserveRequest(q) }); n > 0 {
		t.Fatalf("observing a request allocates %.1f times", n)
	}
}
