// Package keyring is Strongroom's envelope encryption. A root key (released by a seal) seals the
// keyring record: a set of numbered key-encryption keys ("terms") and backup keys. Every stored
// record is sealed with its own fresh data-encryption key (DEK), and that DEK is stored inside
// the record, wrapped under the keyring's active term. Associated data binds each record to its
// domain and storage key, so a ciphertext moved elsewhere fails to open.
//
// Invariants: only this package sees plaintext keys; the store sees keys only wrapped. Rotation
// (Rotate) adds a term that all new writes use while old terms stay readable; Rewrap moves a
// record's DEK to the newest term without touching its ciphertext; RetireTerms drops terms no
// record uses any more, which (together with a new root key) is how copies made before a purge
// become unreadable (erasure epochs, see docs/security-model.md).
//
// The sealed record format (version 3, which adds the keyring generation to version 2) is
// described in record.go.
//
// The keyring record at "sys/keyring" is a version-1 root record: byte 0 = 1, 12-byte nonce,
// AES-256-GCM(root key, JSON ring) with AAD "strongroom/keyring/v1".
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/strongroom/strongroom/internal/store"
)

const (
	rootFormatV1 = 1
	// KeySize is the size of root keys, terms and DEKs: AES-256.
	KeySize    = 32
	nonceSize  = 12
	tagSize    = 16
	wrappedLen = nonceSize + KeySize + tagSize
	headerLen  = 1 + 4 + wrappedLen + nonceSize

	// RingKey is where the keyring record lives.
	RingKey = "sys/keyring"
)

// SystemKeyID is the domain of deployment-wide records (identities, resource groups, vaults).
const SystemKeyID = "system"

// Errors callers may test with errors.Is.
var (
	// ErrDecrypt means a record failed authentication: wrong key, wrong location or tampering.
	ErrDecrypt = errors.New("record failed authentication")
	// ErrUnknownTerm means a record names a term this keyring no longer (or never) had.
	ErrUnknownTerm = errors.New("record uses a retired or unknown keyring term")
	// ErrWrongRootKey means the seal released a key that does not open this store.
	ErrWrongRootKey = errors.New("root key does not match this data folder")
	// ErrBackupKeyRevoked means a backup blob was made under a revoked backup key.
	ErrBackupKeyRevoked = errors.New("backup key revoked or unknown")
)

// ring is the keyring record's plaintext.
type ring struct {
	Version    int               `json:"v"`
	Active     uint32            `json:"active"`
	Terms      map[uint32][]byte `json:"terms"`
	BackupKeys map[uint32][]byte `json:"backupKeys"`
	BackupNext uint32            `json:"backupActive"`
	// Gen rises with every change of the ring; records carry the generation they were sealed
	// under, so a ring replaced by an older copy is detected (record.go). 0 in rings written
	// before generations existed.
	Gen uint64 `json:"gen,omitempty"`
}

// state is an immutable snapshot of the ring with ready AEADs; rotation swaps in a new one.
type state struct {
	raw        []byte // the sealed ring record, the compare-and-set token for changes
	ring       ring
	terms      map[uint32]cipher.AEAD
	backupKeys map[uint32]cipher.AEAD
	deks       dekCache // opened DEKs of this ring's records; a new state starts empty
}

// Keyring seals and opens records. It is safe for concurrent use.
type Keyring struct {
	st   store.Store
	root cipher.AEAD
	mu   sync.RWMutex
	cur  *state
	// staged is a cluster-wide rekey's new root key, tried when root stops opening the keyring.
	staged atomic.Pointer[stagedHook]
}

// ErrNotInitialized means the store has no keyring yet.
var ErrNotInitialized = errors.New("store is not initialized")

// Load loads the keyring sealed under rootKey; it never creates one.
func Load(ctx context.Context, st store.Store, rootKey []byte) (*Keyring, error) {
	root, err := newAEAD(rootKey)
	if err != nil {
		return nil, fmt.Errorf("opening keyring: %w", err)
	}
	k := &Keyring{st: st, root: root}
	if err := k.Reload(ctx); errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInitialized
	} else if err != nil {
		return nil, err
	}
	return k, nil
}

