// Package events delivers Key Vault events to webhook subscribers as Azure Event Grid does:
// a validation handshake before anything else, then at-least-once delivery of each event with
// exponential backoff, and dead-lettering after the attempts or the time to live run out.
//
// The worker keeps no state of its own that matters: what is due, how many attempts a
// delivery had and what was dead-lettered live in the store (service.EventQueue), written
// after each attempt, so a restart or a new leader resumes the queue. An event is delivered
// again only when its acknowledgement was not recorded: at least once, never lost. Every call
// goes through the outbound client, which refuses destinations inside the server's network.
package events

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/service"
)

// Options configure a Worker.
type Options struct {
	Queue *service.EventQueue
	// Outbound is the client options (destinations allowed, timeouts, response bound).
	Outbound outbound.Options
	// Leads reports whether this node delivers (the leader in a cluster); nil: always.
	Leads func() bool
	Log   *slog.Logger
	// Interval between passes; 0 means 1s.
	Interval time.Duration
	// RetryBase and RetryMax shape the backoff: RetryBase·2^(attempts-1), at most RetryMax.
	// Zero means 10s and 1h.
	RetryBase, RetryMax time.Duration
	// Batch bounds the deliveries one pass attempts; 0 means 64. Parallel bounds the calls in
	// flight; 0 means 8.
	Batch, Parallel int
	// MaxValidationAttempts is how many failed handshakes fail a subscription; 0 means 10.
	MaxValidationAttempts int
}

// Worker delivers events. It also serves the HTTP layer's destination check.
type Worker struct {
	opts   Options
	client *outbound.Client
	log    *slog.Logger

	mu        sync.Mutex
	validNext map[string]time.Time // subscription uid -> next handshake attempt (memory only)
	inflight  map[string]bool      // subscriptions being delivered to (vault id/lower name)
}

