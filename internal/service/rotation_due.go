// The rotation worker: it reads only the due index (never every secret), makes scheduled
// rotations, sends the policies' near-expiry notices, resumes rotations whose runner died and
// retries failed ones. In a cluster only the leader runs it (Options.Leads).

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/store"
)

// Rotation events, named after Secrets Manager's (Key Vault has none for secrets). They carry
// the step, the attempt and the error, never a value.
const (
	EventSecretRotationStarted   = "Strongroom.SecretRotationStarted"
	EventSecretRotationSucceeded = "Strongroom.SecretRotationSucceeded"
	EventSecretRotationFailed    = "Strongroom.SecretRotationFailed"
	EventSecretRotationAbandoned = "Strongroom.SecretRotationAbandoned"
)

const rotChunk = 64

// rotDrop removes a due entry (a plaintext marker: nothing to erase).
func rotDrop(key string) store.Op { return store.Delete(key) }

// rotationEventOps is the outbox entry of a rotation event, when the vault has subscribers.
func (s *Service) rotationEventOps(ctx context.Context, v *Vault, name, typ string, rec *rotationRecord, msg string) ([]store.Op, error) {
	if !s.hasSubscriptions(ctx, v.ID) {
		return nil, nil
	}
	ev := s.secretEvent(v, typ, name, &SecretVersion{Version: rec.BaseVersion})
	ev.Data.Step, ev.Data.Attempt, ev.Data.Error, ev.Data.RotationID = rec.Step, rec.Attempts, msg, rec.ID
	op, err := s.outboxOp(ctx, ev)
	if err != nil {
		return nil, err
	}
	return []store.Op{op}, nil
}

// RunRotations calls DueRotations every interval until ctx ends (on a cluster node, only
// while it leads).
func (s *Service) RunRotations(ctx context.Context, interval time.Duration, now func() time.Time, log *slog.Logger) {
	if now == nil {
		now = s.now
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.opts.Leads != nil && !s.opts.Leads() {
			continue
		}
		for {
			n, err := s.DueRotations(ctx, now())
			if err != nil && ctx.Err() == nil {
				log.Error("rotation worker", "err", err)
			}
			if err != nil || n < rotChunk {
				break
			}
		}
	}
}

