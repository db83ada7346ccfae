// Package auditsink copies audit records to extra destinations (syslog, an HTTP endpoint) once
// the primary, durable audit log has written them. The primary decides the request's fate
// (fail-closed); an extra sink never does: each has a bounded queue that Record fills without
// waiting, a worker that sends batches and retries with backoff, and counters of what it sent
// and dropped. A destination that is down, slow or hanging costs records in its own queue,
// never a request's time.
//
// Sinks are configured in the server's config file only (config.AuditSinksConfig), never
// through the API: a destination is where every caller's activity goes.
package auditsink

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/audit"
)

// Sink is one destination. Send delivers a batch (each element one record's JSON) or fails;
// the Tee retries a failed batch. Sends of one sink never overlap.
type Sink interface {
	Name() string
	Send(ctx context.Context, batch [][]byte) error
	Close() error
}

// Permanent marks a Send error that retrying cannot fix (the destination refused the batch).
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// Options tune a sink's queue and retries; zero fields take the defaults.
type Options struct {
	QueueSize     int           // records waiting; more are dropped. Default 10000.
	BatchSize     int           // records per Send. Default 100.
	FlushInterval time.Duration // how long a partial batch waits for more. Default 1s.
	SendTimeout   time.Duration // one Send's deadline. Default 10s.
	MaxAttempts   int           // Sends of one batch before it is dropped. Default 8.
	MinBackoff    time.Duration // the first retry's delay, doubling to MaxBackoff. Default 200ms.
	MaxBackoff    time.Duration // Default 30s.
}

func (o *Options) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 10000)
	def(&o.BatchSize, 100)
	def(&o.MaxAttempts, 8)
	defd(&o.FlushInterval, time.Second)
	defd(&o.SendTimeout, 10*time.Second)
	defd(&o.MinBackoff, 200*time.Millisecond)
	defd(&o.MaxBackoff, 30*time.Second)
}

// Stats are one sink's counters since start.
type Stats struct {
	Name      string
	Sent      uint64 // records delivered
	Dropped   uint64 // records lost: queue full, or a batch out of attempts or refused
	Failures  uint64 // failed Sends
	Queued    int    // records waiting now
	LastError string // the last failed Send's error ("" after a success)
	LastSent  time.Time
}

// Tee is an audit.Recorder that writes to the primary recorder and then, when that succeeded,
// queues the record for every extra sink.
type Tee struct {
	primary audit.Recorder
	outs    []*out
	log     *slog.Logger
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// out is one sink with its queue and worker.
type out struct {
	sink Sink
	opts Options
	q    chan []byte

	sent, dropped, failures atomic.Uint64
	mu                      sync.Mutex
	lastErr                 string
	lastSent                time.Time
}

// Output is a sink with its queue and retry options.
type Output struct {
	Sink    Sink
	Options Options
}

// New starts a worker per sink; Close stops them. log may be nil.
func New(primary audit.Recorder, log *slog.Logger, sinks ...Output) *Tee {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &Tee{primary: primary, log: log, stop: stop}
	for _, so := range sinks {
		o := so.Options
		o.fill()
		ob := &out{sink: so.Sink, opts: o, q: make(chan []byte, o.QueueSize)}
		t.outs = append(t.outs, ob)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			ob.run(ctx, log)
		}()
	}
	return t
}

// Record writes e to the primary recorder and, once it is written, queues the same record for
// the extra sinks without waiting for them.
func (t *Tee) Record(ctx context.Context, e audit.Event) error {
	// Fixed here so that the copies are the record the primary wrote.
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.RequestID == "" {
		e.RequestID = uuid.NewString()
	}
	if err := t.primary.Record(ctx, e); err != nil {
		return err
	}
	if len(t.outs) == 0 {
		return nil
	}
	line, err := json.Marshal(audit.NewRecord(e))
	if err != nil {
		return nil // the primary has it; a copy is best effort
	}
	for _, o := range t.outs {
		select {
		case o.q <- line:
		default:
			o.dropped.Add(1)
		}
	}
	return nil
}

// Healthy is the primary's health: an extra sink's trouble shows in Stats, not here.
func (t *Tee) Healthy() bool { return t.primary.Healthy() }

// Stats reports each sink's counters.
func (t *Tee) Stats() []Stats {
	out := make([]Stats, 0, len(t.outs))
	for _, o := range t.outs {
		o.mu.Lock()
		st := Stats{Name: o.sink.Name(), Sent: o.sent.Load(), Dropped: o.dropped.Load(), Failures: o.failures.Load(),
			Queued: len(o.q), LastError: o.lastErr, LastSent: o.lastSent}
		o.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Close stops the workers (a batch being sent or retried is abandoned) and closes the sinks.
func (t *Tee) Close() error {
	t.stop()
	t.wg.Wait()
	var errs []error
	for _, o := range t.outs {
		errs = append(errs, o.sink.Close())
	}
	return errors.Join(errs...)
}

// run collects batches from the queue and sends each until it is delivered, refused or out of
// attempts; meanwhile new records wait in the queue (or are dropped when it is full).
func (o *out) run(ctx context.Context, log *slog.Logger) {
	batch := make([][]byte, 0, o.opts.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case line := <-o.q:
			batch = append(batch, line)
		}
		// Gather more until the batch is full or the flush interval passes.
		timer.Reset(o.opts.FlushInterval)
	gather:
		for len(batch) < o.opts.BatchSize {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case line := <-o.q:
				batch = append(batch, line)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		o.deliver(ctx, log, batch)
		batch = batch[:0]
	}
}

func (o *out) deliver(ctx context.Context, log *slog.Logger, batch [][]byte) {
	backoff := o.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, o.opts.SendTimeout)
		err := o.sink.Send(sctx, batch)
		cancel()
		if err == nil {
			o.sent.Add(uint64(len(batch)))
			o.mu.Lock()
			o.lastErr, o.lastSent = "", time.Now()
			o.mu.Unlock()
			return
		}
		o.failures.Add(1)
		o.mu.Lock()
		o.lastErr = err.Error()
		o.mu.Unlock()
		var perm *Permanent
		if errors.As(err, &perm) || attempt >= o.opts.MaxAttempts || ctx.Err() != nil {
			o.dropped.Add(uint64(len(batch)))
			log.Warn("audit sink dropped a batch", "sink", o.sink.Name(), "records", len(batch), "attempts", attempt, "err", err)
			return
		}
		// Jitter (half to one and a half times the backoff) keeps nodes from retrying in step.
		wait := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		select {
		case <-ctx.Done():
			o.dropped.Add(uint64(len(batch)))
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, o.opts.MaxBackoff)
	}
}
