package service

import "context"

// AuthorizeMetrics allows reading the server's metrics (GET /metrics): action
// "Strongroom/operator/metrics/read" at scope "/", which Owner and any role with "*/read" hold.
func (s *Service) AuthorizeMetrics(ctx context.Context) error { return s.operator(ctx, "metrics/read") }
