package config

import (
	"fmt"
	"net/netip"
	"os"
	"time"
)

// EventsConfig configures event delivery to webhook subscribers (Event Grid-style).
//
// Webhook destinations are chosen by whoever may create a subscription, who may not be able to
// reach the server's own network: destinations resolving to loopback, private, link-local and
// other special-purpose addresses, or to the server's own, are refused unless listed here.
type EventsConfig struct {
	// AllowedDestinations are CIDR ranges (a bare address means only that address) webhooks may
	// reach although they are refused by default, e.g. an internal network the receivers live in.
	AllowedDestinations []string `yaml:"allowed_destinations"`
	// AllowHTTP admits plain http:// endpoints inside AllowedDestinations (never outside them).
	// Default false: https only.
	AllowHTTP bool `yaml:"allow_http"`
	// Timeout bounds one delivery or handshake, connection to last byte. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes bounds how much of a receiver's answer is read. Default 64 KiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// Interval is how often the delivery worker passes over the queue. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// RetryBase and RetryMax shape the retry backoff: RetryBase doubled after each failed
	// attempt, at most RetryMax. Defaults 10s and 1h.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// TestClockFile is for tests only and refused unless STRONGROOM_DEV=1 is set: a file
	// holding a duration (e.g. "720h") that the event worker adds to the clock when it decides
	// what is due, so tests reach near-expiry and expiry dates. Read on every pass.
	TestClockFile string `yaml:"test_clock_file"`

	allowed []netip.Prefix
}

// Allowed is AllowedDestinations parsed (after validate).
func (c *EventsConfig) Allowed() []netip.Prefix { return c.allowed }

// validate checks the section and fills in its defaults.
func (c *EventsConfig) validate() error {
	c.allowed = nil
	for _, s := range c.AllowedDestinations {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("events.allowed_destinations: %q is not a CIDR range or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.allowed = append(c.allowed, p.Masked())
	}
	switch {
	case c.Timeout < 0 || c.Interval < 0 || c.RetryBase < 0 || c.RetryMax < 0 || c.MaxResponseBytes < 0:
		return fmt.Errorf("events: durations and sizes must not be negative")
	case c.Timeout > 5*time.Minute:
		return fmt.Errorf("events.timeout: at most 5m")
	case c.TestClockFile != "" && os.Getenv("STRONGROOM_DEV") != "1":
		return fmt.Errorf("events.test_clock_file: for tests only; refused unless STRONGROOM_DEV=1 is set")
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 64 << 10
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.RetryBase == 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Hour
	}
	if c.RetryMax < c.RetryBase {
		return fmt.Errorf("events.retry_max: must not be below events.retry_base")
	}
	return nil
}
