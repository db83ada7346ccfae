// The rotation state machine: pending (new value sealed in the rotation record, no version)
// → applied (the target accepts it) → tested (a probe with it succeeded) → committed (the new
// latest version, in the batch that clears the record). Each step is recorded before the next
// begins, every record write is guarded by the record as read (so two runners never both
// advance one rotation), and the latest version keeps serving the working value until commit.
// After a crash the step not yet recorded runs again with the same pending value.

package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/store"
)

// Rotation triggers.
const (
	triggerManual   = "manual"
	triggerSchedule = "schedule"
)

// RotateSecret rotates name now and answers the new version (without its value). It is a
// conflict while another rotation of name is running; a rotation that failed and waits for
// its retry is resumed at once.
func (r VaultRef) RotateSecret(ctx context.Context, name string) (Secret, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, actionRotate, name)
	if err != nil {
		return Secret{}, err
	}
	return s.rotate(ctx, v, name, triggerManual, s.now())
}

// rotate starts a rotation of name, or resumes the one in progress when no runner holds it
// at now (the worker's clock, or the service's for a request), and runs it to its end or its
// first failure.
func (s *Service) rotate(ctx context.Context, v *Vault, name, trigger string, now time.Time) (Secret, error) {
	var rec rotationRecord
	var recRaw []byte
	var spec *rotation.RotatorSpec
	var plan rotation.Plan
	err := retry(func() error {
		h, hraw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		name = h.Name // the worker knows the name upper-cased; events and logs show it as spelled
		p, _, found, err := s.readPolicy(ctx, v, name)
		if err != nil {
			return err
		}
		if !found || p.Rotator == nil {
			return badParameter("Secret %s has no rotation policy with a rotator; set one with PUT /secrets/%s/rotationpolicy.", name, name)
		}
		if plan, err = rotation.PlanOf(&p); err != nil {
			return fmt.Errorf("stored rotation policy of %s: %w", name, err)
		}
		spec = p.Rotator
		rot, ok := s.rotator(spec.Kind)
		if !ok {
			return badParameter("This server has no %s rotator.", spec.Kind)
		}
		old, oldRaw, err := s.readRecord(ctx, v, name)
		if err != nil {
			return err
		}
		if old.inProgress() {
			if old.LeaseUntil > now.Unix() {
				return newErr(ErrConflict, "Conflict", "RotationInProgress", "A rotation of secret %s is in progress (step %s); retry when it ends.", name, old.Step)
			}
			// Take over a failed or abandoned-by-its-runner rotation.
			old.LeaseUntil = now.Add(rotationLease).Unix()
			raw, err := s.writeRecord(ctx, v, name, &old, oldRaw, rotDue(old.LeaseUntil, v, name))
			if err != nil {
				return err
			}
			rec, recRaw = old, raw
			return nil
		}
		in, err := s.rotationInput(ctx, v, &h, spec, nil)
		if err != nil {
			return err
		}
		pending, err := rot.Prepare(ctx, spec, in)
		if err != nil {
			return newErr(ErrConflict, "Conflict", "RotationFailed", "The rotation of secret %s could not prepare a new value: %s", name, rotation.Scrub(err.Error(), in.Current, in.Admin, in.SigningKey))
		}
		rec = old // keeps the last outcome and the notice already sent
		rec.ID, rec.Step, rec.Trigger, rec.BaseVersion, rec.Pending = uuid.NewString(), rotation.StepPending, trigger, h.Latest, pending
		rec.Attempts, rec.Started, rec.LeaseUntil, rec.NextAt, rec.LastError = 0, now.Unix(), now.Add(rotationLease).Unix(), 0, ""
		ops := []store.Op{store.RequireEqual(headKey(v, name), hraw), rotDue(rec.LeaseUntil, v, name)}
		evOps, err := s.rotationEventOps(ctx, v, h.Name, EventSecretRotationStarted, &rec, "")
		if err != nil {
			return err
		}
		raw, err := s.writeRecord(ctx, v, name, &rec, oldRaw, append(ops, evOps...)...)
		if err != nil {
			return err
		}
		recRaw = raw
		s.stepDone(rotation.StepPending)
		return nil
	})
	if err != nil {
		return Secret{}, err
	}
	return s.runRotation(ctx, v, name, plan, spec, rec, recRaw)
}

func rotDue(at int64, v *Vault, name string) store.Op {
	return store.Put(rotDueKey(at, v.ID, name), []byte{rotMarkerV1})
}

// writeRecord seals rec and writes it guarded by the record as read (oldRaw), with extra in
// the same batch; it returns what it wrote, the guard of the next write.
func (s *Service) writeRecord(ctx context.Context, v *Vault, name string, rec *rotationRecord, oldRaw []byte, extra ...store.Op) ([]byte, error) {
	key := rotRecordKey(v, name)
	b, err := s.seal(ctx, vaultKeyID(v), key, rec)
	if err != nil {
		return nil, err
	}
	ops := append([]store.Op{recordGuard(key, oldRaw), store.Put(key, b)}, extra...)
	if err := s.apply(ctx, ops); err != nil {
		return nil, err
	}
	return b, nil
}

