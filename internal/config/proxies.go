package config

import (
	"fmt"

	"github.com/strongroom/strongroom/internal/netacl"
)

// validateTrustedProxies fails start-up on a value that is not an address or CIDR range: a
// typo here would otherwise silently leave the firewall reading the wrong client address.
func (c *Config) validateTrustedProxies() error {
	if _, err := c.Proxies(); err != nil {
		return err
	}
	return nil
}

// Proxies is TrustedProxies parsed for the HTTP edge (no ranges: trusts no proxy).
func (c *Config) Proxies() (*netacl.Proxies, error) {
	for i, v := range c.TrustedProxies {
		if _, err := netacl.ParseRule(v); err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %q is not an IP address or CIDR range such as 10.0.0.0/8", i, v)
		}
	}
	p, err := netacl.ParseProxies(c.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	return p, nil
}

// TrustedProxySet is Proxies for a validated configuration (Validate has rejected any value it
// would fail on; should one slip through, no proxy is trusted: the safe reading).
func (c *Config) TrustedProxySet() *netacl.Proxies {
	p, err := c.Proxies()
	if err != nil {
		return nil
	}
	return p
}
