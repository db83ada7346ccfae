package app

import (
	"context"

	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/service"
)

// startEvents starts event delivery for the serving state (the leader delivers in a cluster)
// and returns what the HTTP layer serves; it stops when ctx ends.
func (s *server) startEvents(ctx context.Context, svc *service.Service, leads func() bool) httpapi.EventsAPI {
	return nil
}
