package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttler keeps one token bucket per vault: perTen requests per 10 seconds, with a burst of
// the same size, as Key Vault's per-vault limit is stated.
type throttler struct {
	perTen int
	mu     sync.Mutex
	byName map[string]*rate.Limiter
}

func newThrottler(perTen int) *throttler {
	return &throttler{perTen: perTen, byName: map[string]*rate.Limiter{}}
}

// allow reports whether vault may make a request now, and if not, how long to wait. Rejected
// requests do not consume budget.
func (t *throttler) allow(vault string) (bool, time.Duration) {
	if t.perTen <= 0 {
		return true, 0
	}
	t.mu.Lock()
	l := t.byName[vault]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(float64(t.perTen)/10), t.perTen)
		t.byName[vault] = l
	}
	t.mu.Unlock()
	now := time.Now()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func retryAfterSeconds(d time.Duration) int {
	return int(math.Max(1, math.Ceil(d.Seconds())))
}
