package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// Directory roles decide who may write the directory, as Entra's built-in roles do. Everyone
// authenticated may read it (Entra's default user permissions let members read users, groups,
// applications and service principals). Roles are assigned at the directory scope "/" only,
// directly to users and service principals (not through groups: Entra allows that only for
// role-assignable groups, which Strongroom does not have). The bootstrap admin holds Global
// Administrator by construction; that assignment is listed but cannot be deleted.

// DirPermission is a class of directory writes.
type DirPermission int

// Directory write permissions.
const (
	DirWriteApplications DirPermission = iota + 1 // applications, service principals, their secrets
	DirWriteUsers                                 // users
	DirWriteGroups                                // groups and their members
	DirWriteRoles                                 // directory role assignments
)

// Built-in directory role template ids (Entra's, unchanged).
const (
	RoleGlobalAdministrator          = "62e90394-69f5-4237-9190-012177145e10"
	RolePrivilegedRoleAdministrator  = "e8611ab8-c189-46e8-94e1-60213ab1f814"
	RoleApplicationAdministrator     = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	RoleUserAdministrator            = "fe930be7-5e62-47db-91af-98c3a49a38b1"
	RoleGroupsAdministrator          = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
	bootstrapRoleAssignmentID        = "strongroom-bootstrap-global-administrator"
	maxDirRoleAssignmentsPerIdentity = 64
)

// DirectoryRole is a built-in directory role and what it may write.
type DirectoryRole struct {
	ID          string
	DisplayName string
	Description string
	grants      []DirPermission
}

// DirectoryRoles are the built-in roles Strongroom supports, by template id.
var DirectoryRoles = []DirectoryRole{
	{RoleGlobalAdministrator, "Global Administrator", "Can manage all aspects of the directory.",
		[]DirPermission{DirWriteApplications, DirWriteUsers, DirWriteGroups, DirWriteRoles}},
	{RolePrivilegedRoleAdministrator, "Privileged Role Administrator", "Can manage directory role assignments.",
		[]DirPermission{DirWriteRoles}},
	{RoleApplicationAdministrator, "Application Administrator", "Can create and manage all aspects of app registrations and enterprise apps.",
		[]DirPermission{DirWriteApplications}},
	{RoleUserAdministrator, "User Administrator", "Can manage all aspects of users and groups.",
		[]DirPermission{DirWriteUsers, DirWriteGroups}},
	{RoleGroupsAdministrator, "Groups Administrator", "Can manage all aspects of groups.",
		[]DirPermission{DirWriteGroups}},
}

func directoryRole(id string) (DirectoryRole, bool) {
	i := slices.IndexFunc(DirectoryRoles, func(r DirectoryRole) bool { return strings.EqualFold(r.ID, id) })
	if i < 0 {
		return DirectoryRole{}, false
	}
	return DirectoryRoles[i], true
}

// DirectoryRoleAssignment is Graph's unifiedRoleAssignment.
type DirectoryRoleAssignment struct {
	ID               string
	PrincipalID      string
	RoleDefinitionID string
	DirectoryScopeID string
}

// AuthorizeDirectoryWrite reports whether the principal callerID may make writes of class
// perm: nil when it may, ErrDirectoryForbidden otherwise.
func (s *Service) AuthorizeDirectoryWrite(callerID string, perm DirPermission) error {
	_, err := s.DirectoryWriteGrant(callerID, perm)
	return err
}

// DirectoryWriteGrant is AuthorizeDirectoryWrite that also names the directory role
// assignment that allows the write, for the audit record.
func (s *Service) DirectoryWriteGrant(callerID string, perm DirPermission) (assignmentID string, err error) {
	if id, ok := normalizeID(callerID); ok {
		if id == s.AdminObjectID() {
			return bootstrapRoleAssignmentID, nil
		}
		if st, ok := s.states.get(id); ok && !st.disabled {
			roles, assignments := s.dir.rolesOf(id)
			for i, r := range roles {
				if dr, ok := directoryRole(r); ok && slices.Contains(dr.grants, perm) {
					return assignments[i], nil
				}
			}
		}
	}
	return "", ErrDirectoryForbidden
}

// DirectoryWriteGrantOn is DirectoryWriteGrant for a write to an existing principal target.
// As in Entra, a principal holding a directory role (an administrator) may be reset, disabled
// or deleted only by a Global or Privileged Role Administrator: otherwise a User
// Administrator could take over a Global Administrator by setting its password.
func (s *Service) DirectoryWriteGrantOn(callerID string, perm DirPermission, targetID string) (string, error) {
	grant, err := s.DirectoryWriteGrant(callerID, perm)
	if err != nil {
		return "", err
	}
	target, ok := normalizeID(targetID)
	if !ok || !s.holdsDirectoryRole(target) || s.privilegedAdmin(callerID) {
		return grant, nil
	}
	return "", ErrDirectoryForbidden
}

// holdsDirectoryRole reports whether id holds any directory role (the bootstrap admin holds
// Global Administrator).
func (s *Service) holdsDirectoryRole(id string) bool {
	if id == s.AdminObjectID() {
		return true
	}
	roles, _ := s.dir.rolesOf(id)
	return len(roles) > 0
}

