package service

import (
	"context"

	"github.com/strongroom/strongroom/internal/rbac"
)

// AuthorizeAuditQuery checks that the caller may read audit records at scope: "/" or the
// subscription for the whole log, a vault's resource id for that vault's records. The action
// (rbac.ActionAuditRecordsRead) is an operator action: Strongroom Audit Reader and the bootstrap
// admin's Strongroom Operator hold it, Azure's wildcards (Reader's "*/read", Owner's "*") do not.
// The HTTP layer then reads this node's audit folder, which the domain service does not hold.
func (s *Service) AuthorizeAuditQuery(ctx context.Context, scope string) error {
	return s.guard(ctx, rbac.ActionAuditRecordsRead, false, scope)
}
