package rbac

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strongroom/strongroom/internal/store"
)

// PutRoleDefinition creates or replaces a custom role. The caller has validated it (GUID id,
// name, permissions, assignable scopes) and authorized the write. A built-in id is
// ErrRoleBuiltIn; a name another role has (case-insensitively, built-in names included) is
// ErrRoleNameExists.
func (s *Service) PutRoleDefinition(ctx context.Context, def RoleDefinition, by string) (RoleDefinition, bool, error) {
	def.ID = strings.ToLower(def.ID)
	def.BuiltIn, def.AssignableRoles = false, nil
	if _, ok := builtInByID[def.ID]; ok {
		return RoleDefinition{}, false, ErrRoleBuiltIn
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for _, r := range s.Roles() {
		if r.ID != def.ID && strings.EqualFold(r.Name, def.Name) {
			return RoleDefinition{}, false, ErrRoleNameExists
		}
	}
	old, exists := s.Role(def.ID)
	now := s.opts.Now().UTC()
	def.CreatedOn, def.CreatedBy = now, by
	if exists {
		def.CreatedOn, def.CreatedBy = old.CreatedOn, old.CreatedBy
	}
	def.UpdatedOn, def.UpdatedBy = now, by
	key, nameKey := prefixRole+def.ID, prefixRoleName+hashKey(def.Name)
	rec, err := s.seal(ctx, key, &roleRecord{V: recordVersion, RoleDefinition: def})
	if err != nil {
		return RoleDefinition{}, false, err
	}
	name, err := s.seal(ctx, nameKey, &nameRecord{V: recordVersion, Name: def.ID})
	if err != nil {
		return RoleDefinition{}, false, err
	}
	ops := []store.Op{store.RequireAbsent(key)}
	if exists {
		ops = []store.Op{} // replaced: the name record of its old name goes, its new one comes
		if oldKey := prefixRoleName + hashKey(old.Name); oldKey != nameKey {
			ops = append(ops, store.Delete(oldKey), store.RequireAbsent(nameKey))
		}
	} else {
		ops = append(ops, store.RequireAbsent(nameKey))
	}
	ops = append(ops, store.Put(key, rec), store.Put(nameKey, name))
	err = s.st.Apply(ctx, ops)
	if errors.Is(err, store.ErrConflict) {
		return RoleDefinition{}, false, ErrRoleNameExists // a racing node took the id or the name
	}
	if err != nil {
		return RoleDefinition{}, false, fmt.Errorf("storing role definition: %w", err)
	}
	if err := s.refreshRole(ctx, key); err != nil {
		return RoleDefinition{}, false, err
	}
	return def, !exists, nil
}

// DeleteRoleDefinition removes a custom role that nothing is assigned; found is false when
// there was no such custom role.
func (s *Service) DeleteRoleDefinition(ctx context.Context, id string) (RoleDefinition, bool, error) {
	id = strings.ToLower(id)
	if _, ok := builtInByID[id]; ok {
		return RoleDefinition{}, true, ErrRoleBuiltIn
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	def, ok := s.Role(id)
	if !ok {
		return RoleDefinition{}, false, nil
	}
	s.mu.RLock()
	inUse := s.assignmentsOfRoleLocked(id)
	s.mu.RUnlock()
	if inUse > 0 {
		return def, true, ErrRoleInUse
	}
	if err := s.st.Apply(ctx, []store.Op{store.Delete(prefixRole + id), store.Delete(prefixRoleName + hashKey(def.Name))}); err != nil {
		return RoleDefinition{}, false, fmt.Errorf("deleting role definition: %w", err)
	}
	if err := s.refreshRole(ctx, prefixRole+id); err != nil {
		return RoleDefinition{}, false, err
	}
	return def, true, nil
}
