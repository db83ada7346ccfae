package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body under the webhook's secret>".
const SignatureHeader = "X-Strongroom-Signature"

// Sign is the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret (constant time), as a receiver
// checks it.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Webhook is one destination and the secret its bodies are signed with.
type Webhook struct {
	URL    string
	Secret []byte
}

// Poster sends a request body (internal/outbound's Client: SSRF-safe, bounded, no redirects).
type Poster interface {
	Post(ctx context.Context, url string, header http.Header, body []byte) (int, []byte, error)
}

// DispatchOptions configure a Dispatcher.
type DispatchOptions struct {
	Webhooks []Webhook
	Post     Poster
	// MaxAttempts per alert and webhook (default 8); the wait after a failed attempt starts at
	// Backoff (default 1s) and doubles up to MaxBackoff (default 5m).
	MaxAttempts         int
	Backoff, MaxBackoff time.Duration
	// QueueSize bounds the alerts waiting per webhook (default 256); more are dropped.
	QueueSize int
	// Failed is called when an alert is given up on (attempts spent, or the queue full).
	Failed func()
	Log    *slog.Logger
}

// Dispatcher posts alerts to webhooks, each webhook in order on its own goroutine, so a slow
// or failing destination delays only its own alerts.
type Dispatcher struct {
	opts   DispatchOptions
	queues []chan Alert
}

// NewDispatcher makes a dispatcher; Run starts its senders.
func NewDispatcher(opts DispatchOptions) *Dispatcher {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	d := &Dispatcher{opts: opts}
	for range opts.Webhooks {
		d.queues = append(d.queues, make(chan Alert, opts.QueueSize))
	}
	return d
}

// Send queues al for every webhook without blocking.
func (d *Dispatcher) Send(al Alert) {
	for i, q := range d.queues {
		select {
		case q <- al:
		default:
			d.failed(i, al, "queue full")
		}
	}
}

// Run sends queued alerts until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	for i := range d.queues {
		go d.sender(ctx, i)
	}
}

func (d *Dispatcher) sender(ctx context.Context, i int) {
	for {
		select {
		case <-ctx.Done():
			return
		case al := <-d.queues[i]:
			d.deliver(ctx, i, al)
		}
	}
}

// deliver posts al to webhook i until it answers 2xx or the attempts run out.
func (d *Dispatcher) deliver(ctx context.Context, i int, al Alert) {
	wh := d.opts.Webhooks[i]
	body, err := json.Marshal(al)
	if err != nil {
		d.failed(i, al, "encoding")
		return
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign(wh.Secret, body))
	h.Set("X-Strongroom-Incident", al.ID)
	wait := d.opts.Backoff
	for attempt := 1; ; attempt++ {
		status, _, err := d.opts.Post.Post(ctx, wh.URL, h, body)
		if err == nil && status >= 200 && status < 300 {
			return
		}
		if attempt >= d.opts.MaxAttempts {
			d.failed(i, al, "attempts spent")
			return
		}
		// The error text never holds the URL's query (outbound redacts it).
		d.opts.Log.Warn("alert webhook attempt failed", "webhook", i, "incident", al.ID, "attempt", attempt, "status", status, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, d.opts.MaxBackoff)
	}
}

func (d *Dispatcher) failed(i int, al Alert, why string) {
	d.opts.Log.Error("alert not delivered to webhook", "webhook", i, "incident", al.ID, "rule", al.Rule, "reason", why)
	if d.opts.Failed != nil {
		d.opts.Failed()
	}
}
