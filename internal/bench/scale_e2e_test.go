package bench_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/bench"
	"github.com/strongroom/strongroom/internal/testenv"
)

// Scale mode end to end against a real server built from ./cmd/strongroom: 300 secrets over 3
// vaults, measured at 100 and at 300. Every figure of the report is filled and sane.
func TestRunScale_RealServer(t *testing.T) {
	if testing.Short() {
		skipUnlessRequired(t, "-short: this test starts a real server four times")
	}
	cfg := bench.DefaultScaleConfig()
	cfg.ServerBinary = testenv.Binary(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.Secrets, cfg.Vaults, cfg.Baseline = 300, 3, 100
	cfg.Workers, cfg.ReadWindow, cfg.Warmup, cfg.Idle, cfg.ListSamples = 4, 500*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond, 5
	cfg.MaxDuration, cfg.RestartTimeout = 2*time.Minute, time.Minute
	res, err := bench.RunScale(t.Context(), cfg)
	if err != nil {
		t.Fatalf("RunScale: %v", err)
	}
	if res.Written != 300 || res.Truncated || res.AtN == nil || !res.FreshDataDir || res.SecretsPerVault != 100 {
		t.Fatalf("written %d, truncated %t, at N %v, fresh %t, per vault %d", res.Written, res.Truncated, res.AtN != nil, res.FreshDataDir, res.SecretsPerVault)
	}
	for _, p := range []struct {
		secrets int
		p       bench.ScalePoint
	}{{100, res.Baseline}, {300, *res.AtN}} {
		checkPoint(t, p.secrets, p.p)
	}
	d := res.Disk
	if d.DBBytes <= 0 || d.WALBytes <= 0 || d.AuditBytes <= 0 || d.StoreBytes != d.DBBytes+d.WALBytes {
		t.Errorf("disk: %+v", d)
	}
	if res.StoreBytesPerSecret != float64(d.StoreBytes)/300 || res.DBBytesPerSecret != float64(d.DBBytes)/300 {
		t.Errorf("bytes per secret %g, %g for %+v", res.StoreBytesPerSecret, res.DBBytesPerSecret, d)
	}
	if out := res.Format(); len(out) < 500 {
		t.Errorf("short report:\n%s", out)
	}
}

func checkPoint(t *testing.T, secrets int, p bench.ScalePoint) {
	t.Helper()
	if p.Secrets != secrets || p.Written <= 0 || p.WritesPerSec <= 0 || p.Truncated || p.VaultsCreated < 1 || p.VaultsSec <= 0 {
		t.Errorf("at %d: populate %+v", secrets, p)
	}
	// Reads pick among every secret written so far, over all vaults: no error means all exist.
	r := p.Reads
	if r.OpsPerSec <= 0 || r.ServerCPUUsPerOp <= 0 || r.Errors != 0 || r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
		t.Errorf("at %d: reads %+v", secrets, r)
	}
	for name, l := range map[string]bench.ListStats{"full": p.ListFull, "empty": p.ListEmpty} {
		if l.VaultSecrets != 100 || l.First.Samples != 5 || l.First.P50Ms <= 0 || l.Middle == nil || l.Middle.P50Ms <= 0 || l.MiddleNote != "" {
			t.Errorf("at %d: list, log %s: %+v (middle %+v)", secrets, name, l, l.Middle)
		}
	}
	// Right after the writes the log holds them (each secret is at least two records' worth of
	// writes); the restart before the second listing checkpointed it.
	if p.ListFull.PendingLogOps < int64(p.Written) || p.ListFull.PendingLogBytes <= 0 || p.ListEmpty.PendingLogOps != 0 {
		t.Errorf("at %d: pending log ops %d (bytes %d) full, %d empty", secrets, p.ListFull.PendingLogOps, p.ListFull.PendingLogBytes, p.ListEmpty.PendingLogOps)
	}
	if p.IdleCPUCores < 0 || p.IdleCPUCores > 2 {
		t.Errorf("at %d: idle cores %g", secrets, p.IdleCPUCores)
	}
	for name, rs := range map[string]*bench.RestartStats{"warm": &p.RestartWarm, "cold": p.RestartCold} {
		if rs == nil || rs.FirstGetSec <= 0 || rs.ListeningSec <= 0 || rs.ListeningSec > rs.FirstGetSec || rs.StopSec <= 0 {
			t.Errorf("at %d: %s restart %+v", secrets, name, rs)
		}
	}
	if p.RestartWarm.Cache != "warm" || p.RestartWarm.CachedAfterDropBytes != nil ||
		p.RestartCold.Cache != bench.ColdCacheFadvise || p.RestartCold.CachedAfterDropBytes == nil {
		t.Errorf("at %d: restart caches %+v / %+v", secrets, p.RestartWarm, p.RestartCold)
	}
	m := p.Memory
	if m.PeakRSS <= 0 || m.PeakAnon <= 0 || m.PeakAnon > m.PeakRSS || m.AfterLoadRSS <= 0 || m.AfterLoadAnon <= 0 ||
		m.AfterLoadAnon > m.AfterLoadRSS || m.AfterRestartRSS <= 0 || m.AfterRestartAnon <= 0 || m.HWM < m.AfterLoadRSS {
		t.Errorf("at %d: memory %+v", secrets, m)
	}
}
