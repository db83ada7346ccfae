package bench

import (
	"fmt"
	"strings"
)

// ScaleResult is the outcome of one `bench scale` run: the baseline point (the "1 k" figures)
// and the point at N, then the data folder's size after the final stop.
type ScaleResult struct {
	ServerBinary    string   `json:"server_binary"`
	ServerFlags     []string `json:"server_flags,omitempty"`
	DataDir         string   `json:"data_dir"`
	FreshDataDir    bool     `json:"fresh_data_dir"`
	Secrets         int      `json:"secrets"` // requested N
	Vaults          int      `json:"vaults"`
	SecretsPerVault int      `json:"secrets_per_vault"`
	Workers         int      `json:"workers"`
	ValueSize       int      `json:"value_size"`
	ColdCache       string   `json:"cold_cache"` // how the cold restarts dropped the cache

	Baseline ScalePoint  `json:"baseline"`
	AtN      *ScalePoint `json:"at_n,omitempty"` // absent when N is the baseline or it was not reached

	Written   int  `json:"secrets_written"` // secrets in the store at the end of the run
	Truncated bool `json:"truncated"`       // --max-duration ended the writes before N

	Disk                DiskUsage `json:"disk"`                     // after the final stop (log checkpointed)
	StoreBytesPerSecret float64   `json:"store_bytes_per_secret"`   // (store file + log) / written
	DBBytesPerSecret    float64   `json:"db_file_bytes_per_secret"` // store file alone / written
	WallSec             float64   `json:"wall_s"`
	// Error is set when the run failed after measuring something: the figures are partial.
	Error string `json:"error,omitempty"`
}

// ScalePoint is everything measured at one store size.
type ScalePoint struct {
	Secrets       int     `json:"secrets"`        // in the store (all vaults)
	VaultsCreated int     `json:"vaults_created"` // by this point, through ARM
	VaultsSec     float64 `json:"vaults_s"`       // how long creating them took
	Written       int     `json:"written"`        // by this point's writes
	PopulateSec   float64 `json:"populate_s"`
	WritesPerSec  float64 `json:"writes_per_sec"`
	Truncated     bool    `json:"truncated,omitempty"`

	Reads        ReadStats     `json:"reads"`
	ListFull     ListStats     `json:"list_log_full"`  // right after the writes
	ListEmpty    ListStats     `json:"list_log_empty"` // after a restart checkpointed the log
	IdleCPUCores float64       `json:"idle_cpu_cores"` // server CPU over --idle after the reads
	Memory       MemoryStats   `json:"memory"`
	RestartWarm  RestartStats  `json:"restart_warm"`
	RestartCold  *RestartStats `json:"restart_cold,omitempty"`
}

