package config

import (
	"fmt"
	"time"
)

// PortalConfig configures the web portal served under /portal/ on the main listener
// (docs/portal.md).
type PortalConfig struct {
	// Disabled turns the portal off: /portal/ is then not served at all. Default false.
	Disabled bool `yaml:"disabled"`
	// IdleTimeout ends a portal session after this long without a request. Default 15m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a portal session this long after sign-in, however active. Default 8h.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	// RevealFor is how long "Show secret value" shows a value before hiding it again (the
	// page offers "keep visible"). Default 30s.
	RevealFor time.Duration `yaml:"reveal_for"`
	// RecentSignIn is how recent a sign-in must be for destructive actions (purge, delete
	// vault, switch permission model); older sessions are asked to sign in again. Default 5m.
	RecentSignIn time.Duration `yaml:"recent_sign_in"`
}

// validate checks the section and fills in its defaults.
func (c *PortalConfig) validate() error {
	if c.IdleTimeout < 0 || c.AbsoluteTimeout < 0 || c.RevealFor < 0 || c.RecentSignIn < 0 {
		return fmt.Errorf("portal: durations must not be negative")
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 8 * time.Hour
	}
	if c.RevealFor == 0 {
		c.RevealFor = 30 * time.Second
	}
	if c.RecentSignIn == 0 {
		c.RecentSignIn = 5 * time.Minute
	}
	switch {
	case c.IdleTimeout > c.AbsoluteTimeout:
		return fmt.Errorf("portal.idle_timeout: %s is longer than absolute_timeout %s", c.IdleTimeout, c.AbsoluteTimeout)
	case c.AbsoluteTimeout > 7*24*time.Hour:
		return fmt.Errorf("portal.absolute_timeout: %s is longer than 168h", c.AbsoluteTimeout)
	case c.RevealFor > 10*time.Minute:
		return fmt.Errorf("portal.reveal_for: %s is longer than 10m", c.RevealFor)
	}
	return nil
}
