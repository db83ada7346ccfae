package config

// EventsConfig configures event delivery to webhook subscribers.
type EventsConfig struct{}

// validate checks the section and fills in its defaults.
func (c *EventsConfig) validate() error { return nil }
