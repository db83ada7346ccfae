package bench_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/bench"
)

func TestParseAdmin(t *testing.T) {
	want := bench.Admin{TenantID: "t", SubscriptionID: "s", ClientID: "c", ClientSecret: "x"}
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{"camel", `{"tenantId":"t","subscriptionId":"s","clientId":"c","clientSecret":"x"}`, ""},
		{"snake", `{"tenant_id":"t","subscription_id":"s","client_id":"c","client_secret":"x"}`, ""},
		{"nested", `{"tenant":{"id":"ignored"},"tenantId":"t","subscriptionId":"s","admin":{"clientId":"c","clientSecret":"x"}}`, ""},
		{"missing secret", `{"tenantId":"t","subscriptionId":"s","clientId":"c"}`, "missing clientSecret"},
		{"not json", `tenant=t`, "parsing admin file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseAdmin([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAdmin() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("ParseAdmin() = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "1234 (strongroom) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0", 3 * time.Second, false},
		{"comm with spaces and parens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5", 30 * time.Millisecond, false},
		{"no comm", "1234 strongroom S 1", 0, true},
		{"truncated", "1234 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 2 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseProcStat(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseProcStat() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMapLocalhost(t *testing.T) {
	tests := map[string]string{
		"benchkv.vault.localhost:8443": "127.0.0.1:8443",
		"localhost:443":                "127.0.0.1:443",
		"LOCALHOST.:9443":              "127.0.0.1:9443",
		"example.com:443":              "example.com:443",
		"notlocalhost:1":               "notlocalhost:1",
		"127.0.0.1:8443":               "127.0.0.1:8443",
		"no-port":                      "no-port",
	}
	for in, want := range tests {
		if got := bench.MapLocalhost(in); got != want {
			t.Errorf("mapLocalhost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMachineBusy(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		// user nice system idle iowait irq softirq steal: busy = 100+5+50+3+2+1 = 161 ticks.
		{"typical", "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\n", 1610 * time.Millisecond, false},
		{"first line only", "cpu 1 0 0 0 0 0 0 0", 10 * time.Millisecond, false},
		{"per-cpu line first", "cpu0 1 0 0 0 0 0 0 0\n", 0, true},
		{"short", "cpu 1 2 3\n", 0, true},
		{"garbage", "cpu a b c d e f g h\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bench.ParseMachineBusy(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseMachineBusy() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
