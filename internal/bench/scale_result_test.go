package bench_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/bench"
)

func samplePoint(secrets int) bench.ScalePoint {
	cached := int64(0)
	return bench.ScalePoint{
		Secrets: secrets, Written: secrets, PopulateSec: 2, WritesPerSec: 3141, VaultsCreated: 1, VaultsSec: 0.25,
		Reads: bench.ReadStats{OpsPerSec: 8340, ServerCPUUsPerOp: 108, P50Ms: 7.1, P99Ms: 20.5},
		ListFull: bench.ListStats{VaultSecrets: secrets, PendingLogOps: 20_000, PendingLogBytes: 3 << 20,
			First: bench.LatencyStats{Samples: 50, P50Ms: 38.25}, Middle: &bench.LatencyStats{Samples: 50, P50Ms: 39.5}},
		ListEmpty:    bench.ListStats{VaultSecrets: secrets, First: bench.LatencyStats{P50Ms: 0.81}, MiddleNote: "the vault fits on one page"},
		IdleCPUCores: 1.1,
		Memory:       bench.MemoryStats{PeakRSS: 1666 << 20, PeakAnon: 1894 << 20, HWM: 2000 << 20},
		RestartWarm:  bench.RestartStats{Cache: "warm", FirstGetSec: 17.8, ListeningSec: 17.7},
		RestartCold:  &bench.RestartStats{Cache: "fadvise", FirstGetSec: 72.5, CachedAfterDropBytes: &cached},
	}
}

func TestScaleResult_Format(t *testing.T) {
	large := samplePoint(1_000_000)
	r := bench.ScaleResult{ServerBinary: "/bin/sr", ServerFlags: []string{"--purge-interval=1h"}, DataDir: "/d", FreshDataDir: true,
		Secrets: 1_000_000, Vaults: 1, SecretsPerVault: 1_000_000, Workers: 64, ValueSize: 100, ColdCache: "fadvise",
		Baseline: samplePoint(1000), AtN: &large, Written: 1_000_000,
		Disk:                bench.DiskUsage{StoreBytes: 1444 << 20, DBBytes: 1412 << 20, WALBytes: 32 << 20, AuditBytes: 1 << 30},
		StoreBytesPerSecret: 1514.1, DBBytesPerSecret: 1480.6, WallSec: 1234}
	out := r.Format()
	for _, want := range []string{
		"1,000,000 secrets in 1 vault(s) of 1,000,000",
		"/bin/sr --purge-interval=1h",
		"(fresh)",
		"1,000 secrets", // baseline column header
		"1 in 0.2 s", "3141", "8340", "108 µs", "7.10 / 20.50 ms",
		"38.25 ms", "39.50 ms", "20,000 (3.0 MiB)", "0.81 ms",
		"110.0 % of a core",
		"17.80 s (listening 17.70 s)", "72.50 s (listening 0.00 s) fadvise, 0.0 KiB left cached",
		"1666.0 MiB / 1894.0 MiB", "2000.0 MiB",
		"1514 bytes/secret (file alone 1481)", "audit log 1024.0 MiB",
		"note       middle page at 1,000 secrets: the vault fits on one page",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Format() lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TRUNCATED") {
		t.Errorf("untruncated run says TRUNCATED:\n%s", out)
	}
	// Every table row has one cell per point: the two columns line up under their headers.
	lines := strings.Split(out, "\n")
	header := lines[2]
	col := strings.Index(header, "1,000,000 secrets")
	if col < 0 {
		t.Fatalf("no N column in %q", header)
	}
	for _, l := range lines[3:20] {
		if len([]rune(l)) < col || strings.TrimSpace(string([]rune(l)[col:])) == "" {
			t.Errorf("row %q has no N cell at column %d", l, col)
		}
	}

	if strings.Contains(out, "FAILED") {
		t.Errorf("successful run says FAILED:\n%s", out)
	}
	r.Error = "restarting the server: boom"
	if out := r.Format(); !strings.Contains(out, "FAILED (partial figures): restarting the server: boom") {
		t.Errorf("failed run:\n%s", out)
	}
	r.Error = ""

	r.AtN, r.Truncated, r.Written = nil, true, 1000
	out = r.Format()
	if !strings.Contains(out, "TRUNCATED: --max-duration ended the writes at 1,000 of 1,000,000") ||
		strings.TrimSpace(strings.Split(out, "\n")[2]) != "1,000 secrets" {
		t.Errorf("truncated run:\n%s", out)
	}
}

