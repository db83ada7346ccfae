// The purge-due index: when each soft-deleted secret and vault becomes purgeable, in key order,
// so the purger reads only what is due and its work does not grow with what is stored.

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/store"
)

// Index layout (keys and values plaintext, like the tips):
//
//	sys/purge-due/<due, 12-digit unix seconds>/s/<vault id>/<UPPER secret name>   a deleted secret
//	sys/purge-due/<due, 12-digit unix seconds>/v/<vault id>/<lower vault name>    a deleted vault
//	sys/purge-due-backfilled                                                      the marker (indexVersion)
//
// The zero-padded time sorts entries by due date, so a pass scans from the start of the prefix
// and stops at the first entry after now. An entry's value is one format byte (dueEntryV1);
// its key names the object the way the object's own keys do, plus the date it becomes
// purgeable (the deleted record holds that date sealed; a reader of the store file learns it
// from the index, as it learns creation times from version ids).
//
// An entry is written in the batch that soft-deletes the object and removed in the batch that
// recovers or purges it. An entry is only ever a candidate: the purger reads the object's own
// record (checked against its tip, integrity.go) and purges only what that record says is
// deleted and due, exactly as a full scan would; any other entry is stale and is dropped,
// guarded by the record it read. A stale, replayed or forged entry therefore never purges a
// live or recovered object. Secrets of a purged vault leave their entries behind (dropped as
// stale when they come due, batched per vault).
//
// Records deleted before the index existed are indexed once, by the first pass that finds no
// marker at the current version (backfillIndexes, which also fills deletedindex.go's index);
// the marker is written after every entry, so an interrupted backfill runs again, and a
// snapshot restored from before the index (no marker) is indexed again too.
const (
	purgeDuePrefix    = "sys/purge-due/"
	purgeDueMarkerKey = "sys/purge-due-backfilled" // '-' sorts before '/': outside the prefix
	dueDigits         = 12
	maxDue            = 999_999_999_999 // year 33658: wider numbers would break the order
	dueKindSecret     = "s"
	dueKindVault      = "v"
	dueEntryV1        = 1
	// indexVersion is the marker's value: 1 indexed due dates only, 2 deleted names too.
	indexVersion = 2
	// dueChunk bounds the entries (and backfilled heads) held in memory at once.
	dueChunk = 512
)

// dueKey is the index key of an object of kind that becomes purgeable at unix second at.
func dueKey(at int64, kind, id, name string) string {
	at = min(max(at, 0), maxDue)
	return purgeDuePrefix + fmt.Sprintf("%0*d", dueDigits, at) + "/" + kind + "/" + id + "/" + name
}

func secretDueKey(v *Vault, name string, d *Deletion) string {
	return dueKey(d.ScheduledPurgeDate, dueKindSecret, v.ID, strings.ToUpper(name))
}

// vaultDueKey is the entry of deleted vault v. The date is rounded up to a whole second, so an
// entry that is due (at <= now) names a vault that is due.
func vaultDueKey(v *Vault) string {
	t := v.Deleted.ScheduledPurgeDate
	at := t.Unix()
	if t.Nanosecond() > 0 {
		at++
	}
	return dueKey(at, dueKindVault, v.ID, strings.ToLower(v.Name))
}

// dueEntry is a parsed index key.
type dueEntry struct {
	key, kind, id, name string
}

func parseDueKey(key string) (dueEntry, bool) {
	rest, ok := strings.CutPrefix(key, purgeDuePrefix)
	parts := strings.SplitN(rest, "/", 4)
	if !ok || len(parts) != 4 || len(parts[0]) != dueDigits || parts[2] == "" || parts[3] == "" {
		return dueEntry{}, false
	}
	if at, err := strconv.ParseInt(parts[0], 10, 64); err != nil || at < 0 || parts[1] != dueKindSecret && parts[1] != dueKindVault {
		return dueEntry{}, false
	}
	return dueEntry{key: key, kind: parts[1], id: parts[2], name: parts[3]}, true
}

