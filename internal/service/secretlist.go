// Listings: live and deleted secrets, and a secret's versions, a page at a time.

package service

import (
	"context"
)

// ListSecrets lists live secrets (latest version metadata, no values).
func (r VaultRef) ListSecrets(ctx context.Context, max int, skip string) (Page, error) {
	return r.svc.listHeads(ctx, r, max, skip, false)
}

// ListDeletedSecrets lists soft-deleted secrets.
func (r VaultRef) ListDeletedSecrets(ctx context.Context, max int, skip string) (Page, error) {
	return r.svc.listHeads(ctx, r, max, skip, true)
}

func (s *Service) listHeads(ctx context.Context, vault VaultRef, max int, skip string, deleted bool) (Page, error) {
	v, err := s.secretOp(ctx, vault, "readMetadata/action", "")
	if err != nil {
		return Page{}, err
	}
	if max < 1 || max > MaxPageSize {
		return Page{}, badParameter("The value of maxresults must be between 1 and %d.", MaxPageSize)
	}
	if deleted {
		if done, err := s.indexed(ctx); err != nil || done {
			if err != nil {
				return Page{}, err
			}
			return s.listDeletedIndexed(ctx, v, max, skip)
		}
	}
	var page Page
	var openErr error
	err = s.scanHeads(ctx, v, skip, func(name string, raw []byte, tip scannedTip) bool {
		var h secretHead
		if openErr = s.open(ctx, vaultKeyID(v), headKey(v, name), raw, &h); openErr != nil {
			return false
		}
		var found bool
		if h, _, found, openErr = s.scannedHead(ctx, v, name, h, raw, tip); openErr != nil {
			return false
		}
		if !found || (h.Deleted != nil) != deleted {
			return true
		}
		if len(page.Items) == max {
			page.Next = page.Items[len(page.Items)-1].cursor
			return false
		}
		it := s.secret(v, h.Name, h.Item, false, h.Deleted)
		it.cursor = name
		page.Items = append(page.Items, it)
		return true
	})
	if err == nil {
		err = openErr
	}
	return page, err
}

// ListSecretVersions lists every version of a live secret (metadata, no values).
func (r VaultRef) ListSecretVersions(ctx context.Context, name string, max int, skip string) (Page, error) {
	s := r.svc
	v, err := s.secretOp(ctx, r, "readMetadata/action", name)
	if err != nil {
		return Page{}, err
	}
	if max < 1 || max > MaxPageSize {
		return Page{}, badParameter("The value of maxresults must be between 1 and %d.", MaxPageSize)
	}
	var page Page
	err = retry(func() error {
		h, hraw, err := s.liveHead(ctx, v, name, name)
		if err != nil {
			return err
		}
		page = Page{}
		return s.eachVersion(ctx, v, name, skip, &h, hraw, func(ver string, sv SecretVersion) bool {
			if len(page.Items) == max {
				page.Next = page.Items[len(page.Items)-1].cursor
				return false
			}
			it := s.secret(v, h.Name, sv, false, nil)
			it.cursor = ver
			page.Items = append(page.Items, it)
			return true
		})
	})
	return page, err
}

// eachVersion opens name's versions after after in order, checks each against h (read as
// hraw) and calls fn with it until fn returns false.
func (s *Service) eachVersion(ctx context.Context, v *Vault, name, after string, h *secretHead, hraw []byte, fn func(ver string, sv SecretVersion) bool) error {
	var openErr error
	err := s.scanVersions(ctx, v, name, after, func(ver, key string, raw []byte) bool {
		var sv SecretVersion
		if openErr = s.open(ctx, vaultKeyID(v), key, raw, &sv); openErr != nil {
			return false
		}
		if problem := h.versionProblem(&sv); problem != "" {
			openErr = s.rolledBack(ctx, v, name, hraw, problem)
			return false
		}
		return fn(ver, sv)
	})
	if err == nil {
		err = openErr
	}
	return err
}
