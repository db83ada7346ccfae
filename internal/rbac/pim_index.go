package rbac

// The in-memory index of the rbac/pim/ records: loading it, refreshing one key (from this
// node's writes and from KeysApplied), the batch every PIM change is written in, and the
// deletes a vault deletion adds.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/store"
)

// pimIndex is the in-memory copy of the rbac/pim/ records.
type pimIndex struct {
	mu            sync.RWMutex
	eligibilities map[string]*Eligibility
	requests      map[string]*ScheduleRequest
	activations   map[string]*Activation
	policies      map[string]*Policy // by PolicyName
}

// loadPIM replaces the PIM index with what the store holds.
func (s *Service) loadPIM(ctx context.Context) error {
	idx := pimIndex{eligibilities: map[string]*Eligibility{}, requests: map[string]*ScheduleRequest{},
		activations: map[string]*Activation{}, policies: map[string]*Policy{}}
	var openErr error
	err := s.st.Scan(ctx, prefixPIM, "", func(key string, raw []byte) bool {
		switch {
		case strings.HasPrefix(key, prefixEligibility):
			var rec eligibilityRecord
			if openErr = s.open(ctx, key, raw, &rec); openErr == nil {
				e := rec.Eligibility
				idx.eligibilities[e.Name] = &e
			}
		case strings.HasPrefix(key, prefixRequest):
			var rec requestRecord
			if openErr = s.open(ctx, key, raw, &rec); openErr == nil {
				r := rec.ScheduleRequest
				idx.requests[r.Name] = &r
			}
		case strings.HasPrefix(key, prefixActivation):
			var rec activationRecord
			if openErr = s.open(ctx, key, raw, &rec); openErr == nil {
				a := rec.Activation
				idx.activations[a.Name] = &a
			}
		case strings.HasPrefix(key, prefixPolicy):
			var rec policyRecord
			if openErr = s.open(ctx, key, raw, &rec); openErr == nil {
				p := rec.Policy
				p.Stored = true
				idx.policies[strings.TrimPrefix(key, prefixPolicy)] = &p
			}
		}
		return openErr == nil
	})
	if err == nil {
		err = openErr
	}
	if err != nil {
		return fmt.Errorf("loading just-in-time elevation records: %w", err)
	}
	s.pim.mu.Lock()
	s.pim.eligibilities, s.pim.requests, s.pim.activations, s.pim.policies = idx.eligibilities, idx.requests, idx.activations, idx.policies
	s.pim.mu.Unlock()
	return nil
}

// refreshPIM re-reads one rbac/pim/ record into the index (a missing or unreadable one leaves
// it: an unreadable eligibility cannot be activated, an unreadable policy falls back to the
// defaults, which require a justification).
func (s *Service) refreshPIM(ctx context.Context, key string) error {
	var (
		rec   interface{ version() int }
		apply func(found bool)
	)
	p := &s.pim
	switch {
	case strings.HasPrefix(key, prefixEligibility):
		name, r := strings.TrimPrefix(key, prefixEligibility), &eligibilityRecord{}
		rec, apply = r, func(found bool) {
			if e := r.Eligibility; found {
				p.eligibilities[name] = &e
			} else {
				delete(p.eligibilities, name)
			}
		}
	case strings.HasPrefix(key, prefixRequest):
		name, r := strings.TrimPrefix(key, prefixRequest), &requestRecord{}
		rec, apply = r, func(found bool) {
			if q := r.ScheduleRequest; found {
				p.requests[name] = &q
			} else {
				delete(p.requests, name)
			}
		}
	case strings.HasPrefix(key, prefixActivation):
		name, r := strings.TrimPrefix(key, prefixActivation), &activationRecord{}
		rec, apply = r, func(found bool) {
			if a := r.Activation; found {
				p.activations[name] = &a
			} else {
				delete(p.activations, name)
			}
		}
	case strings.HasPrefix(key, prefixPolicy):
		name, r := strings.TrimPrefix(key, prefixPolicy), &policyRecord{}
		rec, apply = r, func(found bool) {
			if pol := r.Policy; found {
				pol.Stored = true
				p.policies[name] = &pol
			} else {
				delete(p.policies, name)
			}
		}
	default:
		return nil // uniqueness keys are not indexed
	}
	found, err := s.get(ctx, key, rec)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		apply(false)
		return fmt.Errorf("reloading %s: %w", key, err)
	}
	apply(found)
	return nil
}

func (s *Service) refreshAll(ctx context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, prefixPIM):
			errs = append(errs, s.refreshPIM(ctx, k))
		case strings.HasPrefix(k, prefixAssignment):
			errs = append(errs, s.refreshAssignment(ctx, k))
		}
	}
	return errors.Join(errs...)
}

// batch collects the ops of one PIM change and the keys to refresh after it.
type batch struct {
	ops  []store.Op
	keys []string
}

func (b *batch) put(s *Service, ctx context.Context, key string, v any, fresh bool) error {
	sealed, err := s.seal(ctx, key, v)
	if err != nil {
		return err
	}
	if fresh {
		b.ops = append(b.ops, store.RequireAbsent(key))
	}
	b.ops = append(b.ops, store.Put(key, sealed))
	b.keys = append(b.keys, key)
	return nil
}

func (b *batch) del(key string) {
	b.ops = append(b.ops, store.Delete(key))
	b.keys = append(b.keys, key)
}

// claim guards a uniqueness key: absent, or unchanged since it was read when replacing.
func (b *batch) claim(s *Service, ctx context.Context, key string, replacing bool) error {
	if replacing {
		raw, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			b.ops = append(b.ops, store.RequireEqual(key, raw))
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("reading %s: %w", key, err)
		}
	}
	b.ops = append(b.ops, store.RequireAbsent(key))
	return nil
}

func (s *Service) apply(ctx context.Context, b *batch, what string) error {
	if err := s.st.Apply(ctx, b.ops); err != nil {
		if errors.Is(err, store.ErrConflict) {
			_ = s.refreshAll(ctx, b.keys) // another node got there first; learn what it wrote
			return store.ErrConflict
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.refreshAll(ctx, b.keys)
}

// pimDeletionOpsWithin returns the ops that delete the eligibilities, activations and policies
// at scope or below it (a deleted vault's: a vault made again under the name inherits none) and
// their keys. Requests stay, as history; an approval of one finds no eligibility.
func (s *Service) pimDeletionOpsWithin(scope string) ([]store.Op, []string) {
	var b batch
	for _, e := range s.Eligibilities(func(e *Eligibility) bool { return authz.ScopeContains(scope, e.Scope) }) {
		b.del(prefixEligibility + e.Name)
		b.del(prefixEligibilityKey + hashKey(strings.TrimRight(e.Scope, "/"), e.RoleID, e.PrincipalID))
	}
	for _, a := range s.Activations(func(a *Activation) bool { return authz.ScopeContains(scope, a.Scope) }) {
		b.del(prefixActivation + a.Name) // its assignment is within scope: deleted with the others
	}
	for _, p := range s.Policies(func(p *Policy) bool { return authz.ScopeContains(scope, p.Scope) }) {
		b.del(prefixPolicy + p.Name())
	}
	return b.ops, b.keys
}

func lessScopeName(scopeA, nameA, scopeB, nameB string) bool {
	if c := strings.Compare(strings.ToLower(scopeA), strings.ToLower(scopeB)); c != 0 {
		return c < 0
	}
	return nameA < nameB
}
