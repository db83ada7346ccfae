package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// principalState is what verification needs to know about a principal. Every verification,
// cache hits included, checks the token against it: the principal must exist and be enabled,
// the token's generation must be the principal's (disabling bumps it, so re-enabling does not
// revive older tokens) and the credential that minted the token must still exist.
type principalState struct {
	disabled bool
	gen      uint64
	creds    []string // key ids of its own credentials (client secrets; a user's password)
	typ      string   // TypeServicePrincipal or TypeUser
	appID    string   // service principals: its application's credentials count too
	upn      string   // users: lower-cased user principal name
}

// principalStates maps object ids to states. It is a copy of the principal records, kept
// current by this service's own writes and, on every node of a cluster, by KeysApplied.
type principalStates struct {
	mu sync.RWMutex
	m  map[string]principalState
	// Indexes derived from m, for ResolvePrincipal.
	appIDs map[string]string // appId -> service principal object id
	upns   map[string]string // lower-cased UPN -> user object id
}

func (p *principalStates) get(objectID string) (principalState, bool) {
	p.mu.RLock()
	st, ok := p.m[objectID]
	p.mu.RUnlock()
	return st, ok
}

func (p *principalStates) set(objectID string, st principalState, present bool) {
	p.mu.Lock()
	if p.appIDs == nil {
		p.appIDs, p.upns = map[string]string{}, map[string]string{}
	}
	if old, ok := p.m[objectID]; ok {
		if old.appID != "" && p.appIDs[old.appID] == objectID {
			delete(p.appIDs, old.appID)
		}
		if old.upn != "" && p.upns[old.upn] == objectID {
			delete(p.upns, old.upn)
		}
	}
	if present {
		p.m[objectID] = st
		if st.appID != "" {
			p.appIDs[st.appID] = objectID
		}
		if st.upn != "" {
			p.upns[st.upn] = objectID
		}
	} else {
		delete(p.m, objectID)
	}
	p.mu.Unlock()
}

// replace swaps in a whole new map (and rebuilds the indexes).
func (p *principalStates) replace(m map[string]principalState) {
	appIDs, upns := map[string]string{}, map[string]string{}
	for id, st := range m {
		if st.appID != "" {
			appIDs[st.appID] = id
		}
		if st.upn != "" {
			upns[st.upn] = id
		}
	}
	p.mu.Lock()
	p.m, p.appIDs, p.upns = m, appIDs, upns
	p.mu.Unlock()
}

func (p *principalStates) byAppID(appID string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	id, ok := p.appIDs[appID]
	return id, ok
}

func (p *principalStates) byUPN(upn string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	id, ok := p.upns[upn]
	return id, ok
}

func stateOf(rec *principalRecord) principalState {
	st := principalState{disabled: rec.Disabled, gen: rec.Generation, creds: make([]string, len(rec.Secrets)),
		typ: TypeServicePrincipal, appID: rec.AppID}
	for i, c := range rec.Secrets {
		st.creds[i] = c.ID
	}
	return st
}

func userStateOf(rec *userRecord) principalState {
	return principalState{disabled: rec.Disabled, gen: rec.Generation, creds: []string{rec.Password.ID}, typ: TypeUser,
		upn: strings.ToLower(rec.UPN)}
}

