package app

import (
	"os"
	"syscall"
	"time"

	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/rotators"
)

// rotators are the secret rotators beyond the built-in generate one, by kind. Database hosts
// and hook URLs are principal-chosen destinations, so they go through the event webhooks'
// outbound rules (events.allowed_destinations admits private and loopback ones).
func (s *server) rotators() map[string]rotation.Rotator {
	c := s.cfg.Events
	out := outbound.New(outbound.Options{Allowed: c.Allowed(), AllowHTTP: c.AllowHTTP, Timeout: c.Timeout, MaxResponseBytes: c.MaxResponseBytes})
	return map[string]rotation.Rotator{
		rotation.KindPostgres: &rotators.Postgres{Dial: out.Dial},
		rotation.KindWebhook:  &rotators.Webhook{Client: out},
	}
}

// rotationLimits are the policy floors: Key Vault's, or the dev profile's rotation.min_period
// (which config admits only with STRONGROOM_DEV=1).
func (s *server) rotationLimits() *rotation.Limits {
	if p := s.cfg.Rotation.MinPeriod; p > 0 {
		return &rotation.Limits{MinRotate: p, MinExpiry: p}
	}
	return nil
}

// rotationCrashHook is the crash tests' hook (rotation.test_crash_after, which config admits
// only with STRONGROOM_DEV=1): the process kills itself once that step is recorded.
func (s *server) rotationCrashHook() func(step string) {
	at := s.cfg.Rotation.TestCrashAfter
	if at == "" {
		return nil
	}
	s.log.Warn("rotation: the server kills itself after a rotation records this step (a test setting)", "step", at)
	return func(step string) {
		if step == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

// eventClock is the clock the background workers decide what is due by: the events test
// clock when configured (tests only), else nil (the service's clock).
func (s *server) eventClock() func() time.Time {
	if f := s.cfg.Events.TestClockFile; f != "" {
		return testClock(f)
	}
	return nil
}
