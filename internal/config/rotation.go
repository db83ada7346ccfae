package config

import (
	"fmt"
	"os"
	"time"
)

// RotationConfig configures secret rotation (docs/rotation.md).
type RotationConfig struct {
	// Interval is how often the leader's rotation worker reads the due index. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// RetryBase is the wait after a rotation step's first failure, tripled per further
	// failure up to an hour. Default 10s.
	RetryBase time.Duration `yaml:"retry_base"`
	// MinPeriod lowers Key Vault's floors on policies (rotation at least 7 days after creation
	// or before expiry, versions living at least 28 days) to this, so tests can rotate within
	// minutes. For tests only: refused unless STRONGROOM_DEV=1 is set.
	MinPeriod time.Duration `yaml:"min_period"`
	// TestCrashAfter makes the server kill itself (SIGKILL) right after a rotation records
	// this step (pending, applied, tested or committed), for the crash tests. For tests only:
	// refused unless STRONGROOM_DEV=1 is set.
	TestCrashAfter string `yaml:"test_crash_after"`
}

// validate checks the section and fills in its defaults.
func (c *RotationConfig) validate() error {
	switch {
	case c.Interval < 0 || c.RetryBase < 0 || c.MinPeriod < 0:
		return fmt.Errorf("rotation: durations must not be negative")
	case c.MinPeriod != 0 && os.Getenv("STRONGROOM_DEV") != "1":
		return fmt.Errorf("rotation.min_period: for tests only; refused unless STRONGROOM_DEV=1 is set")
	case c.TestCrashAfter != "" && os.Getenv("STRONGROOM_DEV") != "1":
		return fmt.Errorf("rotation.test_crash_after: for tests only; refused unless STRONGROOM_DEV=1 is set")
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.RetryBase == 0 {
		c.RetryBase = 10 * time.Second
	}
	return nil
}
