package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stragglerGrace bounds how long an operation may run past the window before it is cancelled, so
// a wedged server cannot hang the benchmark.
const stragglerGrace = 10 * time.Second

// Run prepares the target (token, resource group, vault, secrets) and drives cfg.Workers
// closed-loop workers through the warm-up and the measured window.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.ServerPID > 0 {
		if _, err := procCPU(cfg.ServerPID); err != nil {
			return Result{}, err
		}
	}
	roots, err := loadCA(cfg.CAFile)
	if err != nil {
		return Result{}, err
	}
	admin, err := readAdmin(cfg.AdminFile)
	if err != nil {
		return Result{}, err
	}
	t, err := prepare(ctx, cfg, roots, admin)
	if err != nil {
		return Result{}, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := make([]*worker, cfg.Workers)
	for i := range workers {
		workers[i] = newWorker(runCtx, t, newTransport(roots, cfg.HTTP2), uint64(time.Now().UnixNano())+uint64(i))
		defer workers[i].rt.CloseIdleConnections()
	}
	if err := populate(cfg, workers); err != nil {
		return Result{}, err
	}
	return measure(ctx, cfg, t, workers, cancel)
}

// populate writes one version of every secret, spreading the names over the workers so each
// worker's connection is also established before the window.
func populate(cfg Config, workers []*worker) error {
	if !cfg.Populate {
		return nil
	}
	progress(cfg, "populating %d secrets", cfg.Secrets)
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for wi, w := range workers {
		wg.Go(func() {
			for i := wi; i < cfg.Secrets; i += len(workers) {
				if err := w.do(true, i); err != nil {
					errs[wi] = fmt.Errorf("populating %s: %w", secretName(i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return checkRead(workers[0])
}

// checkRead reads one populated secret back and compares the value, so a server that answers 200
// with the wrong thing does not produce a flattering benchmark.
func checkRead(w *worker) error {
	req := *w.get
	if w.t.place != nil {
		req.Host, req.URL = w.t.place(0, false)
	} else {
		req.URL = w.t.readURLs[0]
	}
	resp, err := w.rt.RoundTrip(&req)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", secretName(0), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading back %s: %w", secretName(0), err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading back %s: %w", secretName(0), statusError(resp.StatusCode, body))
	}
	var bundle struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &bundle); err != nil || bundle.Value != w.t.value {
		return fmt.Errorf("reading back %s: the reply does not carry the written value", secretName(0))
	}
	return nil
}

// measure runs the warm-up and the window and collects the result.
func measure(ctx context.Context, cfg Config, t *target, workers []*worker, cancel context.CancelFunc) (Result, error) {
	progress(cfg, "running %s with %d workers: %s warm-up, %s window", cfg.Mode, cfg.Workers, cfg.Warmup, cfg.Duration)
	begin := time.Now()
	start := begin.Add(cfg.Warmup)
	end := start.Add(cfg.Duration)
	var (
		counted atomic.Int64 // operations started inside the window
		stopped atomic.Bool  // set when MaxOps is reached
		wg      sync.WaitGroup
	)
	startNs, endNs := start.UnixNano(), end.UnixNano()
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && !stopped.Load() {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				inWindow := !t0.Before(start)
				if inWindow && counted.Add(1) > cfg.MaxOps {
					stopped.Store(true)
					return
				}
				write := cfg.Mode == ModeWrite || (cfg.Mode == ModeMix && w.rng.Float64() >= cfg.MixRead)
				err := w.do(write, w.rng.IntN(cfg.Secrets))
				t1 := time.Now().UnixNano()
				if !inWindow || t1 > endNs {
					continue
				}
				w.lastFinish = t1
				switch {
				case err != nil:
					w.fail(err)
				case write:
					w.writes = append(w.writes, t1-t0.UnixNano())
				default:
					w.reads = append(w.reads, t1-t0.UnixNano())
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Stragglers past the window are cancelled after a grace period.
	watchdog := time.AfterFunc(time.Until(end)+stragglerGrace, cancel)
	defer watchdog.Stop()

	// Sample CPU at the window's edges (or when the workers stop early).
	var cpu0, cpu1 cpuSample
	select {
	case <-time.After(time.Until(start)):
		cpu0 = sampleCPU(cfg.ServerPID)
	case <-done:
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("running benchmark: %w", err)
		}
		return Result{}, errors.New("running benchmark: workers stopped before the window")
	}
	select {
	case <-time.After(time.Until(end)):
	case <-done:
	}
	cpu1 = sampleCPU(cfg.ServerPID)
	<-done
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("running benchmark: %w", err)
	}

	window := cfg.Duration
	if stopped.Load() {
		// The op cap ended the window: it lasted until the last recorded completion.
		var last int64
		for _, w := range workers {
			last = max(last, w.lastFinish)
		}
		window = time.Duration(max(last-startNs, 1))
	}
	return collect(cfg, t, workers, window, cpu0, cpu1), nil
}

type cpuSample struct{ server, client, machine time.Duration }

func sampleCPU(pid int) cpuSample {
	s := cpuSample{client: selfCPU(), machine: machineBusy()}
	if pid > 0 {
		s.server, _ = procCPU(pid) // checked readable at start; a vanished server shows as errors
	}
	return s
}

// collect merges the workers' records into a Result.
func collect(cfg Config, t *target, workers []*worker, window time.Duration, cpu0, cpu1 cpuSample) Result {
	sec := window.Seconds()
	var reads, writes []int64
	r := Result{
		Target: t.base, Mode: cfg.Mode, Workers: cfg.Workers, ValueSize: cfg.ValueSize,
		Secrets: cfg.Secrets, HTTP2: cfg.HTTP2, WindowSec: sec, ErrorKinds: map[string]int64{},
	}
	if cfg.Mode == ModeMix {
		r.MixRead = cfg.MixRead
	}
	for _, w := range workers {
		reads = append(reads, w.reads...)
		writes = append(writes, w.writes...)
		r.Errors += w.errors
		for k, n := range w.errorKinds {
			r.ErrorKinds[k] += n
		}
		if w.firstErr != nil && r.FirstError == "" {
			r.FirstError = w.firstErr.Error()
		}
	}
	all := append(append(make([]int64, 0, len(reads)+len(writes)), reads...), writes...)
	r.OpStats = summarize(all, sec)
	if cfg.Mode == ModeMix {
		rs, ws := summarize(reads, sec), summarize(writes, sec)
		r.Read, r.Write = &rs, &ws
	}
	attempts := float64(r.Ops + r.Errors)
	if attempts > 0 {
		if cfg.ServerPID > 0 {
			d := cpu1.server - cpu0.server
			r.ServerCPUUsPerOp = float64(d.Microseconds()) / attempts
			r.ServerCores = d.Seconds() / sec
		}
		d := cpu1.client - cpu0.client
		r.ClientCPUUsPerOp = float64(d.Microseconds()) / attempts
		r.ClientCores = d.Seconds() / sec
	}
	// On a shared box, CPU used by anything else during the window is the main source of noise.
	if m := cpu1.machine - cpu0.machine; m > 0 {
		r.OtherCores = max(m.Seconds()/sec-r.ServerCores-r.ClientCores, 0)
	}
	return r
}

func progress(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...)
	}
}