// rotationInput is what the rotator sees of the rotation of h's secret (rec: the rotation in
// progress, nil before it starts).
func (s *Service) rotationInput(ctx context.Context, v *Vault, h *secretHead, spec *rotation.RotatorSpec, rec *rotationRecord) (rotation.Input, error) {
	in := rotation.Input{VaultName: v.Name, SecretName: h.Name, Version: h.Latest, Current: *h.LatestValue}
	if s.opts.VaultURI != nil {
		in.SecretID = s.opts.VaultURI(v.Name) + "/secrets/" + h.Name
	}
	if rec != nil {
		in.Pending, in.RotationID, in.Attempt = rec.Pending, rec.ID, rec.Attempts+1
	}
	var err error
	if in.Admin, err = s.referencedValue(ctx, v, "connectionSecret", spec.ConnectionSecret); err != nil {
		return in, err
	}
	in.SigningKey, err = s.referencedValue(ctx, v, "signingSecret", spec.SigningSecret)
	return in, err
}

// referencedValue is the latest value of the secret a rotator field names ("" when it names
// none).
func (s *Service) referencedValue(ctx context.Context, v *Vault, field, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	name, ok := connectionSecretName(ref)
	if !ok {
		return "", badParameter("Invalid value for rotator.%s: %q.", field, ref)
	}
	h, _, err := s.liveHead(ctx, v, name, name)
	if err != nil {
		return "", err
	}
	if h.LatestValue == nil {
		return "", nil
	}
	return *h.LatestValue, nil
}

// runRotation moves rec (as stored: recRaw) through its remaining steps.
func (s *Service) runRotation(ctx context.Context, v *Vault, name string, plan rotation.Plan, spec *rotation.RotatorSpec, rec rotationRecord, recRaw []byte) (Secret, error) {
	rot, ok := s.rotator(spec.Kind)
	if !ok {
		return Secret{}, badParameter("This server has no %s rotator.", spec.Kind)
	}
	for {
		h, hraw, found, err := s.head(ctx, v, name)
		if err != nil {
			return Secret{}, err
		}
		if !found || h.Deleted != nil || !strings.EqualFold(h.Latest, rec.BaseVersion) {
			return Secret{}, s.abandonRotation(ctx, v, name, rec, recRaw)
		}
		in, err := s.rotationInput(ctx, v, &h, spec, &rec)
		if err != nil {
			return Secret{}, s.failRotation(ctx, v, name, rec, recRaw, err, in)
		}
		var next string
		switch rec.Step {
		case rotation.StepPending:
			err, next = rot.Apply(ctx, spec, in), rotation.StepApplied
		case rotation.StepApplied:
			err, next = rot.Test(ctx, spec, in), rotation.StepTested
		case rotation.StepTested:
			sec, err := s.commitRotation(ctx, v, name, plan, &h, hraw, rec, recRaw)
			if errors.Is(err, errRetry) {
				if rec, recRaw, err = s.rereadRecord(ctx, v, name, rec); err != nil {
					return Secret{}, err
				}
				continue // the head or the record moved: look again
			}
			if f, ok := rot.(rotation.Finisher); ok && err == nil {
				in.Version = sec.Version
				if ferr := f.Finish(ctx, spec, in); ferr != nil && s.opts.Log != nil {
					s.opts.Log.Warn("secret rotation: the finish call failed (the rotation stands)", "vault", v.Name, "secret", name,
						"rotation", rec.ID, "err", rotation.Scrub(ferr.Error(), in.Current, in.Pending, in.Admin, in.SigningKey))
				}
			}
			return sec, err
		default:
			return Secret{}, fmt.Errorf("rotation of %s: unknown step %q", name, rec.Step)
		}
		if err != nil {
			return Secret{}, s.failRotation(ctx, v, name, rec, recRaw, err, in)
		}
		rec.Step, rec.Attempts, rec.LastError, rec.NextAt = next, 0, "", 0
		rec.LeaseUntil = s.now().Add(rotationLease).Unix()
		raw, err := s.writeRecord(ctx, v, name, &rec, recRaw, rotDue(rec.LeaseUntil, v, name))
		if errors.Is(err, errRetry) {
			return Secret{}, s.takenOver(name)
		}
		if err != nil {
			return Secret{}, err
		}
		recRaw = raw
		s.stepDone(next)
	}
}

// stepDone tells Options.RotationStepDone (a test hook) that a step was recorded.
func (s *Service) stepDone(step string) {
	if s.opts.RotationStepDone != nil {
		s.opts.RotationStepDone(step)
	}
}

// rereadRecord reads the record again after a lost commit; it must still be this rotation.
func (s *Service) rereadRecord(ctx context.Context, v *Vault, name string, rec rotationRecord) (rotationRecord, []byte, error) {
	now, raw, err := s.readRecord(ctx, v, name)
	if err != nil {
		return rec, nil, err
	}
	if now.ID != rec.ID || now.Step != rec.Step {
		return rec, nil, s.takenOver(name)
	}
	return now, raw, nil
}

