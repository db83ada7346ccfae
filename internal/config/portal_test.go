package config

import (
	"strings"
	"testing"
	"time"
)

func TestPortalConfig(t *testing.T) {
	var c PortalConfig
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout != 15*time.Minute || c.AbsoluteTimeout != 8*time.Hour || c.RevealFor != 30*time.Second || c.RecentSignIn != 5*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	bad := []struct {
		c    PortalConfig
		want string
	}{
		{PortalConfig{IdleTimeout: -time.Second}, "negative"},
		{PortalConfig{IdleTimeout: 9 * time.Hour}, "idle_timeout"},
		{PortalConfig{AbsoluteTimeout: 200 * time.Hour}, "absolute_timeout"},
		{PortalConfig{RevealFor: time.Hour}, "reveal_for"},
	}
	for _, b := range bad {
		if err := b.c.validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: err = %v, want one naming %s", b.c, err, b.want)
		}
	}
}
