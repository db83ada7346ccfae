// Package alerts watches the audit records a server writes and raises alerts on unusual
// access: brute force (failed authentications or authorizations from one caller or address),
// new patterns (a caller reading a secret it never read from a network never seen for it,
// after a learning period), rate spikes (reads far above a caller's own baseline, or many
// distinct secrets of one vault), honeytoken reads, and audit sink trouble.
//
// Invariants: observing never blocks or fails a request (records wait in a bounded queue and
// are dropped, and counted, when it is full); every memory is bounded (least recently seen
// callers and addresses go first); an incident alerts exactly once (it stays open until its
// window passes without a matching request); an alert names who, what, where and when, never
// a secret value (the records it reads hold none). Alerts go to the log, to a counter by rule
// kind, to a bounded in-memory history and to signed webhooks (webhook.go).
package alerts

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/audit"
)

// Alert is one fired incident, as the history, the log and webhooks carry it.
type Alert struct {
	ID       string    `json:"id"` // the incident id
	Rule     string    `json:"rule"`
	Kind     Kind      `json:"kind"`
	Time     time.Time `json:"time"`
	Summary  string    `json:"summary"`
	Who      Who       `json:"who"`
	What     What      `json:"what"`
	Where    Where     `json:"where"`
	Severity string    `json:"severity"`
}

// Who is the caller: its object id, client id and address.
type Who struct {
	ObjectID string `json:"oid,omitempty"`
	AppID    string `json:"appid,omitempty"`
	IP       string `json:"ip,omitempty"`
}

// What is the request that raised the alert: its operation, vault and secret name (names,
// never values), status, and how many requests the incident counted.
type What struct {
	Operation  string `json:"operation,omitempty"`
	Vault      string `json:"vault,omitempty"`
	Secret     string `json:"secret,omitempty"`
	Status     int    `json:"status,omitempty"`
	Count      int    `json:"count,omitempty"`
	ResourceID string `json:"resourceId,omitempty"`
	RequestID  string `json:"requestId,omitempty"`
}

// Where is the node that saw it and the caller's network.
type Where struct {
	Node    string `json:"node,omitempty"`
	Network string `json:"network,omitempty"`
}

// Options configure an Engine.
type Options struct {
	// Rules are the configured rules (one per built-in kind, see Default); rules set through
	// the API override them by name (SetOverrides).
	Rules []Rule
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// IsHoneytoken reports whether a vault's secret is a honeytoken; nil: none is.
	IsHoneytoken func(vault, secret string) bool
	// AuditHealthy reports whether the audit sink writes; nil: always. AuditTrouble, if set,
	// reports other trouble (a disk about to fill) in a few words, or "".
	AuditHealthy func() bool
	AuditTrouble func() string
	// Node names this server in alerts.
	Node string
	// QueueSize bounds the records waiting to be observed (default 4096); History bounds the
	// fired alerts kept (default 1000).
	QueueSize, History int
	// Fired is called for every alert (metrics, webhooks); Dropped for every record the full
	// queue dropped. Both must not block.
	Fired   func(Alert)
	Dropped func()
	Log     *slog.Logger
}

// Engine runs the rules. It is safe for concurrent use.
type Engine struct {
	opts  Options
	queue chan pending
	drops atomic.Int64

	mu        sync.Mutex // serializes the rules' state
	overrides []Rule
	rules     []*activeRule       // effective rules, configured then API-only ones
	sinkOpen  bool                // an audit sink incident is open
	rotations map[string]struct{} // rotations that have alerted (RotationFailed)

	histMu  sync.Mutex
	history []Alert // ring, oldest first once full
	next    int
}

type activeRule struct {
	Rule
	source string // "config" or "api"
	det    detector
}

type pending struct {
	e  audit.Event
	at time.Time
}

// New makes an engine; Run starts it.
func New(opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.History <= 0 {
		opts.History = 1000
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	e := &Engine{opts: opts, queue: make(chan pending, opts.QueueSize)}
	e.SetOverrides(nil)
	return e
}

// Observe queues a record the audit log has written. It never blocks: when the queue is full
// the record is dropped and counted.
func (e *Engine) Observe(ev audit.Event) {
	select {
	case e.queue <- pending{e: ev, at: e.opts.Now()}:
	default:
		e.drops.Add(1)
		if e.opts.Dropped != nil {
			e.opts.Dropped()
		}
	}
}

// Dropped is how many records the full queue dropped.
func (e *Engine) Dropped() int64 { return e.drops.Load() }

// Run observes queued records and checks the audit sink every AuditSink window (as the rule
// now says: a change through the API applies at the next second) until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-e.queue:
			e.process(p.e, p.at)
			e.drain()
			// Under load, let records gather before the next look: the goroutine then wakes
			// about 1/batchPause times a second instead of once per request. Idle, it waits on
			// the queue and costs nothing.
			select {
			case <-ctx.Done():
				return
			case <-time.After(batchPause):
			}
		case <-tick.C:
			if r := e.rule(KindAuditSink); r != nil && time.Since(last) >= r.Window.D() {
				last = time.Now()
				e.CheckSink()
			}
		}
	}
}