// DueRotations handles up to one chunk of due index entries at now and returns how many it
// took. A failing rotation does not stop the others: its failure is in its record.
func (s *Service) DueRotations(ctx context.Context, now time.Time) (int, error) {
	bound := rotDuePrefix + fmt.Sprintf("%0*d", dueDigits, min(max(now.Unix(), 0), maxDue)) + "/~"
	var keys []string
	err := s.st.Scan(ctx, rotDuePrefix, "", func(key string, _ []byte) bool {
		if key > bound {
			return false
		}
		keys = append(keys, key)
		return len(keys) < rotChunk
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	byID := map[string]*Vault{}
	for _, v := range s.vaultSnapshot() {
		byID[v.ID] = v
	}
	for _, key := range keys {
		p := strings.SplitN(strings.TrimPrefix(key, rotDuePrefix), "/", 3)
		v := (*Vault)(nil)
		if len(p) == 3 {
			v = byID[p[1]]
		}
		if v == nil || v.Deleted != nil {
			if err := s.applyQuiet(ctx, rotDrop(key)); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.dueRotation(ctx, v, p[2], key, now); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			var de *Error
			if !errors.As(err, &de) { // a domain error is the rotation's own outcome, recorded
				return 0, err
			}
		}
	}
	return len(keys), nil
}

// dueRotation looks at one secret the index names: it abandons a rotation whose secret moved
// on, resumes or retries one whose time has come, sends a notice or starts a rotation that is
// due, and otherwise moves the entry to when something will be.
func (s *Service) dueRotation(ctx context.Context, v *Vault, name, key string, now time.Time) error {
	drop := rotDrop(key)
	rec, recRaw, err := s.readRecord(ctx, v, name)
	if err != nil {
		return err
	}
	h, hraw, found, err := s.head(ctx, v, name)
	if err != nil {
		return err
	}
	live := found && h.Deleted == nil
	if found {
		name = h.Name // as spelled, for events and logs
	}
	if rec.inProgress() {
		if !live || !strings.EqualFold(h.Latest, rec.BaseVersion) {
			if err := s.abandonRotation(ctx, v, name, rec, recRaw); err != nil && !isCode(err, "RotationAbandoned") {
				return err
			}
			return s.applyQuiet(ctx, drop)
		}
		if wait := max(rec.LeaseUntil, rec.NextAt); wait > now.Unix() {
			return s.moveDue(ctx, v, name, key, wait)
		}
		return s.dueRotate(ctx, v, name, key, now)
	}
	if !live {
		return s.applyQuiet(ctx, drop)
	}
	p, _, found, err := s.readPolicy(ctx, v, name)
	if err != nil {
		return err
	}
	if !found {
		return s.applyQuiet(ctx, drop)
	}
	plan, err := rotation.PlanOf(&p)
	if err != nil {
		return s.applyQuiet(ctx, drop)
	}
	var wake int64
	if n := plan.NotifyBeforeExpiry; n != nil && h.Item.Expires != nil && !strings.EqualFold(rec.NotifiedVersion, h.Latest) {
		exp := *h.Item.Expires
		switch at := n.Before(time.Unix(exp, 0)).Unix(); {
		case now.Unix() >= exp: // expired before its notice: SecretExpired says it
		case at <= now.Unix():
			return s.sendNotice(ctx, v, &h, hraw, rec, recRaw, key, now)
		default:
			wake = at
		}
	}
	if plan.Rotates() && p.Rotator != nil {
		if due, ok := plan.RotationDue(h.Item.Created, h.Item.Expires); ok {
			if due.Unix() <= now.Unix() {
				return s.dueRotate(ctx, v, name, key, now)
			}
			if wake == 0 || due.Unix() < wake {
				wake = due.Unix()
			}
		}
	}
	if wake == 0 {
		return s.applyQuiet(ctx, drop)
	}
	return s.moveDue(ctx, v, name, key, wake)
}

func isCode(err error, code string) bool {
	var de *Error
	return errors.As(err, &de) && de.Code == code
}

// moveDue replaces the entry key by one at at.
func (s *Service) moveDue(ctx context.Context, v *Vault, name, key string, at int64) error {
	next := rotDueKey(at, v.ID, name)
	if next == key {
		return nil
	}
	return s.applyQuiet(ctx, rotDrop(key), store.Put(next, []byte{rotMarkerV1}))
}

// dueRotate runs a scheduled rotation (or resumes one). Its entry is first moved a retry
// delay ahead, so that whatever happens to this attempt, the secret is looked at again.
func (s *Service) dueRotate(ctx context.Context, v *Vault, name, key string, now time.Time) error {
	if err := s.moveDue(ctx, v, name, key, now.Add(s.retryDelay(1)).Unix()); err != nil {
		return err
	}
	_, err := s.rotate(ctx, v, name, triggerSchedule, now)
	return err
}

// sendNotice emits the policy's near-expiry notice for the latest version once: the record
// remembers the version in the batch that emits the event.
func (s *Service) sendNotice(ctx context.Context, v *Vault, h *secretHead, hraw []byte, rec rotationRecord, recRaw []byte, key string, now time.Time) error {
	name := h.Name
	rec.NotifiedVersion = h.Latest
	ops := []store.Op{store.RequireEqual(headKey(v, name), hraw), rotDrop(key),
		store.Put(rotDueKey(now.Unix(), v.ID, name), []byte{rotMarkerV1})} // then look at the rotation
	if s.hasSubscriptions(ctx, v.ID) {
		sv := h.Item
		op, err := s.outboxOp(ctx, s.secretEvent(v, EventSecretNearExpiry, h.Name, &sv))
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	_, err := s.writeRecord(ctx, v, name, &rec, recRaw, ops...)
	if errors.Is(err, errRetry) {
		return nil // something changed: its nudge brings the secret back
	}
	return err
}

// policyNotifies reports whether name's policy has its own Notify action, which replaces the
// default near-expiry notice (DueExpiries).
func (s *Service) policyNotifies(ctx context.Context, v *Vault, name string) bool {
	if !s.vaultRotates(ctx, v.ID) {
		return false
	}
	p, _, found, err := s.readPolicy(ctx, v, name)
	if err != nil || !found {
		return false
	}
	plan, err := rotation.PlanOf(&p)
	return err == nil && plan.NotifyBeforeExpiry != nil
}
