// The delivery side of events: fanning outbox entries out to subscriptions, the due-time index
// of near-expiry and expiry, and the per-delivery state the worker (internal/events) records
// through here, so that it replicates and a new leader resumes where the old one stopped.
// Each step reads a bounded chunk of due entries, never everything stored.

package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Delivery is one event on its way to one subscription.
type Delivery struct {
	Event     Event     `json:"event"`
	SubUID    string    `json:"subUid"`
	Attempts  int       `json:"attempts"`
	Enqueued  time.Time `json:"enqueued"`
	LastError string    `json:"lastError,omitempty"` // never holds a URL's query string

	// Sub is the subscription the delivery goes to, as DueDeliveries read it.
	Sub      EventSubscription `json:"-"`
	key      string
	raw      []byte
	subName  string
	vaultKey string
}

// DeadLetter is a delivery given up on.
type DeadLetter struct {
	Delivery
	Reason         string    `json:"reason"`
	DeadLetteredAt time.Time `json:"deadLetteredAt"`
}

// EventQueue is what the delivery worker calls. It runs as the system, not for a caller, so
// its methods skip the authorization guard; it is not a method set of Service, which the
// guard test requires of every exported method.
type EventQueue struct {
	s   *Service
	now func() time.Time
}

// Events returns the event queue of s with its own clock (nil: the service's), which decides
// what is due; tests move it to reach expiry dates.
func Events(s *Service, now func() time.Time) *EventQueue {
	if now == nil {
		now = s.now
	}
	return &EventQueue{s: s, now: now}
}

// Now is the queue's clock.
func (q *EventQueue) Now() time.Time { return q.now() }

func queueKey(due time.Time, vaultID, name, eventID string) string {
	return evQueuePrefix + msKey(due) + "/" + vaultID + "/" + strings.ToLower(name) + "/" + eventID
}

func deadKey(vaultID, name, eventID string) string {
	return evDeadPrefix + vaultID + "/" + strings.ToLower(name) + "/" + eventID
}

// matches reports whether sub's filter admits ev (subject filters ignore case, as Event
// Grid's do by default).
func (sub *EventSubscription) matches(ev *Event) bool {
	types := sub.IncludedEventTypes
	if len(types) == 0 {
		types = KeyVaultEventTypes
	}
	if !containsFold(types, ev.Type) {
		return false
	}
	subj := strings.ToLower(ev.Subject)
	return strings.HasPrefix(subj, strings.ToLower(sub.SubjectBeginsWith)) && strings.HasSuffix(subj, strings.ToLower(sub.SubjectEndsWith))
}

// FanOut turns up to one chunk of outbox entries into deliveries, one per matching
// subscription, each in one batch with the entry's removal. It returns how many entries it
// handled.
func (q *EventQueue) FanOut(ctx context.Context) (int, error) {
	s := q.s
	type entry struct {
		key string
		raw []byte
	}
	var entries []entry
	err := s.st.Scan(ctx, evOutPrefix, "", func(key string, raw []byte) bool {
		entries = append(entries, entry{key, raw})
		return len(entries) < evChunk
	})
	if err != nil {
		return 0, fmt.Errorf("scanning the event outbox: %w", err)
	}
	subsOf := map[string][]EventSubscription{}
	now := q.now()
	for i, e := range entries {
		var ev Event
		ops := []store.Op{store.RequireEqual(e.key, e.raw), evDrop(e.key)}
		if err := s.open(ctx, keyring.SystemKeyID, e.key, e.raw, &ev); err != nil {
			s.logger().ErrorContext(ctx, "events: dropping an outbox entry that does not open", "key", e.key, "err", err)
		} else {
			subs, ok := subsOf[ev.VaultID]
			if !ok {
				if subs, err = s.vaultSubscriptions(ctx, ev.VaultID); err != nil {
					return i, err
				}
				subsOf[ev.VaultID] = subs
			}
			for _, sub := range subs {
				if sub.State == SubscriptionFailed || !sub.matches(&ev) {
					continue
				}
				d := Delivery{Event: ev, SubUID: sub.UID, Enqueued: now}
				k := queueKey(now, ev.VaultID, sub.Name, ev.ID)
				b, err := s.seal(ctx, keyring.SystemKeyID, k, &d)
				if err != nil {
					return i, err
				}
				ops = append(ops, store.Put(k, b))
			}
		}
		if err := s.apply(ctx, ops); err != nil && !errors.Is(err, errRetry) {
			return i, fmt.Errorf("fanning out event: %w", err)
		}
	}
	return len(entries), nil
}

