package keyring

import (
	"crypto/rand"
	"fmt"
)

// Root-wrapped blobs are sealed directly under the root key, so any deployment holding the same
// root key opens them whatever its keyring holds: they carry the data key of a whole-store
// snapshot, which must restore into a fresh cluster (whose own keyring is new) and which brings
// the old keyring back with it. A rekey makes older blobs unusable.
//
// Format, version 1: byte 0 = 1 | 12-byte nonce | AES-256-GCM(root key, plaintext),
// AAD "strongroom/root-wrap/v1\x00" + purpose.

// SealRoot encrypts a small payload under the root key.
func (k *Keyring) SealRoot(purpose string, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("sealing under the root key: %w", err)
	}
	return k.rootAEAD().Seal(out, out[1:], plaintext, []byte("strongroom/root-wrap/v1\x00"+purpose)), nil
}

// OpenRoot decrypts a payload sealed by SealRoot; any other key, purpose or change fails with
// ErrDecrypt.
func (k *Keyring) OpenRoot(purpose string, blob []byte) ([]byte, error) {
	if len(blob) < 1+nonceSize+tagSize || blob[0] != 1 {
		return nil, ErrDecrypt
	}
	pt, err := k.rootAEAD().Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], []byte("strongroom/root-wrap/v1\x00"+purpose))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
