package config

// AuditConfig configures the audit log beyond its fixed location.
type AuditConfig struct{}

// validate checks the section and fills in its defaults.
func (c *AuditConfig) validate() error { return nil }
