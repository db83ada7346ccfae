package config

import (
	"net/netip"
	"testing"
)

func TestEventsConfig(t *testing.T) {
	c := EventsConfig{AllowedDestinations: []string{"127.0.0.0/8", "10.1.2.3", "fd00::/8"}}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("fd00::/8")}
	if got := c.Allowed(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("allowed = %v", got)
	}
	if c.Timeout == 0 || c.RetryBase == 0 || c.RetryMax == 0 || c.Interval == 0 || c.MaxResponseBytes == 0 {
		t.Fatalf("defaults not filled: %+v", c)
	}
	t.Setenv("STRONGROOM_DEV", "")
	for _, bad := range []EventsConfig{
		{AllowedDestinations: []string{"localhost"}},
		{TestClockFile: "/tmp/clock"},
		{RetryBase: 10, RetryMax: 5},
		{Timeout: -1},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	t.Setenv("STRONGROOM_DEV", "1")
	if err := (&EventsConfig{TestClockFile: "/tmp/clock"}).validate(); err != nil {
		t.Fatalf("test clock with STRONGROOM_DEV=1: %v", err)
	}
}