// The JSON keys are the documented ones (docs/benchmarks.md reads them).
func TestScaleResult_JSONKeys(t *testing.T) {
	large := samplePoint(20_000)
	b, err := json.Marshal(bench.ScaleResult{Baseline: samplePoint(1000), AtN: &large})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"baseline":{`, `"at_n":{`, `"vaults_created":1`, `"reads_per_sec":8340`, `"server_cpu_us_per_read":108`,
		`"list_log_full":{`, `"list_log_empty":{`, `"first_page":{`, `"middle_page":{`, `"pending_log_ops":20000`,
		`"idle_cpu_cores":1.1`, `"restart_warm":{`, `"restart_cold":{`, `"first_get_s":17.8`, `"peak_anon_bytes":`,
		`"after_restart_rss_bytes":`, `"store_bytes_per_secret":`, `"audit_bytes":`, `"cached_after_drop_bytes":0`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s:\n%s", key, b)
		}
	}
}

func TestGroupAndMiB(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {20_000, "20,000"}, {1_000_000, "1,000,000"}, {-1234, "-1,234"}} {
		if got := bench.Group(tt.n); got != tt.want {
			t.Errorf("Group(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0.0 KiB"}, {1536, "1.5 KiB"}, {1 << 20, "1.0 MiB"}, {1444 << 20, "1444.0 MiB"}} {
		if got := bench.MiB(tt.n); got != tt.want {
			t.Errorf("MiB(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestMiddleLink(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	next := func(tok string) string {
		return "https://kv.vault.localhost:8443/secrets?%24skiptoken=" + tok + "&api-version=7.4&maxresults=25"
	}
	names := []string{"perf-0000", "perf-0001"}
	tests := []struct {
		name     string
		next     string
		wantTok  string // "" means no link
		wantNote string
	}{
		{"upper-cased token", next(enc("PERF-0001")), enc("PERF-0500"), ""},
		{"same-case token", next(enc("perf-0001")), enc("perf-0500"), ""},
		{"no nextLink", "", "", "fits on one page"},
		{"opaque token", next(enc("page-2")), "", "not the last name"},
		{"not base64", next("!!"), "", "not the last name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link, note := bench.MiddleLink(tt.next, names, "perf-0500")
			if tt.wantTok == "" {
				if link != "" || !strings.Contains(note, tt.wantNote) {
					t.Fatalf("= %q, %q; want no link and a note with %q", link, note, tt.wantNote)
				}
				return
			}
			if note != "" || !strings.Contains(link, "%24skiptoken="+tt.wantTok) || !strings.Contains(link, "maxresults=25") {
				t.Fatalf("= %q, %q; want a link with token %s and maxresults kept", link, note, tt.wantTok)
			}
		})
	}
}

func TestMiddleCursor(t *testing.T) {
	// perf-0000..perf-0099 sort as written; past 10,000 names, perf-10000 sorts before perf-1001.
	if got := bench.MiddleCursor(100); got != "perf-0050" {
		t.Errorf("MiddleCursor(100) = %q", got)
	}
	if got := bench.MiddleCursor(1); got != "perf-0000" {
		t.Errorf("MiddleCursor(1) = %q", got)
	}
	got := bench.MiddleCursor(20_000)
	if got <= "perf-0000" || got >= "perf-19999" {
		t.Errorf("MiddleCursor(20000) = %q, want a name inside the range", got)
	}
}

func TestParseListPage(t *testing.T) {
	names, next, err := bench.ParseListPage([]byte(`{"value":[{"id":"https://kv.vault.localhost:1/secrets/perf-0000"},` +
		`{"id":"https://kv.vault.localhost:1/secrets/perf-0001/"}],"nextLink":"https://n"}`))
	if err != nil || strings.Join(names, ",") != "perf-0000,perf-0001" || next != "https://n" {
		t.Fatalf("= %v, %q, %v", names, next, err)
	}
	if _, next, err := bench.ParseListPage([]byte(`{"value":[],"nextLink":null}`)); err != nil || next != "" {
		t.Fatalf("empty page: %q, %v", next, err)
	}
	for _, bad := range []string{`{"value":[{"id":"https://kv/keys/k"}]}`, `not json`} {
		if _, _, err := bench.ParseListPage([]byte(bad)); err == nil {
			t.Errorf("ParseListPage(%s) succeeded", bad)
		}
	}
}

func TestPlace(t *testing.T) {
	tests := []struct {
		prefix          string
		vaults, per, i  int
		write           bool
		wantHost, wantU string
	}{
		{"benchkv", 1, 1000, 7, false, "benchkv.vault.localhost:8443", "https://benchkv.vault.localhost:8443/secrets/perf-0007/?api-version=7.4"},
		{"benchkv", 1, 1000, 7, true, "benchkv.vault.localhost:8443", "https://benchkv.vault.localhost:8443/secrets/perf-0007?api-version=7.4"},
		// Many vaults: the Host header names the vault, the URL stays on vault 0's connection.
		{"scale", 10_000, 100, 0, false, "scale-0.vault.localhost:8443", "https://scale-0.vault.localhost:8443/secrets/perf-0000/?api-version=7.4"},
		{"scale", 10_000, 100, 999_999, true, "scale-9999.vault.localhost:8443", "https://scale-0.vault.localhost:8443/secrets/perf-0099?api-version=7.4"},
		{"scale", 3, 100, 150, false, "scale-1.vault.localhost:8443", "https://scale-0.vault.localhost:8443/secrets/perf-0050/?api-version=7.4"},
	}
	for _, tt := range tests {
		host, u := bench.Place(tt.prefix, tt.vaults, tt.per, tt.i, tt.write)
		if host != tt.wantHost || u != tt.wantU {
			t.Errorf("Place(%s, %d×%d, %d, %t) = %s, %s; want %s, %s", tt.prefix, tt.vaults, tt.per, tt.i, tt.write, host, u, tt.wantHost, tt.wantU)
		}
	}
}
