package service

import "context"

// SetVaultLayout rewrites an empty vault's record with another secret layout, so tests can
// exercise vaults created before layouts existed.
func (s *Service) SetVaultLayout(ctx context.Context, name string, layout int) error {
	v, err := s.lookupVault(name)
	if err != nil {
		return err
	}
	c := *v
	c.Layout = layout
	return s.putVaultRecord(ctx, &c)
}