func (s *Service) takenOver(name string) error {
	return newErr(ErrConflict, "Conflict", "RotationInProgress", "The rotation of secret %s was taken over by another runner; see its rotation status.", name)
}

// commitRotation writes the pending value as the new latest version, in the batch that
// returns the record to idle, guarded by the head and the record as read.
func (s *Service) commitRotation(ctx context.Context, v *Vault, name string, plan rotation.Plan, h *secretHead, hraw []byte, rec rotationRecord, recRaw []byte) (Secret, error) {
	now := s.now()
	sv := SecretVersion{Version: newVersion(now), Value: rec.Pending, ContentType: h.Item.ContentType, Tags: maps.Clone(h.Item.Tags),
		Enabled: true, Expires: plan.NewExpiry(now), Created: now.Unix(), Updated: now.Unix()}
	if sv.Expires == nil { // Azure's tag contract: ValidityPeriodDays sets the new version's exp
		if days, err := strconv.Atoi(h.Item.Tags["ValidityPeriodDays"]); err == nil && days > 0 && days <= 36500 {
			exp := now.AddDate(0, 0, days).Unix()
			sv.Expires = &exp
		}
	}
	keep, ops, err := s.newVersionOps(ctx, v, name, h, hraw, true, &sv)
	if err != nil {
		return Secret{}, err
	}
	done := rotationRecord{LastRotated: now.Unix(), LastVersion: sv.Version, LastOutcome: "succeeded", NotifiedVersion: rec.NotifiedVersion}
	evOps, err := s.rotationEventOps(ctx, v, keep, EventSecretRotationSucceeded, &rotationRecord{ID: rec.ID, Step: rotation.StepCommitted, BaseVersion: sv.Version}, "")
	if err != nil {
		return Secret{}, err
	}
	if _, err := s.writeRecord(ctx, v, name, &done, recRaw, append(ops, evOps...)...); err != nil {
		return Secret{}, err
	}
	s.stepDone(rotation.StepCommitted)
	return s.secret(v, keep, sv, false, nil), nil
}

// failRotation records a failed step: the error (values scrubbed), one more attempt, and the
// time of the next, when the worker tries again with the same pending value.
func (s *Service) failRotation(ctx context.Context, v *Vault, name string, rec rotationRecord, recRaw []byte, cause error, in rotation.Input) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := s.now()
	msg := rotation.Scrub(cause.Error(), in.Current, in.Pending, in.Admin, in.SigningKey)
	var de *Error
	if errors.As(cause, &de) {
		msg = de.Message
	}
	rec.Attempts++
	rec.LastError, rec.LastFailed, rec.LeaseUntil = "step "+rec.Step+": "+msg, now.Unix(), 0
	rec.NextAt = now.Add(s.retryDelay(rec.Attempts)).Unix()
	evOps, err := s.rotationEventOps(ctx, v, name, EventSecretRotationFailed, &rec, rec.LastError)
	if err != nil {
		return err
	}
	if _, err := s.writeRecord(ctx, v, name, &rec, recRaw, append(evOps, rotDue(rec.NextAt, v, name))...); err != nil {
		if errors.Is(err, errRetry) {
			return s.takenOver(name)
		}
		return err
	}
	if s.opts.RotationFailed != nil {
		s.opts.RotationFailed(v.Name, name, rec.ID, rec.Step, msg)
	}
	if s.opts.Log != nil {
		s.opts.Log.Warn("secret rotation step failed", "vault", v.Name, "secret", name, "rotation", rec.ID,
			"step", rec.Step, "attempt", rec.Attempts, "retry_at", time.Unix(rec.NextAt, 0).UTC(), "err", msg)
	}
	return newErr(ErrConflict, "Conflict", "RotationFailed", "The rotation of secret %s failed at step %s: %s. The current version is unchanged; the rotation is retried at %s, or at once by another rotate request.",
		name, rec.Step, msg, time.Unix(rec.NextAt, 0).UTC().Format(time.RFC3339))
}

// abandonRotation ends a rotation whose secret moved on (a version set by hand, a deletion):
// the pending value is dropped and erased, nothing else changes.
func (s *Service) abandonRotation(ctx context.Context, v *Vault, name string, rec rotationRecord, recRaw []byte) error {
	done := rotationRecord{LastRotated: rec.LastRotated, LastVersion: rec.LastVersion, LastOutcome: "abandoned",
		LastError: "the secret changed during the rotation", NotifiedVersion: rec.NotifiedVersion}
	evOps, err := s.rotationEventOps(ctx, v, name, EventSecretRotationAbandoned, &rec, "")
	if err != nil {
		return err
	}
	err = s.destroy(func() error {
		_, err := s.writeRecord(ctx, v, name, &done, recRaw, evOps...)
		return err
	})
	if errors.Is(err, errRetry) {
		return s.takenOver(name)
	}
	if err != nil {
		return err
	}
	return newErr(ErrConflict, "Conflict", "RotationAbandoned", "The rotation of secret %s was abandoned: a new version was set or the secret was deleted while it ran.", name)
}
