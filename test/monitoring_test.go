package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"gopkg.in/yaml.v3"

	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/testenv"
)

// /metrics needs a management-plane token whose principal holds Microsoft.Insights/metrics/read
// at "/": none is 401, a principal without a role or with only a Key Vault role is 403, one with
// Monitoring Reader is 200. The scrape counts requests by vault, operation and result, and
// refusals by reason, and holds no secret name or value and no principal id.
func TestMetrics_ScrapeNeedsMonitoringRole(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	kv := e.createVault(t, "rg-monitoring", "kv-monitored", nil)
	const secretName, secretValue = "monitored-secret-name", "monitored-secret-value-canary"
	if _, err := kv.SetSecret(ctx, secretName, azsecrets.SetSecretParameters{Value: to.Ptr(secretValue)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.GetSecret(ctx, secretName, "", nil); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.rawCall(t, "GET", "kv-monitored", "/secrets/monitored-missing-name?api-version=7.4", nil, true); status != 404 {
		t.Fatalf("missing secret: HTTP %d", status)
	}
	if status, _, _ := e.rawCall(t, "GET", "kv-monitored", "/secrets/"+secretName+"?api-version=7.4", nil, false); status != 401 {
		t.Fatalf("no token: HTTP %d", status)
	}
	if status, _, _ := e.rawCall(t, "GET", "kv-no-such-vault", "/secrets/"+secretName+"?api-version=7.4", nil, true); status < 400 {
		t.Fatalf("a vault that does not exist: HTTP %d", status)
	}

	if status, _ := scrape(t, e.hc, e.srv.URL, ""); status != 401 {
		t.Fatalf("/metrics without a token: HTTP %d, want 401", status)
	}
	if status, _ := scrape(t, e.hc, e.srv.URL, "not-a-token"); status != 401 {
		t.Fatalf("/metrics with a bad token: HTTP %d, want 401", status)
	}
	p := e.newPrincipal(t, "metrics-scraper")
	armToken := func() string {
		tok, err := p.cred.GetToken(ctx, policyScopes("https://management.core.windows.net//.default"))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	if status, body := scrape(t, e.hc, e.srv.URL, armToken()); status != 403 || !strings.Contains(body, "AuthorizationFailed") {
		t.Fatalf("/metrics by a principal without a role: HTTP %d %s, want 403 AuthorizationFailed", status, body)
	}
	admin := e.rbacClients(t, e.cred)
	if _, err := admin.assign(ctx, "/", rbac.KeyVaultReaderID, p.objectID); err != nil {
		t.Fatal(err)
	}
	if status, _ := scrape(t, e.hc, e.srv.URL, armToken()); status != 403 {
		t.Fatalf("/metrics by a Key Vault Reader: HTTP %d, want 403", status)
	}
	if _, err := admin.assign(ctx, "/", rbac.MonitoringReaderID, p.objectID); err != nil {
		t.Fatal(err)
	}
	status, body := scrape(t, e.hc, e.srv.URL, armToken())
	if status != 200 {
		t.Fatalf("/metrics by a Monitoring Reader: HTTP %d %s", status, body)
	}
	for _, series := range []string{
		`strongroom_api_requests_total{operation="SecretSet",result="success",vault="kv-monitored"}`,
		`strongroom_api_requests_total{operation="SecretGet",result="success",vault="kv-monitored"}`,
		`strongroom_api_requests_total{operation="SecretGet",result="clienterror",vault="kv-monitored"}`,
		`strongroom_api_requests_total{operation="Authentication",result="unauthorized",vault="kv-monitored"}`,
		`strongroom_api_requests_total{operation="VaultPut",result="success",vault="_none"}`,
		`strongroom_api_request_duration_seconds_count{operation="SecretGet",result="success",vault="kv-monitored"}`,
		`strongroom_authentication_failures_total{class="data",reason="missing_token"}`,
		`strongroom_authentication_failures_total{class="metrics",reason="missing_token"}`,
		`strongroom_authentication_failures_total{class="metrics",reason="invalid_token"}`,
		`strongroom_authorization_failures_total{class="metrics",reason="rbac"}`,
		`strongroom_store_file_size_bytes`,
		`strongroom_store_healthy`,
		`strongroom_filesystem_free_bytes{dir="audit"}`,
	} {
		if v := metricValue(body, series); v < 1 {
			t.Errorf("scrape: %s = %v, want >= 1", series, v)
		}
	}
	if v := metricValue(body, `strongroom_authorization_failures_total{class="metrics",reason="rbac"}`); v != 2 {
		t.Errorf("refused scrapes counted %v times, want 2", v)
	}
	// The vault that does not exist has no label of its own.
	if strings.Contains(body, "kv-no-such-vault") || !strings.Contains(body, `vault="_unknown"`) {
		t.Errorf("a vault that does not exist: %s", grepLines(body, "strongroom_api_requests_total"))
	}
	for _, bad := range []string{secretName, secretValue, "monitored-missing-name", p.objectID, p.appID, p.secret,
		e.srv.Admin.ClientID, e.srv.Admin.ClientSecret, e.objectIDOf(t, e.cred)} {
		if bad != "" && strings.Contains(body, bad) {
			t.Errorf("scrape holds %q", bad)
		}
	}
}

// The shipped Prometheus rules and Grafana dashboard parse (promtool, when installed; CI installs
// Debian's prometheus and requires it) and name only metrics a real server exports: a one-node
// cluster (so the Raft gauges exist) with metrics.public (served without a token) and a small
// vault budget (so throttling and saturation have series). The README describes every metric
// family the server exports and every alert.
func TestMonitoringDocs_ReferOnlyToExportedMetrics(t *testing.T) {
	ctx := context.Background()
	cfg := writeConfig(t, "metrics:\n  public: true\n")
	c := testenv.StartCluster(t, &testenv.ClusterOptions{Size: 1, Extra: []string{"--config", cfg, "--vault-requests-per-10s=5"}})
	node := c.Leader(20 * time.Second)
	e := clusterEnv(t, c, node)
	kv := e.createVault(t, "rg-monitoring-docs", "kv-docs", nil)
	if _, err := kv.SetSecret(ctx, "docs-secret", azsecrets.SetSecretParameters{Value: to.Ptr("docs-value")}, nil); err != nil {
		t.Fatal(err)
	}
	throttled := false
	for i := 0; i < 50 && !throttled; i++ {
		status, _, _ := e.rawCall(t, "GET", "kv-docs", "/secrets/docs-secret?api-version=7.4", nil, true)
		throttled = status == http.StatusTooManyRequests
	}
	if !throttled {
		t.Fatal("no request was throttled with a budget of 5 per 10 s")
	}
	status, body := scrape(t, e.hc, node.URL, "")
	if status != 200 {
		t.Fatalf("public /metrics without a token: HTTP %d", status)
	}
	exported := exportedNames(body)
	for _, want := range []string{"strongroom_raft_leader_known", "strongroom_vault_saturation_ratio", "strongroom_throttled_requests_total", "strongroom_api_request_duration_seconds_bucket"} {
		if !exported[want] {
			t.Fatalf("the scrape lacks %s:\n%s", want, body)
		}
	}

	dir := filepath.Join("..", "docs", "monitoring")
	rulesFile := filepath.Join(dir, "prometheus-rules.yml")
	exprs, records, alerts := readRules(t, rulesFile)
	known := map[string]bool{"up": true}
	for n := range exported {
		known[n] = true
	}
	for _, r := range records {
		known[r] = true
	}
	checkExprs := func(where string, exprs []string) {
		for _, expr := range exprs {
			names := promqlMetricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: %q names no metric", where, expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("%s: %q names %s, which the server does not export", where, expr, n)
				}
			}
		}
	}
	checkExprs(rulesFile, exprs)
	dashExprs, dashQueries := readDashboard(t, filepath.Join(dir, "grafana-dashboard.json"))
	checkExprs("grafana-dashboard.json", dashExprs)
	checkExprs("grafana-dashboard.json templating", dashQueries)

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range exported {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(n, "strongroom_") && !strings.Contains(string(readme), "`"+family+"`") {
			t.Errorf("README.md does not describe %s", family)
		}
	}
	for _, a := range alerts {
		if !strings.Contains(string(readme), "`"+a+"`") {
			t.Errorf("README.md does not describe alert %s", a)
		}
	}
	runPromtool(t, dir, dashExprs)
}

// runPromtool checks the rules and the dashboard's queries (as recording rules) and runs the
// rules' unit tests. Without promtool it skips, unless STRONGROOM_REQUIRE_ALL=1 (CI installs
// Debian's prometheus package).
func runPromtool(t *testing.T, dir string, dashExprs []string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
			t.Fatal("promtool not found (required: STRONGROOM_REQUIRE_ALL=1; install Debian's prometheus package)")
		}
		t.Skip("promtool not found: the metric names were checked, the syntax was not (set STRONGROOM_REQUIRE_ALL=1 to make this a failure)")
	}
	var rules []map[string]string
	for i, e := range dashExprs {
		e = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$vault", ".*").Replace(e)
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query:%d", i), "expr": e})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dashRules := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(dashRules, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus-rules.yml"},
		{"check", "rules", dashRules},
		{"test", "rules", "prometheus-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// exportedNames are the sample names a scrape's families have (a histogram's _bucket, _sum and
// _count), from its # TYPE lines.
func exportedNames(body string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		switch name, typ := f[2], f[3]; typ {
		case "histogram":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "summary":
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// readRules returns a rules file's expressions, recorded names and alert names.
func readRules(t *testing.T, path string) (exprs, records, alerts []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			if r.Record != "" {
				records = append(records, r.Record)
			}
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(alerts) < 10 || len(exprs) != len(records)+len(alerts) {
		t.Fatalf("%s: %d alerts, %d records, %d expressions", path, len(alerts), len(records), len(exprs))
	}
	return exprs, records, alerts
}

// readDashboard returns a dashboard's panel queries and its template variables' queries (a
// label_values(selector, label) query is checked as its selector).
func readDashboard(t *testing.T, path string) (exprs, queries []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, p := range doc.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range doc.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: template query %s: %v", path, v.Query, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("%s: template query %q is not label_values(selector, label)", path, q.Query)
		}
		queries = append(queries, m[1])
	}
	if len(exprs) < 20 {
		t.Fatalf("%s: only %d queries", path, len(exprs))
	}
	return exprs, queries
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// promqlMetricNames extracts the metric names a PromQL expression selects: identifiers that are
// not function or aggregation calls, keywords, label names (inside {} or grouping clauses),
// strings, durations or numbers.
func promqlMetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // a number's exponent or a duration's unit
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if isAggregation(name) && (strings.HasPrefix(rest, "by") || strings.HasPrefix(rest, "without")) {
			continue
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isAggregation(name string) bool {
	switch name {
	case "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group":
		return true
	}
	return false
}

func TestPromqlMetricNames(t *testing.T) {
	cases := map[string]string{
		`strongroom_sealed == 1`: "strongroom_sealed",
		`sum by (instance, vault) (rate(strongroom_api_requests_total{result="servererror",vault=~"kv.*"}[5m])) / sum by (instance) (rate(strongroom_api_requests_total[5m]))`: "strongroom_api_requests_total",
		`histogram_quantile(0.99, sum by (le, operation) (rate(strongroom_api_request_duration_seconds_bucket[5m])))`:                                                          "strongroom_api_request_duration_seconds_bucket",
		`time() - strongroom_snapshot_last_success_timestamp_seconds > 6 * 3600 and up{job=~"x"} == 0`:                                                                         "strongroom_snapshot_last_success_timestamp_seconds up",
		`strongroom_filesystem_free_bytes / on(instance, dir) strongroom_filesystem_size_bytes < 1e-3`:                                                                         "strongroom_filesystem_free_bytes strongroom_filesystem_size_bytes",
		`sum without (reason) (increase(strongroom:api_requests:rate5m[1h] offset 1d))`:                                                                                        "strongroom:api_requests:rate5m",
	}
	for expr, want := range cases {
		if got := strings.Join(promqlMetricNames(expr), " "); got != want {
			t.Errorf("promqlMetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// A real Prometheus (Debian's, when installed) scrapes a server as docs/monitoring/README.md
// says: OAuth2 client credentials of a principal holding Monitoring Reader at "/", the server's
// CA, and the target reported up with Strongroom's samples in its database.
func TestMetrics_RealPrometheusScrapesWithClientCredentials(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
			t.Fatal("prometheus not found (required: STRONGROOM_REQUIRE_ALL=1; install Debian's prometheus package)")
		}
		t.Skip("prometheus not found (set STRONGROOM_REQUIRE_ALL=1 to make this a failure)")
	}
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.newPrincipal(t, "prometheus")
	if _, err := e.rbacClients(t, e.cred).assign(ctx, "/", rbac.MonitoringReaderID, p.objectID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(p.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(e.srv.DataDir, "tls", "ca.pem")
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: strongroom
    scheme: https
    tls_config: {ca_file: %q}
    oauth2:
      client_id: %q
      client_secret_file: %q
      token_url: %q
      scopes: ["https://management.core.windows.net//.default"]
      tls_config: {ca_file: %q}
    static_configs:
      - targets: [%q]
`, ca, p.appID, secretFile, e.srv.URL+"/"+e.srv.Admin.TenantID+"/oauth2/v2.0/token", ca, strings.TrimPrefix(e.srv.URL, "https://"))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+addr)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var doc struct {
			Data struct {
				Result []struct{ Value []any } `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&doc) != nil || len(doc.Data.Result) == 0 || len(doc.Data.Result[0].Value) != 2 {
			return 0, false
		}
		s, _ := doc.Data.Result[0].Value[1].(string)
		var v float64
		_, err = fmt.Sscan(s, &v)
		return v, err == nil
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		up, ok1 := query(`up{job="strongroom"}`)
		sealed, ok2 := query(`strongroom_sealed{job="strongroom"}`)
		if ok1 && ok2 && up == 1 && sealed == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape the server (up %v): %s", up, logs.String())
		}
	}
}