// Initialized reports whether st holds a keyring.
func Initialized(ctx context.Context, st store.Reader) (bool, error) {
	_, err := st.Get(ctx, RingKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Open loads the keyring sealed under rootKey, creating it (term 1, backup key 1) in a new store;
// extra ops are applied atomically with the creation only (the seal records its configuration
// that way, so a store is never half-initialized).
func Open(ctx context.Context, st store.Store, rootKey []byte, extra ...store.Op) (*Keyring, error) {
	root, err := newAEAD(rootKey)
	if err != nil {
		return nil, fmt.Errorf("opening keyring: %w", err)
	}
	k := &Keyring{st: st, root: root}
	if err := k.Reload(ctx); err == nil {
		return k, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	r := ring{Version: 1, Active: 1, Terms: map[uint32][]byte{1: randKey()}, BackupKeys: map[uint32][]byte{1: randKey()}, BackupNext: 1, Gen: 1}
	if err := k.write(ctx, nil, r, extra...); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("creating keyring: %w", err)
	}
	// Under a conflict another process created it first; load theirs.
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload re-reads the keyring record (after another node changed it).
func (k *Keyring) Reload(ctx context.Context) error {
	raw, err := k.st.Get(ctx, RingKey)
	if err != nil {
		return err
	}
	if len(raw) < 1+nonceSize+tagSize || raw[0] != rootFormatV1 {
		return fmt.Errorf("loading keyring: unsupported keyring format")
	}
	pt, err := k.rootAEAD().Open(nil, raw[1:1+nonceSize], raw[1+nonceSize:], []byte("strongroom/keyring/v1"))
	if err != nil {
		var ok bool
		if pt, ok = k.openStaged(raw); !ok {
			return ErrWrongRootKey
		}
	}
	var r ring
	err = json.Unmarshal(pt, &r)
	clear(pt)
	if err != nil || r.Version != 1 || r.Terms[r.Active] == nil {
		return fmt.Errorf("loading keyring: malformed keyring record")
	}
	s := &state{raw: raw, ring: r, terms: map[uint32]cipher.AEAD{}, backupKeys: map[uint32]cipher.AEAD{}}
	for t, key := range r.Terms {
		if s.terms[t], err = newAEAD(key); err != nil {
			return err
		}
	}
	for t, key := range r.BackupKeys {
		if s.backupKeys[t], err = newAEAD(key); err != nil {
			return err
		}
	}
	k.mu.Lock()
	k.cur = s
	k.mu.Unlock()
	return nil
}

func (k *Keyring) state() *state {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur
}

// write seals r and stores it, guarded by the record it replaces (nil: must not exist).
func (k *Keyring) write(ctx context.Context, old []byte, r ring, extra ...store.Op) error {
	pt, err := json.Marshal(r)
	if err != nil {
		return err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(pt)+tagSize)
	out[0] = rootFormatV1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return err
	}
	out = k.rootAEAD().Seal(out, out[1:1+nonceSize], pt, []byte("strongroom/keyring/v1"))
	clear(pt)
	guard := store.RequireAbsent(RingKey)
	if old != nil {
		guard = store.RequireEqual(RingKey, old)
	}
	return k.st.Apply(ctx, append([]store.Op{guard, store.Put(RingKey, out)}, extra...))
}

// change applies fn to a copy of the ring and stores it.
func (k *Keyring) change(ctx context.Context, fn func(r *ring) error) error {
	s := k.state()
	r := s.ring
	r.Terms, r.BackupKeys = copyMap(s.ring.Terms), copyMap(s.ring.BackupKeys)
	if err := fn(&r); err != nil {
		return err
	}
	r.Gen++
	if err := k.write(ctx, s.raw, r); err != nil {
		return fmt.Errorf("storing keyring: %w", err)
	}
	return k.Reload(ctx)
}

// Rekey re-seals the keyring under newRoot (atomically with extra ops, e.g. the seal's new
// configuration) and forgets the old root key. Copies of the keyring record sealed under the old
// root stay readable only to holders of the old root key.
func (k *Keyring) Rekey(ctx context.Context, newRoot []byte, extra ...store.Op) error {
	root, err := newAEAD(newRoot)
	if err != nil {
		return fmt.Errorf("rekeying: %w", err)
	}
	k.mu.Lock()
	s := k.cur
	old := k.root
	k.root = root
	k.mu.Unlock()
	if err := k.write(ctx, s.raw, s.ring, extra...); err != nil {
		k.mu.Lock()
		k.root = old
		k.mu.Unlock()
		return fmt.Errorf("rekeying: storing keyring: %w", err)
	}
	return k.Reload(ctx)
}

func (k *Keyring) rootAEAD() cipher.AEAD {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.root
}

// Rotate adds a new term and makes it active for all new writes. Old terms stay readable.
func (k *Keyring) Rotate(ctx context.Context) (uint32, error) {
	var term uint32
	err := k.change(ctx, func(r *ring) error {
		for t := range r.Terms {
			term = max(term, t)
		}
		term++
		r.Terms[term] = randKey()
		r.Active = term
		return nil
	})
	return term, err
}

// Status describes the keyring.
type Status struct {
	ActiveTerm   uint32   `json:"activeTerm"`
	Terms        []uint32 `json:"terms"`
	BackupKey    uint32   `json:"activeBackupKey"`
	BackupKeyIDs []uint32 `json:"backupKeys"`
}

// Status returns the active term and every readable term.
func (k *Keyring) Status() Status {
	s := k.state()
	st := Status{ActiveTerm: s.ring.Active, BackupKey: s.ring.BackupNext}
	for t := range s.ring.Terms {
		st.Terms = append(st.Terms, t)
	}
	for t := range s.ring.BackupKeys {
		st.BackupKeyIDs = append(st.BackupKeyIDs, t)
	}
	sort.Slice(st.Terms, func(i, j int) bool { return st.Terms[i] < st.Terms[j] })
	sort.Slice(st.BackupKeyIDs, func(i, j int) bool { return st.BackupKeyIDs[i] < st.BackupKeyIDs[j] })
	return st
}

// RetireTerms destroys every term older than the active one. Call it only after a completed
// rewrap: records still under a retired term become unreadable.
func (k *Keyring) RetireTerms(ctx context.Context) ([]uint32, error) {
	var gone []uint32
	err := k.change(ctx, func(r *ring) error {
		for t := range r.Terms {
			if t != r.Active {
				clear(r.Terms[t])
				delete(r.Terms, t)
				gone = append(gone, t)
			}
		}
		return nil
	})
	return gone, err
}

func randKey() []byte {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the kernel RNG does not fail on Linux
	}
	return b
}

func copyMap(m map[uint32][]byte) map[uint32][]byte {
	out := make(map[uint32][]byte, len(m))
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

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
