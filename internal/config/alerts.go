package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// AlertsConfig configures the built-in alert rules on unusual access (internal/alerts) and the
// webhooks alerts are posted to. A zero setting takes the rule's default; the rules can also be
// changed through the API (`strongroom monitor alert rule create`), which overrides these by
// name on every node. Webhooks are set here only, never through the API.
type AlertsConfig struct {
	// Disabled turns alerting off. Default false.
	Disabled bool `yaml:"disabled"`
	// QueueSize bounds the audit records waiting to be checked; a full queue drops records
	// (counted in strongroom_alerts_dropped_records_total) rather than delay a request. Default 4096.
	QueueSize int `yaml:"queue_size"`
	// History is how many fired alerts each node keeps for `monitor alert list`. Default 1000.
	History int `yaml:"history"`
	// Webhooks receive every alert as JSON, signed with HMAC-SHA256 (X-Strongroom-Signature).
	Webhooks []AlertWebhook `yaml:"webhooks"`
	// AllowedDestinations are CIDRs (or addresses) webhooks may reach although they are
	// loopback, private or link-local (refused by default); plain http:// is accepted only
	// inside them. Like events.allowed_destinations, for the alert webhooks.
	AllowedDestinations []string `yaml:"allowed_destinations"`
	// WebhookAttempts is how often one alert is tried per webhook (default 8); the wait
	// between tries starts at WebhookBackoff (default 1s) and doubles up to 5m. WebhookTimeout
	// bounds one try (default 10s).
	WebhookAttempts int           `yaml:"webhook_attempts"`
	WebhookBackoff  time.Duration `yaml:"webhook_backoff"`
	WebhookTimeout  time.Duration `yaml:"webhook_timeout"`

	// TestClockFile is for tests only and refused unless STRONGROOM_DEV=1 is set: a file
	// holding a duration (e.g. "2h") that the alert rules add to the clock, so tests pass
	// learning periods and windows without waiting. Read for every record.
	TestClockFile string `yaml:"test_clock_file"`

	// BruteForce: threshold failed authentications (401) or authorizations (403) from one
	// caller or one address within window. Defaults 10 in 5m.
	BruteForce AlertRuleConfig `yaml:"brute_force"`
	// NewPattern: a caller reads a secret it never read before from a /24 (IPv4) or /64 (IPv6)
	// network never seen for it, once learning_period has passed since it was first seen.
	// Default learning period 24h. What a rule learned is kept in memory on each node: a
	// restart (or an unseal) starts every caller's learning period again.
	NewPattern AlertRuleConfig `yaml:"new_pattern"`
	// RateSpike: a caller reads more than threshold distinct secrets of one vault within
	// window, or makes more than factor times its own average reads per window (and at least
	// min_reads). Defaults 50 secrets, 5m, factor 10, 100 reads.
	RateSpike AlertRuleConfig `yaml:"rate_spike"`
	// Honeytoken: every read of a honeytoken secret; window > 0 merges repeated reads by one
	// caller from one address. Default 0 (every read alerts).
	Honeytoken AlertRuleConfig `yaml:"honeytoken"`
	// AuditSink: the audit log stopped writing (or reports trouble); window is how often it
	// is checked. Default 10s.
	AuditSink AlertRuleConfig `yaml:"audit_sink"`
	// RotationFailure: a secret rotation's step failed (one alert per rotation).
	RotationFailure AlertRuleConfig `yaml:"rotation_failure"`
}

// AlertWebhook is one alert destination.
type AlertWebhook struct {
	// URL is where alerts are posted: https, or http inside allowed_destinations.
	URL string `yaml:"url"`
	// SecretFile holds the HMAC key the bodies are signed with (its bytes, trailing
	// whitespace removed). Required.
	SecretFile string `yaml:"secret_file"`
}

