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
	creds    []string // key ids of its client secrets (at most maxSecrets)
}

// principalStates maps object ids to states. It is a copy of the principal records, kept
// current by this service's own writes and, on every node of a cluster, by KeysApplied.
type principalStates struct {
	mu sync.RWMutex
	m  map[string]principalState
}

func (p *principalStates) get(objectID string) (principalState, bool) {
	p.mu.RLock()
	st, ok := p.m[objectID]
	p.mu.RUnlock()
	return st, ok
}

func (p *principalStates) set(objectID string, st principalState, present bool) {
	p.mu.Lock()
	if present {
		p.m[objectID] = st
	} else {
		delete(p.m, objectID)
	}
	p.mu.Unlock()
}

func stateOf(rec *principalRecord) principalState {
	st := principalState{disabled: rec.Disabled, gen: rec.Generation, creds: make([]string, len(rec.Secrets))}
	for i, c := range rec.Secrets {
		st.creds[i] = c.ID
	}
	return st
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
	s.states.mu.Lock()
	s.states.m = m
	s.states.mu.Unlock()
	return nil
}

// refreshPrincipal re-reads one principal record into the state map. Refreshes are serialized
// and each reads the store after the write it follows was applied, so the map never goes back
// to an older record.
func (s *Service) refreshPrincipal(ctx context.Context, objectID string) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
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
	case st.disabled:
		return "principal disabled"
	case st.gen != c.Generation:
		return "revoked"
	case c.CredentialID == "" || !slices.Contains(st.creds, c.CredentialID):
		return "credential removed"
	}
	return ""
}
