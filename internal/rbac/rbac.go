// Package rbac keeps Strongroom's role-based access control state: role assignments, custom
// role definitions beside Azure's built-in ones (builtin.go), and an in-memory index of both
// that answers authorization questions without touching the store. It stores and indexes; it
// does not decide who may change what: the service package's guard authorizes every change
// (Microsoft.Authorization/roleAssignments/write and friends) before calling in here, and the
// decision itself is authz.Decide.
//
// Invariants:
//
//   - The index is a copy of the records, kept current by this service's own writes and, on
//     every node of a cluster, by KeysApplied, so that a deleted assignment stops granting on
//     the very next request on every node.
//   - A (scope, role, principal) triple is assigned at most once: a uniqueness record written
//     in the same batch as the assignment, guarded by RequireAbsent, keeps racing nodes honest.
//   - Every record is sealed by the keyring's system data key under its own storage key.
//
// Storage layout (every value a sealed JSON record carrying "v": 1; readers reject others):
//
//	rbac/assignment/<guid>      assignmentRecord
//	rbac/assignment-key/<hash>  the assignment's name: hash = SHA-256 of lower(scope)|role|lower(principal)
//	rbac/role/<guid>            roleRecord: a custom role definition
//	rbac/role-name/<hash>       the role's GUID: hash = SHA-256 of lower(roleName)
//	rbac/pim/...                just-in-time elevation (pim.go)
//
// The bootstrap admin holds Owner, Key Vault Administrator and Strongroom Operator at "/" through three assignments
// that are not stored (BootstrapAssignments): they cannot be deleted, and they exist before the
// first write.
package rbac

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Storage keys; see the package documentation.
const (
	prefixAssignment    = "rbac/assignment/"
	prefixAssignmentKey = "rbac/assignment-key/"
	prefixRole          = "rbac/role/"
	prefixRoleName      = "rbac/role-name/"
	recordVersion       = 1
)

// Sentinel errors; the service package maps them to ARM's codes.
var (
	ErrAssignmentExists  = errors.New("role assignment exists")
	ErrAssignmentChanged = errors.New("role assignment cannot be updated")
	ErrNotFound          = errors.New("not found")
	ErrProtected         = errors.New("the bootstrap admin's role assignments cannot be deleted")
	ErrRoleNameExists    = errors.New("a role definition with the same name exists")
	ErrRoleInUse         = errors.New("the role definition has assignments")
	ErrRoleBuiltIn       = errors.New("built-in role definitions cannot be changed")
	ErrUnknownRole       = errors.New("unknown role definition")
)

// Assignment is a role assignment as stored (and as the wire needs it).
type Assignment struct {
	Name             string    `json:"name"` // a GUID, lower case
	Scope            string    `json:"scope"`
	RoleID           string    `json:"roleDefinitionId"` // role GUID, lower case
	PrincipalID      string    `json:"principalId"`
	PrincipalType    string    `json:"principalType"`
	Description      string    `json:"description,omitempty"`
	Condition        string    `json:"condition,omitempty"`
	ConditionVersion string    `json:"conditionVersion,omitempty"`
	CreatedOn        time.Time `json:"createdOn"`
	UpdatedOn        time.Time `json:"updatedOn"`
	CreatedBy        string    `json:"createdBy,omitempty"`
	UpdatedBy        string    `json:"updatedBy,omitempty"`
	// EndsAt, when set, ends the assignment by the clock (a just-in-time activation): from
	// then on it grants nothing, whether or not it has been removed yet.
	EndsAt time.Time `json:"endsAt,omitzero"`
	// StartsAt, when set, is when it begins to grant.
	StartsAt time.Time `json:"startsAt,omitzero"`
	// ViaGroup, when set, is the group whose eligibility the activation came from: it grants
	// only while the principal is still a member (pim.go).
	ViaGroup string `json:"viaGroup,omitempty"`
	// BuiltIn marks the bootstrap admin's assignments, which are not stored.
	BuiltIn bool `json:"-"`

	id string // ID(), computed once when the assignment enters the index
}

// ActiveAt reports whether the assignment grants at t (its time window, if any, holds t).
func (a *Assignment) ActiveAt(t time.Time) bool {
	return (a.StartsAt.IsZero() || !t.Before(a.StartsAt)) && (a.EndsAt.IsZero() || t.Before(a.EndsAt))
}

