package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/strongroom/strongroom/internal/store"
)

// dirState is this node's copy of the directory records verification and authorization read
// on every request: applications' credential ids, groups and their direct members, and
// directory role assignments. Like principalStates it is kept current by this service's own
// writes and, on every node of a cluster, by KeysApplied, so a removed secret, member or role
// counts on the very next request anywhere. Transitive group memberships are computed from it
// on demand and cached until the next group or membership change (closure).
type dirState struct {
	mu         sync.RWMutex
	apps       map[string]appState            // application object id -> state
	appByAppID map[string]string              // appId -> application object id
	groups     map[string]string              // group id -> display name
	members    map[string]map[string]string   // group id -> member id -> member type
	parents    map[string]map[string]struct{} // member id -> ids of the groups it is a direct member of
	roles      map[string]dirRoleRecord       // assignment id -> assignment
	// closure caches GroupsOf answers; it is replaced (under mu) by every group change, so a
	// reader holding mu.RLock always sees a cache that matches members and parents.
	closure atomic.Pointer[sync.Map]
}

type appState struct {
	appID string
	creds []string // key ids of its client secrets
}

func newDirState() *dirState {
	d := &dirState{}
	d.reset()
	return d
}

// reset empties d; callers hold mu (or own d exclusively).
func (d *dirState) reset() {
	d.apps, d.appByAppID = map[string]appState{}, map[string]string{}
	d.groups, d.members, d.parents = map[string]string{}, map[string]map[string]string{}, map[string]map[string]struct{}{}
	d.roles = map[string]dirRoleRecord{}
	d.closure.Store(new(sync.Map))
}

// invalidate drops the cached transitive memberships; callers hold mu for writing.
func (d *dirState) invalidate() { d.closure.Store(new(sync.Map)) }

func (d *dirState) setApp(id string, st appState, present bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.apps[id]; ok && d.appByAppID[old.appID] == id {
		delete(d.appByAppID, old.appID)
	}
	if present {
		d.apps[id] = st
		d.appByAppID[st.appID] = id
	} else {
		delete(d.apps, id)
	}
}

// appCreds reports whether the application with appID holds credential keyID.
func (d *dirState) appHasCred(appID, keyID string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.apps[d.appByAppID[appID]]
	return ok && slices.Contains(a.creds, keyID)
}

func (d *dirState) setGroup(id, name string, present bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if present {
		d.groups[id] = name
	} else {
		delete(d.groups, id)
	}
	d.invalidate()
}

func (d *dirState) setMember(groupID, memberID, typ string, present bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if present {
		if d.members[groupID] == nil {
			d.members[groupID] = map[string]string{}
		}
		d.members[groupID][memberID] = typ
		if d.parents[memberID] == nil {
			d.parents[memberID] = map[string]struct{}{}
		}
		d.parents[memberID][groupID] = struct{}{}
	} else {
		delete(d.members[groupID], memberID)
		if len(d.members[groupID]) == 0 {
			delete(d.members, groupID)
		}
		delete(d.parents[memberID], groupID)
		if len(d.parents[memberID]) == 0 {
			delete(d.parents, memberID)
		}
	}
	d.invalidate()
}

func (d *dirState) setRole(id string, rec dirRoleRecord, present bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if present {
		d.roles[id] = rec
	} else {
		delete(d.roles, id)
	}
}

// groupsOf returns the transitive groups of objectID, sorted; nil when none. The answer is
// shared with other callers and must not be modified.
func (d *dirState) groupsOf(objectID string) []string {
	if v, ok := d.closure.Load().Load(objectID); ok {
		return v.([]string)
	}
	d.mu.RLock()
	cache := d.closure.Load() // matches members and parents while mu is held
	if len(d.parents[objectID]) == 0 {
		d.mu.RUnlock()
		return nil // not worth a cache entry (and unknown ids must not fill the cache)
	}
	seen := map[string]struct{}{objectID: {}}
	var out []string
	queue := []string{objectID}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for g := range d.parents[cur] {
			if _, dup := seen[g]; dup {
				continue // cycles and diamonds are visited once
			}
			seen[g] = struct{}{}
			if _, exists := d.groups[g]; !exists {
				continue // a membership left behind by a deleted group counts for nothing
			}
			out = append(out, g)
			queue = append(queue, g)
		}
	}
	d.mu.RUnlock()
	slices.Sort(out)
	cache.Store(objectID, out)
	return out
}

// directMembers returns the direct members of a group (id -> type).
func (d *dirState) directMembers(groupID string) map[string]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]string, len(d.members[groupID]))
	for k, v := range d.members[groupID] {
		out[k] = v
	}
	return out
}

