package identity

import (
	"context"
	"time"
)

// FastKDF returns o with a cheap argon2id cost, for tests that hash many secrets. Production
// code cannot reach it: Options.kdf is unexported.
func FastKDF(o Options) Options {
	o.kdf = kdfParams{Alg: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32}
	return o
}

// SigningKeyD returns the active signing key's private exponent, to prove it never reaches disk.
func (s *Service) SigningKeyD() []byte { return s.keys.Load().active.priv.D.Bytes() }

// SignRaw signs arbitrary claims with the active key, to build tokens Verify must reject.
func (s *Service) SignRaw(claims map[string]any) (string, error) { return s.sign(claims) }

// CacheLen reports how many verifications are cached.
func (s *Service) CacheLen() int { return s.cache.len() }

// SetCacheMax replaces the verification cache with an empty one holding at most n entries.
func (s *Service) SetCacheMax(n int) { s.cache = newVerifyCache(n) }

// KDFOf reports the KDF parameters stored with a principal's first secret.
func KDFOf(s *Service, appID string) (alg string, t, mKiB uint32, p uint8) {
	rec, err := s.loadByAppID(context.Background(), appID)
	if err != nil || len(rec.Secrets) == 0 {
		return "", 0, 0, 0
	}
	k := rec.Secrets[0].KDF
	return k.Alg, k.Time, k.MemoryKiB, k.Threads
}

// HashQueue returns o with at most waiting requests queued for a hash slot, each for at most wait.
func HashQueue(o Options, waiting int, wait time.Duration) Options {
	o.hashQueue, o.hashWait = waiting, wait
	return o
}

// Hashes is HashCount.
func (s *Service) Hashes() uint64 { return s.HashCount() }

// HoldHashSlots takes every hash slot, as long-running hashes would, until release is called.
func (s *Service) HoldHashSlots() (release func()) {
	n := cap(s.hashSlots)
	for range n {
		s.hashSlots <- struct{}{}
	}
	return func() {
		for range n {
			<-s.hashSlots
		}
	}
}

// HashWaiting reports how many requests wait for a hash slot.
func (s *Service) HashWaiting() int64 { return s.hashWaiting.Load() }

// FailureEntries reports the sizes of the per-client and per-source failure tables.
func (s *Service) FailureEntries() (clients, sources int) {
	return s.clientFails.len(), s.sourceFails.len()
}

// Limits, for tests.
const (
	MaxFailureEntries = maxFailureEntries
	MaxSecrets        = maxSecrets
)

// SourceKey exposes sourceKey.
func SourceKey(ip string) string { return sourceKey(ip) }

// NewFailureLimiterForTest exposes the limiter with small numbers.
func NewFailureLimiterForTest(limit int, window time.Duration, max int) (fail func(string, time.Time), lockedFor func(string, time.Time) time.Duration, size func() int) {
	l := newFailureLimiter(limit, window, window, max)
	return l.fail, l.lockedFor, l.len
}

// InvalidateGroups drops the cached transitive memberships, as a membership change does.
func InvalidateGroups(s *Service) {
	s.dir.mu.Lock()
	s.dir.invalidate()
	s.dir.mu.Unlock()
}
