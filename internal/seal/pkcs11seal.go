package seal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/strongroom/strongroom/internal/config"
)

// pkcs11Seal keeps the root key wrapped by an HSM key (pkcs11.go): the store records the wrapped
// key and the HSM key's label, and every unseal asks the HSM to unwrap it.
type pkcs11Seal struct {
	cfg config.PKCS11Config
	rec *Config
	log *slog.Logger
}

func newPKCS11Seal(cfg config.SealConfig, rec *Config, log *slog.Logger) (*pkcs11Seal, error) {
	p := cfg.PKCS11
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &pkcs11Seal{cfg: p, rec: rec, log: log}, nil
}

func (s *pkcs11Seal) Type() Type     { return PKCS11 }
func (s *pkcs11Seal) Status() Status { return Status{Type: PKCS11} }

// Init wraps a fresh root key under the configured HSM key, generating that key in the token
// (non-extractable) when it does not exist yet.
func (s *pkcs11Seal) Init(context.Context, Params) (*Change, error) {
	h, err := openHSM(s.cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	key, err := h.findKey(s.cfg.KeyLabel)
	if err == nil && key == 0 {
		key, err = h.generateKey(s.cfg.KeyLabel)
	}
	if err != nil {
		return nil, err
	}
	root, err := newRootKey()
	if err != nil {
		return nil, err
	}
	wrapped, err := h.wrap(key, root)
	if err != nil {
		clear(root)
		return nil, err
	}
	return &Change{Root: root, Config: Config{Type: PKCS11, WrappedRootKey: wrapped, KeyLabel: s.cfg.KeyLabel}}, nil
}

// Unseal asks the HSM to unwrap the recorded root key.
func (s *pkcs11Seal) Unseal(context.Context, KeyCheck) ([]byte, error) {
	if s.rec == nil {
		return nil, ErrNoConfig
	}
	return s.unwrap(*s.rec)
}

func (s *pkcs11Seal) unwrap(rec Config) ([]byte, error) {
	h, err := openHSM(s.cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	key, err := h.findKey(rec.KeyLabel)
	if err != nil {
		return nil, err
	}
	if key == 0 {
		return nil, fmt.Errorf("pkcs11 seal: the wrapping key %q is not in token %q", rec.KeyLabel, s.cfg.TokenLabel)
	}
	return h.unwrap(key, rec.WrappedRootKey)
}

// Replace, for a rekey, wraps a fresh root key under a new HSM key labelled "<key_label>-<unix
// time>"; Finish destroys the old HSM key once the change is committed, or the new one when
// nothing was committed. A migration to this seal is Init.
func (s *pkcs11Seal) Replace(ctx context.Context, p Params) (*Change, error) {
	if s.rec == nil {
		return s.Init(ctx, p)
	}
	h, err := openHSM(s.cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	oldKey, err := h.findKey(s.rec.KeyLabel)
	if err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%s-%d", s.cfg.KeyLabel, time.Now().Unix())
	newKey, err := h.generateKey(label)
	if err != nil {
		return nil, err
	}
	root, err := newRootKey()
	if err != nil {
		return nil, err
	}
	wrapped, err := h.wrap(newKey, root)
	if err != nil {
		clear(root)
		return nil, err
	}
	next := *s.rec
	next.KeyLabel, next.WrappedRootKey = label, wrapped
	oldLabel := s.rec.KeyLabel
	if oldKey == 0 {
		oldLabel = "" // nothing to destroy
	}
	finish := func(o Outcome) error { return s.finishRekey(o, oldLabel, label) }
	return &Change{Root: root, Config: next, Note: "the root key is wrapped by the new HSM key " + label, finish: finish}, nil
}

// finishRekey destroys the HSM key a rekey left unused. It opens its own session: the library
// is finalized whenever a session closes (Stage opens one in between), so no handle from
// Replace survives until here.
func (s *pkcs11Seal) finishRekey(o Outcome, oldLabel, newLabel string) error {
	label, what := oldLabel, "the new root key is in place but the old HSM key %q could not be destroyed; destroy it by hand: %w"
	switch o {
	case NotCommitted:
		label, what = newLabel, "the unused new HSM key %q could not be destroyed: %w"
	case Unknown:
		label = ""
	}
	if label == "" {
		return nil
	}
	h, err := openHSM(s.cfg)
	if err != nil {
		return fmt.Errorf(what, label, err)
	}
	defer h.close()
	key, err := h.findKey(label)
	if err == nil && key != 0 {
		err = h.destroy(key)
	}
	if err != nil {
		return fmt.Errorf(what, label, err)
	}
	return nil
}

// Stage checks that this node's HSM unwraps the recorded wrapped key to root: every node must
// reach the same HSM key.
func (s *pkcs11Seal) Stage(_ context.Context, root []byte) (*Staged, error) {
	if s.rec == nil {
		return nil, ErrNoConfig
	}
	got, err := s.unwrap(*s.rec)
	if err != nil {
		s.log.Error("the HSM does not unwrap the new root key", "err", err)
		return nil, fmt.Errorf("this node's HSM cannot unwrap the new root key (is key %q in token %q? every node must reach the same HSM key)", s.rec.KeyLabel, s.cfg.TokenLabel)
	}
	same := subtle.ConstantTimeCompare(got, root) == 1
	clear(got)
	if !same {
		return nil, errors.New("this node's HSM unwraps the new wrapped root key to another key")
	}
	return &Staged{}, nil
}

// Retire keeps the HSM key: it is in the token, not the data folder.
func (s *pkcs11Seal) Retire() error { return nil }
