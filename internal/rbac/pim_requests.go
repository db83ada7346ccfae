package rbac

// Schedule requests and activations (roleAssignmentSchedules) of just-in-time elevation: the
// types, activating (at once or after approval), settling a pending request, deactivating, and
// the reads of the index.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// ScheduleRequest is a roleEligibilityScheduleRequest or a roleAssignmentScheduleRequest.
type ScheduleRequest struct {
	Name          string    `json:"name"`
	Kind          string    `json:"kind"` // RequestEligibility or RequestAssignment
	Scope         string    `json:"scope"`
	RoleID        string    `json:"roleDefinitionId"`
	RoleName      string    `json:"roleName,omitempty"`
	PrincipalID   string    `json:"principalId"`
	PrincipalType string    `json:"principalType"`
	RequestType   string    `json:"requestType"`
	Status        string    `json:"status"`
	Justification string    `json:"justification,omitempty"`
	TicketNumber  string    `json:"ticketNumber,omitempty"`
	TicketSystem  string    `json:"ticketSystem,omitempty"`
	StartsAt      time.Time `json:"startsAt,omitzero"`
	// ExpirationType, Duration and EndsAt are the scheduleInfo.expiration asked for.
	ExpirationType string    `json:"expirationType,omitempty"`
	Duration       string    `json:"duration,omitempty"`
	EndsAt         time.Time `json:"endsAt,omitzero"`
	RequestorID    string    `json:"requestorId"`
	CreatedOn      time.Time `json:"createdOn"`
	// LinkedEligibility names the eligibility an activation relies on.
	LinkedEligibility string `json:"linkedEligibility,omitempty"`
	// TargetSchedule names the schedule the request made or ended.
	TargetSchedule string `json:"targetSchedule,omitempty"`
	// Approvers and ApprovalDeadline are the policy's, fixed when approval was required.
	Approvers        []Approver `json:"approvers,omitempty"`
	ApprovalDeadline time.Time  `json:"approvalDeadline,omitzero"`
	ReviewedBy       string     `json:"reviewedBy,omitempty"`
	ReviewedOn       time.Time  `json:"reviewedOn,omitzero"`
	ReviewNote       string     `json:"reviewNote,omitempty"`
}

// Activation is a roleAssignmentSchedule: a time-bound role assignment made by just-in-time
// elevation. AssignmentName is the rbac assignment that grants it.
type Activation struct {
	Name              string    `json:"name"`
	Scope             string    `json:"scope"`
	RoleID            string    `json:"roleDefinitionId"`
	RoleName          string    `json:"roleName,omitempty"`
	PrincipalID       string    `json:"principalId"`
	PrincipalType     string    `json:"principalType"`
	StartsAt          time.Time `json:"startsAt"`
	EndsAt            time.Time `json:"endsAt"`
	AssignmentName    string    `json:"assignmentName"`
	LinkedEligibility string    `json:"linkedEligibility,omitempty"`
	MemberType        string    `json:"memberType"`         // Direct, or Group when the eligibility is a group's
	ViaGroup          string    `json:"viaGroup,omitempty"` // that group: the activation grants while the principal is in it
	AssignmentType    string    `json:"assignmentType"`     // Activated (SelfActivate) or Assigned (AdminAssign)
	RequestName       string    `json:"requestName"`
	CreatedOn         time.Time `json:"createdOn"`
	// Granting reports, in copies the index hands out, whether its assignment still exists (a
	// role assignment delete or a vault delete may have removed it).
	Granting bool `json:"-"`
}

// ActiveAt reports whether the activation grants at t.
func (a *Activation) ActiveAt(t time.Time) bool {
	return a.Granting && !t.Before(a.StartsAt) && t.Before(a.EndsAt)
}

// ID is the activation's ARM resource id.
func (a *Activation) ID() string {
	return strings.TrimRight(a.Scope, "/") + "/providers/Microsoft.Authorization/roleAssignmentSchedules/" + a.Name
}

// endActivation adds the deletes that end a (its assignment, if it is still the one it made).
func (s *Service) endActivation(b *batch, a *Activation) {
	b.del(prefixActivation + a.Name)
	if as, ok := s.Assignment(a.AssignmentName); ok && !as.BuiltIn {
		b.ops = append(b.ops, deleteOps(&as)...)
		b.keys = append(b.keys, prefixAssignment+as.Name)
	}
}

