package service

import "context"

// Permits reports whether the principal objectID would be allowed action: a data action on
// vault vaultName at the vault's scope plus under ("", "/secrets", "/secrets/{name}"), by the
// vault's access policies or role assignments as guardData decides, or, with vaultName "", a
// control-plane action at the scope under names. It is a query for clients that hide controls
// a person may not use (the web portal); it records no decision, and every request is still
// authorized on its own when it is made.
func (s *Service) Permits(objectID, vaultName, under, action string, data bool) bool {
	ctx := WithCaller(context.Background(), Caller{ObjectID: objectID})
	if vaultName == "" {
		return s.guard(ctx, action, data, under) == nil
	}
	v, err := s.lookupVault(vaultName)
	if err != nil {
		return false
	}
	scope := s.ResourceID(v) + under
	if !data {
		return s.guard(ctx, action, false, scope) == nil
	}
	return s.guardData(ctx, v, action, scope) == nil
}
