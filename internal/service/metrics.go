package service

import "context"

// AuthorizeMetrics allows reading the server's metrics (GET /metrics): action
// "Strongroom/operator/metrics/read" at scope "/", which only a role naming the operator
// actions holds (the bootstrap admin's Strongroom Operator; see authz.OperatorPrefix).
func (s *Service) AuthorizeMetrics(ctx context.Context) error { return s.operator(ctx, "metrics/read") }
