// Secret rotation: rotation policies on secrets, the rotation record, and the guarded API the
// data-plane routes call. The state machine that moves a rotation through its steps is in
// rotation_run.go, the worker that makes rotations and notices due in rotation_due.go.

package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/store"
)

// Layout (sealed with the vault's data key unless said otherwise):
//
//	v/<vault id>/r/<UPPER name>                  the secret's rotation policy (rotation.Policy)
//	v/<vault id>/rs/<UPPER name>                 its rotation record (rotationRecord): the
//	                                             rotation in progress, pending value included,
//	                                             or, idle, the last one's outcome
//	sys/rot/vault/<vault id>                     the vault has had a rotation policy (plaintext marker)
//	sys/rot/due/<12-digit unix s>/<vault id>/<UPPER name>  look at this secret then (plaintext marker)
//
// A due entry is only a candidate, like the event expiry index: the worker reads the policy,
// the head and the record, acts if something is due and otherwise moves the entry to when it
// will be. So every write needs only to say "look again" (rotationNudgeOps).
const (
	rotPrefix      = "sys/rot/"
	rotVaultPrefix = rotPrefix + "vault/"
	rotDuePrefix   = rotPrefix + "due/"
	rotMarkerV1    = 1
)

// The secret data actions of rotation. Secrets Officer and Key Vault Administrator hold them
// through "secrets/*" and "vaults/*"; Secrets User does not.
const (
	actionRotationPolicyRead  = "rotationpolicy/read"
	actionRotationPolicyWrite = "rotationpolicy/write"
	actionRotate              = "rotate/action"
)

// Rotation states, as the status shows them.
const (
	RotationIdle     = "idle"
	RotationRotating = "rotating"
	RotationFailed   = "failed"
)

func rotPolicyKey(v *Vault, name string) string { return "v/" + v.ID + "/r/" + strings.ToUpper(name) }
func rotRecordKey(v *Vault, name string) string { return "v/" + v.ID + "/rs/" + strings.ToUpper(name) }
func rotVaultKey(vaultID string) string         { return rotVaultPrefix + vaultID }

func rotDueKey(at int64, vaultID, name string) string {
	at = min(max(at, 0), maxDue)
	return rotDuePrefix + fmt.Sprintf("%0*d", dueDigits, at) + "/" + vaultID + "/" + strings.ToUpper(name)
}

// rotationRecord is a secret's rotation record. While Step is set a rotation is in progress
// and Pending holds the new value, which becomes a version only at commit; idle, it keeps the
// outcome of the last rotation and which version's near-expiry notice went out.
type rotationRecord struct {
	ID          string `json:"id,omitempty"`
	Step        string `json:"step,omitempty"`
	Trigger     string `json:"trigger,omitempty"` // manual or schedule
	BaseVersion string `json:"baseVersion,omitempty"`
	Pending     string `json:"pending,omitempty"`
	Attempts    int    `json:"attempts,omitempty"` // failed tries of the current step
	Started     int64  `json:"started,omitempty"`
	// LeaseUntil: a runner is working on the rotation until then; NextAt: it failed and is
	// retried then. The worker takes a rotation only once both have passed.
	LeaseUntil int64  `json:"leaseUntil,omitempty"`
	NextAt     int64  `json:"nextAt,omitempty"`
	LastError  string `json:"lastError,omitempty"`
	LastFailed int64  `json:"lastFailed,omitempty"`

	LastRotated     int64  `json:"lastRotated,omitempty"`
	LastVersion     string `json:"lastVersion,omitempty"`
	LastOutcome     string `json:"lastOutcome,omitempty"` // succeeded or abandoned
	NotifiedVersion string `json:"notifiedVersion,omitempty"`
}

func (r *rotationRecord) inProgress() bool { return r.Step != "" }

