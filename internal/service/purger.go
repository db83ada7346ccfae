package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// PurgeExpired permanently removes soft-deleted secrets and vaults whose scheduled purge date
// has passed. It reads the purge-due index up to now and the records its entries name
// (purgedue.go), so a pass costs what is due, not what is stored. It runs as the system, not
// as a caller, so it skips the authorization guard.
func (s *Service) PurgeExpired(ctx context.Context) (secrets, vaults int, err error) {
	// A failed backfill is retried next pass; what is indexed is purged meanwhile.
	backfillErr := s.backfillIndexes(ctx)
	defer func() { err = errors.Join(backfillErr, err) }()
	now := s.now()
	var byID map[string]*Vault // built only when something is due
	after := ""
	for {
		keys, err := s.dueKeys(ctx, now.Unix(), after)
		if err != nil || len(keys) == 0 {
			return secrets, vaults, err
		}
		if byID == nil {
			byID = map[string]*Vault{}
			for _, v := range s.vaultSnapshot() {
				byID[v.ID] = v
			}
		}
		ns, nv, err := s.purgeDue(ctx, now, keys, byID)
		secrets, vaults = secrets+ns, vaults+nv
		if err != nil || len(keys) < dueChunk {
			return secrets, vaults, err
		}
		after = keys[len(keys)-1]
	}
}

// purgeDue acts on a chunk of due index keys: it purges what their records say is due and drops
// stale entries. Entries of secrets whose vault is gone are dropped together, per vault.
func (s *Service) purgeDue(ctx context.Context, now time.Time, keys []string, byID map[string]*Vault) (secrets, vaults int, err error) {
	orphans := map[string][]store.Op{}
	var malformed []store.Op
	var due []secretDestroy
	queued := map[string]int{} // head key -> index in due: a secret with two due entries
	for _, key := range keys {
		e, ok := parseDueKey(key)
		switch {
		case !ok:
			malformed = append(malformed, dropDue(key)) // names nothing the purger could purge
		case e.kind == dueKindVault:
			var purged bool
			if purged, err = s.purgeDueVault(ctx, now, e); purged {
				vaults++
			}
		case byID[e.id] == nil:
			orphans[e.id] = append(orphans[e.id], dropDue(key))
		default:
			var d *secretDestroy
			hk := headKey(byID[e.id], e.name)
			if i, ok := queued[hk]; ok {
				due[i].extra = append(due[i].extra, dropDue(key)) // the same purge drops it
			} else if d, err = s.dueSecret(ctx, now, byID[e.id], e); d != nil {
				queued[hk] = len(due)
				due = append(due, *d)
			}
		}
		if err != nil {
			return secrets, vaults, err
		}
	}
	if secrets, err = s.destroyDue(ctx, due); err != nil {
		return secrets, vaults, err
	}
	for id, ops := range orphans {
		// Guarded by the vault's tip being gone: the vault was purged, not merely not cached.
		ops = append([]store.Op{store.RequireAbsent("v/" + id + "/" + tipSuffix)}, ops...)
		if err := s.apply(ctx, ops); err != nil && !errors.Is(err, errRetry) {
			return secrets, vaults, err
		}
	}
	if len(malformed) > 0 {
		err = s.apply(ctx, malformed)
	}
	return secrets, vaults, err
}

// destroyBatch is how many due secrets one purge batch destroys: one commit (one Raft round)
// for many, where a mass delete comes due at once.
const destroyBatch = 64

// destroyDue destroys the due secrets, destroyBatch at a time; a batch refused because one of
// its heads changed is retried one secret at a time, so the changed one alone is skipped.
func (s *Service) destroyDue(ctx context.Context, due []secretDestroy) (int, error) {
	n := 0
	for len(due) > 0 {
		chunk := due[:min(destroyBatch, len(due))]
		due = due[len(chunk):]
		switch err := s.destroySecrets(ctx, chunk); {
		case err == nil:
			n += len(chunk)
		case !errors.Is(err, errRetry):
			return n, err
		case len(chunk) > 1: // else a concurrent recover changed the head: the next pass looks
			for _, d := range chunk {
				if err := s.destroySecrets(ctx, []secretDestroy{d}); err == nil {
					n++
				} else if !errors.Is(err, errRetry) {
					return n, err
				}
			}
		}
	}
	return n, nil
}