// ID is the assignment's ARM resource id.
func (a *Assignment) ID() string {
	if a.id != "" {
		return a.id
	}
	return strings.TrimRight(a.Scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + a.Name
}

type assignmentRecord struct {
	V int `json:"v"`
	Assignment
}

// RoleDefinition is a custom role definition as stored.
type RoleDefinition struct {
	authz.Role
	CreatedOn time.Time `json:"createdOn"`
	UpdatedOn time.Time `json:"updatedOn"`
	CreatedBy string    `json:"createdBy,omitempty"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

type roleRecord struct {
	V int `json:"v"`
	RoleDefinition
}

type nameRecord struct {
	V    int    `json:"v"`
	Name string `json:"name"`
}

// Options configures a Service.
type Options struct {
	// AdminObjectID is the bootstrap admin, who holds Owner and Key Vault Administrator at "/".
	AdminObjectID string
	Now           func() time.Time
}

// Service is safe for concurrent use.
type Service struct {
	st   store.Store
	kr   *keyring.Keyring
	opts Options

	writeMu sync.Mutex // serializes this node's changes so uniqueness checks see each other

	mu          sync.RWMutex
	assignments map[string]*Assignment   // name -> assignment (stored ones)
	byPrincipal map[string][]*Assignment // lower principal id -> its assignments (stored and built-in)
	roles       map[string]*RoleDefinition
	bootstrap   []*Assignment

	pim pimIndex // just-in-time elevation records (pim.go)
}

// New loads every assignment and custom role into memory.
func New(ctx context.Context, st store.Store, kr *keyring.Keyring, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{st: st, kr: kr, opts: opts}
	if opts.AdminObjectID != "" {
		s.bootstrap = BootstrapAssignments(opts.AdminObjectID)
	}
	if err := s.loadAll(ctx); err != nil {
		return nil, err
	}
	if err := s.loadPIM(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// BootstrapDecider is a fixed decider holding only the bootstrap admin's assignments (tests and
// tools that run without a store).
func BootstrapDecider(adminObjectID string) authz.Assignments {
	var out authz.Assignments
	for _, a := range BootstrapAssignments(adminObjectID) {
		out = append(out, authz.Assignment{ID: a.ID(), PrincipalID: a.PrincipalID, Role: builtInByID[a.RoleID], Scope: a.Scope})
	}
	return out
}

// bootstrapNamespace derives the bootstrap assignments' names, so that they are the same on
// every node and across restarts.
var bootstrapNamespace = uuid.MustParse("5c7d7c0e-2f55-4b0c-9d5e-6b1a2f1e9a10")

// BootstrapAssignments are the admin's built-in assignments at "/".
func BootstrapAssignments(adminObjectID string) []*Assignment {
	out := make([]*Assignment, 0, 2)
	for _, role := range []string{OwnerID, KeyVaultAdministratorID, StrongroomOperatorID} {
		out = append(out, &Assignment{
			Name:  uuid.NewSHA1(bootstrapNamespace, []byte(strings.ToLower(adminObjectID)+"/"+role)).String(),
			Scope: "/", RoleID: role, PrincipalID: strings.ToLower(adminObjectID), PrincipalType: "ServicePrincipal",
			Description: "The bootstrap admin's built-in assignment.", BuiltIn: true,
		})
	}
	return out
}

// loadAll replaces the index with what the store holds (at start, and when a cluster store
// rebinds or restores; never per request).
func (s *Service) loadAll(ctx context.Context) error {
	assignments := map[string]*Assignment{}
	roles := map[string]*RoleDefinition{}
	var openErr error
	err := s.st.Scan(ctx, prefixAssignment, "", func(key string, raw []byte) bool {
		var rec assignmentRecord
		if openErr = s.open(ctx, key, raw, &rec); openErr != nil {
			return false
		}
		a := rec.Assignment
		assignments[a.Name] = &a
		return true
	})
	if err == nil {
		err = openErr
	}
	if err == nil {
		err = s.st.Scan(ctx, prefixRole, "", func(key string, raw []byte) bool {
			var rec roleRecord
			if openErr = s.open(ctx, key, raw, &rec); openErr != nil {
				return false
			}
			r := rec.RoleDefinition
			roles[r.ID] = &r
			return true
		})
	}
	if err == nil {
		err = openErr
	}
	if err != nil {
		return fmt.Errorf("loading role assignments: %w", err)
	}
	s.mu.Lock()
	s.assignments, s.roles = assignments, roles
	s.reindexLocked()
	s.mu.Unlock()
	return nil
}

// reindexLocked rebuilds byPrincipal from assignments (changes are rare; decisions are not).
func (s *Service) reindexLocked() {
	by := make(map[string][]*Assignment, len(s.assignments)+1)
	for _, a := range s.bootstrap {
		a.id = a.ID()
		by[a.PrincipalID] = append(by[a.PrincipalID], a)
	}
	for _, a := range s.assignments {
		if a.id == "" {
			a.id = a.ID()
		}
		p := strings.ToLower(a.PrincipalID)
		by[p] = append(by[p], a)
	}
	s.byPrincipal = by
}

// KeysApplied refreshes the index for keys a replicated store applied on this node; the
// keyring's key is the "refresh everything" marker.
func (s *Service) KeysApplied(ctx context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		switch {
		case k == keyring.RingKey:
			errs = append(errs, s.loadAll(ctx), s.loadPIM(ctx))
		case strings.HasPrefix(k, prefixPIM):
			errs = append(errs, s.refreshPIM(ctx, k))
		case strings.HasPrefix(k, prefixAssignment):
			errs = append(errs, s.refreshAssignment(ctx, k))
		case strings.HasPrefix(k, prefixRole):
			errs = append(errs, s.refreshRole(ctx, k))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) refreshAssignment(ctx context.Context, key string) error {
	name := strings.TrimPrefix(key, prefixAssignment)
	var rec assignmentRecord
	found, err := s.get(ctx, key, &rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		delete(s.assignments, name) // fail closed: an unreadable assignment grants nothing
		s.reindexLocked()
		return fmt.Errorf("reloading role assignment %s: %w", name, err)
	case !found:
		delete(s.assignments, name)
	default:
		a := rec.Assignment
		s.assignments[name] = &a
	}
	s.reindexLocked()
	return nil
}

func (s *Service) refreshRole(ctx context.Context, key string) error {
	id := strings.TrimPrefix(key, prefixRole)
	var rec roleRecord
	found, err := s.get(ctx, key, &rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		delete(s.roles, id)
		return fmt.Errorf("reloading role definition %s: %w", id, err)
	case !found:
		delete(s.roles, id)
	default:
		r := rec.RoleDefinition
		s.roles[id] = &r
	}
	return nil
}

// Decide answers req from the index (req.Groups are the caller's groups, from the directory):
// the caller's own assignments first, then each group's, stopping at the first that grants.
// Nothing is allocated; each assignment costs a scope boundary check unless it is related.
func (s *Service) Decide(req authz.Request) authz.Decision {
	now := s.opts.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.grantLocked(req, req.PrincipalID, now); ok {
		return authz.Decision{Allowed: true, AssignmentID: id, Reason: authz.ReasonAllowed}
	}
	for _, g := range req.Groups {
		if id, ok := s.grantLocked(req, g, now); ok {
			return authz.Decision{Allowed: true, AssignmentID: id, Reason: authz.ReasonAllowed}
		}
	}
	return authz.Decision{Reason: authz.ReasonNoRBAC}
}

// grantLocked returns the id of an active assignment of principal that grants req.
func (s *Service) grantLocked(req authz.Request, principal string, now time.Time) (string, bool) {
	for _, a := range s.byPrincipal[strings.ToLower(principal)] {
		if !authz.ScopeContains(a.Scope, req.Scope) || !a.ActiveAt(now) || a.ViaGroup != "" && !memberOf(req.Groups, a.ViaGroup) {
			continue
		}
		if role := s.roleLocked(a.RoleID); role != nil && authz.Grants(role, req) { // a deleted custom role grants nothing
			return a.id, true
		}
	}
	return "", false
}

func (s *Service) roleLocked(id string) *authz.Role {
	if r, ok := builtInByID[id]; ok {
		return r
	}
	if r, ok := s.roles[id]; ok {
		return &r.Role
	}
	return nil
}

// Role returns the role definition with the given GUID (built-in or custom).
func (s *Service) Role(id string) (RoleDefinition, bool) {
	id = strings.ToLower(id)
	if r, ok := builtInByID[id]; ok {
		return RoleDefinition{Role: *r}, true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r, ok := s.roles[id]; ok {
		return *r, true
	}
	return RoleDefinition{}, false
}

// Roles returns every role definition, built-in first.
func (s *Service) Roles() []RoleDefinition {
	out := make([]RoleDefinition, 0, len(BuiltInRoles)+len(s.roles))
	for _, r := range BuiltInRoles {
		out = append(out, RoleDefinition{Role: *r})
	}
	s.mu.RLock()
	for _, r := range s.roles {
		out = append(out, *r)
	}
	s.mu.RUnlock()
	return out
}

func (s *Service) open(ctx context.Context, key string, sealed []byte, v interface{ version() int }) error {
	pt, err := s.kr.Open(ctx, keyring.SystemKeyID, key, sealed)
	if err != nil {
		return err
	}
	err = json.Unmarshal(pt, v)
	clear(pt)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	if got := v.version(); got != recordVersion {
		return fmt.Errorf("decoding %s: unsupported record version %d (this build reads %d)", key, got, recordVersion)
	}
	return nil
}

func (s *Service) get(ctx context.Context, key string, v interface{ version() int }) (bool, error) {
	raw, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, s.open(ctx, key, raw, v)
}

func (s *Service) seal(ctx context.Context, key string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", key, err)
	}
	return s.kr.Seal(ctx, keyring.SystemKeyID, key, b)
}

func (r *assignmentRecord) version() int { return r.V }
func (r *roleRecord) version() int       { return r.V }
func (r *nameRecord) version() int       { return r.V }

func hashKey(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{'|'})
		}
		h.Write([]byte(strings.ToLower(p)))
	}
	return hex.EncodeToString(h.Sum(nil))
}
