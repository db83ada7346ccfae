package identity

import "context"

// FastKDF returns o with a cheap argon2id cost, for tests that hash many secrets. Production
// code cannot reach it: Options.kdf is unexported.
func FastKDF(o Options) Options {
	o.kdf = kdfParams{Alg: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32}
	return o
}

// SigningKeyD returns the active signing key's private exponent, to prove it never reaches disk.
func (s *Service) SigningKeyD() []byte { return s.active.priv.D.Bytes() }

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