// dueSecret reads the head of the secret entry e names, checked against its tip, and returns
// what to destroy if the head is deleted and due; otherwise it drops e as stale, guarded by the
// head it read. A head that fails its rollback check, or a vault that did, keeps its entry and
// is never purged on its word.
func (s *Service) dueSecret(ctx context.Context, now time.Time, v *Vault, e dueEntry) (*secretDestroy, error) {
	if reason, err := s.rollbackOf(v); err != nil || reason != "" {
		return nil, err // failed its check (logged), or could not be checked: never purged on its word
	}
	h, raw, found, err := s.head(ctx, v, e.name)
	if errors.Is(err, ErrIntegrity) || errors.Is(err, errRetry) {
		return nil, nil // logged, or changing: the next pass looks again
	} else if err != nil {
		return nil, err
	}
	if found && h.Deleted != nil {
		own := secretDueKey(v, e.name, h.Deleted)
		if now.Unix() >= h.Deleted.ScheduledPurgeDate {
			drops := []store.Op{dropDue(e.key)}
			if own != e.key {
				drops = append(drops, dropDue(own))
			}
			// A concurrent recover changes the head; the guarded purge then skips it.
			return &secretDestroy{v, e.name, raw, drops}, nil
		}
		if own == e.key {
			return nil, nil // not due yet
		}
	}
	// Live, recovered, purged or deleted again later: the entry is stale.
	err = s.apply(ctx, []store.Op{headGuard(headKey(v, e.name), raw, found), dropDue(e.key)})
	if errors.Is(err, errRetry) {
		return nil, nil
	}
	return nil, err
}

// purgeDueVault purges the vault entry e names if the vault is deleted and due, guarded by its
// record as stored; otherwise it drops e as stale. A fresh entry is always due after now (the
// retention is at least 7 days), so the unguarded drop cannot remove one written meanwhile.
func (s *Service) purgeDueVault(ctx context.Context, now time.Time, e dueEntry) (bool, error) {
	s.vaultWrite.Lock()
	defer s.vaultWrite.Unlock()
	cur := s.cachedVault(e.name)
	if cur != nil && cur.ID == e.id {
		if reason, err := s.rollbackOf(cur); err != nil || reason != "" {
			return false, err // failed its rollback check (logged), or could not be checked: never purged on its word
		}
		if cur.Deleted != nil {
			own := vaultDueKey(cur)
			if !now.Before(cur.Deleted.ScheduledPurgeDate) {
				return s.purgeDueVaultLocked(ctx, cur, e.key)
			}
			if own == e.key {
				return false, nil
			}
		}
	}
	return false, s.apply(ctx, []store.Op{dropDue(e.key)})
}

// purgeDueVaultLocked purges cur if the stored record is still the deleted one the cache holds
// (another node may have recovered it: the cache catches up when that write is applied here).
func (s *Service) purgeDueVaultLocked(ctx context.Context, cur *Vault, entry string) (bool, error) {
	key := vaultPrefix + strings.ToLower(cur.Name)
	var stored Vault
	raw, found, err := s.get(ctx, keyring.SystemKeyID, key, &stored)
	if err != nil || !found || stored.Seq != cur.Seq || stored.Deleted == nil {
		return false, err
	}
	guard := []store.Op{store.RequireEqual(key, raw)}
	if entry != vaultDueKey(cur) {
		guard = append(guard, dropDue(entry))
	}
	err = s.purgeVaultLocked(ctx, cur, guard...)
	if errors.Is(err, errRetry) {
		return false, nil
	}
	return err == nil, err
}

// RunPurger calls PurgeExpired every interval until ctx ends (on a cluster node, only while
// it leads: Options.Leads).
func (s *Service) RunPurger(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.purgeTick(ctx, log)
		}
	}
}

// purgeTick is one tick of RunPurger; ran is false when this node does not lead.
func (s *Service) purgeTick(ctx context.Context, log *slog.Logger) (ran bool) {
	if s.opts.Leads != nil && !s.opts.Leads() {
		return false
	}
	ns, nv, err := s.PurgeExpired(ctx)
	if err != nil {
		log.Error("purging expired deleted objects", "err", err)
	} else if ns+nv > 0 {
		log.Info("purged expired deleted objects", "secrets", ns, "vaults", nv)
	}
	return true
}
