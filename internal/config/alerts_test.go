package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertsConfigValidate(t *testing.T) {
	ok := func(c *AlertsConfig) {}
	cases := []struct {
		name  string
		edit  func(c *AlertsConfig)
		field string // "" = valid
	}{
		{"zero", ok, ""},
		{"webhook", func(c *AlertsConfig) {
			c.Webhooks = []AlertWebhook{{URL: "https://hooks.example/a?k=v", SecretFile: "/etc/hook.key"}}
			c.AllowedDestinations = []string{"127.0.0.0/8", "::1/128"}
			c.BruteForce = AlertRuleConfig{Threshold: 3, Window: time.Minute}
			c.Honeytoken.Window = 0
		}, ""},
		{"webhook without secret", func(c *AlertsConfig) { c.Webhooks = []AlertWebhook{{URL: "https://h.example"}} }, "alerts.webhooks[0].secret_file"},
		{"webhook ftp", func(c *AlertsConfig) { c.Webhooks = []AlertWebhook{{URL: "ftp://h.example", SecretFile: "k"}} }, "alerts.webhooks[0].url"},
		{"bad cidr", func(c *AlertsConfig) { c.AllowedDestinations = []string{"localhost"} }, "alerts.allowed_destinations[0]"},
		{"address", func(c *AlertsConfig) { c.AllowedDestinations = []string{"10.1.2.3"} }, ""},
		{"test clock", func(c *AlertsConfig) { c.TestClockFile = "/tmp/clock" }, "alerts.test_clock_file"},
		{"negative threshold", func(c *AlertsConfig) { c.BruteForce.Threshold = -1 }, "alerts.brute_force.threshold"},
		{"short window", func(c *AlertsConfig) { c.RateSpike.Window = time.Millisecond }, "alerts.rate_spike.window"},
		{"factor 1", func(c *AlertsConfig) { c.RateSpike.Factor = 1 }, "alerts.rate_spike.factor"},
		{"negative learning", func(c *AlertsConfig) { c.NewPattern.LearningPeriod = -time.Hour }, "alerts.new_pattern.learning_period"},
		{"too many subjects", func(c *AlertsConfig) { c.NewPattern.MaxSubjects = 2_000_000 }, "alerts.new_pattern.max_subjects"},
		{"queue", func(c *AlertsConfig) { c.QueueSize = -1 }, "alerts.queue_size"},
		{"attempts", func(c *AlertsConfig) { c.WebhookAttempts = 101 }, "alerts.webhook_attempts"},
	}
	t.Setenv("STRONGROOM_DEV", "")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg AlertsConfig
			c.edit(&cfg)
			err := cfg.validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
				t.Fatalf("err = %v, want one naming %s", err, c.field)
			}
		})
	}
}

func TestAlertsTestClockInDevMode(t *testing.T) {
	t.Setenv("STRONGROOM_DEV", "1")
	if err := (&AlertsConfig{TestClockFile: "/tmp/clock"}).validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAlertsConfigParse(t *testing.T) {
	cfg := Default()
	if err := cfg.Parse(strings.NewReader("alerts:\n  webhooks: [{url: 'http://127.0.0.1:9/h', secret_file: /k}]\n  allowed_destinations: ['127.0.0.0/8']\n  brute_force: {threshold: 4, window: 30s}\n  new_pattern: {learning_period: 2s}\n")); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerts
	if a.BruteForce.Threshold != 4 || a.BruteForce.Window != 30*time.Second || a.NewPattern.LearningPeriod != 2*time.Second || len(a.AllowedPrefixes()) != 1 {
		t.Fatalf("alerts = %+v", a)
	}
}
