package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/strongroom/strongroom/internal/config"
)

// The PKCS#11 seal (pkcs11seal.go) keeps the root key wrapped by an AES-256 key that lives in the HSM, marked
// sensitive and non-extractable: the root key exists in the clear only in this process's memory
// after the HSM has unwrapped it. Wrapping uses CKM_AES_GCM with a random 96-bit IV and the AAD
// "strongroom/root/v1"; the stored form is IV | ciphertext | tag.

var pkcs11AAD = []byte("strongroom/root/v1")

type hsm struct {
	ctx     *pkcs11.Ctx
	session pkcs11.SessionHandle
}

// errNoToken means the module lists no token with the configured label.
var errNoToken = errors.New("no token labelled")

// A token can be missing from one scan and back in the next: with SoftHSM2's file store, a scan
// that runs while another process writes the token's files skips the token (seen when every
// member of a cluster sharing one token stages a rekey at once: about one rekey in four failed).
const (
	tokenScans     = 6
	tokenScanPause = 50 * time.Millisecond
)

// openHSM opens a logged-in session on the configured token, scanning the slots again a few
// times when the token is not there.
func openHSM(cfg config.PKCS11Config) (*hsm, error) {
	for i := 1; ; i++ {
		h, err := openHSMOnce(cfg)
		if !errors.Is(err, errNoToken) || i == tokenScans {
			return h, err
		}
		time.Sleep(tokenScanPause)
	}
}

func openHSMOnce(cfg config.PKCS11Config) (*hsm, error) {
	pin, err := readPIN(cfg)
	if err != nil {
		return nil, err
	}
	p := pkcs11.New(cfg.Module)
	if p == nil {
		return nil, fmt.Errorf("pkcs11 seal: cannot load module %s", cfg.Module)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		p.Destroy()
		return nil, fmt.Errorf("pkcs11 seal: initializing %s: %w", cfg.Module, err)
	}
	h := &hsm{ctx: p}
	slots, err := p.GetSlotList(true)
	if err != nil {
		h.close()
		return nil, fmt.Errorf("pkcs11 seal: listing slots: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil || strings.TrimRight(ti.Label, " \x00") != cfg.TokenLabel {
			continue
		}
		if h.session, err = p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			h.close()
			return nil, fmt.Errorf("pkcs11 seal: opening a session on token %q: %w", cfg.TokenLabel, err)
		}
		if err := p.Login(h.session, pkcs11.CKU_USER, pin); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
			h.close()
			return nil, fmt.Errorf("pkcs11 seal: logging in to token %q: %w", cfg.TokenLabel, err)
		}
		return h, nil
	}
	h.close()
	return nil, fmt.Errorf("pkcs11 seal: %w %q in %s (is the HSM connected?)", errNoToken, cfg.TokenLabel, cfg.Module)
}

func (h *hsm) close() {
	if h.session != 0 {
		_ = h.ctx.Logout(h.session)
		_ = h.ctx.CloseSession(h.session)
	}
	_ = h.ctx.Finalize()
	h.ctx.Destroy()
}

func readPIN(cfg config.PKCS11Config) (string, error) {
	if cfg.PINEnv != "" {
		pin := os.Getenv(cfg.PINEnv)
		if pin == "" {
			return "", fmt.Errorf("pkcs11 seal: environment variable %s is empty", cfg.PINEnv)
		}
		return pin, nil
	}
	b, err := os.ReadFile(cfg.PINFile)
	if err != nil {
		return "", fmt.Errorf("pkcs11 seal: reading pin file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// findKey returns the wrapping key labelled label, or 0 when there is none.
func (h *hsm) findKey(label string) (pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := h.ctx.FindObjectsInit(h.session, tmpl); err != nil {
		return 0, fmt.Errorf("pkcs11 seal: searching for key %q: %w", label, err)
	}
	objs, _, err := h.ctx.FindObjects(h.session, 2)
	_ = h.ctx.FindObjectsFinal(h.session)
	if err != nil {
		return 0, fmt.Errorf("pkcs11 seal: searching for key %q: %w", label, err)
	}
	if len(objs) > 1 {
		return 0, fmt.Errorf("pkcs11 seal: more than one key labelled %q", label)
	}
	if len(objs) == 0 {
		return 0, nil
	}
	return objs[0], nil
}

func (h *hsm) generateKey(label string) (pkcs11.ObjectHandle, error) {
	k, err := h.ctx.GenerateKey(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	if err != nil {
		return 0, fmt.Errorf("pkcs11 seal: generating wrapping key %q: %w", label, err)
	}
	return k, nil
}

func (h *hsm) wrap(key pkcs11.ObjectHandle, root []byte) ([]byte, error) {
	iv := make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	params := pkcs11.NewGCMParams(iv, pkcs11AAD, 128)
	defer params.Free()
	if err := h.ctx.EncryptInit(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
		return nil, fmt.Errorf("pkcs11 seal: wrapping root key: %w", err)
	}
	ct, err := h.ctx.Encrypt(h.session, root)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 seal: wrapping root key: %w", err)
	}
	return append(iv, ct...), nil
}

func (h *hsm) unwrap(key pkcs11.ObjectHandle, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 12+16 {
		return nil, fmt.Errorf("pkcs11 seal: stored wrapped root key is malformed")
	}
	params := pkcs11.NewGCMParams(wrapped[:12], pkcs11AAD, 128)
	defer params.Free()
	if err := h.ctx.DecryptInit(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
		return nil, fmt.Errorf("pkcs11 seal: unwrapping root key: %w", err)
	}
	root, err := h.ctx.Decrypt(h.session, wrapped[12:])
	if err != nil {
		return nil, fmt.Errorf("pkcs11 seal: unwrapping root key (wrong HSM key?): %w", err)
	}
	return root, nil
}

func (h *hsm) destroy(key pkcs11.ObjectHandle) error { return h.ctx.DestroyObject(h.session, key) }
