package identity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

func issue(s *identity.Service, clientID, secret, ip string) error {
	_, err := s.IssueToken(context.Background(), identity.TokenRequest{ClientID: clientID, ClientSecret: secret, Scope: vaultScope, RemoteIP: ip})
	return err
}

// After ClientFailureLimit wrong secrets for one client id, every request for it is refused
// without hashing (the right secret too, from any address) until the lockout ends.
func TestService_IssueToken_ClientLockoutBeforeHashing(t *testing.T) {
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "guessed")
	for i := range identity.ClientFailureLimit {
		if err := issue(s, p.AppID, lastCharChanged(secret), fmt.Sprintf("192.0.2.%d", i)); !errors.Is(err, identity.ErrInvalidClient) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	hashes := s.Hashes()
	for _, c := range []struct{ name, secret, ip string }{
		{"wrong secret", lastCharChanged(secret), "192.0.2.99"},
		{"right secret", secret, "198.51.100.1"},
	} {
		err := issue(s, p.AppID, c.secret, c.ip)
		var le *identity.LockoutError
		if !errors.As(err, &le) || le.BySource || le.RetryAfter <= 0 || le.RetryAfter > identity.LockoutDuration {
			t.Fatalf("%s during lockout: err = %v, want a client LockoutError", c.name, err)
		}
	}
	if got := s.Hashes(); got != hashes {
		t.Fatalf("%d hashes ran during the lockout, want 0", got-hashes)
	}
	clk.Advance(identity.LockoutDuration)
	if err := issue(s, p.AppID, secret, "198.51.100.1"); err != nil {
		t.Fatalf("right secret after the lockout: %v", err)
	}
}

// One source address failing IPFailureLimit times (spread over client ids, so no client id is
// locked) is refused before hashing; another address is not. Unknown client ids count too, but
// cost no hash.
func TestService_IssueToken_SourceLockoutBeforeHashing(t *testing.T) {
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "sprayed")
	var targets []identity.Principal
	for i := 0; i*(identity.ClientFailureLimit-1) < identity.IPFailureLimit; i++ {
		q, _ := mustCreateSP(t, s, fmt.Sprintf("target %d", i))
		targets = append(targets, q)
	}
	for i := range identity.IPFailureLimit {
		q := targets[i/(identity.ClientFailureLimit-1)]
		if err := issue(s, q.AppID, "wrong", "2001:db8::1"); !errors.Is(err, identity.ErrInvalidClient) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	hashes := s.Hashes()
	// Same /64, another host: the same source.
	err := issue(s, p.AppID, secret, "2001:db8::2")
	var le *identity.LockoutError
	if !errors.As(err, &le) || !le.BySource {
		t.Fatalf("locked-out source: err = %v, want a source LockoutError", err)
	}
	if s.Hashes() != hashes {
		t.Fatal("a locked-out source's request was hashed")
	}
	if err := issue(s, p.AppID, secret, "2001:db8:1::1"); err != nil {
		t.Fatalf("another network: %v", err)
	}
	clk.Advance(identity.LockoutDuration)
	if err := issue(s, p.AppID, secret, "2001:db8::2"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

// Failures age out: fewer than the limit per window never lock.
func TestService_IssueToken_FailuresAgeOut(t *testing.T) {
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "clumsy")
	for range 3 {
		for range identity.ClientFailureLimit - 1 {
			if err := issue(s, p.AppID, "wrong", "192.0.2.1"); !errors.Is(err, identity.ErrInvalidClient) {
				t.Fatal(err)
			}
		}
		clk.Advance(identity.FailureWindow)
	}
	if err := issue(s, p.AppID, secret, "192.0.2.1"); err != nil {
		t.Fatalf("after failures spread over windows: %v", err)
	}
}

func TestFailureLimiter_Bounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const limit, max = 5, 64
	fail, lockedFor, size := identity.NewFailureLimiterForTest(limit, time.Minute, max)
	for range limit {
		fail("locked", now)
	}
	for range limit - 1 {
		fail("almost", now)
	}
	for i := range 50 * max { // a sprayer's one-off keys
		fail(fmt.Sprintf("spray-%d", i), now)
		if n := size(); n > max {
			t.Fatalf("table grew to %d entries, max %d", n, max)
		}
	}
	if lockedFor("locked", now) <= 0 {
		t.Fatal("spraying unlocked a locked-out key")
	}
	fail("almost", now)
	if lockedFor("almost", now) <= 0 {
		t.Fatal("spraying reset a key one failure short of the limit")
	}
	if d := lockedFor("locked", now.Add(time.Minute)); d != 0 {
		t.Fatalf("lockout did not end after its duration: %v left", d)
	}
}

