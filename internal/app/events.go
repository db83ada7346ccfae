package app

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/events"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/service"
)

// startEvents starts event delivery for the serving state (the leader delivers in a cluster)
// and returns what the HTTP layer serves; it stops when ctx ends.
func (s *server) startEvents(ctx context.Context, svc *service.Service, leads func() bool) httpapi.EventsAPI {
	c := s.cfg.Events
	var now func() time.Time
	if c.TestClockFile != "" { // config refuses it outside STRONGROOM_DEV=1
		now = testClock(c.TestClockFile)
		s.log.Warn("events: using a test clock offset file", "file", c.TestClockFile)
	}
	w := events.New(events.Options{
		Queue: service.Events(svc, now),
		Outbound: outbound.Options{Allowed: c.Allowed(), AllowHTTP: c.AllowHTTP, Timeout: c.Timeout,
			MaxResponseBytes: c.MaxResponseBytes},
		Leads: leads, Log: s.log.With("component", "events"), Interval: c.Interval,
		RetryBase: c.RetryBase, RetryMax: c.RetryMax,
	})
	go w.Run(ctx)
	return w
}

// testClock is time.Now plus the duration written in file (none when absent or unparsable).
func testClock(file string) func() time.Time {
	return func() time.Time {
		b, err := os.ReadFile(file)
		if err != nil {
			return time.Now()
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			return time.Now()
		}
		return time.Now().Add(d)
	}
}