// AlertRuleConfig is one built-in rule's settings; zero values take the rule's defaults.
type AlertRuleConfig struct {
	// Enabled: default true.
	Enabled        *bool         `yaml:"enabled"`
	Threshold      int           `yaml:"threshold"`
	Window         time.Duration `yaml:"window"`
	LearningPeriod time.Duration `yaml:"learning_period"`
	Factor         float64       `yaml:"factor"`
	MinReads       int           `yaml:"min_reads"`
	// MaxSubjects bounds the callers and addresses the rule remembers. Default 10000.
	MaxSubjects int `yaml:"max_subjects"`
}

// AllowedPrefixes parses AllowedDestinations (validate has checked them).
func (c *AlertsConfig) AllowedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.AllowedDestinations {
		if p, ok := parsePrefixOrAddr(s); ok {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefixOrAddr(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// validate checks the section; the rules' defaults are filled in by the alert engine.
func (c *AlertsConfig) validate() error {
	switch {
	case c.QueueSize < 0:
		return fmt.Errorf("alerts.queue_size: must not be negative (0 = default 4096)")
	case c.History < 0:
		return fmt.Errorf("alerts.history: must not be negative (0 = default 1000)")
	case c.WebhookAttempts < 0 || c.WebhookAttempts > 100:
		return fmt.Errorf("alerts.webhook_attempts: must be 0 (default 8) to 100")
	case c.WebhookBackoff < 0:
		return fmt.Errorf("alerts.webhook_backoff: must not be negative (0 = default 1s)")
	case c.WebhookTimeout < 0:
		return fmt.Errorf("alerts.webhook_timeout: must not be negative (0 = default 10s)")
	}
	if c.TestClockFile != "" && os.Getenv("STRONGROOM_DEV") != "1" {
		return fmt.Errorf("alerts.test_clock_file: for tests only; refused unless STRONGROOM_DEV=1 is set")
	}
	for i, s := range c.AllowedDestinations {
		if _, ok := parsePrefixOrAddr(s); !ok {
			return fmt.Errorf("alerts.allowed_destinations[%d]: %q is not a CIDR such as 127.0.0.0/8 or an address", i, s)
		}
	}
	for i, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("alerts.webhooks[%d].url: must be an https (or, inside allowed_destinations, http) URL", i)
		}
		if w.SecretFile == "" {
			return fmt.Errorf("alerts.webhooks[%d].secret_file: required (the HMAC key alerts are signed with)", i)
		}
	}
	rules := []struct {
		name string
		r    *AlertRuleConfig
	}{{"brute_force", &c.BruteForce}, {"new_pattern", &c.NewPattern}, {"rate_spike", &c.RateSpike}, {"honeytoken", &c.Honeytoken}, {"audit_sink", &c.AuditSink}}
	for _, rc := range rules {
		if err := rc.r.validate("alerts." + rc.name); err != nil {
			return err
		}
	}
	return nil
}

func (r *AlertRuleConfig) validate(field string) error {
	switch {
	case r.Threshold < 0:
		return fmt.Errorf("%s.threshold: must not be negative (0 = default)", field)
	case r.Window < 0:
		return fmt.Errorf("%s.window: must not be negative (0 = default)", field)
	case r.Window > 0 && r.Window < time.Second && field != "alerts.honeytoken":
		return fmt.Errorf("%s.window: must be at least 1s", field)
	case r.LearningPeriod < 0:
		return fmt.Errorf("%s.learning_period: must not be negative (0 = default)", field)
	case r.Factor < 0 || (r.Factor > 0 && r.Factor <= 1):
		return fmt.Errorf("%s.factor: must be more than 1 (0 = default)", field)
	case r.MinReads < 0:
		return fmt.Errorf("%s.min_reads: must not be negative (0 = default)", field)
	case r.MaxSubjects < 0 || r.MaxSubjects > 1_000_000:
		return fmt.Errorf("%s.max_subjects: must be 0 (default 10000) to 1000000", field)
	}
	return nil
}
