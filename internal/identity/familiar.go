package identity

import (
	"sync"
	"time"
)

// Familiar sources, after Entra's smart lockout: a (client id, source) pair that signed in
// successfully recently is familiar. Its failures count against that pair alone, and neither
// the client id's lockout nor the source's lockout refuses it, so a guesser elsewhere cannot
// lock a principal out from where it normally signs in (the bootstrap admin included), and a
// noisy neighbour behind the same address cannot lock out everyone there. A guesser who shares
// both the client id and the address is still limited, by the pair's own lockout.
const (
	familiarFor        = 30 * 24 * time.Hour
	maxFamiliarEntries = 16384
)

// familiarPairs remembers recent successful sign-ins per pair. Only a successful sign-in (which
// needs the secret) adds an entry, so the table cannot be filled by a stranger; when full it
// forgets the oldest entries. It is safe for concurrent use.
type familiarPairs struct {
	mu sync.Mutex
	m  map[string]time.Time // pair key -> last success
}

func newFamiliarPairs() *familiarPairs { return &familiarPairs{m: make(map[string]time.Time)} }

func pairKey(client, source string) string { return client + "|" + source }

func (f *familiarPairs) known(key string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.m[key]
	if ok && now.Sub(at) > familiarFor {
		delete(f.m, key)
		return false
	}
	return ok
}

func (f *familiarPairs) succeeded(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[key]; !ok && len(f.m) >= maxFamiliarEntries {
		f.evictOldest(now)
	}
	f.m[key] = now
}

// evictOldest frees a sixteenth of the table, oldest entries first; it runs with mu held.
func (f *familiarPairs) evictOldest(now time.Time) {
	for k, at := range f.m {
		if now.Sub(at) > familiarFor {
			delete(f.m, k)
		}
	}
	for cutoff := familiarFor / 2; len(f.m) > maxFamiliarEntries-maxFamiliarEntries/16 && cutoff > time.Minute; cutoff /= 2 {
		for k, at := range f.m {
			if now.Sub(at) > cutoff {
				delete(f.m, k)
			}
		}
	}
	for k := range f.m {
		if len(f.m) <= maxFamiliarEntries-maxFamiliarEntries/16 {
			return
		}
		delete(f.m, k)
	}
}
