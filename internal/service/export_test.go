package service

import (
	"context"
	"log/slog"
)

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

// PurgeTick runs one tick of RunPurger; it reports whether the pass ran.
func (s *Service) PurgeTick(ctx context.Context, log *slog.Logger) bool { return s.purgeTick(ctx, log) }