// parentsOf returns the groups objectID is a direct member of.
func (d *dirState) parentsOf(objectID string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.parents[objectID]))
	for g := range d.parents[objectID] {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (d *dirState) hasGroup(id string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.groups[id]
	return ok
}

// rolesOf returns the role template ids assigned to principalID, and the assignment ids.
func (d *dirState) rolesOf(principalID string) (roles, assignments []string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for id, r := range d.roles {
		if r.PrincipalID == principalID {
			roles, assignments = append(roles, r.RoleDefinitionID), append(assignments, id)
		}
	}
	return roles, assignments
}

// GroupsOf returns the object ids of every group objectID (a user, service principal or
// group) is a member of, directly or through nested groups, sorted; nil if none. It reads only
// this node's in-memory directory, which every committed membership change reaches before the
// next request (KeysApplied), and is safe for concurrent use. Repeated calls are a map lookup;
// the returned slice is shared and must not be modified.
func (s *Service) GroupsOf(objectID string) []string {
	if isCanonicalID(objectID) { // what tokens carry: no normalizing copy on the read path
		return s.dir.groupsOf(objectID)
	}
	if id, ok := normalizeID(objectID); ok {
		return s.dir.groupsOf(id)
	}
	return nil
}

// isCanonicalID reports whether id is a GUID in canonical lowercase form.
func isCanonicalID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// PrincipalType returns the directory type of an object id as Entra spells principalType:
// "User", "Group" or "ServicePrincipal"; false when no such object exists. It reads memory only.
func (s *Service) PrincipalType(objectID string) (string, bool) {
	id, ok := normalizeID(objectID)
	if !ok {
		return "", false
	}
	if st, ok := s.states.get(id); ok {
		return st.typ, true
	}
	if s.dir.hasGroup(id) {
		return TypeGroup, true
	}
	return "", false
}

// ResolvePrincipal finds a directory object by object id, application (client) id, or user
// principal name (case-insensitively), as role-assignment commands name assignees. It reads
// memory only; an unknown ref is ErrObjectNotFound.
func (s *Service) ResolvePrincipal(_ context.Context, ref string) (objectID, principalType string, err error) {
	ref = strings.TrimSpace(ref)
	if typ, ok := s.PrincipalType(ref); ok {
		id, _ := normalizeID(ref)
		return id, typ, nil
	}
	if id, ok := normalizeID(ref); ok {
		if oid, ok := s.states.byAppID(id); ok {
			return oid, TypeServicePrincipal, nil
		}
	}
	if strings.Contains(ref, "@") {
		if oid, ok := s.states.byUPN(strings.ToLower(ref)); ok {
			return oid, TypeUser, nil
		}
	}
	return "", "", fmt.Errorf("resolving principal %q: %w", echoID(ref), ErrObjectNotFound)
}

// echoID bounds a caller-supplied id before it goes into an error.
func echoID(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// loadDirectory reads every directory record into memory (at start, and on the cluster's
// refresh-everything marker); callers hold refreshMu.
func (s *Service) loadDirectory(ctx context.Context) error {
	fresh := newDirState()
	type scanned struct{ key, sealed string }
	scan := func(prefix string) ([]scanned, error) {
		var out []scanned
		err := s.st.Scan(ctx, prefix, "", func(k string, v []byte) bool {
			out = append(out, scanned{k, string(v)})
			return true
		})
		return out, err
	}
	apps, err := scan(prefixApplication)
	if err != nil {
		return fmt.Errorf("loading applications: %w", err)
	}
	for _, r := range apps {
		var rec applicationRecord
		if err := s.openRecord(ctx, r.key, []byte(r.sealed), &rec); err != nil {
			return fmt.Errorf("loading applications: %w", err)
		}
		fresh.apps[rec.ID] = appStateOf(&rec)
		fresh.appByAppID[rec.AppID] = rec.ID
	}
	groups, err := scan(prefixGroup)
	if err != nil {
		return fmt.Errorf("loading groups: %w", err)
	}
	for _, r := range groups {
		var rec groupRecord
		if err := s.openRecord(ctx, r.key, []byte(r.sealed), &rec); err != nil {
			return fmt.Errorf("loading groups: %w", err)
		}
		fresh.groups[rec.ID] = rec.DisplayName
	}
	members, err := scan(prefixMember)
	if err != nil {
		return fmt.Errorf("loading group members: %w", err)
	}
	for _, r := range members {
		var rec memberRecord
		if err := s.openRecord(ctx, r.key, []byte(r.sealed), &rec); err != nil {
			return fmt.Errorf("loading group members: %w", err)
		}
		gid, _, _ := strings.Cut(strings.TrimPrefix(r.key, prefixMember), "/")
		if fresh.members[gid] == nil {
			fresh.members[gid] = map[string]string{}
		}
		fresh.members[gid][rec.MemberID] = rec.Type
		if fresh.parents[rec.MemberID] == nil {
			fresh.parents[rec.MemberID] = map[string]struct{}{}
		}
		fresh.parents[rec.MemberID][gid] = struct{}{}
	}
	roles, err := scan(prefixDirRole)
	if err != nil {
		return fmt.Errorf("loading directory roles: %w", err)
	}
	for _, r := range roles {
		var rec dirRoleRecord
		if err := s.openRecord(ctx, r.key, []byte(r.sealed), &rec); err != nil {
			return fmt.Errorf("loading directory roles: %w", err)
		}
		fresh.roles[rec.ID] = rec
	}
	s.dir.mu.Lock()
	s.dir.apps, s.dir.appByAppID = fresh.apps, fresh.appByAppID
	s.dir.groups, s.dir.members, s.dir.parents = fresh.groups, fresh.members, fresh.parents
	s.dir.roles = fresh.roles
	s.dir.invalidate()
	s.dir.mu.Unlock()
	return nil
}

func appStateOf(rec *applicationRecord) appState {
	st := appState{appID: rec.AppID, creds: make([]string, len(rec.Secrets))}
	for i, c := range rec.Secrets {
		st.creds[i] = c.ID
	}
	return st
}

// refreshDirectoryKey re-reads the directory record at key into memory (KeysApplied and this
// service's own writes); it reports whether key is a directory key. Callers hold refreshMu.
func (s *Service) refreshDirectoryKey(ctx context.Context, key string) (bool, error) {
	switch {
	case strings.HasPrefix(key, prefixApplication):
		id := strings.TrimPrefix(key, prefixApplication)
		var rec applicationRecord
		err := s.getRecord(ctx, key, &rec)
		if err != nil {
			s.dir.setApp(id, appState{}, false) // fail closed: its secrets verify nothing
			return true, ignoreNotFound(err, key)
		}
		s.dir.setApp(id, appStateOf(&rec), true)
	case strings.HasPrefix(key, prefixUser):
		id := strings.TrimPrefix(key, prefixUser)
		var rec userRecord
		if err := s.getRecord(ctx, key, &rec); err != nil {
			s.states.set(id, principalState{}, false)
			return true, ignoreNotFound(err, key)
		}
		s.states.set(id, userStateOf(&rec), true)
	case strings.HasPrefix(key, prefixGroup):
		id := strings.TrimPrefix(key, prefixGroup)
		var rec groupRecord
		if err := s.getRecord(ctx, key, &rec); err != nil {
			s.dir.setGroup(id, "", false)
			return true, ignoreNotFound(err, key)
		}
		s.dir.setGroup(id, rec.DisplayName, true)
	case strings.HasPrefix(key, prefixMember):
		gid, mid, ok := strings.Cut(strings.TrimPrefix(key, prefixMember), "/")
		if !ok {
			return true, nil
		}
		var rec memberRecord
		if err := s.getRecord(ctx, key, &rec); err != nil {
			s.dir.setMember(gid, mid, "", false)
			return true, ignoreNotFound(err, key)
		}
		s.dir.setMember(gid, mid, rec.Type, true)
	case strings.HasPrefix(key, prefixDirRole):
		id := strings.TrimPrefix(key, prefixDirRole)
		var rec dirRoleRecord
		if err := s.getRecord(ctx, key, &rec); err != nil {
			s.dir.setRole(id, dirRoleRecord{}, false)
			return true, ignoreNotFound(err, key)
		}
		s.dir.setRole(id, rec, true)
	default:
		return false, nil
	}
	return true, nil
}

func ignoreNotFound(err error, key string) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("reloading %s: %w", key, err)
}

// refreshKeys brings memory up to date with keys after this service wrote them.
func (s *Service) refreshKeys(ctx context.Context, keys ...string) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	var errs []error
	for _, k := range keys {
		if strings.HasPrefix(k, prefixPrincipal) {
			errs = append(errs, s.refreshPrincipalLocked(ctx, strings.TrimPrefix(k, prefixPrincipal)))
			continue
		}
		_, err := s.refreshDirectoryKey(ctx, k)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keysOf returns the keys ops write (puts and deletes), for refreshKeys.
func keysOf(ops []store.Op) []string {
	var out []string
	for _, o := range ops {
		if o.Kind == store.OpPut || o.Kind == store.OpDelete {
			out = append(out, o.Key)
		}
	}
	return out
}

// apply commits ops and refreshes memory with what they wrote.
func (s *Service) apply(ctx context.Context, ops []store.Op) error {
	if err := s.st.Apply(ctx, ops); err != nil {
		return err
	}
	return s.refreshKeys(ctx, keysOf(ops)...)
}
