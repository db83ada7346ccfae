package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

// Secrets sent in a query string (a client_secret, or any parameter we do not know), request
// bodies and bearer tokens never reach the audit file, on the token endpoint, the data plane
// and ARM; parameter names and the allowlisted values stay.
func TestServer_AuditRedactsQueryAndNeverRecordsBodiesOrTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	al, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestAPI(t, al)
	const bodyValue = "body-value-kept-out-of-audit"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.clientID},
		"client_secret": {e.clientSecret}, "scope": {"https://vault.azure.net/.default"}}
	reqs := []struct {
		name, method, target, body, ctype string
		auth                              bool
		status                            int
	}{
		{"token", "POST", "https://localhost:9/" + e.tenantID + "/oauth2/v2.0/token?client_secret=q-secret-token&zq1=q-unknown-token",
			form.Encode(), "application/x-www-form-urlencoded", false, 200},
		{"data-plane set", "PUT", "https://kv-audit.vault.localhost:9/secrets/s1?api-version=7.4&client_secret=q-secret-data&zq2=q-unknown-data",
			`{"value":"` + bodyValue + `"}`, "application/json", true, 200},
		{"data-plane get", "GET", "https://kv-audit.vault.localhost:9/secrets/s1?api-version=7.4&client_secret=q-secret-get&zq3=q-unknown-get",
			"", "", true, 200},
		{"arm", "GET", "https://localhost:9" + e.svc.SubscriptionScope() + "/resourcegroups?api-version=2021-04-01&client_secret=q-secret-arm&zq4=q-unknown-arm",
			"", "", true, 200},
	}
	armToken := e.armToken
	for _, c := range reqs {
		req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		if c.auth {
			tok := e.token
			if c.name == "arm" {
				tok = armToken
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
	}
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	if n := strings.Count(log, "\n"); n != len(reqs) {
		t.Fatalf("%d records, want %d:\n%s", n, len(reqs), log)
	}
	for _, leak := range []string{"q-secret-", "q-unknown-", bodyValue, e.clientSecret, e.token, armToken} {
		if strings.Contains(log, leak) {
			t.Errorf("audit log contains %q:\n%s", leak, log)
		}
	}
	// Names stay, values go, allowlisted values stay.
	wantQueries := []string{"client_secret=REDACTED&zq1=REDACTED", "api-version=7.4&client_secret=REDACTED&zq2=REDACTED",
		"api-version=7.4&client_secret=REDACTED&zq3=REDACTED", "api-version=2021-04-01&client_secret=REDACTED&zq4=REDACTED"}
	for i, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if _, q, _ := strings.Cut(rec.Properties.RequestURI, "?"); q != wantQueries[i] {
			t.Errorf("%s: recorded query %q, want %q", reqs[i].name, q, wantQueries[i])
		}
	}
	if _, err := audit.Verify(path); err != nil {
		t.Fatalf("chain: %v", err)
	}
}