// DueExpiries turns up to one chunk of due near-expiry and expiry entries into events. An
// entry is only a candidate: the event is emitted only when the secret is live and its latest
// version is the one indexed with that exp; either way the entry is removed, in the batch that
// emits the event, guarded by the head it was checked against.
func (q *EventQueue) DueExpiries(ctx context.Context) (int, error) {
	s := q.s
	now := q.now().Unix()
	bound := evDuePrefix + fmt.Sprintf("%0*d", dueDigits, min(max(now, 0), maxDue)) + "/~"
	var keys []string
	err := s.st.Scan(ctx, evDuePrefix, "", func(key string, _ []byte) bool {
		if key > bound {
			return false
		}
		keys = append(keys, key)
		return len(keys) < evChunk
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	byID := map[string]*Vault{}
	for _, v := range s.vaultSnapshot() {
		byID[v.ID] = v
	}
	for i, key := range keys {
		ops := []store.Op{evDrop(key)}
		e, ok := parseEvDueKey(key)
		if v := byID[e.vaultID]; ok && v != nil && v.Deleted == nil && s.hasSubscriptions(ctx, v.ID) { // else just dropped
			h, raw, found, err := s.head(ctx, v, e.name)
			if err != nil {
				return i, err
			}
			if found {
				ops = append(ops, store.RequireEqual(headKey(v, e.name), raw))
			}
			if found && h.Deleted == nil && strings.EqualFold(h.Latest, e.version) && h.Item.Expires != nil {
				exp := *h.Item.Expires
				typ := ""
				switch {
				case e.kind == dueExp && e.at == exp:
					typ = EventSecretExpired
				case e.kind == dueNear && e.at < exp && e.at >= exp-int64(NearExpiryLead/time.Second) && !s.policyNotifies(ctx, v, e.name):
					typ = EventSecretNearExpiry // a policy's own Notify replaces it (rotation_due.go)
				}
				if typ != "" {
					sv := h.Item
					op, err := s.outboxOp(ctx, s.secretEvent(v, typ, h.Name, &sv))
					if err != nil {
						return i, err
					}
					ops = append(ops, op)
				}
			}
		}
		if err := s.apply(ctx, ops); err != nil && !errors.Is(err, errRetry) {
			return i, fmt.Errorf("emitting expiry events: %w", err)
		}
	}
	return len(keys), nil
}

// PendingValidations returns up to one chunk of subscriptions awaiting the validation
// handshake. Markers of subscriptions gone or settled are removed.
func (q *EventQueue) PendingValidations(ctx context.Context) ([]EventSubscription, error) {
	s := q.s
	var keys []string
	err := s.st.Scan(ctx, evValPrefix, "", func(key string, _ []byte) bool {
		keys = append(keys, key)
		return len(keys) < evChunk
	})
	if err != nil {
		return nil, fmt.Errorf("scanning pending validations: %w", err)
	}
	var out []EventSubscription
	for _, k := range keys {
		id, name, _ := strings.Cut(strings.TrimPrefix(k, evValPrefix), "/")
		sub, found, err := s.subscription(ctx, id, name)
		if err != nil {
			return nil, err
		}
		if !found || sub.State != SubscriptionCreating {
			if err := s.apply(ctx, []store.Op{evDrop(k)}); err != nil && !errors.Is(err, errRetry) {
				return nil, err
			}
			continue
		}
		out = append(out, sub)
	}
	return out, nil
}

// RecordValidation records a validation handshake's outcome: state Succeeded or Failed ends
// it, "" counts a failed attempt. It is guarded by the record sub was read as, so a
// subscription replaced meanwhile (a new endpoint, a new code) is not marked validated.
func (q *EventQueue) RecordValidation(ctx context.Context, sub EventSubscription, state string) error {
	s := q.s
	key := subKey(sub.VaultID, sub.Name)
	old := sub.raw
	if state == "" {
		sub.ValidationAttempts++
	} else {
		sub.State = state
	}
	sub.Updated = s.now().UTC()
	b, err := s.seal(ctx, keyring.SystemKeyID, key, &sub)
	if err != nil {
		return err
	}
	ops := []store.Op{store.RequireEqual(key, old), store.Put(key, b)}
	if state != "" {
		ops = append(ops, evDrop(valKey(sub.VaultID, sub.Name)))
	}
	if err := s.apply(ctx, ops); err != nil && !errors.Is(err, errRetry) {
		return fmt.Errorf("recording a validation: %w", err)
	}
	return nil
}

// DueDeliveries returns up to limit deliveries due at the queue's clock, with their
// subscriptions, at most perSub of one subscription, and none of a subscription skip names
// (by "<vault id>/<lower name>": those the worker is still delivering to), so that one
// subscription's backlog does not hide the others'. It examines at most 8·limit entries.
// Deliveries whose subscription is gone (or was replaced by another of the same name) are
// dropped.
func (q *EventQueue) DueDeliveries(ctx context.Context, limit, perSub int, skip func(sub string) bool) ([]Delivery, error) {
	s := q.s
	bound := evQueuePrefix + msKey(q.now()) + "/~"
	type entry struct {
		key string
		raw []byte
	}
	var entries []entry
	perSub = max(perSub, 1)
	taken := map[string]int{}
	examined := 0
	err := s.st.Scan(ctx, evQueuePrefix, "", func(key string, raw []byte) bool {
		if key > bound {
			return false
		}
		examined++
		p := strings.Split(strings.TrimPrefix(key, evQueuePrefix), "/")
		if len(p) == 4 {
			sk := p[1] + "/" + p[2]
			if (skip != nil && skip(sk)) || taken[sk] >= perSub {
				return examined < 8*limit
			}
			taken[sk]++
		}
		entries = append(entries, entry{key, raw})
		return len(entries) < limit && examined < 8*limit
	})
	if err != nil {
		return nil, fmt.Errorf("scanning the delivery queue: %w", err)
	}
	subs := map[string]*EventSubscription{}
	var out []Delivery
	var drop []store.Op
	for _, e := range entries {
		p := strings.Split(strings.TrimPrefix(e.key, evQueuePrefix), "/")
		if len(p) != 4 {
			drop = append(drop, evDrop(e.key))
			continue
		}
		sk := subKey(p[1], p[2])
		sub, seen := subs[sk]
		if !seen {
			got, found, err := s.subscription(ctx, p[1], p[2])
			if err != nil {
				return nil, err
			}
			if found {
				sub = &got
			}
			subs[sk] = sub
		}
		var d Delivery
		if sub == nil || s.open(ctx, keyring.SystemKeyID, e.key, e.raw, &d) != nil || d.SubUID != sub.UID {
			drop = append(drop, store.RequireEqual(e.key, e.raw), evDrop(e.key))
			continue
		}
		d.Sub, d.key, d.raw, d.subName, d.vaultKey = *sub, e.key, e.raw, p[2], p[1]
		out = append(out, d)
	}
	if len(drop) > 0 {
		if err := s.apply(ctx, drop); err != nil && !errors.Is(err, errRetry) {
			return nil, fmt.Errorf("dropping orphaned deliveries: %w", err)
		}
	}
	return out, nil
}

// Delivered removes a delivery the subscriber acknowledged.
func (q *EventQueue) Delivered(ctx context.Context, d Delivery) error {
	return q.s.applyQuiet(ctx, store.RequireEqual(d.key, d.raw), evDrop(d.key))
}

// Reschedule moves a delivery to next; attempted counts an attempt, reason is the last error.
func (q *EventQueue) Reschedule(ctx context.Context, d Delivery, next time.Time, attempted bool, reason string) error {
	s := q.s
	if attempted {
		d.Attempts++
	}
	d.LastError = reason
	k := queueKey(next, d.vaultKey, d.subName, d.Event.ID)
	b, err := s.seal(ctx, keyring.SystemKeyID, k, &d)
	if err != nil {
		return err
	}
	return s.applyQuiet(ctx, store.RequireEqual(d.key, d.raw), evDrop(d.key), store.Put(k, b))
}

// DeadLetter gives up on a delivery and keeps it among the subscription's dead letters.
func (q *EventQueue) DeadLetter(ctx context.Context, d Delivery, attempted bool, reason string) error {
	s := q.s
	if attempted {
		d.Attempts++
	}
	dl := DeadLetter{Delivery: d, Reason: reason, DeadLetteredAt: q.now().UTC()}
	k := deadKey(d.vaultKey, d.subName, d.Event.ID)
	b, err := s.seal(ctx, keyring.SystemKeyID, k, &dl)
	if err != nil {
		return err
	}
	return s.applyQuiet(ctx, store.RequireEqual(d.key, d.raw), evDrop(d.key), store.Put(k, b))
}

// evDrop removes an event record: an outbox entry, a delivery, a marker. They hold event
// metadata (names, versions, dates), never a secret value or key, so this is not a destroy.
func evDrop(key string) store.Op { return store.Delete(key) }

// evDropPrefix removes a subscription's dead letters, in the destroy of the subscription.
func evDropPrefix(prefix string) store.Op { return store.DeletePrefix(prefix) }

// applyQuiet applies ops; a lost race (another leader's write) is not an error, since the
// winner's state is as good: at least once either way.
func (s *Service) applyQuiet(ctx context.Context, ops ...store.Op) error {
	if err := s.apply(ctx, ops); err != nil && !errors.Is(err, errRetry) {
		return fmt.Errorf("recording delivery progress: %w", err)
	}
	return nil
}

// MaxDeadLettersListed bounds one listing of dead letters.
const MaxDeadLettersListed = 1000

// ListDeadLetters returns a subscription's dead letters (at most MaxDeadLettersListed). It
// takes the right to write subscriptions, not only to read them: dead letters name secrets and
// their versions, which a Reader of the vault's management plane may not learn.
func (s *Service) ListDeadLetters(ctx context.Context, rg, vaultName, name string) ([]DeadLetter, error) {
	if err := s.guard(ctx, ActionEventSubscriptionsWrite, false, s.vaultScope(rg, vaultName)); err != nil {
		return nil, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return nil, err
	}
	if _, found, err := s.subscription(ctx, v.ID, name); err != nil {
		return nil, err
	} else if !found {
		return nil, subNotFound(name)
	}
	var out []DeadLetter
	var openErr error
	err = s.st.Scan(ctx, evDeadPrefix+v.ID+"/"+strings.ToLower(name)+"/", "", func(key string, raw []byte) bool {
		var dl DeadLetter
		if openErr = s.open(ctx, keyring.SystemKeyID, key, raw, &dl); openErr != nil {
			return false
		}
		out = append(out, dl)
		return len(out) < MaxDeadLettersListed
	})
	if err == nil {
		err = openErr
	}
	if err != nil {
		return nil, fmt.Errorf("reading dead letters: %w", err)
	}
	return out, nil
}

// ReplayDeadLetters queues up to one chunk of a subscription's dead letters for delivery again,
// with their attempts and time to live starting afresh, and returns how many.
func (s *Service) ReplayDeadLetters(ctx context.Context, rg, vaultName, name string) (int, error) {
	if err := s.guard(ctx, ActionEventSubscriptionsWrite, false, s.vaultScope(rg, vaultName)); err != nil {
		return 0, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return 0, err
	}
	sub, found, err := s.subscription(ctx, v.ID, name)
	if err != nil {
		return 0, err
	} else if !found {
		return 0, subNotFound(name)
	}
	now := s.now()
	var ops []store.Op
	n := 0
	var sealErr error
	err = s.st.Scan(ctx, evDeadPrefix+v.ID+"/"+strings.ToLower(name)+"/", "", func(key string, raw []byte) bool {
		var dl DeadLetter
		if sealErr = s.open(ctx, keyring.SystemKeyID, key, raw, &dl); sealErr != nil {
			return false
		}
		d := dl.Delivery
		d.Attempts, d.LastError, d.Enqueued, d.SubUID = 0, "", now, sub.UID
		k := queueKey(now, v.ID, name, d.Event.ID)
		var b []byte
		if b, sealErr = s.seal(ctx, keyring.SystemKeyID, k, &d); sealErr != nil {
			return false
		}
		ops = append(ops, store.RequireEqual(key, raw), evDrop(key), store.Put(k, b))
		n++
		return n < evChunk
	})
	if err == nil {
		err = sealErr
	}
	if err != nil {
		return 0, fmt.Errorf("replaying dead letters: %w", err)
	}
	if len(ops) > 0 {
		if err := s.apply(ctx, ops); err != nil {
			return 0, err
		}
	}
	return n, nil
}
