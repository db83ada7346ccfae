package bench

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank method: the
// smallest value with at least p % of the values at or below it. It returns 0 for no values.
func Percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// OpStats summarizes the successful operations of one kind (or of all kinds) in the window.
type OpStats struct {
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MeanMs    float64 `json:"mean_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
}

// summarize computes OpStats from latencies in nanoseconds; it sorts lat in place.
func summarize(lat []int64, windowSec float64) OpStats {
	slices.Sort(lat)
	s := OpStats{Ops: int64(len(lat))}
	if len(lat) == 0 {
		return s
	}
	var sum float64
	for _, v := range lat {
		sum += float64(v)
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	s.OpsPerSec = float64(len(lat)) / windowSec
	s.MeanMs = sum / float64(len(lat)) / 1e6
	s.P50Ms = ms(Percentile(lat, 50))
	s.P95Ms = ms(Percentile(lat, 95))
	s.P99Ms = ms(Percentile(lat, 99))
	s.MaxMs = ms(lat[len(lat)-1])
	return s
}

// Result is the outcome of one run. Ops and the latency figures count successful operations
// completed inside the measured window; CPU per op divides by successes plus errors, since the
// server spent CPU on both.
type Result struct {
	Target    string  `json:"target"`
	Mode      string  `json:"mode"`
	Workers   int     `json:"workers"`
	ValueSize int     `json:"value_size"`
	Secrets   int     `json:"secrets"`
	MixRead   float64 `json:"mix_read,omitempty"`
	HTTP2     bool    `json:"h2,omitempty"`
	WindowSec float64 `json:"window_s"`

	OpStats
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	FirstError string           `json:"first_error,omitempty"`
	Read       *OpStats         `json:"read,omitempty"`
	Write      *OpStats         `json:"write,omitempty"`

	// ServerCPUUsPerOp and ServerCores are 0 without --server-pid. /proc reports CPU time in
	// clock ticks of 10 ms, so short windows are coarse.
	ServerCPUUsPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
	ServerCores      float64 `json:"server_cores,omitempty"`
	ClientCPUUsPerOp float64 `json:"client_cpu_us_per_op"`
	ClientCores      float64 `json:"client_cores"`
	// OtherCores is the machine's busy CPU (all of /proc/stat) minus the server's and the
	// client's during the window: the share taken by everything else, i.e. noise. Without
	// --server-pid it includes the server.
	OtherCores float64 `json:"other_cores"`
}

// Format renders r as a short human-readable report.
func (r Result) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "target     %s\n", r.Target)
	fmt.Fprintf(&b, "workload   %s", r.Mode)
	if r.Mode == ModeMix {
		fmt.Fprintf(&b, " (%.0f%% reads)", r.MixRead*100)
	}
	proto := "http/1.1"
	if r.HTTP2 {
		proto = "h2"
	}
	fmt.Fprintf(&b, ", %d workers, %d-byte values over %d secrets, %s\n", r.Workers, r.ValueSize, r.Secrets, proto)
	fmt.Fprintf(&b, "window     %.2fs\n", r.WindowSec)
	fmt.Fprintf(&b, "throughput %.0f ops/s (%d ops, %d errors)\n", r.OpsPerSec, r.Ops, r.Errors)
	fmt.Fprintf(&b, "latency    %s\n", latencyLine(r.OpStats))
	if r.Read != nil && r.Write != nil {
		fmt.Fprintf(&b, "  read     %.0f ops/s, %s\n", r.Read.OpsPerSec, latencyLine(*r.Read))
		fmt.Fprintf(&b, "  write    %.0f ops/s, %s\n", r.Write.OpsPerSec, latencyLine(*r.Write))
	}
	if r.ServerCPUUsPerOp > 0 {
		fmt.Fprintf(&b, "server cpu %.1f µs/op (%.2f cores)\n", r.ServerCPUUsPerOp, r.ServerCores)
	}
	fmt.Fprintf(&b, "client cpu %.1f µs/op (%.2f cores)\n", r.ClientCPUUsPerOp, r.ClientCores)
	fmt.Fprintf(&b, "other cpu  %.2f cores (everything else on the machine)\n", r.OtherCores)
	if r.Errors > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(&b, "errors     %s; first: %s\n", strings.Join(kinds, ", "), r.FirstError)
	}
	return b.String()
}

func latencyLine(s OpStats) string {
	return fmt.Sprintf("p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms", s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs)
}
