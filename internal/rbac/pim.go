package rbac

// Just-in-time elevation (Privileged Identity Management for Azure resources): eligibilities,
// schedule requests, activations and per-(scope, role) policies. Like the rest of the package
// this file stores and indexes; the service package validates, authorizes and decides whether
// an activation may happen (pim.go there).
//
// An activation is an ordinary role assignment with a time window (Assignment.StartsAt/EndsAt)
// written in the same batch as its schedule record, so Decide honours it by the clock and it
// stops granting when its window closes, with no background job. Deactivating deletes both.
//
// Storage layout (sealed JSON records carrying "v": 1, as in rbac.go):
//
//	rbac/pim/eligibility/<guid>      eligibilityRecord: a roleEligibilitySchedule (guid = the AdminAssign request's name)
//	rbac/pim/eligibility-key/<hash>  the live eligibility's name: hash = SHA-256 of lower(scope)|role|lower(principal)
//	rbac/pim/request/<guid>          requestRecord: a roleEligibilityScheduleRequest or a roleAssignmentScheduleRequest
//	rbac/pim/activation/<guid>       activationRecord: a roleAssignmentSchedule (guid = its request's name); it names the
//	                                 rbac/assignment/<guid> that grants, written and deleted in the same batches
//	rbac/pim/policy/<guid>           policyRecord: a roleManagementPolicy changed from the defaults (guid = PolicyName)
//
// The index of these records is kept current like the assignments: by this service's writes and,
// on every node, by KeysApplied (rbac.go hands it every rbac/pim/ key).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/store"
)

// Storage keys of just-in-time elevation; see above.
const (
	prefixPIM            = "rbac/pim/"
	prefixEligibility    = "rbac/pim/eligibility/"
	prefixEligibilityKey = "rbac/pim/eligibility-key/"
	prefixRequest        = "rbac/pim/request/"
	prefixActivation     = "rbac/pim/activation/"
	prefixPolicy         = "rbac/pim/policy/"
)

// Kinds of schedule request.
const (
	RequestEligibility = "eligibility" // roleEligibilityScheduleRequests
	RequestAssignment  = "assignment"  // roleAssignmentScheduleRequests
)

// Request statuses (ARM's Status values that this server uses).
const (
	StatusProvisioned     = "Provisioned"
	StatusPendingApproval = "PendingApproval"
	StatusDenied          = "Denied"
	StatusCanceled        = "Canceled"
	StatusRevoked         = "Revoked"
	StatusTimedOut        = "TimedOut"
)

