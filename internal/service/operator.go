package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Operator actions, guarded like everything else. Only patterns that name them grant them
// (authz.OperatorPrefix): the bootstrap admin's Strongroom Operator role, not Owner's "*".
const operatorScope = "/"

func (s *Service) operator(ctx context.Context, op string) error {
	return s.guard(ctx, "Strongroom/operator/"+op, false, operatorScope)
}

// KeyringStatus reports the keyring's terms and backup keys.
func (s *Service) KeyringStatus(ctx context.Context) (keyring.Status, error) {
	if err := s.operator(ctx, "keyring/read"); err != nil {
		return keyring.Status{}, err
	}
	return s.kr.Status(), nil
}

// RotateKeyring adds a keyring term that all new writes use.
func (s *Service) RotateKeyring(ctx context.Context) (uint32, error) {
	if err := s.operator(ctx, "keyring/rotate/action"); err != nil {
		return 0, err
	}
	return s.kr.Rotate(ctx)
}

// RotateBackupKey adds a backup key that new backup blobs use.
func (s *Service) RotateBackupKey(ctx context.Context) (uint32, error) {
	if err := s.operator(ctx, "backupkeys/rotate/action"); err != nil {
		return 0, err
	}
	return s.kr.RotateBackupKey(ctx)
}

// RevokeBackupKey destroys a backup key; blobs made under it stop restoring.
func (s *Service) RevokeBackupKey(ctx context.Context, id uint32) error {
	if err := s.operator(ctx, "backupkeys/delete"); err != nil {
		return err
	}
	// Older keyring records still hold the key until the store is erased (destroy.go).
	return s.destroy(func() error {
		if err := s.kr.RevokeBackupKey(ctx, id); err != nil {
			return newErr(ErrNotFound, "BackupKeyNotFound", "", "Backup key %d does not exist or is already revoked.", id)
		}
		return nil
	})
}

// Compactor is implemented by stores that can rewrite their file to drop freed pages.
type Compactor interface {
	Compact(ctx context.Context) error
}

// Compact erases freed storage now (secure deletion of purged records).
func (s *Service) Compact(ctx context.Context) error {
	if err := s.operator(ctx, "compact/action"); err != nil {
		return err
	}
	c, ok := s.st.(Compactor)
	if !ok {
		return newErr(ErrBadRequest, "NotSupported", "", "This storage backend does not support compaction.")
	}
	return c.Compact(ctx)
}

// RewrapProgress describes a rewrap run.
type RewrapProgress struct {
	Term      uint32 `json:"term"`
	Scanned   int    `json:"scanned"`
	Rewrapped int    `json:"rewrapped"`
	Done      bool   `json:"done"`
	Cursor    string `json:"cursor,omitempty"`
}

const rewrapCursorKey = "sys/rewrap/cursor"

// domainFor names the keyring domain a storage key's record was sealed in.
func domainFor(key string) (string, bool) {
	switch {
	case strings.HasPrefix(key, "arm/"), strings.HasPrefix(key, "id/"):
		return keyring.SystemKeyID, true
	case strings.HasPrefix(key, "v/"):
		id, _, ok := strings.Cut(key[2:], "/")
		return "vault/" + id, ok
	}
	return "", false
}

// Rewrap moves up to limit records (0 = all) onto the active keyring term, continuing from the
// cursor a previous, interrupted run left in the store. It is safe to run while the server
// serves traffic: each record is replaced only if it did not change meanwhile.
func (s *Service) Rewrap(ctx context.Context, limit int) (RewrapProgress, error) {
	if err := s.operator(ctx, "keyring/rewrap/action"); err != nil {
		return RewrapProgress{}, err
	}
	return s.rewrap(ctx, limit, nil)
}

// StartRewrap runs a rewrap to completion in the background (stopped by Options.Background
// ending, e.g. on seal, and resumable from its cursor); RewrapStatus reports its progress.
func (s *Service) StartRewrap(ctx context.Context) (RewrapProgress, error) {
	if err := s.operator(ctx, "keyring/rewrap/action"); err != nil {
		return RewrapProgress{}, err
	}
	s.rewrapMu.Lock()
	defer s.rewrapMu.Unlock()
	if s.rewrapJob.Running {
		return s.rewrapJob.RewrapProgress, nil
	}
	bg := s.opts.Background
	if bg == nil {
		bg = context.Background()
	}
	s.rewrapJob = RewrapJob{Running: true, RewrapProgress: RewrapProgress{Term: s.kr.Status().ActiveTerm}}
	go func() {
		p, err := s.rewrap(bg, 0, func(p RewrapProgress) {
			s.rewrapMu.Lock()
			s.rewrapJob.RewrapProgress = p
			s.rewrapMu.Unlock()
		})
		s.rewrapMu.Lock()
		s.rewrapJob = RewrapJob{RewrapProgress: p}
		if err != nil {
			s.rewrapJob.Error = err.Error()
		}
		s.rewrapMu.Unlock()
	}()
	return s.rewrapJob.RewrapProgress, nil
}

