package app

import (
	"time"

	"github.com/strongroom/strongroom/internal/rotation"
)

// rotators are the secret rotators beyond the built-in generate one, by kind.
func (s *server) rotators() map[string]rotation.Rotator {
	return map[string]rotation.Rotator{}
}

// rotationLimits are the policy floors: Key Vault's, or the dev profile's rotation.min_period
// (which config admits only with STRONGROOM_DEV=1).
func (s *server) rotationLimits() *rotation.Limits {
	if p := s.cfg.Rotation.MinPeriod; p > 0 {
		return &rotation.Limits{MinRotate: p, MinExpiry: p}
	}
	return nil
}

// eventClock is the clock the background workers decide what is due by: the events test
// clock when configured (tests only), else nil (the service's clock).
func (s *server) eventClock() func() time.Time {
	if f := s.cfg.Events.TestClockFile; f != "" {
		return testClock(f)
	}
	return nil
}
