package identity

import (
	"net/netip"
	"sync"
	"time"
)

// Sign-in failure limits, checked before any secret is hashed (see ClientCredentials). A key
// (a client id, or a source network) that fails limit times within window is locked out for
// lockout from the failure that reached the limit; while it is locked out every request for it
// is refused without hashing, the right secret included, and further failures do not extend it.
// The numbers follow Entra's smart lockout (10 failures, then a lockout of a minute or more):
// a client that guesses 10 secrets per 5 minutes needs ~10^66 years for a 222-bit secret.
const (
	ClientFailureLimit = 10
	IPFailureLimit     = 50 // a source network may serve many clients (NAT)
	FailureWindow      = 5 * time.Minute
	LockoutDuration    = 5 * time.Minute
	// maxFailureEntries bounds each table (~100 bytes an entry). Entries are made only by
	// wrong secrets of known client ids, each of which was hashed, so filling a table takes at
	// least that many hashes.
	maxFailureEntries = 16384
)

// failureLimiter counts failures per key in fixed windows. Its memory is bounded: when full it
// forgets expired entries first, then the ones with the fewest failures (a sprayer's one-off
// keys), and locked-out keys last. It is safe for concurrent use.
type failureLimiter struct {
	limit  int
	window time.Duration
	lock   time.Duration
	max    int

	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	count       int
	start       time.Time // first failure of the window
	lockedUntil time.Time // zero while not locked out
}

func newFailureLimiter(limit int, window, lock time.Duration, max int) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, lock: lock, max: max, m: make(map[string]*failures)}
}

// expired reports whether e no longer counts at now.
func (l *failureLimiter) expired(e *failures, now time.Time) bool {
	if !e.lockedUntil.IsZero() {
		return !now.Before(e.lockedUntil)
	}
	return !now.Before(e.start.Add(l.window))
}

// lockedFor returns how much longer key is locked out (0: it is not).
func (l *failureLimiter) lockedFor(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e == nil {
		return 0
	}
	if l.expired(e, now) {
		delete(l.m, key)
		return 0
	}
	if e.lockedUntil.IsZero() {
		return 0
	}
	return e.lockedUntil.Sub(now)
}

// fail records one failure for key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e != nil && l.expired(e, now) {
		delete(l.m, key)
		e = nil
	}
	if e == nil {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		e = &failures{start: now}
		l.m[key] = e
	}
	if !e.lockedUntil.IsZero() {
		return // a failure that raced the lockout: it does not extend it
	}
	e.count++
	if e.count >= l.limit {
		e.lockedUntil = now.Add(l.lock)
	}
}

// evict frees at least a sixteenth of the table; it runs with mu held. Each pass is O(entries)
// and at most limit+1 passes run per max/16 inserts, so inserts stay amortized O(limit).
func (l *failureLimiter) evict(now time.Time) {
	target := l.max - max(l.max/16, 1)
	for k, e := range l.m {
		if l.expired(e, now) {
			delete(l.m, k)
		}
	}
	for c := 1; c < l.limit && len(l.m) > target; c++ {
		for k, e := range l.m {
			if len(l.m) <= target {
				return
			}
			if e.lockedUntil.IsZero() && e.count <= c {
				delete(l.m, k)
			}
		}
	}
	for k := range l.m { // all locked out: forget the arbitrary rest rather than grow
		if len(l.m) <= target {
			return
		}
		delete(l.m, k)
	}
}

func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// sourceKey is the limiter key of a caller's address: the address itself for IPv4, its /64 for
// IPv6 (one host usually owns a whole /64). "" when ip does not parse (no per-source limit).
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