// RewrapJob is the state of the background rewrap.
type RewrapJob struct {
	RewrapProgress
	Running bool   `json:"running"`
	Error   string `json:"error,omitempty"`
}

// RewrapStatus reports the background rewrap.
func (s *Service) RewrapStatus(ctx context.Context) (RewrapJob, error) {
	if err := s.operator(ctx, "keyring/read"); err != nil {
		return RewrapJob{}, err
	}
	s.rewrapMu.Lock()
	defer s.rewrapMu.Unlock()
	return s.rewrapJob, nil
}

func (s *Service) rewrap(ctx context.Context, limit int, report func(RewrapProgress)) (RewrapProgress, error) {
	p := RewrapProgress{Term: s.kr.Status().ActiveTerm}
	if c, err := s.st.Get(ctx, rewrapCursorKey); err == nil {
		p.Cursor = string(c)
	} else if !errors.Is(err, store.ErrNotFound) {
		return p, fmt.Errorf("reading rewrap cursor: %w", err)
	}
	const chunk = 256
	for {
		type item struct {
			key, domain string
			raw         []byte
		}
		var batch []item
		last, stopped := "", false
		err := s.st.Scan(ctx, "", p.Cursor, func(key string, raw []byte) bool {
			last = key
			p.Scanned++
			if d, ok := domainFor(key); ok {
				if t, ok := keyring.Term(raw); ok && t != p.Term {
					batch = append(batch, item{key, d, raw})
				}
			}
			stopped = len(batch) >= chunk || (limit > 0 && p.Rewrapped+len(batch) >= limit)
			return !stopped
		})
		if err != nil {
			return p, fmt.Errorf("scanning for rewrap: %w", err)
		}
		var ops []store.Op
		for _, it := range batch {
			out, changed, err := s.kr.Rewrap(it.domain, it.key, it.raw)
			if err != nil {
				return p, err
			}
			if changed {
				ops = append(ops, store.RequireEqual(it.key, it.raw), store.Put(it.key, out))
			}
		}
		done := !stopped
		cursorOp := store.Put(rewrapCursorKey, []byte(last))
		if done {
			cursorOp = store.Delete(rewrapCursorKey)
		}
		if err := s.st.Apply(ctx, append(ops, cursorOp)); errors.Is(err, store.ErrConflict) {
			continue // a record changed under us (and got the new term anyway); rescan this chunk
		} else if err != nil {
			return p, fmt.Errorf("rewrapping: %w", err)
		}
		p.Rewrapped += len(ops) / 2
		p.Cursor = last
		if report != nil {
			report(p)
		}
		if err := ctx.Err(); err != nil {
			return p, fmt.Errorf("rewrap interrupted: %w", err)
		}
		if done {
			p.Done, p.Cursor = true, ""
			return p, nil
		}
		if limit > 0 && p.Rewrapped >= limit {
			return p, nil
		}
	}
}

// RetireOldTerms destroys keyring terms older than the active one. It refuses while any record
// still uses one (run Rewrap to completion first).
func (s *Service) RetireOldTerms(ctx context.Context) ([]uint32, error) {
	if err := s.operator(ctx, "keyring/retire/action"); err != nil {
		return nil, err
	}
	active := s.kr.Status().ActiveTerm
	stale := 0
	err := s.st.Scan(ctx, "", "", func(key string, raw []byte) bool {
		if _, ok := domainFor(key); ok {
			if t, ok := keyring.Term(raw); ok && t != active {
				stale++
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if stale > 0 {
		return nil, newErr(ErrConflict, "RewrapIncomplete", "", "%d records still use an older keyring term; run rewrap to completion first.", stale)
	}
	// Older keyring records still hold the terms, and freed pages the data keys wrapped under
	// them, until the store is erased (destroy.go).
	var gone []uint32
	err = s.destroy(func() (err error) {
		gone, err = s.kr.RetireTerms(ctx)
		return err
	})
	return gone, err
}

// AuthorizeSeal checks that the caller may seal the server.
func (s *Service) AuthorizeSeal(ctx context.Context) error { return s.operator(ctx, "seal/action") }

// AuthorizeRekey checks that the caller may replace the root key.
func (s *Service) AuthorizeRekey(ctx context.Context) error { return s.operator(ctx, "rekey/action") }

// AuthorizeIdentity checks that the caller may perform an identity operator action (action is
// one of "principals/read", "principals/write", "principals/delete",
// "principals/secrets/write", "principals/secrets/delete", "signingkeys/rotate/action"); the
// HTTP layer then calls the identity service, which the domain service does not hold.
func (s *Service) AuthorizeIdentity(ctx context.Context, action string) error {
	return s.operator(ctx, action)
}