// ReadStats is the closed-loop read window at one point.
type ReadStats struct {
	OpsPerSec        float64 `json:"reads_per_sec"`
	ServerCPUUsPerOp float64 `json:"server_cpu_us_per_read"`
	ServerCores      float64 `json:"server_cores"`
	OtherCores       float64 `json:"other_cores"` // the rest of the machine: noise
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	Errors           int64   `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
}

// MemoryStats are the server's memory figures at one point, in bytes.
type MemoryStats struct {
	PeakRSS          int64 `json:"peak_rss_bytes"`  // sampled every 250 ms during the writes
	PeakAnon         int64 `json:"peak_anon_bytes"` // likewise, RssAnon
	HWM              int64 `json:"rss_hwm_bytes"`   // VmHWM: the kernel's peak RSS of the process so far
	AfterLoadRSS     int64 `json:"after_load_rss_bytes"`
	AfterLoadAnon    int64 `json:"after_load_anon_bytes"`
	AfterRestartRSS  int64 `json:"after_restart_rss_bytes"`
	AfterRestartAnon int64 `json:"after_restart_anon_bytes"`
}

// RestartStats times one SIGTERM and start of the same binary on the same data folder.
type RestartStats struct {
	Cache                string  `json:"cache"`                             // warm, fadvise or system
	StopSec              float64 `json:"stop_s"`                            // SIGTERM to exit (the final checkpoint included)
	ListeningSec         float64 `json:"listen_s"`                          // process start to its listening log line
	FirstGetSec          float64 `json:"first_get_s"`                       // process start to the first successful GET of a secret
	CachedAfterDropBytes *int64  `json:"cached_after_drop_bytes,omitempty"` // data folder pages still cached
}

// Format renders r as a table, one column per point.
func (r ScaleResult) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bench scale: %s secrets in %s vault(s) of %s, %d-byte values, %d workers\n",
		group(int64(r.Secrets)), group(int64(r.Vaults)), group(int64(r.SecretsPerVault)), r.ValueSize, r.Workers)
	fresh := "existing"
	if r.FreshDataDir {
		fresh = "fresh"
	}
	fmt.Fprintf(&b, "server %s, data folder %s (%s)\n", strings.Join(append([]string{r.ServerBinary}, r.ServerFlags...), " "), r.DataDir, fresh)
	points := []ScalePoint{r.Baseline}
	if r.AtN != nil {
		points = append(points, *r.AtN)
	}
	b.WriteString(renderTable(scaleRows(points)))
	if r.Truncated {
		fmt.Fprintf(&b, "TRUNCATED: --max-duration ended the writes at %s of %s secrets\n", group(int64(r.Written)), group(int64(r.Secrets)))
	}
	d := r.Disk
	fmt.Fprintf(&b, "disk       store %s (file %s + log %s) for %s secrets: %.0f bytes/secret (file alone %.0f); audit log %s\n",
		mib(d.StoreBytes), mib(d.DBBytes), mib(d.WALBytes), group(int64(r.Written)), r.StoreBytesPerSecret, r.DBBytesPerSecret, mib(d.AuditBytes))
	for _, p := range points {
		if p.Reads.Errors > 0 {
			fmt.Fprintf(&b, "errors     %d reads failed at %s secrets; first: %s\n", p.Reads.Errors, group(int64(p.Secrets)), p.Reads.FirstError)
		}
		for _, l := range []ListStats{p.ListFull, p.ListEmpty} {
			if l.MiddleNote != "" {
				fmt.Fprintf(&b, "note       middle page at %s secrets: %s\n", group(int64(p.Secrets)), l.MiddleNote)
				break
			}
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "FAILED (partial figures): %s\n", r.Error)
	}
	fmt.Fprintf(&b, "wall       %.0f s\n", r.WallSec)
	return b.String()
}

// scaleRows lays the points out as rows: a label, then one cell per point.
func scaleRows(ps []ScalePoint) [][]string {
	row := func(label string, cell func(p ScalePoint) string) []string {
		out := []string{label}
		for _, p := range ps {
			out = append(out, cell(p))
		}
		return out
	}
	rows := [][]string{
		row("", func(p ScalePoint) string { return group(int64(p.Secrets)) + " secrets" }),
		row("vaults created (ARM)", func(p ScalePoint) string { return fmt.Sprintf("%d in %.1f s", p.VaultsCreated, p.VaultsSec) }),
		row("writes/s while populating", func(p ScalePoint) string { return fmt.Sprintf("%.0f", p.WritesPerSec) }),
		row("reads/s", func(p ScalePoint) string { return fmt.Sprintf("%.0f", p.Reads.OpsPerSec) }),
		row("server CPU per read", func(p ScalePoint) string { return fmt.Sprintf("%.0f µs", p.Reads.ServerCPUUsPerOp) }),
		row("read p50 / p99", func(p ScalePoint) string { return fmt.Sprintf("%.2f / %.2f ms", p.Reads.P50Ms, p.Reads.P99Ms) }),
	}
	for _, l := range []struct {
		name string
		get  func(ScalePoint) ListStats
	}{{"log full", func(p ScalePoint) ListStats { return p.ListFull }}, {"log empty", func(p ScalePoint) ListStats { return p.ListEmpty }}} {
		rows = append(rows,
			row("list first page, "+l.name, func(p ScalePoint) string { return fmt.Sprintf("%.2f ms", l.get(p).First.P50Ms) }),
			row("list middle page, "+l.name, func(p ScalePoint) string { return middleCell(l.get(p)) }),
			row("  log writes pending", func(p ScalePoint) string {
				return fmt.Sprintf("%s (%s)", group(l.get(p).PendingLogOps), mib(l.get(p).PendingLogBytes))
			}))
	}
	return append(rows,
		row("idle server CPU", func(p ScalePoint) string { return fmt.Sprintf("%.1f %% of a core", p.IdleCPUCores*100) }),
		row("restart, warm", func(p ScalePoint) string { return restartCell(&p.RestartWarm) }),
		row("restart, cold", func(p ScalePoint) string { return restartCell(p.RestartCold) }),
		row("RSS / anon peak, writes", func(p ScalePoint) string { return mib(p.Memory.PeakRSS) + " / " + mib(p.Memory.PeakAnon) }),
		row("RSS / anon after load", func(p ScalePoint) string { return mib(p.Memory.AfterLoadRSS) + " / " + mib(p.Memory.AfterLoadAnon) }),
		row("RSS / anon after restart", func(p ScalePoint) string {
			return mib(p.Memory.AfterRestartRSS) + " / " + mib(p.Memory.AfterRestartAnon)
		}),
		row("RSS high-water mark", func(p ScalePoint) string { return mib(p.Memory.HWM) }),
	)
}

func middleCell(l ListStats) string {
	if l.Middle == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", l.Middle.P50Ms)
}

func restartCell(r *RestartStats) string {
	if r == nil {
		return "-"
	}
	s := fmt.Sprintf("%.2f s (listening %.2f s)", r.FirstGetSec, r.ListeningSec)
	if r.CachedAfterDropBytes != nil {
		s += fmt.Sprintf(" %s, %s left cached", r.Cache, mib(*r.CachedAfterDropBytes))
	}
	return s
}

// renderTable aligns rows in columns two spaces apart.
func renderTable(rows [][]string) string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// mib renders a byte count in MiB (KiB below one MiB).
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// group renders n with thousands separators: 1000000 → 1,000,000.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
