// Package keyring is Strongroom's envelope encryption. A root key (released by a seal) wraps one
// data-encryption key (DEK) per key id: "system" for deployment records and "vault/<id>" for each
// vault. DEKs seal records with AES-256-GCM whose associated data names the purpose, the key id
// and the storage key, so a ciphertext moved to another key or vault fails to open.
//
// Invariant: only this package sees plaintext keys; DEKs reach the store only wrapped. Destroying
// a vault's DEK (purge) makes every record sealed under it unreadable: cryptographic erasure.
//
// Record format (version 1), used for both sealed records and wrapped DEKs:
//
//	byte 0      format version (1)
//	bytes 1-4   keyring term, big-endian uint32 (1 until key rotation lands)
//	bytes 5-16  random 96-bit GCM nonce
//	bytes 17-   AES-256-GCM ciphertext and 16-byte tag
//
// AAD for a record: "strongroom/record/v1\x00" + keyID + "\x00" + storageKey.
// AAD for a wrapped DEK (stored at "sys/dek/<keyID>"): "strongroom/dek/v1\x00" + keyID.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/strongroom/strongroom/internal/store"
)

const (
	formatV1    = 1
	currentTerm = 1
	headerLen   = 1 + 4 + 12
	// KeySize is the size of root keys and DEKs: AES-256.
	KeySize = 32

	dekPrefix = "sys/dek/"
	checkKey  = "sys/keyring/check"
)

// SystemKeyID is the DEK for deployment-wide records (identities, resource groups, vault configs).
const SystemKeyID = "system"

// Errors callers may test with errors.Is.
var (
	// ErrDecrypt means a record failed authentication: wrong key, wrong location or tampering.
	ErrDecrypt = errors.New("record failed authentication")
	// ErrKeyDestroyed means the data key was destroyed (its vault or item was purged).
	ErrKeyDestroyed = errors.New("data key destroyed")
	// ErrWrongRootKey means the seal released a key that does not open this store.
	ErrWrongRootKey = errors.New("root key does not match this data folder")
)

// Keyring seals and opens records. It is safe for concurrent use.
type Keyring struct {
	st   store.Reader
	root cipher.AEAD

	mu   sync.RWMutex
	deks map[string]cipher.AEAD
}

// Open builds a keyring over st with the root key a seal released. On a new store it returns the
// op that records a check value (apply it with the first write); on an existing one it verifies
// that rootKey is the right key.
func Open(ctx context.Context, st store.Reader, rootKey []byte) (*Keyring, []store.Op, error) {
	root, err := newAEAD(rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("opening keyring: %w", err)
	}
	k := &Keyring{st: st, root: root, deks: map[string]cipher.AEAD{}}
	rec, err := st.Get(ctx, checkKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sealed, err := seal(root, []byte("strongroom/check/v1"), []byte("strongroom"))
		if err != nil {
			return nil, nil, err
		}
		return k, []store.Op{store.Put(checkKey, sealed)}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("opening keyring: %w", err)
	}
	if _, err := open(root, []byte("strongroom/check/v1"), rec); err != nil {
		return nil, nil, ErrWrongRootKey
	}
	return k, nil, nil
}

// NewDataKey makes a fresh DEK for keyID and returns the ops that persist it wrapped. The ops
// fail with store.ErrConflict if keyID already has a key.
func (k *Keyring) NewDataKey(keyID string) ([]store.Op, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("generating data key: %w", err)
	}
	wrapped, err := seal(k.root, dekAAD(keyID), dek)
	clear(dek)
	if err != nil {
		return nil, fmt.Errorf("wrapping data key: %w", err)
	}
	return []store.Op{store.RequireAbsent(dekPrefix + keyID), store.Put(dekPrefix+keyID, wrapped)}, nil
}

// DestroyDataKey returns the op that deletes keyID's wrapped DEK. After it is applied, call
// Forget so the in-memory copy goes too.
func (k *Keyring) DestroyDataKey(keyID string) store.Op { return store.Delete(dekPrefix + keyID) }

// Forget drops keyID's cached DEK.
func (k *Keyring) Forget(keyID string) {
	k.mu.Lock()
	delete(k.deks, keyID)
	k.mu.Unlock()
}

// Seal encrypts plaintext for storage at storageKey under keyID's DEK.
func (k *Keyring) Seal(ctx context.Context, keyID, storageKey string, plaintext []byte) ([]byte, error) {
	aead, err := k.dek(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return seal(aead, recordAAD(keyID, storageKey), plaintext)
}

// Open decrypts a record read from storageKey under keyID's DEK.
func (k *Keyring) Open(ctx context.Context, keyID, storageKey string, record []byte) ([]byte, error) {
	aead, err := k.dek(ctx, keyID)
	if err != nil {
		return nil, err
	}
	pt, err := open(aead, recordAAD(keyID, storageKey), record)
	if err != nil {
		return nil, fmt.Errorf("opening record %q: %w", storageKey, err)
	}
	return pt, nil
}

func (k *Keyring) dek(ctx context.Context, keyID string) (cipher.AEAD, error) {
	k.mu.RLock()
	a := k.deks[keyID]
	k.mu.RUnlock()
	if a != nil {
		return a, nil
	}
	wrapped, err := k.st.Get(ctx, dekPrefix+keyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("loading data key %q: %w", keyID, ErrKeyDestroyed)
	}
	if err != nil {
		return nil, fmt.Errorf("loading data key %q: %w", keyID, err)
	}
	dek, err := open(k.root, dekAAD(keyID), wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key %q: %w", keyID, err)
	}
	a, err = newAEAD(dek)
	clear(dek)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.deks[keyID] = a
	k.mu.Unlock()
	return a, nil
}

func recordAAD(keyID, storageKey string) []byte {
	return []byte("strongroom/record/v1\x00" + keyID + "\x00" + storageKey)
}

func dekAAD(keyID string) []byte { return []byte("strongroom/dek/v1\x00" + keyID) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal(aead cipher.AEAD, aad, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerLen, headerLen+len(plaintext)+aead.Overhead())
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:5], currentTerm)
	if _, err := rand.Read(out[5:headerLen]); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	return aead.Seal(out, out[5:headerLen], plaintext, aad), nil
}

func open(aead cipher.AEAD, aad, record []byte) ([]byte, error) {
	if len(record) < headerLen+aead.Overhead() {
		return nil, fmt.Errorf("record too short: %w", ErrDecrypt)
	}
	if record[0] != formatV1 {
		return nil, fmt.Errorf("unsupported record format %d: %w", record[0], ErrDecrypt)
	}
	if term := binary.BigEndian.Uint32(record[1:5]); term != currentTerm {
		return nil, fmt.Errorf("unknown keyring term %d: %w", term, ErrDecrypt)
	}
	pt, err := aead.Open(nil, record[5:headerLen], record[headerLen:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