// Activate stores a request that needs no approval and the activation it provisions: a role
// assignment of act's principal, role and scope that grants from act.StartsAt to act.EndsAt.
// A live assignment of the same triple (permanent, or an activation still running) is
// ErrAssignmentExists; expired activations of the principal are cleared in the same batch.
func (s *Service) Activate(ctx context.Context, req ScheduleRequest, act Activation) (ScheduleRequest, Activation, error) {
	req.Kind, req.Status, req.TargetSchedule = RequestAssignment, StatusProvisioned, act.Name
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.Request(req.Name); ok {
		return ScheduleRequest{}, Activation{}, ErrRequestExists
	}
	req.CreatedOn = s.opts.Now().UTC()
	var b batch
	if err := b.put(s, ctx, prefixRequest+req.Name, &requestRecord{V: recordVersion, ScheduleRequest: req}, true); err != nil {
		return ScheduleRequest{}, Activation{}, err
	}
	act, err := s.activateLocked(ctx, &b, act)
	if err != nil {
		return ScheduleRequest{}, Activation{}, err
	}
	return req, act, nil
}

// activateLocked adds act and its assignment to b and applies it; writeMu is held.
func (s *Service) activateLocked(ctx context.Context, b *batch, act Activation) (Activation, error) {
	now := s.opts.Now().UTC()
	act.RoleID, act.PrincipalID, act.CreatedOn = strings.ToLower(act.RoleID), strings.ToLower(act.PrincipalID), now
	if act.AssignmentName == "" {
		act.AssignmentName = uuid.NewString()
	}
	a := Assignment{Name: act.AssignmentName, Scope: act.Scope, RoleID: act.RoleID, PrincipalID: act.PrincipalID, PrincipalType: act.PrincipalType,
		Description: "Just-in-time activation " + act.Name + ".", StartsAt: act.StartsAt, EndsAt: act.EndsAt, ViaGroup: strings.ToLower(act.ViaGroup),
		CreatedOn: now, UpdatedOn: now, CreatedBy: act.PrincipalID, UpdatedBy: act.PrincipalID}
	if _, ok := s.Assignment(a.Name); ok {
		return Activation{}, ErrAssignmentExists
	}
	replacing := false
	for _, old := range s.ListAssignments(func(o *Assignment) bool { return sameTriple(o, &a) }) {
		if old.BuiltIn || old.EndsAt.IsZero() || now.Before(old.EndsAt) {
			return Activation{}, ErrAssignmentExists
		}
		b.ops = append(b.ops, store.Delete(prefixAssignment+old.Name))
		b.keys = append(b.keys, prefixAssignment+old.Name)
		replacing = true
	}
	// The principal's expired activations go with this change, so records do not pile up.
	for _, old := range s.Activations(func(o *Activation) bool {
		return strings.EqualFold(o.PrincipalID, act.PrincipalID) && !now.Before(o.EndsAt)
	}) {
		b.del(prefixActivation + old.Name)
		if as, ok := s.Assignment(old.AssignmentName); ok && !as.BuiltIn && !sameTriple(&as, &a) {
			b.ops = append(b.ops, deleteOps(&as)...)
			b.keys = append(b.keys, prefixAssignment+as.Name)
		}
	}
	tupleKey := prefixAssignmentKey + hashKey(a.Scope, a.RoleID, a.PrincipalID)
	if err := b.claim(s, ctx, tupleKey, replacing); err != nil {
		return Activation{}, err
	}
	if err := b.put(s, ctx, tupleKey, &nameRecord{V: recordVersion, Name: a.Name}, false); err != nil {
		return Activation{}, err
	}
	if err := b.put(s, ctx, prefixAssignment+a.Name, &assignmentRecord{V: recordVersion, Assignment: a}, true); err != nil {
		return Activation{}, err
	}
	if err := b.put(s, ctx, prefixActivation+act.Name, &activationRecord{V: recordVersion, Activation: act}, true); err != nil {
		return Activation{}, err
	}
	if err := s.apply(ctx, b, "storing an activation"); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Activation{}, ErrAssignmentExists
		}
		return Activation{}, err
	}
	act.Granting = true
	return act, nil
}

// SubmitRequest stores a request that waits for approval; it grants nothing.
func (s *Service) SubmitRequest(ctx context.Context, req ScheduleRequest) (ScheduleRequest, error) {
	req.Kind, req.Status = RequestAssignment, StatusPendingApproval
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.Request(req.Name); ok {
		return ScheduleRequest{}, ErrRequestExists
	}
	req.CreatedOn = s.opts.Now().UTC()
	var b batch
	if err := b.put(s, ctx, prefixRequest+req.Name, &requestRecord{V: recordVersion, ScheduleRequest: req}, true); err != nil {
		return ScheduleRequest{}, err
	}
	if err := s.apply(ctx, &b, "storing a schedule request"); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ScheduleRequest{}, ErrRequestExists
		}
		return ScheduleRequest{}, err
	}
	return req, nil
}

