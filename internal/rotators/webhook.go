package rotators

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/strongroom/strongroom/internal/rotation"
)

// Webhook steps, Secrets Manager's names. The server calls them in this order: createSecret and
// setSecret when it applies a pending value, testSecret when it tests it, finishSecret after
// the new version is committed.
const (
	StepCreateSecret = "createSecret"
	StepSetSecret    = "setSecret"
	StepTestSecret   = "testSecret"
	StepFinishSecret = "finishSecret"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>", keyed with the value of the
// policy's signing secret.
const SignatureHeader = "X-Strongroom-Signature"

// Poster sends one signed request (the server's outbound client, with its destination rules).
type Poster interface {
	Post(ctx context.Context, rawURL string, header http.Header, body []byte) (int, []byte, error)
}

// Webhook calls user code for each step of a rotation. The pending value is never in a call:
// the body names where to read it (pendingValueRef, the secret's /pending route), and the hook
// reads it with its own identity, which needs getSecret on the secret.
type Webhook struct {
	Client Poster
	Now    func() time.Time
}

// WebhookCall is the body of a webhook call.
type WebhookCall struct {
	Step            string `json:"step"`
	VaultName       string `json:"vaultName"`
	SecretName      string `json:"secretName"`
	SecretID        string `json:"secretId"`
	Version         string `json:"version"` // the current latest version
	RotationID      string `json:"rotationId"`
	Attempt         int    `json:"attempt"`
	PendingValueRef string `json:"pendingValueRef"`
	Time            string `json:"time"`
}

// Sign is the signature header's value for body under key.
func Sign(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) call(ctx context.Context, spec *rotation.RotatorSpec, in rotation.Input, step string) error {
	if in.SigningKey == "" {
		return errors.New("the webhook rotator needs its signing secret's value")
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	body, err := json.Marshal(WebhookCall{Step: step, VaultName: in.VaultName, SecretName: in.SecretName, SecretID: in.SecretID,
		Version: in.Version, RotationID: in.RotationID, Attempt: in.Attempt, PendingValueRef: in.SecretID + "/pending?api-version=7.4",
		Time: now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign(in.SigningKey, body))
	status, _, err := w.Client.Post(ctx, spec.URL, h, body)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("%s: the hook answered %d", step, status) // its body is not echoed
	}
	return nil
}

// Prepare draws the pending value; the hook learns of it at createSecret.
func (w *Webhook) Prepare(_ context.Context, spec *rotation.RotatorSpec, _ rotation.Input) (string, error) {
	return spec.Generator.Generate()
}

// Apply calls createSecret, then setSecret: the hook makes its target accept the pending value.
func (w *Webhook) Apply(ctx context.Context, spec *rotation.RotatorSpec, in rotation.Input) error {
	if err := w.call(ctx, spec, in, StepCreateSecret); err != nil {
		return err
	}
	return w.call(ctx, spec, in, StepSetSecret)
}

// Test calls testSecret: the hook proves the pending value works.
func (w *Webhook) Test(ctx context.Context, spec *rotation.RotatorSpec, in rotation.Input) error {
	return w.call(ctx, spec, in, StepTestSecret)
}

// Finish calls finishSecret once the new version is the latest (the hook may retire the old
// credential).
func (w *Webhook) Finish(ctx context.Context, spec *rotation.RotatorSpec, in rotation.Input) error {
	return w.call(ctx, spec, in, StepFinishSecret)
}
