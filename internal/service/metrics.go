package service

import "context"

// ActionMetricsRead is what reading the server's metrics (GET /metrics) needs at scope "/":
// Azure Monitor's metrics read action, so Azure's roles decide as they would for a resource's
// metrics: Owner, Contributor, Reader and Monitoring Reader ("*" or "*/read") and the server's
// own Strongroom Operator (which lists it) may scrape; the Key Vault roles may not.
const ActionMetricsRead = "Microsoft.Insights/metrics/read"

// AuthorizeMetrics allows reading the server's metrics: ActionMetricsRead at scope "/". The
// metrics cover every vault, so an assignment at a narrower scope is not enough.
func (s *Service) AuthorizeMetrics(ctx context.Context) error {
	return s.guard(ctx, ActionMetricsRead, false, "/")
}