// Review settles a pending request: status is StatusProvisioned (approved: act is provisioned
// in the same batch), StatusDenied, StatusCanceled or StatusTimedOut. A request that is no
// longer pending (settled here or by another node) is ErrRequestNotPending.
func (s *Service) Review(ctx context.Context, name, status, by, note string, act *Activation) (ScheduleRequest, *Activation, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	key := prefixRequest + strings.ToLower(name)
	raw, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return ScheduleRequest{}, nil, ErrNotFound
	}
	if err != nil {
		return ScheduleRequest{}, nil, fmt.Errorf("reading %s: %w", key, err)
	}
	var rec requestRecord
	if err := s.open(ctx, key, raw, &rec); err != nil {
		return ScheduleRequest{}, nil, err
	}
	req := rec.ScheduleRequest
	if req.Status != StatusPendingApproval {
		return req, nil, ErrRequestNotPending
	}
	req.Status, req.ReviewedBy, req.ReviewedOn, req.ReviewNote = status, by, s.opts.Now().UTC(), note
	if act != nil {
		req.TargetSchedule = act.Name
	}
	b := batch{ops: []store.Op{store.RequireEqual(key, raw)}}
	if err := b.put(s, ctx, key, &requestRecord{V: recordVersion, ScheduleRequest: req}, false); err != nil {
		return ScheduleRequest{}, nil, err
	}
	if act == nil {
		if err := s.apply(ctx, &b, "settling a schedule request"); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ScheduleRequest{}, nil, ErrRequestNotPending
			}
			return ScheduleRequest{}, nil, err
		}
		return req, nil, nil
	}
	got, err := s.activateLocked(ctx, &b, *act)
	if err != nil {
		return ScheduleRequest{}, nil, err
	}
	return req, &got, nil
}

// Deactivate stores a SelfDeactivate (or AdminRemove) request and ends the activation it
// names: its assignment is deleted in the same batch, so it grants nothing from the next request.
func (s *Service) Deactivate(ctx context.Context, req ScheduleRequest, activation string) (ScheduleRequest, error) {
	req.Kind, req.Status, req.TargetSchedule = RequestAssignment, StatusRevoked, activation
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.Request(req.Name); ok {
		return ScheduleRequest{}, ErrRequestExists
	}
	a, ok := s.Activation(activation)
	if !ok {
		return ScheduleRequest{}, ErrNotFound
	}
	req.CreatedOn = s.opts.Now().UTC()
	var b batch
	s.endActivation(&b, &a)
	if err := b.put(s, ctx, prefixRequest+req.Name, &requestRecord{V: recordVersion, ScheduleRequest: req}, true); err != nil {
		return ScheduleRequest{}, err
	}
	if err := s.apply(ctx, &b, "ending an activation"); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ScheduleRequest{}, ErrRequestExists
		}
		return ScheduleRequest{}, err
	}
	return req, nil
}

// Request returns the named schedule request.
func (s *Service) Request(name string) (ScheduleRequest, bool) {
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	if r, ok := s.pim.requests[strings.ToLower(name)]; ok {
		return *r, true
	}
	return ScheduleRequest{}, false
}

// Requests returns the schedule requests keep accepts, newest first.
func (s *Service) Requests(keep func(*ScheduleRequest) bool) []ScheduleRequest {
	s.pim.mu.RLock()
	var out []ScheduleRequest
	for _, r := range s.pim.requests {
		if keep(r) {
			out = append(out, *r)
		}
	}
	s.pim.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedOn.Equal(out[j].CreatedOn) {
			return out[i].CreatedOn.After(out[j].CreatedOn)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Activation returns the named activation.
func (s *Service) Activation(name string) (Activation, bool) {
	s.pim.mu.RLock()
	a, ok := s.pim.activations[strings.ToLower(name)]
	var out Activation
	if ok {
		out = *a
	}
	s.pim.mu.RUnlock()
	if ok {
		_, out.Granting = s.Assignment(out.AssignmentName)
	}
	return out, ok
}

// Activations returns the activations keep accepts, ordered by scope and name.
func (s *Service) Activations(keep func(*Activation) bool) []Activation {
	s.pim.mu.RLock()
	var out []Activation
	for _, a := range s.pim.activations {
		if keep(a) {
			out = append(out, *a)
		}
	}
	s.pim.mu.RUnlock()
	for i := range out {
		_, out[i].Granting = s.Assignment(out[i].AssignmentName)
	}
	sort.Slice(out, func(i, j int) bool { return lessScopeName(out[i].Scope, out[i].Name, out[j].Scope, out[j].Name) })
	return out
}
