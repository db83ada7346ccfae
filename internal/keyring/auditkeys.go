package keyring

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Audit keys are derived, not stored: HKDF-SHA256 over the keyring's oldest live term with a
// distinct label per key, so every node of a cluster (they share the ring) and every restart
// derives the same keys without a new record to replicate, and nothing but the keyring is needed
// to recreate them. The oldest term changes only when RetireTerms removes it (after a rotation
// and a completed rewrap); the audit keys change with it, and the new public key is added next
// to the log (audit.Log.SetSigner). A rekey of the root key does not change them.
const (
	auditSalt        = "strongroom/audit-keys/v1"
	auditSigningInfo = "audit checkpoint signing key (Ed25519 seed)"
	auditDigestInfo  = "audit token digest key (HMAC-SHA256)"
)

// AuditSigningKey is the Ed25519 key that signs the audit log's checkpoints.
func (k *Keyring) AuditSigningKey() (ed25519.PrivateKey, error) {
	seed, err := k.auditKey(auditSigningInfo, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

// TokenDigestKey is the 32-byte HMAC key under which audit records name tokens
// (audit.TokenDigest), so an operator holding a token can search for it and nobody else learns it.
func (k *Keyring) TokenDigestKey() ([]byte, error) { return k.auditKey(auditDigestInfo, 32) }

// auditKey derives n bytes for the purpose info from the oldest live term.
func (k *Keyring) auditKey(info string, n int) ([]byte, error) {
	s := k.state()
	if s == nil {
		return nil, fmt.Errorf("deriving audit key: %w", ErrNotInitialized)
	}
	var oldest uint32
	for t := range s.ring.Terms {
		if oldest == 0 || t < oldest {
			oldest = t
		}
	}
	ikm := s.ring.Terms[oldest]
	if len(ikm) != KeySize {
		return nil, fmt.Errorf("deriving audit key: keyring term %d is missing", oldest)
	}
	out, err := hkdf.Key(sha256.New, ikm, []byte(auditSalt), info, n)
	if err != nil {
		return nil, fmt.Errorf("deriving audit key: %w", err)
	}
	return out, nil
}
