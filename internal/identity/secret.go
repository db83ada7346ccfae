package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// kdfParams records how a secret was hashed, so the cost can rise later without breaking
// existing credentials: a check always uses the parameters stored with the hash.
type kdfParams struct {
	Alg       string `json:"alg"` // "argon2id"
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
	KeyLen    uint32 `json:"len"`
}

// defaultKDF follows OWASP's argon2id minimum (m=19 MiB, t=2, p=1): about 20-40 ms per check on
// one core. Clients cache tokens for an hour, so logins are rare.
var defaultKDF = kdfParams{Alg: "argon2id", Time: 2, MemoryKiB: 19 * 1024, Threads: 1, KeyLen: 32}

const (
	saltLen = 16
	// secretLen is the length of generated client secrets (Entra's are 40 characters too).
	secretLen = 40
	// maxClientIDLen bounds client ids we look up; longer ones are unknown by construction.
	maxClientIDLen = 128
	// maxSecretLen bounds the secret input hashed, so a huge value costs no more than a normal one.
	maxSecretLen = 1024
)

// secretRecord is one client secret, hashed.
type secretRecord struct {
	ID        string    `json:"id"`   // credential (key) id, a GUID
	Salt      []byte    `json:"salt"` // random, saltLen bytes
	Hash      []byte    `json:"hash"` // argon2id(secret, salt, KDF)
	KDF       kdfParams `json:"kdf"`
	CreatedAt time.Time `json:"createdAt"`
	// Graph's passwordCredential facts, for application secrets: a zero EndsAt never expires
	// (secrets made before applications existed).
	DisplayName string    `json:"displayName,omitempty"`
	EndsAt      time.Time `json:"endsAt,omitempty"`
	Hint        string    `json:"hint,omitempty"` // the first three characters, as Graph shows
}

// usable reports whether the credential may sign in at now.
func (c *secretRecord) usable(now time.Time) bool { return c.EndsAt.IsZero() || now.Before(c.EndsAt) }

// hashConcurrency bounds simultaneous argon2 runs: each holds MemoryKiB of RAM, so a flood of
// token requests queues instead of exhausting memory.
func hashConcurrency() int {
	return min(max(runtime.GOMAXPROCS(0), 2), 8)
}

// The hash queue: at most hashQueuePerSlot requests per hash slot wait for one, each for at most
// hashWait; a request that finds the queue full, or waits longer, fails with ErrBusy (503 with
// Retry-After). With ~30 ms per hash, a queued request waits ~0.15 s at most when slots are not
// starved of CPU; the deadline is the backstop when they are.
const (
	hashQueuePerSlot = 4
	hashWait         = time.Second
	// BusyRetryAfter is what a caller refused with ErrBusy is told to wait.
	BusyRetryAfter = time.Second
)

// ErrBusy means every hash slot was taken and the queue for them was full (or the wait for one
// passed its deadline): the request was not checked and may be retried.
var ErrBusy = errors.New("too many concurrent sign-ins")

// newClientSecret returns a 40-character secret shaped like Entra's: three random characters,
// the marker "8Q~", then 34 more random characters (37 random base64url characters, 222 bits).
func newClientSecret() (string, error) {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating client secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(b) // 40 characters
	return s[:3] + "8Q~" + s[3:secretLen-3], nil
}

// hashSecret hashes secret under fresh salt with the service's current parameters.
func (s *Service) hashSecret(ctx context.Context, id, secret string) (secretRecord, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return secretRecord{}, fmt.Errorf("generating salt: %w", err)
	}
	sum, err := s.argon(ctx, secret, salt, s.kdf)
	if err != nil {
		return secretRecord{}, err
	}
	return secretRecord{ID: id, Salt: salt, Hash: sum, KDF: s.kdf, CreatedAt: s.now().UTC()}, nil
}

// checkSecret returns the id of the credential in creds that secret matches, or "" when none
// does. Every credential is hashed and compared, whichever matches. With no creds (an unknown
// client id, or a principal without secrets) nothing is hashed: the token endpoint's answer
// already tells an unknown client id apart (AADSTS700016, as Entra does), so equal work would
// hide nothing, while hashing for made-up ids would let anyone make the server hash at will,
// past every per-client limit.
func (s *Service) checkSecret(ctx context.Context, secret string, creds []secretRecord) (string, error) {
	tooLong := len(secret) > maxSecretLen
	if tooLong {
		secret = secret[:maxSecretLen] // same work as any other wrong secret
	}
	if len(creds) == 0 {
		return "", nil
	}
	match := -1
	for i, c := range creds {
		sum, err := s.argon(ctx, secret, c.Salt, c.KDF)
		if err != nil {
			return "", err
		}
		if subtle.ConstantTimeCompare(sum, c.Hash) == 1 {
			match = i
		}
	}
	if match < 0 || tooLong {
		return "", nil
	}
	return creds[match].ID, nil
}

// argon runs argon2id inside a hash slot. Parameters come from sealed records, but are still
// checked so a corrupt record cannot demand absurd memory.
func (s *Service) argon(ctx context.Context, secret string, salt []byte, p kdfParams) ([]byte, error) {
	if p.Alg != "argon2id" || p.Time == 0 || p.Time > 16 || p.MemoryKiB == 0 || p.MemoryKiB > 1<<20 ||
		p.Threads == 0 || p.KeyLen < 16 || p.KeyLen > 64 {
		return nil, fmt.Errorf("hashing secret: unsupported kdf parameters %+v", p)
	}
	if err := s.takeHashSlot(ctx); err != nil {
		return nil, fmt.Errorf("hashing secret: %w", err)
	}
	defer func() { <-s.hashSlots }()
	s.hashes.Add(1)
	pw := []byte(secret)
	sum := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	clear(pw)
	return sum, nil
}

// takeHashSlot waits for a hash slot in the bounded queue; see hashQueuePerSlot.
func (s *Service) takeHashSlot(ctx context.Context) error {
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	default:
	}
	if s.hashWaiting.Add(1) > int64(s.hashQueue) {
		s.hashWaiting.Add(-1)
		return ErrBusy
	}
	defer s.hashWaiting.Add(-1)
	t := time.NewTimer(s.hashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HashCount reports how many argon2id hashes the service has run (sign-ins and new secrets).
func (s *Service) HashCount() uint64 { return s.hashes.Load() }
