package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
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

// dummySalt is hashed against for unknown clients, so they cost the same as a wrong secret.
var dummySalt = []byte("strongroom/unknown-client/v1")

// secretRecord is one client secret, hashed.
type secretRecord struct {
	ID        string    `json:"id"`   // credential (key) id, a GUID
	Salt      []byte    `json:"salt"` // random, saltLen bytes
	Hash      []byte    `json:"hash"` // argon2id(secret, salt, KDF)
	KDF       kdfParams `json:"kdf"`
	CreatedAt time.Time `json:"createdAt"`
}

// hashConcurrency bounds simultaneous argon2 runs: each holds MemoryKiB of RAM, so a flood of
// token requests queues instead of exhausting memory.
func hashConcurrency() int {
	return min(max(runtime.GOMAXPROCS(0), 2), 8)
}

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

// checkSecret reports whether secret matches one of creds. With no creds (unknown client) it
// still does one hash with the current parameters and reports false.
func (s *Service) checkSecret(ctx context.Context, secret string, creds []secretRecord) (bool, error) {
	tooLong := len(secret) > maxSecretLen
	if tooLong {
		secret = secret[:maxSecretLen] // same work as any other wrong secret
	}
	if len(creds) == 0 {
		_, err := s.argon(ctx, secret, dummySalt, s.kdf)
		return false, err
	}
	ok := 0
	for _, c := range creds {
		sum, err := s.argon(ctx, secret, c.Salt, c.KDF)
		if err != nil {
			return false, err
		}
		ok |= subtle.ConstantTimeCompare(sum, c.Hash)
	}
	return ok == 1 && !tooLong, nil
}

// argon runs argon2id inside a hash slot. Parameters come from sealed records, but are still
// checked so a corrupt record cannot demand absurd memory.
func (s *Service) argon(ctx context.Context, secret string, salt []byte, p kdfParams) ([]byte, error) {
	if p.Alg != "argon2id" || p.Time == 0 || p.Time > 16 || p.MemoryKiB == 0 || p.MemoryKiB > 1<<20 ||
		p.Threads == 0 || p.KeyLen < 16 || p.KeyLen > 64 {
		return nil, fmt.Errorf("hashing secret: unsupported kdf parameters %+v", p)
	}
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("hashing secret: %w", ctx.Err())
	}
	defer func() { <-s.hashSlots }()
	pw := []byte(secret)
	sum := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	clear(pw)
	return sum, nil
}