// RotationStatus is what GET .../rotationstatus answers (with the id the route adds).
type RotationStatus struct {
	State       string `json:"state"`
	Step        string `json:"step,omitempty"`
	RotationID  string `json:"rotationId,omitempty"`
	Trigger     string `json:"trigger,omitempty"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"lastError,omitempty"`
	Started     *int64 `json:"started,omitempty"`
	NextAttempt *int64 `json:"nextAttempt,omitempty"`
	LastRotated *int64 `json:"lastRotated,omitempty"`
	LastVersion string `json:"lastVersion,omitempty"`
	LastOutcome string `json:"lastOutcome,omitempty"`
	NextDue     *int64 `json:"nextDue,omitempty"`
}

// rotationState is the in-memory set of vaults that have had a rotation policy, so writes in
// every other vault pay nothing for rotation. The zero value is ready; load fills it at first
// use from the markers (one per such vault).
type rotationState struct {
	mu     sync.RWMutex
	loaded bool
	vaults map[string]struct{}
}

func (s *Service) loadRotation(ctx context.Context) error {
	s.rotation.mu.RLock()
	loaded := s.rotation.loaded
	s.rotation.mu.RUnlock()
	if loaded {
		return nil
	}
	ids := map[string]struct{}{}
	err := s.st.Scan(ctx, rotVaultPrefix, "", func(key string, _ []byte) bool {
		ids[strings.TrimPrefix(key, rotVaultPrefix)] = struct{}{}
		return true
	})
	if err != nil {
		return fmt.Errorf("loading rotation vaults: %w", err)
	}
	s.rotation.mu.Lock()
	if !s.rotation.loaded {
		s.rotation.vaults, s.rotation.loaded = ids, true
	}
	s.rotation.mu.Unlock()
	return nil
}

// vaultRotates reports whether vault id has had a rotation policy. On a load error it says
// yes: a needless nudge costs the worker one read, a missing one a late rotation.
func (s *Service) vaultRotates(ctx context.Context, vaultID string) bool {
	if err := s.loadRotation(ctx); err != nil {
		return true
	}
	s.rotation.mu.RLock()
	defer s.rotation.mu.RUnlock()
	_, ok := s.rotation.vaults[vaultID]
	return ok
}

func (s *Service) noteRotationVault(vaultID string) {
	s.rotation.mu.Lock()
	defer s.rotation.mu.Unlock()
	if s.rotation.loaded {
		s.rotation.vaults[vaultID] = struct{}{}
	}
}

// rotationKeysApplied keeps the set current with another node's writes.
func (s *Service) rotationKeysApplied(keys []string) {
	for _, k := range keys {
		if id, ok := strings.CutPrefix(k, rotVaultPrefix); ok {
			s.noteRotationVault(id)
		}
	}
}

// rotationNudgeOps asks the rotation worker to look at name now, when it has a rotation
// policy: a new or changed latest version moves when its rotation and notice are due, and
// abandons a rotation in progress. It costs nothing in vaults that never had a rotation
// policy, and one key lookup (nothing decrypted) for the other secrets of those that had.
func (s *Service) rotationNudgeOps(ctx context.Context, v *Vault, name string) []store.Op {
	if !s.vaultRotates(ctx, v.ID) {
		return nil
	}
	if _, err := s.st.Get(ctx, rotPolicyKey(v, name)); errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return []store.Op{store.Put(rotDueKey(s.now().Unix(), v.ID, name), []byte{rotMarkerV1})}
}

func (s *Service) readPolicy(ctx context.Context, v *Vault, name string) (rotation.Policy, []byte, bool, error) {
	var p rotation.Policy
	raw, found, err := s.get(ctx, vaultKeyID(v), rotPolicyKey(v, name), &p)
	return p, raw, found, err
}

func (s *Service) readRecord(ctx context.Context, v *Vault, name string) (rotationRecord, []byte, error) {
	var r rotationRecord
	raw, _, err := s.get(ctx, vaultKeyID(v), rotRecordKey(v, name), &r)
	return r, raw, err
}

// recordGuard requires the record to be as read (absent when raw is nil).
func recordGuard(key string, raw []byte) store.Op {
	if raw == nil {
		return store.RequireAbsent(key)
	}
	return store.RequireEqual(key, raw)
}