// New returns a worker; Run starts it.
func New(opts Options) *Worker {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 10 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.MaxValidationAttempts <= 0 {
		opts.MaxValidationAttempts = 10
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Worker{opts: opts, client: outbound.New(opts.Outbound), log: log, validNext: map[string]time.Time{}, inflight: map[string]bool{}}
}

// CheckDestination validates a subscription's endpoint when it is stored.
func (w *Worker) CheckDestination(rawURL string) error {
	return outbound.CheckURL(rawURL, w.opts.Outbound)
}

// Redact is the endpoint as GET and list show it.
func (w *Worker) Redact(rawURL string) string { return outbound.Redact(rawURL) }

// Run passes over the queue every Interval until ctx ends, while this node leads.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		if w.opts.Leads == nil || w.opts.Leads() {
			if err := w.pass(ctx, false); err != nil && ctx.Err() == nil {
				w.log.Warn("events: delivery pass", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass does one bounded round: expiry events that came due, fan-out of new events, pending
// handshakes, then due deliveries, and returns when they are done.
func (w *Worker) Pass(ctx context.Context) error { return w.pass(ctx, true) }

// pass is Pass; without wait, deliveries go on in the background (Run's passes).
func (w *Worker) pass(ctx context.Context, wait bool) error {
	q := w.opts.Queue
	if _, err := q.DueExpiries(ctx); err != nil {
		return fmt.Errorf("expiry events: %w", err)
	}
	if _, err := q.FanOut(ctx); err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	if err := w.validate(ctx); err != nil {
		return fmt.Errorf("validation: %w", err)
	}
	return w.deliver(ctx, wait)
}

// backoff is the wait after the n-th failed attempt (n >= 1).
func (w *Worker) backoff(n int) time.Duration {
	d := w.opts.RetryBase
	for i := 1; i < n && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, w.opts.RetryMax)
}

// validate runs the handshake of each pending subscription whose next attempt is due.
func (w *Worker) validate(ctx context.Context) error {
	q := w.opts.Queue
	pend, err := q.PendingValidations(ctx)
	if err != nil {
		return err
	}
	now := q.Now()
	sem := make(chan struct{}, w.opts.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, sub := range pend {
		w.mu.Lock()
		next, wait := w.validNext[sub.UID]
		w.mu.Unlock()
		if wait && now.Before(next) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() { // an endpoint that hangs until the timeout holds up only its own handshake
			defer func() { <-sem; wg.Done() }()
			if err := w.validateOne(ctx, sub, now); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// validateOne runs one subscription's handshake and records the outcome.
func (w *Worker) validateOne(ctx context.Context, sub service.EventSubscription, now time.Time) error {
	err := w.handshake(ctx, sub)
	state := ""
	switch {
	case err == nil:
		state = service.SubscriptionSucceeded
		w.log.Info("events: subscription validated", "vault", sub.VaultName, "subscription", sub.Name)
	case sub.ValidationAttempts+1 >= w.opts.MaxValidationAttempts:
		state = service.SubscriptionFailed
		w.log.Warn("events: subscription validation failed", "vault", sub.VaultName, "subscription", sub.Name, "err", err)
	default:
		w.log.Info("events: validation handshake failed, will retry", "vault", sub.VaultName, "subscription", sub.Name, "err", err)
	}
	w.mu.Lock()
	if state == "" {
		w.validNext[sub.UID] = now.Add(w.backoff(sub.ValidationAttempts + 1))
	} else {
		delete(w.validNext, sub.UID)
	}
	w.mu.Unlock()
	return w.opts.Queue.RecordValidation(ctx, sub, state)
}

// validationOrigin is the origin the CloudEvents handshake names, as Event Grid's does.
const validationOrigin = "eventgrid.azure.net"

// handshake proves the endpoint wants the events. For the Event Grid schema it posts a
// SubscriptionValidationEvent and checks the endpoint echoes the code; for CloudEvents it is
// the CloudEvents webhook validation (OPTIONS with WebHook-Request-Origin, answered with
// WebHook-Allowed-Origin), as Event Grid does for that schema.
func (w *Worker) handshake(ctx context.Context, sub service.EventSubscription) error {
	if sub.Schema == service.SchemaCloudEvent {
		h := http.Header{"Webhook-Request-Origin": {validationOrigin}, "Webhook-Request-Rate": {"120"}}
		status, rh, _, err := w.client.Do(ctx, http.MethodOptions, sub.EndpointURL, h, nil)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("the endpoint answered %d to the CloudEvents validation", status)
		}
		if o := rh.Get("Webhook-Allowed-Origin"); o != validationOrigin && o != "*" {
			return fmt.Errorf("the endpoint did not allow origin %s", validationOrigin)
		}
		return nil
	}
	body, ctype, err := encode(sub.Schema, uuid.NewString(), sub.Topic, "", validationEventType, time.Now(),
		validationData{ValidationCode: sub.ValidationCode})
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": {ctype}, "Aeg-Event-Type": {"SubscriptionValidation"},
		"Aeg-Subscription-Name": {sub.Name}, "Aeg-Data-Version": {"1"}, "Aeg-Metadata-Version": {"1"}}
	status, resp, err := w.client.Post(ctx, sub.EndpointURL, h, body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("the endpoint answered %d", status)
	}
	var ans struct {
		ValidationResponse string `json:"validationResponse"`
	}
	if json.Unmarshal(resp, &ans) != nil || ans.ValidationResponse != sub.ValidationCode {
		return fmt.Errorf("the endpoint did not answer the validation code")
	}
	return nil
}

// deliver attempts up to Batch due deliveries. Each subscription's are sent in order by one
// goroutine, at most Parallel subscriptions at a time, and a subscription that is still being
// delivered to from an earlier pass is skipped: an endpoint that hangs until the timeout holds
// up only its own events. After a failed attempt the rest of that subscription's batch waits
// for the next pass. wait makes the call return only when this pass's deliveries are done.
func (w *Worker) deliver(ctx context.Context, wait bool) error {
	q := w.opts.Queue
	ds, err := q.DueDeliveries(ctx, w.opts.Batch, max(w.opts.Batch/4, 1), func(sub string) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.inflight[sub]
	})
	if err != nil {
		return err
	}
	var order []string
	groups := map[string][]service.Delivery{}
	for _, d := range ds {
		k := d.Sub.VaultID + "/" + strings.ToLower(d.Sub.Name)
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], d)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, k := range order {
		w.mu.Lock()
		busy := w.inflight[k] || len(w.inflight) >= w.opts.Parallel
		if !busy {
			w.inflight[k] = true
		}
		w.mu.Unlock()
		if busy {
			continue
		}
		wg.Add(1)
		go func(group []service.Delivery) {
			defer func() {
				w.mu.Lock()
				delete(w.inflight, k)
				w.mu.Unlock()
				wg.Done()
			}()
			for _, d := range group {
				failed, err := w.deliverOne(ctx, d)
				if err != nil {
					if !wait && ctx.Err() == nil {
						w.log.Warn("events: recording a delivery", "vault", d.Sub.VaultName, "subscription", d.Sub.Name, "err", err)
					}
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
				if failed || err != nil {
					return
				}
			}
		}(groups[k])
	}
	if !wait {
		return nil
	}
	wg.Wait()
	return firstErr
}

// Dead-letter reasons, as Event Grid names them.
const (
	ReasonMaxAttempts  = "MaxDeliveryAttemptsExceeded"
	ReasonTTL          = "TimeToLiveExceeded"
	ReasonNotRetryable = "DeliveryNotRetryable"
	ReasonSubFailed    = "SubscriptionValidationFailed"
)

// notValidatedWait is how often a delivery to a subscription awaiting its handshake is looked
// at again; the wait counts against the time to live, not the attempts.
const notValidatedWait = 2 * time.Second

// deliverOne handles one delivery and records its outcome; failed reports an attempt that did
// not deliver.
func (w *Worker) deliverOne(ctx context.Context, d service.Delivery) (failed bool, err error) {
	q := w.opts.Queue
	now := q.Now()
	ttl := time.Duration(d.Sub.EventTTLMinutes) * time.Minute
	expired := ttl > 0 && now.Sub(d.Enqueued) >= ttl
	switch d.Sub.State {
	case service.SubscriptionFailed:
		return false, q.DeadLetter(ctx, d, false, ReasonSubFailed)
	case service.SubscriptionSucceeded:
	default:
		if expired {
			return false, q.DeadLetter(ctx, d, false, ReasonTTL)
		}
		return false, q.Reschedule(ctx, d, now.Add(notValidatedWait), false, "awaiting the subscription's validation")
	}
	if expired {
		return false, q.DeadLetter(ctx, d, false, ReasonTTL)
	}
	body, ctype, err := Encode(d.Sub.Schema, d.Event)
	if err != nil {
		return false, err
	}
	h := http.Header{"Content-Type": {ctype}, "Aeg-Event-Type": {"Notification"}, "Aeg-Subscription-Name": {d.Sub.Name},
		"Aeg-Delivery-Count": {strconv.Itoa(d.Attempts)}, "Aeg-Data-Version": {"1"}, "Aeg-Metadata-Version": {"1"}}
	status, _, perr := w.client.Post(ctx, d.Sub.EndpointURL, h, body)
	if perr == nil && status >= 200 && status <= 204 {
		return false, q.Delivered(ctx, d)
	}
	reason := fmt.Sprintf("the endpoint answered %d", status)
	if perr != nil {
		reason = perr.Error() // outbound's errors never carry the URL's query
	}
	switch {
	case perr == nil && (status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge):
		return true, q.DeadLetter(ctx, d, true, ReasonNotRetryable+": "+reason)
	case d.Attempts+1 >= d.Sub.MaxDeliveryAttempts:
		return true, q.DeadLetter(ctx, d, true, ReasonMaxAttempts+": "+reason)
	}
	return true, q.Reschedule(ctx, d, now.Add(w.backoff(d.Attempts+1)), true, reason)
}
