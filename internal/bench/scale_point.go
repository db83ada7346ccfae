package bench

import (
	"context"
	"time"
)

// point grows the store from secrets [0, from) to [0, to) and measures it: list pages with the
// log as the writes left it, reads, memory after the load, idle CPU, a warm restart (which
// empties the log: a clean stop checkpoints it, and the server checkpoints on no timer), list
// pages again, and (unless --cold-cache=off) a restart with the data folder dropped from the
// page cache.
func (s *scaleRun) point(ctx context.Context, from, to int, deadline time.Time) (ScalePoint, error) {
	v0, v1 := s.lay.vaultsFor(from), s.lay.vaultsFor(to)
	t0 := time.Now()
	if err := s.ensureVaults(ctx, v0, v1); err != nil {
		return ScalePoint{}, err
	}
	vaultsSec := time.Since(t0).Seconds()
	end, peak, took, err := s.grow(ctx, from, to, deadline)
	p := ScalePoint{Secrets: end, Written: end - from, PopulateSec: took.Seconds(), Truncated: end < to,
		VaultsCreated: v1 - v0, VaultsSec: vaultsSec}
	p.Memory.PeakRSS, p.Memory.PeakAnon, p.Memory.HWM = peak.RSS, peak.Anon, peak.HWM
	if took > 0 {
		p.WritesPerSec = float64(p.Written) / took.Seconds()
	}
	if err != nil {
		return p, err
	}
	if end == 0 {
		return p, nil // nothing written before the deadline: nothing to measure
	}
	s.progress("%d secrets written (%.0f/s)", end, p.WritesPerSec)
	return p, s.measurePoint(ctx, &p)
}

// tokenRefresh is how long one populate pass writes before it takes a new token (they last an
// hour).
const tokenRefresh = 30 * time.Minute

// grow writes secrets [from, to) in passes of at most tokenRefresh, until all are written or
// deadline passes, and returns the end of what is written, the peak memory and the time taken.
func (s *scaleRun) grow(ctx context.Context, from, to int, deadline time.Time) (int, ProcMemory, time.Duration, error) {
	end, peak, took := from, ProcMemory{}, time.Duration(0)
	for end < to && time.Now().Before(deadline) {
		pass := deadline
		if t := time.Now().Add(tokenRefresh); t.Before(pass) {
			pass = t
		}
		e, pk, tk, err := s.populate(ctx, end, to, pass)
		end, took = e, took+tk
		peak.RSS, peak.Anon, peak.HWM = max(peak.RSS, pk.RSS), max(peak.Anon, pk.Anon), max(peak.HWM, pk.HWM)
		if err != nil {
			return end, peak, took, err
		}
	}
	return end, peak, took, nil
}

// measurePoint fills p's measurements, in the order point describes.
func (s *scaleRun) measurePoint(ctx context.Context, p *ScalePoint) error {
	inVault := min(p.Secrets, s.lay.perVault)
	var err error
	if p.ListFull, err = s.measureList(ctx, inVault); err != nil {
		return err
	}
	if p.Reads, err = s.measureReads(ctx, p.Secrets); err != nil {
		return err
	}
	after, err := procMemory(s.srv.pid())
	if err != nil {
		return err
	}
	p.Memory.AfterLoadRSS, p.Memory.AfterLoadAnon = after.RSS, after.Anon
	p.Memory.HWM = max(p.Memory.HWM, after.HWM)
	if p.IdleCPUCores, err = s.idleCPU(ctx, s.cfg.Idle); err != nil {
		return err
	}
	if p.RestartWarm, err = s.restart(ctx, ColdCacheOff); err != nil {
		return err
	}
	restarted, err := procMemory(s.srv.pid())
	if err != nil {
		return err
	}
	p.Memory.AfterRestartRSS, p.Memory.AfterRestartAnon = restarted.RSS, restarted.Anon
	if p.ListEmpty, err = s.measureList(ctx, inVault); err != nil {
		return err
	}
	if s.cfg.ColdCache != ColdCacheOff {
		rs, err := s.restart(ctx, s.cfg.ColdCache)
		if err != nil {
			return err
		}
		p.RestartCold = &rs
	}
	return nil
}
