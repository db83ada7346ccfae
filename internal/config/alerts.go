package config

// AlertsConfig configures the built-in alert rules and where alerts go.
type AlertsConfig struct{}

// validate checks the section and fills in its defaults.
func (c *AlertsConfig) validate() error { return nil }
