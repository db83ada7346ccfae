package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// armWorkers is how many vaults are created at once: ARM writes are few and each is a store
// transaction, so a handful of connections saturate them.
const armWorkers = 8

// ensureVaults creates vaults [from, to) of the layout through ARM.
func (s *scaleRun) ensureVaults(ctx context.Context, from, to int) error {
	if from >= to {
		return nil
	}
	s.progress("creating vaults %d..%d", from, to-1)
	armToken, err := fetchToken(ctx, s.hc, s.server(), s.admin, armScope)
	if err != nil {
		return err
	}
	if from == 0 {
		if err := ensureGroup(ctx, s.hc, s.server(), s.cfg.ResourceGroup, s.admin, armToken); err != nil {
			return err
		}
	}
	var next atomic.Int64
	next.Store(int64(from))
	errs := make([]error, armWorkers)
	var wg sync.WaitGroup
	for k := range armWorkers {
		wg.Go(func() {
			tr := newTransport(s.roots, false)
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for ctx.Err() == nil && errs[k] == nil {
				v := int(next.Add(1) - 1)
				if v >= to {
					return
				}
				errs[k] = createVault(ctx, hc, s.server(), s.cfg.ResourceGroup, s.lay.vaultName(v), s.admin, armToken)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// newWorkers returns cfg.Workers workers with one connection each, over a fresh data token.
func (s *scaleRun) newWorkers(ctx context.Context) ([]*worker, *target, error) {
	token, err := fetchToken(ctx, s.hc, s.server(), s.admin, s.cfg.Scope)
	if err != nil {
		return nil, nil, err
	}
	s.token = token
	t, err := newScaleTarget(s.lay, token, s.cfg.ValueSize)
	if err != nil {
		return nil, nil, err
	}
	workers := make([]*worker, s.cfg.Workers)
	for i := range workers {
		workers[i] = newWorker(ctx, t, newTransport(s.roots, false), uint64(time.Now().UnixNano())+uint64(i))
	}
	return workers, t, nil
}

func closeWorkers(workers []*worker) {
	for _, w := range workers {
		w.rt.CloseIdleConnections()
	}
}

// populate writes secrets [from, to) with cfg.Workers writers, each taking the next index, and
// stops taking new ones at deadline, so what is written is always the prefix [from, end). It
// returns end and the phase's peak memory. The first write error ends the phase.
func (s *scaleRun) populate(ctx context.Context, from, to int, deadline time.Time) (int, ProcMemory, time.Duration, error) {
	workers, _, err := s.newWorkers(ctx)
	if err != nil {
		return from, ProcMemory{}, 0, err
	}
	defer closeWorkers(workers)
	s.progress("writing secrets %d..%d with %d workers", from, to-1, len(workers))
	mem := startMemSampler(s.srv.pid(), 250*time.Millisecond)
	begin := time.Now()
	var next, done atomic.Int64
	next.Store(int64(from))
	var failed atomic.Bool
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for wi, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && !failed.Load() && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := w.do(true, i); err != nil {
					errs[wi] = fmt.Errorf("writing secret %d: %w", i, err)
					failed.Store(true)
					return
				}
				done.Add(1)
			}
		})
	}
	stopProgress := s.reportProgress(&done, to-from)
	wg.Wait()
	stopProgress()
	took := time.Since(begin)
	peak := mem.finish()
	if err := errors.Join(errs...); err != nil {
		return from, peak, took, err
	}
	if err := ctx.Err(); err != nil {
		return from, peak, took, err
	}
	return min(int(next.Load()), to), peak, took, nil
}

// reportProgress prints the write count every 10 s until the returned stop is called.
func (s *scaleRun) reportProgress(done *atomic.Int64, total int) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				s.progress("  %d/%d written", done.Load(), total)
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// measureReads runs the closed-loop read benchmark over secrets [0, n) and returns its result,
// with the server's CPU per read.
func (s *scaleRun) measureReads(ctx context.Context, n int) (ReadStats, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers, t, err := s.newWorkers(runCtx)
	if err != nil {
		return ReadStats{}, err
	}
	defer closeWorkers(workers)
	cfg := DefaultConfig()
	cfg.Mode, cfg.Workers, cfg.Secrets, cfg.ServerPID = ModeRead, len(workers), n, s.srv.pid()
	cfg.Duration, cfg.Warmup, cfg.ValueSize, cfg.Progress = s.cfg.ReadWindow, s.cfg.Warmup, s.cfg.ValueSize, s.cfg.Progress
	if err := checkRead(workers[0]); err != nil {
		return ReadStats{}, err
	}
	r, err := measure(ctx, cfg, t, workers, cancel)
	if err != nil {
		return ReadStats{}, err
	}
	return ReadStats{OpsPerSec: r.OpsPerSec, ServerCPUUsPerOp: r.ServerCPUUsPerOp, ServerCores: r.ServerCores,
		P50Ms: r.P50Ms, P99Ms: r.P99Ms, Errors: r.Errors, FirstError: r.FirstError, OtherCores: r.OtherCores}, nil
}

// idleCPU samples the server's CPU time over d with no load.
func (s *scaleRun) idleCPU(ctx context.Context, d time.Duration) (float64, error) {
	s.progress("sampling idle server CPU for %s", d)
	c0, err := procCPU(s.srv.pid())
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	c1, err := procCPU(s.srv.pid())
	if err != nil {
		return 0, err
	}
	return (c1 - c0).Seconds() / d.Seconds(), nil
}
