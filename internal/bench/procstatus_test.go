package bench_test

import (
	"os"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/bench"
)

func TestParseProcStatus(t *testing.T) {
	const full = "Name:\tstrongroom\nVmPeak:\t 2000000 kB\nVmHWM:\t  300000 kB\nVmRSS:\t  250000 kB\n" +
		"RssAnon:\t  200000 kB\nRssFile:\t   50000 kB\nThreads:\t12\n"
	tests := []struct {
		name    string
		in      string
		want    bench.ProcMemory
		wantErr string
	}{
		{"full", full, bench.ProcMemory{RSS: 250000 << 10, Anon: 200000 << 10, HWM: 300000 << 10}, ""},
		{"no hwm is fine", "VmRSS:\t 4 kB\nRssAnon:\t 1 kB\n", bench.ProcMemory{RSS: 4 << 10, Anon: 1 << 10}, ""},
		{"zero", "VmRSS:\t0 kB\nRssAnon:\t0 kB\n", bench.ProcMemory{}, ""},
		{"missing anon (old kernel)", "VmRSS:\t 4 kB\n", bench.ProcMemory{}, "no RssAnon"},
		{"missing rss", "RssAnon:\t 4 kB\n", bench.ProcMemory{}, "no VmRSS"},
		{"empty", "", bench.ProcMemory{}, "no VmRSS"},
		{"bad unit", "VmRSS:\t 4 MB\nRssAnon:\t 1 kB\n", bench.ProcMemory{}, "unexpected VmRSS"},
		{"bad number", "VmRSS:\t x kB\nRssAnon:\t 1 kB\n", bench.ProcMemory{}, "bad number"},
		{"negative", "VmRSS:\t -4 kB\nRssAnon:\t 1 kB\n", bench.ProcMemory{}, "bad number"},
		{"similar names ignored", "VmRSSx:\t 9 kB\nVmRSS:\t 4 kB\nRssAnon:\t 1 kB\n", bench.ProcMemory{RSS: 4 << 10, Anon: 1 << 10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseProcStatus(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// This process's own status parses, with RSS at least the anonymous part.
func TestParseProcStatus_Self(t *testing.T) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		skipUnlessRequired(t, "no /proc: "+err.Error())
	}
	m, err := bench.ParseProcStatus(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Anon <= 0 || m.Anon > m.RSS || m.HWM < m.RSS {
		t.Fatalf("implausible: %+v", m)
	}
}

// skipUnlessRequired skips a test whose prerequisite is missing here, and fails it under
// STRONGROOM_REQUIRE_ALL=1 (CI), where nothing may be silently left out.
func skipUnlessRequired(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
		t.Fatalf("required under STRONGROOM_REQUIRE_ALL=1 but unavailable: %s", why)
	}
	t.Skip(why)
}
