package bench_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/bench"
)

func TestPercentile(t *testing.T) {
	ten := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"single p50", []int64{7}, 50, 7},
		{"single p99", []int64{7}, 99, 7},
		{"ten p50", ten, 50, 5},
		{"ten p95", ten, 95, 10},
		{"ten p10", ten, 10, 1},
		{"ten p11", ten, 11, 2},
		{"ten p100", ten, 100, 10},
		{"ten p0 clamps to min", ten, 0, 1},
		{"hundred p50", hundred, 50, 50},
		{"hundred p95", hundred, 95, 95},
		{"hundred p99", hundred, 99, 99},
		{"hundred p99.5", hundred, 99.5, 100},
		{"two p50", []int64{10, 20}, 50, 10},
		{"two p51", []int64{10, 20}, 51, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bench.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %g) = %d, want %d", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func sampleResult() bench.Result {
	return bench.Result{
		Target: "https://benchkv.vault.localhost:8443", Mode: bench.ModeMix, Workers: 64,
		ValueSize: 100, Secrets: 1000, MixRead: 0.9, WindowSec: 15,
		OpStats:          bench.OpStats{Ops: 300000, OpsPerSec: 20000, P50Ms: 2.5, P95Ms: 6.25, P99Ms: 9.126, MaxMs: 20},
		Read:             &bench.OpStats{Ops: 270000, OpsPerSec: 18000, P50Ms: 2.4, P95Ms: 6, P99Ms: 9, MaxMs: 19},
		Write:            &bench.OpStats{Ops: 30000, OpsPerSec: 2000, P50Ms: 3, P95Ms: 7, P99Ms: 10, MaxMs: 20},
		ServerCPUUsPerOp: 41.5, ServerCores: 0.83, ClientCPUUsPerOp: 39, ClientCores: 0.78, OtherCores: 0.05,
	}
}

func TestResult_Format(t *testing.T) {
	withErrors := sampleResult()
	withErrors.Errors = 3
	withErrors.ErrorKinds = map[string]int64{"write 503": 2, "read 404": 1}
	withErrors.FirstError = "write: status 503: ServiceUnavailable: sealed"
	noCPU := sampleResult()
	noCPU.Mode, noCPU.Read, noCPU.Write, noCPU.ServerCPUUsPerOp = bench.ModeRead, nil, nil, 0

	tests := []struct {
		name     string
		r        bench.Result
		want     []string
		wantNone []string
	}{
		{"mix", sampleResult(), []string{
			"workload   mix (90% reads), 64 workers, 100-byte values over 1000 secrets, http/1.1\n",
			"throughput 20000 ops/s (300000 ops, 0 errors)\n",
			"latency    p50 2.50 ms, p95 6.25 ms, p99 9.13 ms, max 20.00 ms\n",
			"  read     18000 ops/s, p50 2.40 ms",
			"  write    2000 ops/s, p50 3.00 ms",
			"server cpu 41.5 µs/op (0.83 cores)\n",
			"client cpu 39.0 µs/op (0.78 cores)\n",
			"other cpu  0.05 cores",
		}, []string{"errors "}},
		{"read without server pid", noCPU, []string{"workload   read, 64 workers"}, []string{"server cpu", "  read ", "%"}},
		{"errors listed in order", withErrors, []string{
			"errors     read 404 ×1, write 503 ×2; first: write: status 503: ServiceUnavailable: sealed\n",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.Format()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Format() lacks %q; got:\n%s", w, got)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("Format() contains %q; got:\n%s", w, got)
				}
			}
		})
	}
}

func TestResult_JSONFieldNames(t *testing.T) {
	b, err := json.Marshal(sampleResult())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// Scripts and docs/benchmarks.md depend on these names and on the embedded stats being flat.
	for _, k := range []string{"target", "mode", "workers", "window_s", "ops", "ops_per_sec", "p50_ms",
		"p95_ms", "p99_ms", "errors", "server_cpu_us_per_op", "client_cpu_us_per_op", "other_cores", "read", "write"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON result lacks %q: %s", k, b)
		}
	}
}
