// The deleted-secrets index: the names of a vault's soft-deleted secrets, so a listing of
// deleted secrets reads those, not every head of the vault.

package service

import (
	"context"
	"strings"
)

// Layout (keys and values plaintext, like the tips):
//
//	v/<vault id>/d/<UPPER secret name>   a soft-deleted secret; the value is one format byte
//
// An entry is written in the batch that soft-deletes the secret and removed in the batch that
// recovers or destroys it (destroySecrets); a vault's entries go with its prefix when it is
// purged. The listing reads each named head (checked against its tip, integrity.go) and shows
// only what that head says is deleted, so an entry put back or forged shows nothing. Until
// the one-time backfill (backfillIndexes) has run, the listing scans every head as before.

func deletedPrefix(v *Vault) string { return "v/" + v.ID + "/d/" }

func deletedKey(v *Vault, name string) string { return deletedPrefix(v) + strings.ToUpper(name) }

// listDeletedIndexed is a page of v's deleted secrets after skip, read through the index.
func (s *Service) listDeletedIndexed(ctx context.Context, v *Vault, max int, skip string) (Page, error) {
	var page Page
	prefix := deletedPrefix(v)
	after := skip
	for {
		var names []string
		err := s.st.Scan(ctx, prefix, prefixed(prefix, after), func(key string, _ []byte) bool {
			names = append(names, key[len(prefix):])
			return len(names) <= max // one more than a page: whether there is a next one
		})
		if err != nil {
			return Page{}, err
		}
		for _, name := range names {
			h, _, found, err := s.head(ctx, v, name)
			if err != nil {
				return Page{}, err
			}
			if !found || h.Deleted == nil {
				continue // stale: the listing shows what the head says
			}
			if len(page.Items) == max {
				page.Next = page.Items[len(page.Items)-1].cursor
				return page, nil
			}
			it := s.secret(v, h.Name, h.Item, false, h.Deleted)
			it.cursor = name
			page.Items = append(page.Items, it)
		}
		if len(names) <= max {
			return page, nil
		}
		after = names[len(names)-1]
	}
}
