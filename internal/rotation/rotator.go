package rotation

import (
	"context"
	"strings"
)

// Steps of a rotation, in order, as its status and events name them. A rotation record is
// written at StepPending with the new value sealed in it, before anything changes; Latest
// keeps serving the working value until StepCommitted writes the new version.
const (
	StepPending   = "pending"   // new value chosen and stored in the rotation record
	StepApplied   = "applied"   // the target accepts it
	StepTested    = "tested"    // a login or probe with it succeeded
	StepCommitted = "committed" // written as the new latest version
)

// Input is what a rotator sees of one rotation. Values are the secrets' own: a rotator must
// keep them out of errors, logs and anything it sends except to the target itself.
type Input struct {
	VaultName, SecretName string
	// Version is the current latest version's id; Current its value.
	Version, Current string
	// Pending is the new value (after Prepare).
	Pending string
	// Admin is the value of the policy's connection secret ("" when it names none).
	Admin string
	// SigningKey is the value of the policy's signing secret (webhook; "" when it names none).
	SigningKey string
	// SecretID is the secret's id without a version ("https://<vault>/secrets/<name>").
	SecretID string
	// RotationID identifies this rotation: the same across retries and restarts, so a target
	// can recognise a repeated step.
	RotationID string
	// Attempt counts the tries of the current step, from 1.
	Attempt int
}

// A Rotator changes the credential a secret holds. Every method must be idempotent: after a
// crash the state machine repeats the step it had not recorded as done, with the same
// pending value.
type Rotator interface {
	// Prepare returns the pending value from the current one, with a fresh secret part drawn
	// from gen (for a connection document: the same document with a new password and, for
	// alternating users, the other user).
	Prepare(ctx context.Context, spec *RotatorSpec, in Input) (string, error)
	// Apply makes the target accept the pending value.
	Apply(ctx context.Context, spec *RotatorSpec, in Input) error
	// Test proves the pending value works at the target.
	Test(ctx context.Context, spec *RotatorSpec, in Input) error
}

// A Finisher is told once a rotation's new version is committed (best effort: a failure is
// logged, the rotation stands).
type Finisher interface {
	Finish(ctx context.Context, spec *RotatorSpec, in Input) error
}

// Scrub removes every occurrence of the given values from msg (an error text from a target
// or a hook), so no value reaches a status, an event or a log even if a target echoes it.
func Scrub(msg string, values ...string) string {
	for _, v := range values {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}
