package service

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// PurgeExpired permanently removes soft-deleted secrets and vaults whose scheduled purge date
// has passed. It runs as the system, not as a caller, so it skips the authorization guard.
func (s *Service) PurgeExpired(ctx context.Context) (secrets, vaults int, err error) {
	now := s.now()
	for _, v := range s.vaultSnapshot() {
		if v.rolledBack != "" {
			continue // failed its rollback check (logged when loaded): never purged on its word
		}
		if v.Deleted != nil {
			if !now.Before(v.Deleted.ScheduledPurgeDate) {
				s.vaultWrite.Lock()
				cur := s.cachedVault(v.Name)
				if cur != nil && cur.ID == v.ID && cur.Deleted != nil && cur.rolledBack == "" {
					err = s.purgeVaultLocked(ctx, cur)
				}
				s.vaultWrite.Unlock()
				if err != nil {
					return secrets, vaults, err
				}
				vaults++
			}
			continue
		}
		type due struct {
			name string
			raw  []byte
		}
		var expired []due
		var openErr error
		err = s.scanHeads(ctx, v, "", func(name string, raw []byte) bool {
			var h secretHead
			if openErr = s.open(ctx, vaultKeyID(v), headKey(v, name), raw, &h); openErr != nil {
				return false
			}
			if h.Deleted != nil && now.Unix() >= h.Deleted.ScheduledPurgeDate {
				// A deleted copy of a live secret's head put back must not get it purged.
				var found bool
				if h, raw, found, openErr = s.scannedHead(ctx, v, name, h, raw); errors.Is(openErr, ErrIntegrity) {
					openErr = nil // logged; the other secrets are still purged
					return true
				} else if openErr != nil {
					return false
				}
				if found && h.Deleted != nil && now.Unix() >= h.Deleted.ScheduledPurgeDate {
					expired = append(expired, due{name, raw})
				}
			}
			return true
		})
		if err == nil {
			err = openErr
		}
		if err != nil {
			return secrets, vaults, err
		}
		for _, d := range expired {
			// A concurrent recover changes the head; the guarded purge then skips it.
			if perr := s.destroySecret(ctx, v, d.name, d.raw); perr == nil {
				secrets++
			} else if perr != errRetry {
				return secrets, vaults, perr
			}
		}
	}
	return secrets, vaults, nil
}

// RunPurger calls PurgeExpired every interval until ctx ends.
func (s *Service) RunPurger(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ns, nv, err := s.PurgeExpired(ctx)
			if err != nil {
				log.Error("purging expired deleted objects", "err", err)
			} else if ns+nv > 0 {
				log.Info("purged expired deleted objects", "secrets", ns, "vaults", nv)
			}
		}
	}
}