// privilegedAdmin reports whether callerID is a Global or Privileged Role Administrator.
func (s *Service) privilegedAdmin(callerID string) bool {
	id, ok := normalizeID(callerID)
	if !ok {
		return false
	}
	if id == s.AdminObjectID() {
		return true
	}
	if st, ok := s.states.get(id); !ok || st.disabled {
		return false
	}
	roles, _ := s.dir.rolesOf(id)
	for _, r := range roles {
		if strings.EqualFold(r, RoleGlobalAdministrator) || strings.EqualFold(r, RolePrivilegedRoleAdministrator) {
			return true
		}
	}
	return false
}

// ListDirectoryRoleAssignments returns every directory role assignment, the bootstrap admin's
// first, then by id.
func (s *Service) ListDirectoryRoleAssignments() []DirectoryRoleAssignment {
	var out []DirectoryRoleAssignment
	if adm := s.AdminObjectID(); adm != "" {
		out = append(out, DirectoryRoleAssignment{ID: bootstrapRoleAssignmentID, PrincipalID: adm, RoleDefinitionID: RoleGlobalAdministrator, DirectoryScopeID: "/"})
	}
	s.dir.mu.RLock()
	ids := make([]string, 0, len(s.dir.roles))
	for id := range s.dir.roles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := s.dir.roles[id]
		out = append(out, DirectoryRoleAssignment{ID: r.ID, PrincipalID: r.PrincipalID, RoleDefinitionID: r.RoleDefinitionID, DirectoryScopeID: r.DirectoryScopeID})
	}
	s.dir.mu.RUnlock()
	return out
}

// GetDirectoryRoleAssignment returns one directory role assignment by id.
func (s *Service) GetDirectoryRoleAssignment(id string) (DirectoryRoleAssignment, error) {
	for _, a := range s.ListDirectoryRoleAssignments() {
		if a.ID == id {
			return a, nil
		}
	}
	return DirectoryRoleAssignment{}, ErrObjectNotFound
}

// AssignDirectoryRole gives a user or service principal a built-in directory role at "/".
func (s *Service) AssignDirectoryRole(ctx context.Context, principalID, roleDefinitionID, scope string) (DirectoryRoleAssignment, error) {
	role, ok := directoryRole(roleDefinitionID)
	if !ok {
		return DirectoryRoleAssignment{}, badInput("Invalid value specified for property 'roleDefinitionId': '%s' is not a supported built-in directory role template id.", echoID(roleDefinitionID))
	}
	if scope != "/" {
		return DirectoryRoleAssignment{}, badInput("Invalid value specified for property 'directoryScopeId': only '/' is supported.")
	}
	pid, ok := objectID(principalID)
	if !ok {
		return DirectoryRoleAssignment{}, badInput("Invalid value specified for property 'principalId'.")
	}
	pKey, typ, err := s.objectKey(ctx, pid)
	if errors.Is(err, ErrObjectNotFound) {
		return DirectoryRoleAssignment{}, badInput("The principal '%s' does not exist in the directory.", pid)
	}
	if err != nil {
		return DirectoryRoleAssignment{}, fmt.Errorf("assigning directory role: %w", err)
	}
	if typ == TypeGroup {
		return DirectoryRoleAssignment{}, badInput("Directory roles can be assigned to users and service principals only.")
	}
	roles, _ := s.dir.rolesOf(pid)
	if slices.Contains(roles, role.ID) || (pid == s.AdminObjectID() && role.ID == RoleGlobalAdministrator) {
		return DirectoryRoleAssignment{}, conflict("A conflicting object with one or more of the specified property values is present in the directory.")
	}
	if len(roles) >= maxDirRoleAssignmentsPerIdentity {
		return DirectoryRoleAssignment{}, conflict("The principal already holds the most directory role assignments it may.")
	}
	rec := dirRoleRecord{V: recordVersion, ID: uuid.NewString(), PrincipalID: pid, RoleDefinitionID: role.ID, DirectoryScopeID: "/", CreatedAt: s.now().UTC()}
	key := prefixDirRole + rec.ID
	put, err := s.putRecord(ctx, key, rec)
	if err != nil {
		return DirectoryRoleAssignment{}, fmt.Errorf("assigning directory role: %w", err)
	}
	if err := s.apply(ctx, []store.Op{store.RequireEqual(pKey, mustGet(ctx, s, pKey)), store.RequireAbsent(key), put}); err != nil {
		return DirectoryRoleAssignment{}, fmt.Errorf("assigning directory role: %w", err)
	}
	return DirectoryRoleAssignment{ID: rec.ID, PrincipalID: pid, RoleDefinitionID: role.ID, DirectoryScopeID: "/"}, nil
}

// DeleteDirectoryRoleAssignment removes a directory role assignment; it stops counting on the
// next request on every node. The bootstrap admin's cannot be removed.
func (s *Service) DeleteDirectoryRoleAssignment(ctx context.Context, id string) error {
	if id == bootstrapRoleAssignmentID {
		return fmt.Errorf("deleting directory role assignment: %w", ErrProtectedPrincipal)
	}
	rid, ok := normalizeID(id)
	if !ok {
		return ErrObjectNotFound
	}
	key := prefixDirRole + rid
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return ErrObjectNotFound
	}
	if err != nil {
		return fmt.Errorf("deleting directory role assignment: %w", err)
	}
	if err := s.apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)}); err != nil {
		return fmt.Errorf("deleting directory role assignment: %w", err)
	}
	return nil
}