// batchPause is how long Run lets records gather after a batch (records wait in the queue; an
// alert is at most this much later).
const batchPause = 10 * time.Millisecond

// drain processes every record queued now.
func (e *Engine) drain() {
	for {
		select {
		case p := <-e.queue:
			e.process(p.e, p.at)
		default:
			return
		}
	}
}

func (e *Engine) rule(k Kind) *Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.rules {
		if r.Kind == k && r.Enabled {
			rr := r.Rule
			return &rr
		}
	}
	return nil
}

// process runs every rule on one record observed at at.
func (e *Engine) process(ev audit.Event, at time.Time) {
	a := toAccess(ev, at)
	e.mu.Lock()
	var fired []Alert
	for _, r := range e.rules {
		if !r.Enabled || r.det == nil {
			continue
		}
		for _, in := range r.det.observe(&a) {
			fired = append(fired, e.alert(r.Rule, in, &a))
		}
	}
	e.mu.Unlock()
	for _, al := range fired {
		e.fire(al)
	}
}

// CheckSink raises one AuditSink alert when the audit sink stops writing (or reports trouble),
// and closes the incident once it is healthy again. Run calls it every AuditSink window.
func (e *Engine) CheckSink() {
	r := e.rule(KindAuditSink)
	if r == nil {
		return
	}
	trouble := ""
	if e.opts.AuditHealthy != nil && !e.opts.AuditHealthy() {
		trouble = "the audit log stopped writing; requests are refused"
	} else if e.opts.AuditTrouble != nil {
		trouble = e.opts.AuditTrouble()
	}
	e.mu.Lock()
	open := e.sinkOpen
	e.sinkOpen = trouble != ""
	e.mu.Unlock()
	if trouble == "" || open {
		return
	}
	a := access{at: e.opts.Now()}
	e.fire(e.alert(*r, incident{subject: "audit-sink", summary: trouble, count: 1}, &a))
}

// RotationFailed raises one RotationFailure alert per rotation (rotationID) whose step failed:
// its retries stay quiet, the rotation's events and status carry them. msg never holds a value
// (the service scrubs it).
func (e *Engine) RotationFailed(vault, secret, rotationID, step, msg string) {
	r := e.rule(KindRotation)
	if r == nil {
		return
	}
	e.mu.Lock()
	if e.rotations == nil {
		e.rotations = map[string]struct{}{}
	}
	_, seen := e.rotations[rotationID]
	if !seen {
		if len(e.rotations) >= r.MaxSubjects {
			clear(e.rotations) // bounded: a forgotten rotation may alert once more
		}
		e.rotations[rotationID] = struct{}{}
	}
	e.mu.Unlock()
	if seen {
		return
	}
	a := access{at: e.opts.Now(), op: "SecretRotate", vault: vault, secret: secret}
	e.fire(e.alert(*r, incident{subject: rotationID, summary: "secret rotation failed at step " + step + ": " + msg, count: 1}, &a))
}

func (e *Engine) alert(r Rule, in incident, a *access) Alert {
	return Alert{ID: uuid.NewString(), Rule: r.Name, Kind: r.Kind, Time: a.at.UTC(), Summary: in.summary, Severity: severity(r.Kind),
		Who:   Who{ObjectID: a.oid, AppID: a.appid, IP: a.ip},
		What:  What{Operation: a.op, Vault: a.vault, Secret: a.secret, Status: a.status, Count: in.count, ResourceID: a.resource, RequestID: a.requestID},
		Where: Where{Node: e.opts.Node, Network: in.network}}
}

func severity(k Kind) string {
	switch k {
	case KindHoneytoken, KindAuditSink:
		return "critical"
	case KindRotation:
		return "warning"
	case KindNewPattern:
		return "warning"
	}
	return "error"
}