func TestSourceKey(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"", ""},
		{"not an ip", ""},
	}
	for _, c := range cases {
		if got := identity.SourceKey(c.ip); got != c.want {
			t.Errorf("SourceKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// With every hash slot busy, requests queue up to the bound; the next one is refused at once
// with ErrBusy, and a queued one whose wait passes its deadline too. Nothing is lost: once the
// slots free, the queued requests complete.
func TestService_HashQueue_BoundedWithDeadline(t *testing.T) {
	s := newEnv(t).service(t, identity.HashQueue(identity.Options{}, 2, time.Hour), false)
	p, secret := mustCreateSP(t, s, "queued")
	release := s.HoldHashSlots()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = issue(s, p.AppID, secret, "") }()
	}
	for s.HashWaiting() < 2 {
		time.Sleep(time.Millisecond) // until both wait (synchronization, not an assertion)
	}
	if err := issue(s, p.AppID, secret, ""); !errors.Is(err, identity.ErrBusy) {
		t.Fatalf("request beyond the queue: err = %v, want ErrBusy", err)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("queued request %d: %v", i, err)
		}
	}

	short := newEnv(t).service(t, identity.HashQueue(identity.Options{}, 4, time.Millisecond), false)
	q, qSecret := mustCreateSP(t, short, "deadline")
	release = short.HoldHashSlots()
	defer release()
	if err := issue(short, q.AppID, qSecret, ""); !errors.Is(err, identity.ErrBusy) {
		t.Fatalf("request whose wait passed the deadline: err = %v, want ErrBusy", err)
	}
	if err := issue(short, q.AppID, "wrong", "192.0.2.1"); !errors.Is(err, identity.ErrBusy) {
		t.Fatal(err)
	}
	if c, src := short.FailureEntries(); c != 0 || src != 0 {
		t.Fatalf("a request refused as busy counted as a failure (%d, %d entries)", c, src)
	}
}

// Failed sign-ins with unknown client ids cost no hash and count against nothing: a stranger
// spraying made-up ids from a shared address (a load balancer, NAT) locks nobody out there.
func TestService_IssueToken_UnknownClientIDsLockNothing(t *testing.T) {
	clk := newFakeClock()
	s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
	p, secret := mustCreateSP(t, s, "behind the nat")
	for i := range 4 * identity.IPFailureLimit {
		if err := issue(s, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "x", "192.0.2.7"); !errors.Is(err, identity.ErrUnknownClient) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := issue(s, p.AppID, secret, "192.0.2.7"); err != nil {
		t.Fatalf("a valid sign-in from the sprayed address: %v", err)
	}
	if c, src := s.FailureEntries(); c != 0 || src != 0 {
		t.Fatalf("failure tables hold %d client ids and %d sources after unknown ids only", c, src)
	}
}

// A pair of client id and source that signed in before is familiar: a guesser elsewhere locks
// the client id out everywhere but there, a locked-out source does not refuse it, and failures
// from the familiar place itself still lock that pair.
func TestService_IssueToken_FamiliarSources(t *testing.T) {
	tests := []struct {
		name    string
		attack  func(t *testing.T, s *identity.Service, target identity.Principal)
		from    string // the familiar place, signing in again with the right secret
		refused bool
		// refusedFrom is an unfamiliar place the attack must have locked out ("": none).
		refusedFrom string
	}{
		{"client id guessed from elsewhere", func(t *testing.T, s *identity.Service, p identity.Principal) {
			for range identity.ClientFailureLimit {
				_ = issue(s, p.AppID, "wrong", "198.51.100.66")
			}
		}, "192.0.2.10", false, "203.0.113.5"},
		{"source locked out by guesses at other principals", func(t *testing.T, s *identity.Service, _ identity.Principal) {
			for i := range identity.IPFailureLimit {
				q, _ := mustCreateSP(t, s, fmt.Sprintf("other %d", i))
				_ = issue(s, q.AppID, "wrong", "192.0.2.10")
			}
		}, "192.0.2.10", false, ""},
		{"client id guessed from the familiar place", func(t *testing.T, s *identity.Service, p identity.Principal) {
			for range identity.ClientFailureLimit {
				_ = issue(s, p.AppID, "wrong", "192.0.2.10")
			}
		}, "192.0.2.10", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			s := newEnv(t).service(t, identity.Options{Now: clk.Now}, false)
			p, secret := mustCreateSP(t, s, "admin-like")
			if err := issue(s, p.AppID, secret, "192.0.2.10"); err != nil {
				t.Fatal(err)
			}
			tc.attack(t, s, p)
			err := issue(s, p.AppID, secret, tc.from)
			var le *identity.LockoutError
			if got := errors.As(err, &le); got != tc.refused {
				t.Fatalf("right secret from the familiar place: err = %v, want refused %v", err, tc.refused)
			}
			if tc.refusedFrom != "" {
				if err := issue(s, p.AppID, secret, tc.refusedFrom); !errors.As(err, &le) {
					t.Fatalf("right secret from an unfamiliar place during the lockout: %v, want refused", err)
				}
			}
		})
	}
}