func putDue(key string) store.Op { return store.Put(key, []byte{dueEntryV1}) }

// dropDue removes an entry of either index. Entries hold no ciphertext, so this is not a
// destroy.
func dropDue(key string) store.Op { return store.Delete(key) }

// dueKeys returns up to dueChunk index keys after after that are due at now (unix seconds),
// in due order.
func (s *Service) dueKeys(ctx context.Context, now int64, after string) ([]string, error) {
	bound := dueKey(now, "~", "", "") // after every entry due at now, before any later one
	var keys []string
	err := s.st.Scan(ctx, purgeDuePrefix, after, func(key string, _ []byte) bool {
		if key > bound {
			return false
		}
		keys = append(keys, key)
		return len(keys) < dueChunk
	})
	if err != nil {
		return nil, fmt.Errorf("scanning the purge-due index: %w", err)
	}
	return keys, nil
}

// backfillIndexes writes the entries of both indexes (this file's and deletedindex.go's) for
// every deleted secret and vault once, unless the marker says it was done at this version. It
// is O(stored) the one time it runs and one point read on every later pass. Each chunk's
// entries are written guarded by the heads they were read from, so a secret recovered or
// purged meanwhile gets no entry it would leave behind.
func (s *Service) backfillIndexes(ctx context.Context) error {
	if done, err := s.indexed(ctx); err != nil || done {
		return err
	}
	for _, v := range s.vaultSnapshot() {
		if v.Deleted != nil {
			if err := s.apply(ctx, []store.Op{putDue(vaultDueKey(v))}); err != nil {
				return fmt.Errorf("backfilling the purge-due index: %w", err)
			}
		}
		for after := ""; ; {
			var last string
			err := retry(func() error {
				ops, l, err := s.deletedHeads(ctx, v, after)
				if err == nil && len(ops) > 0 {
					err = s.apply(ctx, ops)
				}
				last = l
				return err
			})
			if err != nil {
				return fmt.Errorf("backfilling the indexes of deleted secrets: %w", err)
			}
			if last == "" {
				break
			}
			after = last
		}
	}
	if err := s.apply(ctx, []store.Op{store.Put(purgeDueMarkerKey, []byte{indexVersion})}); err != nil {
		return fmt.Errorf("writing the index marker: %w", err)
	}
	return nil
}

// indexed reports whether the marker says the backfill ran at the current index version.
func (s *Service) indexed(ctx context.Context) (bool, error) {
	m, err := s.st.Get(ctx, purgeDueMarkerKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("reading the index marker: %w", err)
	}
	return len(m) == 1 && m[0] >= indexVersion, nil
}

// deletedHeads returns the index entries of the deleted secrets among up to dueChunk heads of
// v after after, each guarded by its head, and the last name read when there may be more (""
// at the end). A head that does not open is logged and skipped: no pass could purge it either.
func (s *Service) deletedHeads(ctx context.Context, v *Vault, after string) ([]store.Op, string, error) {
	var ops []store.Op
	n, last := 0, ""
	err := s.scanHeads(ctx, v, after, func(name string, raw []byte, _ scannedTip) bool {
		var h secretHead
		if err := s.open(ctx, vaultKeyID(v), headKey(v, name), raw, &h); err != nil {
			s.logger().ErrorContext(ctx, "backfilling the indexes: skipping a head that does not open",
				"vault", v.Name, "name", name, "err", err)
		} else if h.Deleted != nil {
			ops = append(ops, store.RequireEqual(headKey(v, name), raw),
				putDue(secretDueKey(v, name, h.Deleted)), putDue(deletedKey(v, name)))
		}
		n++
		last = name
		return n < dueChunk
	})
	if err != nil {
		return nil, "", fmt.Errorf("backfilling the indexes of vault %s: %w", v.Name, err)
	}
	if n < dueChunk {
		last = ""
	}
	return ops, last, nil
}

func (s *Service) logger() *slog.Logger {
	if s.opts.Log != nil {
		return s.opts.Log
	}
	return slog.Default()
}