// fire records al in the history and the log, then hands it on.
func (e *Engine) fire(al Alert) {
	e.histMu.Lock()
	if len(e.history) < e.opts.History {
		e.history = append(e.history, al)
	} else {
		e.history[e.next] = al
		e.next = (e.next + 1) % e.opts.History
	}
	e.histMu.Unlock()
	// Names and ids only: the record held no value to log.
	e.opts.Log.Warn("alert", "rule", al.Rule, "kind", al.Kind, "incident", al.ID, "summary", al.Summary,
		"oid", al.Who.ObjectID, "appid", al.Who.AppID, "ip", al.Who.IP, "operation", al.What.Operation,
		"vault", al.What.Vault, "secret", al.What.Secret, "status", al.What.Status)
	if e.opts.Fired != nil {
		e.opts.Fired(al)
	}
}

// Alerts returns the fired alerts this node keeps, newest first, at most max (0: all).
func (e *Engine) Alerts(max int) []Alert {
	e.histMu.Lock()
	out := make([]Alert, 0, len(e.history))
	out = append(out, e.history[e.next:]...)
	out = append(out, e.history[:e.next]...)
	e.histMu.Unlock()
	slices.Reverse(out)
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// RuleInfo is an effective rule and where its settings come from ("config" or "api").
type RuleInfo struct {
	Rule
	Source string
}

// Rules returns the effective rules: each configured rule (or the API rule that overrides it),
// then the rules only the API set, by name.
func (e *Engine) Rules() []RuleInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleInfo, len(e.rules))
	for i, r := range e.rules {
		out[i] = RuleInfo{Rule: r.Rule, Source: r.source}
	}
	return out
}

// SetOverrides replaces the rules set through the API. A rule whose settings did not change
// keeps its state (what it learned, its open incidents); a changed one starts afresh.
func (e *Engine) SetOverrides(api []Rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := map[string]*activeRule{}
	for _, r := range e.rules {
		old[strings.ToLower(r.Name)] = r
	}
	byName := map[string]Rule{}
	for _, r := range api {
		byName[strings.ToLower(r.Name)] = r
	}
	var next []*activeRule
	add := func(r Rule, source string) {
		if prev := old[strings.ToLower(r.Name)]; prev != nil && prev.Rule == r {
			prev.source = source
			next = append(next, prev)
			return
		}
		next = append(next, &activeRule{Rule: r, source: source, det: e.detector(r)})
	}
	configured := map[string]bool{}
	for _, r := range e.opts.Rules {
		key := strings.ToLower(r.Name)
		configured[key] = true
		if o, ok := byName[key]; ok {
			add(o, "api")
		} else {
			add(r, "config")
		}
	}
	names := make([]string, 0, len(byName))
	for k := range byName {
		if !configured[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		add(byName[k], "api")
	}
	e.overrides, e.rules = api, next
}

func (e *Engine) detector(r Rule) detector {
	switch r.Kind {
	case KindBruteForce:
		return newBruteForce(r)
	case KindNewPattern:
		return newNewPattern(r)
	case KindRateSpike:
		return newRateSpike(r)
	case KindHoneytoken:
		return newHoneytoken(r, e.opts.IsHoneytoken)
	}
	return nil // AuditSink is checked by CheckSink
}

// toAccess reads what the rules need of a record. A data-plane record's object id is the
// secret's id, "https://{vault}.{suffix}/secrets/{name}[/{version}]".
func toAccess(ev audit.Event, at time.Time) access {
	a := access{at: at, op: ev.Operation, status: ev.Status, ip: ev.CallerIP, resource: ev.ResourceID, requestID: ev.RequestID, desc: ev.Description}
	if ev.Caller != nil {
		a.oid, a.appid = ev.Caller.ObjectID, ev.Caller.AppID
	}
	if strings.HasPrefix(ev.Operation, "Secret") && ev.ObjectID != "" {
		a.vault, a.secret = secretOf(ev.ObjectID)
	}
	return a
}

// secretOf splits a secret id, https://{vault}.{suffix}[:port]/secrets/{name}[/{version}], into
// the vault (lower case) and the secret's name, with string cuts rather than url.Parse: it runs
// for every secret operation the engine sees.
func secretOf(id string) (vault, secret string) {
	rest, ok := strings.CutPrefix(id, "https://")
	if !ok {
		return "", ""
	}
	host, path, _ := strings.Cut(rest, "/")
	if v, _, ok := strings.Cut(host, "."); ok {
		vault = strings.ToLower(v)
	}
	if p, ok := strings.CutPrefix(path, "secrets/"); ok {
		secret, _, _ = strings.Cut(p, "/")
	}
	return vault, secret
}

func upper(s string) string { return strings.ToUpper(s) }
