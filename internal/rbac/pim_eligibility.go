package rbac

// Eligibilities (roleEligibilitySchedules) of just-in-time elevation: the type, the AdminAssign
// and AdminRemove writes, and the reads of the index.

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// Eligibility is a roleEligibilitySchedule: PrincipalID may activate RoleID at Scope (or below)
// while the eligibility is active.
type Eligibility struct {
	Name          string    `json:"name"`
	Scope         string    `json:"scope"`
	RoleID        string    `json:"roleDefinitionId"`
	RoleName      string    `json:"roleName,omitempty"` // for display, as the role was named then
	PrincipalID   string    `json:"principalId"`
	PrincipalType string    `json:"principalType"`
	StartsAt      time.Time `json:"startsAt"`
	EndsAt        time.Time `json:"endsAt,omitzero"` // zero: no expiration
	RequestName   string    `json:"requestName"`
	CreatedOn     time.Time `json:"createdOn"`
	CreatedBy     string    `json:"createdBy,omitempty"`
}

// ActiveAt reports whether the eligibility holds at t.
func (e *Eligibility) ActiveAt(t time.Time) bool {
	return !t.Before(e.StartsAt) && (e.EndsAt.IsZero() || t.Before(e.EndsAt))
}

// ID is the eligibility's ARM resource id.
func (e *Eligibility) ID() string {
	return strings.TrimRight(e.Scope, "/") + "/providers/Microsoft.Authorization/roleEligibilitySchedules/" + e.Name
}

// AssignEligibility stores an AdminAssign request and the eligibility it provisions. The caller
// has validated and authorized it. A live eligibility of the same (scope, role, principal) is
// ErrEligibilityExists; an expired one is replaced.
func (s *Service) AssignEligibility(ctx context.Context, req ScheduleRequest, e Eligibility) (ScheduleRequest, Eligibility, error) {
	req.Kind, req.Status, req.TargetSchedule = RequestEligibility, StatusProvisioned, e.Name
	e.RoleID, e.PrincipalID, e.RequestName = strings.ToLower(e.RoleID), strings.ToLower(e.PrincipalID), req.Name
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.opts.Now().UTC()
	if _, ok := s.Request(req.Name); ok {
		return ScheduleRequest{}, Eligibility{}, ErrRequestExists
	}
	var b batch
	replacing := false
	for _, old := range s.Eligibilities(func(o *Eligibility) bool { return sameEligibility(o, &e) }) {
		if old.EndsAt.IsZero() || now.Before(old.EndsAt) {
			return ScheduleRequest{}, old, ErrEligibilityExists
		}
		b.del(prefixEligibility + old.Name)
		replacing = true
	}
	req.CreatedOn, e.CreatedOn = now, now
	tupleKey := prefixEligibilityKey + hashKey(strings.TrimRight(e.Scope, "/"), e.RoleID, e.PrincipalID)
	if err := b.claim(s, ctx, tupleKey, replacing); err != nil {
		return ScheduleRequest{}, Eligibility{}, err
	}
	if err := b.put(s, ctx, tupleKey, &nameRecord{V: recordVersion, Name: e.Name}, false); err != nil {
		return ScheduleRequest{}, Eligibility{}, err
	}
	if err := b.put(s, ctx, prefixRequest+req.Name, &requestRecord{V: recordVersion, ScheduleRequest: req}, true); err != nil {
		return ScheduleRequest{}, Eligibility{}, err
	}
	if err := b.put(s, ctx, prefixEligibility+e.Name, &eligibilityRecord{V: recordVersion, Eligibility: e}, true); err != nil {
		return ScheduleRequest{}, Eligibility{}, err
	}
	if err := s.apply(ctx, &b, "storing an eligibility"); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ScheduleRequest{}, Eligibility{}, ErrEligibilityExists
		}
		return ScheduleRequest{}, Eligibility{}, err
	}
	return req, e, nil
}

func sameEligibility(a, b *Eligibility) bool {
	return strings.EqualFold(strings.TrimRight(a.Scope, "/"), strings.TrimRight(b.Scope, "/")) &&
		strings.EqualFold(a.RoleID, b.RoleID) && strings.EqualFold(a.PrincipalID, b.PrincipalID)
}

// RemoveEligibility stores an AdminRemove request and deletes the eligibility it names, with
// every activation made from it (their assignments stop granting at once).
func (s *Service) RemoveEligibility(ctx context.Context, req ScheduleRequest, name string) (ScheduleRequest, error) {
	req.Kind, req.Status, req.TargetSchedule = RequestEligibility, StatusRevoked, name
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.Request(req.Name); ok {
		return ScheduleRequest{}, ErrRequestExists
	}
	e, ok := s.Eligibility(name)
	if !ok {
		return ScheduleRequest{}, ErrNotFound
	}
	req.CreatedOn = s.opts.Now().UTC()
	var b batch
	b.del(prefixEligibility + e.Name)
	b.del(prefixEligibilityKey + hashKey(strings.TrimRight(e.Scope, "/"), e.RoleID, e.PrincipalID))
	for _, a := range s.Activations(func(a *Activation) bool { return a.LinkedEligibility == e.Name }) {
		s.endActivation(&b, &a)
	}
	if err := b.put(s, ctx, prefixRequest+req.Name, &requestRecord{V: recordVersion, ScheduleRequest: req}, true); err != nil {
		return ScheduleRequest{}, err
	}
	if err := s.apply(ctx, &b, "removing an eligibility"); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ScheduleRequest{}, ErrRequestExists
		}
		return ScheduleRequest{}, err
	}
	return req, nil
}

// Eligibility returns the named eligibility.
func (s *Service) Eligibility(name string) (Eligibility, bool) {
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	if e, ok := s.pim.eligibilities[strings.ToLower(name)]; ok {
		return *e, true
	}
	return Eligibility{}, false
}

// Eligibilities returns the eligibilities keep accepts, ordered by scope and name.
func (s *Service) Eligibilities(keep func(*Eligibility) bool) []Eligibility {
	s.pim.mu.RLock()
	var out []Eligibility
	for _, e := range s.pim.eligibilities {
		if keep(e) {
			out = append(out, *e)
		}
	}
	s.pim.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return lessScopeName(out[i].Scope, out[i].Name, out[j].Scope, out[j].Name) })
	return out
}