// Sentinel errors of just-in-time elevation; the service package maps them to ARM's codes.
var (
	ErrRequestExists     = errors.New("a schedule request of that name exists")
	ErrEligibilityExists = errors.New("the principal is already eligible for the role at the scope")
	ErrRequestNotPending = errors.New("the request is not pending approval")
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

// Approver is a primary approver of a policy (a user or a group).
type Approver struct {
	ID          string `json:"id"`
	UserType    string `json:"userType"` // User or Group
	Description string `json:"description,omitempty"`
}

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

// Policy is a roleManagementPolicy: the activation settings of one role at one scope.
type Policy struct {
	Scope  string `json:"scope"`
	RoleID string `json:"roleDefinitionId"`
	// Expiration_Admin_Eligibility.
	EligibilityExpirationRequired bool   `json:"eligibilityExpirationRequired"`
	EligibilityMaximumDuration    string `json:"eligibilityMaximumDuration"`
	// Expiration_EndUser_Assignment.
	ActivationMaximumDuration string `json:"activationMaximumDuration"`
	// Enablement_EndUser_Assignment: Justification, Ticketing, MultiFactorAuthentication.
	EnabledRules []string `json:"enabledRules"`
	// Approval_EndUser_Assignment.
	ApprovalRequired    bool       `json:"approvalRequired"`
	ApprovalTimeoutDays int        `json:"approvalTimeoutDays"`
	Approvers           []Approver `json:"approvers,omitempty"`
	UpdatedOn           time.Time  `json:"updatedOn,omitzero"`
	UpdatedBy           string     `json:"updatedBy,omitempty"`
	// Stored reports whether the policy was changed from the defaults.
	Stored bool `json:"-"`
}

// Name is the policy's GUID (PolicyName of its scope and role).
func (p *Policy) Name() string { return PolicyName(p.Scope, p.RoleID) }

// Requires reports whether rule (Justification, Ticketing, MultiFactorAuthentication) is enabled.
func (p *Policy) Requires(rule string) bool {
	for _, r := range p.EnabledRules {
		if strings.EqualFold(r, rule) {
			return true
		}
	}
	return false
}

// policyNamespace derives policy names from (scope, role), so every node and every restart
// names the same policy alike without storing the defaults.
var policyNamespace = uuid.MustParse("9b0f4c1e-3a5d-4e7b-8c2a-1d6e5f4a3b20")

// PolicyName is the GUID of the policy of roleID at scope.
func PolicyName(scope, roleID string) string {
	return uuid.NewSHA1(policyNamespace, []byte(strings.ToLower(strings.TrimRight(scope, "/"))+"|"+strings.ToLower(roleID))).String()
}

// DefaultPolicy is the policy of a role nobody changed: Azure's defaults for resource roles
// (activations of at most 8 hours with a justification and no approval; eligibilities of at
// most a year).
func DefaultPolicy(scope, roleID string) Policy {
	return Policy{Scope: scope, RoleID: strings.ToLower(roleID), EligibilityExpirationRequired: true, EligibilityMaximumDuration: "P365D",
		ActivationMaximumDuration: "PT8H", EnabledRules: []string{"Justification"}, ApprovalTimeoutDays: 1}
}

type eligibilityRecord struct {
	V int `json:"v"`
	Eligibility
}

type requestRecord struct {
	V int `json:"v"`
	ScheduleRequest
}

type activationRecord struct {
	V int `json:"v"`
	Activation
}

type policyRecord struct {
	V int `json:"v"`
	Policy
}

func (r *eligibilityRecord) version() int { return r.V }
func (r *requestRecord) version() int     { return r.V }
func (r *activationRecord) version() int  { return r.V }
func (r *policyRecord) version() int      { return r.V }

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

// PutPolicy stores p as the policy of its (scope, role).
func (s *Service) PutPolicy(ctx context.Context, p Policy, by string) (Policy, error) {
	p.RoleID = strings.ToLower(p.RoleID)
	p.UpdatedOn, p.UpdatedBy = s.opts.Now().UTC(), by
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var b batch
	if err := b.put(s, ctx, prefixPolicy+p.Name(), &policyRecord{V: recordVersion, Policy: p}, false); err != nil {
		return Policy{}, err
	}
	if err := s.apply(ctx, &b, "storing a role management policy"); err != nil {
		return Policy{}, err
	}
	p.Stored = true
	return p, nil
}

// Policy returns the policy of roleID at scope: the stored one, or the defaults.
func (s *Service) Policy(scope, roleID string) Policy {
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	if p, ok := s.pim.policies[PolicyName(scope, roleID)]; ok {
		return clonePolicy(p)
	}
	return DefaultPolicy(scope, roleID)
}

func clonePolicy(p *Policy) Policy {
	c := *p
	c.EnabledRules = append([]string(nil), p.EnabledRules...)
	c.Approvers = append([]Approver(nil), p.Approvers...)
	return c
}

// EffectivePolicy merges the policies of roleID at scope and every scope above it, the
// strictest setting winning: the shortest maximum durations, every enabled rule, approval if
// any requires it (by any of their approvers, within the shortest timeout). An administrator of
// a lower scope cannot loosen what a higher scope requires.
func (s *Service) EffectivePolicy(scope, roleID string) Policy {
	eff := s.Policy(scope, roleID)
	eff.Stored = false
	approvals := eff.ApprovalRequired
	if !approvals {
		eff.Approvers, eff.ApprovalTimeoutDays = nil, 0
	}
	s.pim.mu.RLock()
	defer s.pim.mu.RUnlock()
	for _, p := range s.pim.policies {
		if !strings.EqualFold(p.RoleID, roleID) || sameScopeFold(p.Scope, scope) || !authz.ScopeContains(p.Scope, scope) {
			continue
		}
		eff.EligibilityExpirationRequired = eff.EligibilityExpirationRequired || p.EligibilityExpirationRequired
		eff.EligibilityMaximumDuration = shorter(eff.EligibilityMaximumDuration, p.EligibilityMaximumDuration)
		eff.ActivationMaximumDuration = shorter(eff.ActivationMaximumDuration, p.ActivationMaximumDuration)
		for _, r := range p.EnabledRules {
			if !eff.Requires(r) {
				eff.EnabledRules = append(eff.EnabledRules, r)
			}
		}
		if p.ApprovalRequired {
			if !approvals || p.ApprovalTimeoutDays < eff.ApprovalTimeoutDays {
				eff.ApprovalTimeoutDays = p.ApprovalTimeoutDays
			}
			approvals = true
			eff.Approvers = append(eff.Approvers, p.Approvers...)
		}
	}
	eff.ApprovalRequired = approvals
	return eff
}

func sameScopeFold(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// shorter returns the shorter of two ISO 8601 durations (an unreadable one counts as zero:
// nothing is longer than a limit nobody can read).
func shorter(a, b string) string {
	da, errA := ParseISODuration(a)
	db, errB := ParseISODuration(b)
	switch {
	case errA != nil:
		return a
	case errB != nil:
		return b
	case db < da:
		return b
	}
	return a
}

// Policies returns the stored policies keep accepts.
func (s *Service) Policies(keep func(*Policy) bool) []Policy {
	s.pim.mu.RLock()
	var out []Policy
	for _, p := range s.pim.policies {
		if keep(p) {
			out = append(out, clonePolicy(p))
		}
	}
	s.pim.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
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

func memberOf(groups []string, group string) bool {
	for _, g := range groups {
		if strings.EqualFold(g, group) {
			return true
		}
	}
	return false
}

func lessScopeName(scopeA, nameA, scopeB, nameB string) bool {
	if c := strings.Compare(strings.ToLower(scopeA), strings.ToLower(scopeB)); c != 0 {
		return c < 0
	}
	return nameA < nameB
}