// defaultRotationPolicy is what a secret without a policy answers, as Key Vault answers for
// a key: a notice 30 days before expiry, no id and no dates.
func defaultRotationPolicy() rotation.Policy {
	return rotation.Policy{LifetimeActions: []rotation.LifetimeAction{{
		Trigger: rotation.Trigger{TimeBeforeExpiry: rotation.DefaultNotifyLead},
		Action:  rotation.Action{Type: rotation.ActionNotify},
	}}}
}

// GetRotationPolicy returns name's rotation policy (the default when it has none). The route
// adds the policy's id.
func (r VaultRef) GetRotationPolicy(ctx context.Context, name string) (rotation.Policy, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, actionRotationPolicyRead, name)
	if err != nil {
		return rotation.Policy{}, err
	}
	if _, _, err := s.liveHead(ctx, v, name, name); err != nil {
		return rotation.Policy{}, err
	}
	p, _, found, err := s.readPolicy(ctx, v, name)
	if err != nil || !found {
		return defaultRotationPolicy(), err
	}
	return p, nil
}

// SetRotationPolicy replaces name's rotation policy. A policy whose rotator reads a
// connection secret is accepted only from a caller who may read that secret.
func (r VaultRef) SetRotationPolicy(ctx context.Context, name string, p rotation.Policy) (rotation.Policy, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, actionRotationPolicyWrite, name)
	if err != nil {
		return rotation.Policy{}, err
	}
	p.ID = ""
	if p.LifetimeActions == nil {
		p.LifetimeActions = []rotation.LifetimeAction{}
	}
	if _, err := rotation.Validate(&p, s.rotationLimits()); err != nil {
		return rotation.Policy{}, badParameter("%v", err)
	}
	if p.Rotator != nil {
		if _, ok := s.rotator(p.Rotator.Kind); !ok {
			return rotation.Policy{}, badParameter("Invalid value for rotator.kind: this server has no %s rotator.", p.Rotator.Kind)
		}
		for field, ref := range map[string]string{"connectionSecret": p.Rotator.ConnectionSecret, "signingSecret": p.Rotator.SigningSecret} {
			if ref == "" {
				continue
			}
			other, ok := connectionSecretName(ref)
			if !ok || strings.EqualFold(other, name) {
				return rotation.Policy{}, badParameter("Invalid value for rotator.%s: %q is not the id or name of another secret of this vault.", field, ref)
			}
			if _, err := s.secretOp(ctx, r, "getSecret/action", other); err != nil {
				return rotation.Policy{}, err
			}
		}
	}
	var out rotation.Policy
	err = retry(func() error {
		_, hraw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		old, praw, found, err := s.readPolicy(ctx, v, name)
		if err != nil {
			return err
		}
		now := s.now().Unix()
		p.Attributes.Created, p.Attributes.Updated = &now, &now
		if found && old.Attributes.Created != nil {
			p.Attributes.Created = old.Attributes.Created
		}
		b, err := s.seal(ctx, vaultKeyID(v), rotPolicyKey(v, name), p)
		if err != nil {
			return err
		}
		ops := []store.Op{store.RequireEqual(headKey(v, name), hraw), recordGuard(rotPolicyKey(v, name), praw),
			store.Put(rotPolicyKey(v, name), b), store.Put(rotVaultKey(v.ID), []byte{rotMarkerV1}),
			store.Put(rotDueKey(now, v.ID, name), []byte{rotMarkerV1})}
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		s.noteRotationVault(v.ID)
		out = p
		return nil
	})
	return out, err
}

// connectionSecretName is the secret a rotator's connectionSecret names: a secret id of this
// vault ("https://<vault host>/secrets/<name>[/<version>]") or a bare name.
func connectionSecretName(ref string) (string, bool) {
	name := ref
	if i := strings.Index(ref, "/secrets/"); i >= 0 {
		name, _, _ = strings.Cut(ref[i+len("/secrets/"):], "/")
	} else if strings.Contains(ref, "/") {
		return "", false
	}
	return name, validSecretName(name)
}