// loadPrincipalStates reads every principal record (at start, unseal, and when a cluster store
// rebinds or restores; never per request).
func (s *Service) loadPrincipalStates(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	type raw struct {
		key    string
		sealed []byte
	}
	var recs []raw
	err := s.st.Scan(ctx, prefixPrincipal, "", func(key string, value []byte) bool {
		recs = append(recs, raw{key, value})
		return true
	})
	if err != nil {
		return fmt.Errorf("loading principals: %w", err)
	}
	m := make(map[string]principalState, len(recs))
	for _, r := range recs {
		var rec principalRecord
		if err := s.openRecord(ctx, r.key, r.sealed, &rec); err != nil {
			return fmt.Errorf("loading principals: %w", err)
		}
		m[rec.ObjectID] = stateOf(&rec)
	}
	var users []raw
	err = s.st.Scan(ctx, prefixUser, "", func(key string, value []byte) bool {
		users = append(users, raw{key, value})
		return true
	})
	if err != nil {
		return fmt.Errorf("loading users: %w", err)
	}
	for _, r := range users {
		var rec userRecord
		if err := s.openRecord(ctx, r.key, r.sealed, &rec); err != nil {
			return fmt.Errorf("loading users: %w", err)
		}
		m[rec.ObjectID] = userStateOf(&rec)
	}
	if err := s.loadDirectory(ctx); err != nil {
		return err
	}
	s.states.replace(m)
	return nil
}

// refreshPrincipal re-reads one principal record into the state map. Refreshes are serialized
// and each reads the store after the write it follows was applied, so the map never goes back
// to an older record.
func (s *Service) refreshPrincipal(ctx context.Context, objectID string) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	return s.refreshPrincipalLocked(ctx, objectID)
}

// refreshPrincipalLocked is refreshPrincipal with refreshMu held.
func (s *Service) refreshPrincipalLocked(ctx context.Context, objectID string) error {
	rec, err := s.loadPrincipal(ctx, objectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.states.set(objectID, principalState{}, false)
		return nil
	case err != nil:
		// Fail closed: a principal whose record cannot be read verifies nothing.
		s.states.set(objectID, principalState{}, false)
		return fmt.Errorf("reloading principal %s: %w", objectID, err)
	}
	s.states.set(objectID, stateOf(rec), true)
	return nil
}

// KeysApplied tells the service that a replicated store applied writes to keys on this node
// (a cluster calls it for every applied batch, on every node), so that a principal disabled,
// deleted or stripped of a secret, or a rotated signing key, takes effect here at once. The
// keyring's key is the cluster's "refresh everything" marker (sent when a store is bound to a
// new service and after a snapshot restore), on which every principal and key is re-read.
func (s *Service) KeysApplied(ctx context.Context, keys []string) error {
	var errs []error
	reloadKeys := false
	for _, k := range keys {
		switch {
		case k == keyring.RingKey:
			errs = append(errs, s.loadPrincipalStates(ctx))
			reloadKeys = true
		case strings.HasPrefix(k, prefixPrincipal):
			errs = append(errs, s.refreshPrincipal(ctx, strings.TrimPrefix(k, prefixPrincipal)))
		case isDirectoryKey(k):
			errs = append(errs, s.refreshKeys(ctx, k))
		case k == keyDeployment, strings.HasPrefix(k, prefixSigningKey):
			reloadKeys = true
		}
	}
	if reloadKeys {
		s.refreshMu.Lock()
		errs = append(errs, s.reloadSigningKeys(ctx))
		s.refreshMu.Unlock()
	}
	return errors.Join(errs...)
}

// checkRevocation reports why claims no longer verify, or "" when they do.
func (s *Service) checkRevocation(c *Claims) string {
	st, ok := s.states.get(c.Principal.ObjectID)
	switch {
	case !ok:
		return "unknown principal"
	case st.typ != c.Principal.Type:
		return "identity type mismatch"
	case st.disabled:
		return "principal disabled"
	case st.gen != c.Generation:
		return "revoked"
	case c.CredentialID == "":
		return "credential removed"
	case slices.Contains(st.creds, c.CredentialID):
	case st.typ == TypeServicePrincipal && s.dir.appHasCred(st.appID, c.CredentialID):
	default:
		return "credential removed"
	}
	return ""
}

// isDirectoryKey reports whether k holds a directory record that memory mirrors.
func isDirectoryKey(k string) bool {
	for _, p := range []string{prefixApplication, prefixUser, prefixGroup, prefixMember, prefixDirRole} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
