package rbac

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/store"
)

// CreateAssignment stores a new assignment. The caller has validated the scope, the principal
// and the role, and authorized the write. Creating an assignment of an existing name with the
// same scope, role and principal, or a second assignment of the same triple, is
// ErrAssignmentExists; the same name with anything else is ErrAssignmentChanged.
func (s *Service) CreateAssignment(ctx context.Context, a Assignment, by string) (Assignment, error) {
	a.Name, a.RoleID, a.PrincipalID = strings.ToLower(a.Name), strings.ToLower(a.RoleID), strings.ToLower(a.PrincipalID)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if old, ok := s.Assignment(a.Name); ok {
		if sameTriple(&old, &a) {
			return old, ErrAssignmentExists
		}
		return old, ErrAssignmentChanged
	}
	if _, ok := s.Role(a.RoleID); !ok {
		return Assignment{}, ErrUnknownRole
	}
	for _, b := range s.bootstrap {
		if sameTriple(b, &a) {
			return *b, ErrAssignmentExists
		}
	}
	now := s.opts.Now().UTC()
	a.CreatedOn, a.UpdatedOn, a.CreatedBy, a.UpdatedBy, a.BuiltIn = now, now, by, by, false
	key := prefixAssignment + a.Name
	tupleKey := prefixAssignmentKey + hashKey(a.Scope, a.RoleID, a.PrincipalID)
	rec, err := s.seal(ctx, key, &assignmentRecord{V: recordVersion, Assignment: a})
	if err != nil {
		return Assignment{}, err
	}
	tuple, err := s.seal(ctx, tupleKey, &nameRecord{V: recordVersion, Name: a.Name})
	if err != nil {
		return Assignment{}, err
	}
	err = s.st.Apply(ctx, []store.Op{store.RequireAbsent(key), store.RequireAbsent(tupleKey), store.Put(key, rec), store.Put(tupleKey, tuple)})
	if errors.Is(err, store.ErrConflict) {
		// Another node (or an earlier request) holds the name or the triple.
		if refreshErr := s.refreshAssignment(ctx, key); refreshErr != nil {
			return Assignment{}, refreshErr
		}
		if old, ok := s.Assignment(a.Name); ok && !sameTriple(&old, &a) {
			return old, ErrAssignmentChanged
		}
		return Assignment{}, ErrAssignmentExists
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("storing role assignment: %w", err)
	}
	if err := s.refreshAssignment(ctx, key); err != nil {
		return Assignment{}, err
	}
	return a, nil
}

func sameTriple(a, b *Assignment) bool {
	return strings.EqualFold(strings.TrimRight(a.Scope, "/"), strings.TrimRight(b.Scope, "/")) &&
		strings.EqualFold(a.RoleID, b.RoleID) && strings.EqualFold(a.PrincipalID, b.PrincipalID)
}

// Assignment returns the assignment with the given name (stored or built-in).
func (s *Service) Assignment(name string) (Assignment, bool) {
	name = strings.ToLower(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a, ok := s.assignments[name]; ok {
		return *a, true
	}
	for _, b := range s.bootstrap {
		if b.Name == name {
			return *b, true
		}
	}
	return Assignment{}, false
}

// DeleteAssignment removes the named assignment and returns it; found is false when there was
// none. The bootstrap admin's assignments are ErrProtected.
func (s *Service) DeleteAssignment(ctx context.Context, name string) (Assignment, bool, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	a, ok := s.Assignment(name)
	if !ok {
		return Assignment{}, false, nil
	}
	if a.BuiltIn {
		return a, true, ErrProtected
	}
	if err := s.st.Apply(ctx, deleteOps(&a)); err != nil {
		return Assignment{}, false, fmt.Errorf("deleting role assignment: %w", err)
	}
	if err := s.refreshAssignment(ctx, prefixAssignment+a.Name); err != nil {
		return Assignment{}, false, err
	}
	return a, true, nil
}

func deleteOps(a *Assignment) []store.Op {
	return []store.Op{store.Delete(prefixAssignment + a.Name), store.Delete(prefixAssignmentKey + hashKey(a.Scope, a.RoleID, a.PrincipalID))}
}

// DeleteAssignmentsWithin removes every stored assignment at scope or below it and returns how
// many it removed.
func (s *Service) DeleteAssignmentsWithin(ctx context.Context, scope string) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ops, names := s.deletionOpsWithin(scope)
	if len(ops) == 0 {
		return 0, nil
	}
	if err := s.st.Apply(ctx, ops); err != nil {
		return 0, fmt.Errorf("deleting the role assignments within %s: %w", scope, err)
	}
	removed := 0
	for _, n := range names {
		if !strings.HasPrefix(n, prefixPIM) {
			removed++
		}
	}
	return removed, s.Refresh(ctx, names)
}

// DeletionOpsWithin returns the ops that delete every stored assignment at scope or below it,
// for a caller that deletes the resource in the same batch (a deleted vault's assignments go
// with it, as in Key Vault, so that a vault later made with the same name inherits none), and
// the names to Refresh once the batch is applied.
func (s *Service) DeletionOpsWithin(scope string) ([]store.Op, []string) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.deletionOpsWithin(scope)
}

func (s *Service) deletionOpsWithin(scope string) ([]store.Op, []string) {
	doomed := s.ListAssignments(func(a *Assignment) bool { return !a.BuiltIn && authz.ScopeContains(scope, a.Scope) })
	var ops []store.Op
	names := make([]string, 0, len(doomed))
	for i := range doomed {
		ops = append(ops, deleteOps(&doomed[i])...)
		names = append(names, doomed[i].Name)
	}
	pimOps, pimKeys := s.pimDeletionOpsWithin(scope) // eligibilities, activations and policies too (pim.go)
	return append(ops, pimOps...), append(names, pimKeys...)
}

// Refresh re-reads the named assignments into the index (after a batch the caller applied).
func (s *Service) Refresh(ctx context.Context, names []string) error {
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, prefixPIM) {
			errs = append(errs, s.refreshPIM(ctx, n)) // a key of pimDeletionOpsWithin
			continue
		}
		errs = append(errs, s.refreshAssignment(ctx, prefixAssignment+n))
	}
	return errors.Join(errs...)
}

// ListAssignments returns the assignments keep accepts (built-in ones included), ordered by
// scope and then name.
func (s *Service) ListAssignments(keep func(*Assignment) bool) []Assignment {
	var out []Assignment
	s.mu.RLock()
	for _, a := range s.bootstrap {
		if keep(a) {
			out = append(out, *a)
		}
	}
	for _, a := range s.assignments {
		if keep(a) {
			out = append(out, *a)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if c := strings.Compare(strings.ToLower(out[i].Scope), strings.ToLower(out[j].Scope)); c != 0 {
			return c < 0
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// assignmentsOfRoleLocked counts the stored assignments of a role; the caller holds s.mu.
func (s *Service) assignmentsOfRoleLocked(roleID string) int {
	n := 0
	for _, a := range s.assignments {
		if a.RoleID == roleID {
			n++
		}
	}
	return n
}