// RotationStatus reports name's rotation: in progress or not, its step and attempts, the last
// error, when it is retried, and when the next rotation is due.
func (r VaultRef) RotationStatus(ctx context.Context, name string) (RotationStatus, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, actionRotationPolicyRead, name)
	if err != nil {
		return RotationStatus{}, err
	}
	h, _, err := s.liveHead(ctx, v, name, name)
	if err != nil {
		return RotationStatus{}, err
	}
	rec, _, err := s.readRecord(ctx, v, name)
	if err != nil {
		return RotationStatus{}, err
	}
	st := RotationStatus{State: RotationIdle, Step: rec.Step, RotationID: rec.ID, Trigger: rec.Trigger, Attempts: rec.Attempts,
		LastError: rec.LastError, LastVersion: rec.LastVersion, LastOutcome: rec.LastOutcome}
	if rec.inProgress() {
		st.State = RotationRotating
		st.Started = ptr(rec.Started)
		if rec.Attempts > 0 {
			st.State, st.NextAttempt = RotationFailed, ptr(rec.NextAt)
		}
	}
	if rec.LastRotated != 0 {
		st.LastRotated = ptr(rec.LastRotated)
	}
	p, _, found, err := s.readPolicy(ctx, v, name)
	if err != nil {
		return RotationStatus{}, err
	}
	if found {
		if plan, err := rotation.PlanOf(&p); err == nil {
			if at, ok := plan.RotationDue(h.Item.Created, h.Item.Expires); ok {
				st.NextDue = ptr(at.Unix())
			}
		}
	}
	return st, nil
}

// rotationLimits are the floors policies must respect (Key Vault's unless Options lower them).
func (s *Service) rotationLimits() rotation.Limits {
	if s.opts.RotationLimits != nil {
		return *s.opts.RotationLimits
	}
	return rotation.DefaultLimits
}

// rotator returns the rotator of kind: the built-in generate one, or one Options provides.
func (s *Service) rotator(kind string) (rotation.Rotator, bool) {
	if r, ok := s.opts.Rotators[kind]; ok {
		return r, true
	}
	if kind == rotation.KindGenerate {
		return rotation.Generated{}, true
	}
	return nil, false
}

// rotationLease is how long a runner holds a rotation before the worker may take it over (a
// runner that died mid-step); rotators bound each call well within it.
const rotationLease = 2 * time.Minute

// retryDelay is the wait before a failed step's next try: RotationRetryBase (10 s) tripled
// per failure, at most an hour.
func (s *Service) retryDelay(attempts int) time.Duration {
	d := s.opts.RotationRetryBase
	if d <= 0 {
		d = 10 * time.Second
	}
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 3
	}
	return min(d, time.Hour)
}

// RotationPending is the pending value of a rotation in progress, for a webhook rotator's
// hook (its pendingValueRef).
type RotationPending struct {
	Value      string `json:"value"`
	RotationID string `json:"rotationId"`
	Step       string `json:"step"`
}

// RotationPendingValue returns the pending value of name's rotation in progress: reading it
// needs what reading the secret's value needs (getSecret), since it becomes the value.
func (r VaultRef) RotationPendingValue(ctx context.Context, name string) (RotationPending, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "getSecret/action", name)
	if err != nil {
		return RotationPending{}, err
	}
	if _, _, err := s.liveHead(ctx, v, name, name); err != nil {
		return RotationPending{}, err
	}
	rec, _, err := s.readRecord(ctx, v, name)
	if err != nil {
		return RotationPending{}, err
	}
	if !rec.inProgress() {
		return RotationPending{}, newErr(ErrNotFound, "NotFound", "RotationNotInProgress", "Secret %s has no rotation in progress.", name)
	}
	return RotationPending{Value: rec.Pending, RotationID: rec.ID, Step: rec.Step}, nil
}
