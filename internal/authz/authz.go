// Package authz makes authorization decisions from data passed in: who is asking, which action,
// on which ARM-style scope. It holds no state and does no I/O, so every decision is a pure
// function that can be tested exhaustively. Deny is the default: only a matching assignment
// allows.
package authz

import "strings"

// Action is an Azure-style operation name, e.g. "Microsoft.KeyVault/vaults/secrets/getSecret/action".
type Action string

// Permission is one block of a role definition, as Azure writes it: what it allows minus what it
// excludes, separately for the control plane (actions) and the data plane (dataActions).
// Patterns may use "*" for any run of characters; comparison is case-insensitive.
type Permission struct {
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
}

// Role is a role definition. A role allows an action when some permission block allows it and
// the same block does not exclude it (Azure's effective permissions: the union over blocks of
// actions minus notActions).
type Role struct {
	ID          string // the definition's GUID
	Name        string
	Description string
	BuiltIn     bool
	Permissions []Permission
	// AssignableScopes are where the role may be assigned ("/" for built-in roles).
	AssignableScopes []string
	// AssignableRoles, when set, limits what role assignments this role may write or delete to
	// those of the listed role GUIDs: the ABAC condition Azure attaches to Key Vault Data Access
	// Administrator, evaluated natively.
	AssignableRoles []string
}

// Allows reports whether the role permits action on the given plane.
func (r *Role) Allows(action string, data bool) bool {
	operator := IsOperatorAction(action)
	for i := range r.Permissions {
		p := &r.Permissions[i]
		allow, deny := p.Actions, p.NotActions
		if data {
			allow, deny = p.DataActions, p.NotDataActions
		}
		if matchAllow(allow, action, operator) && !matchAny(deny, action) {
			return true
		}
	}
	return false
}

// OperatorPrefix starts the server's own operator actions (keyring, seal, principals,
// metrics). They are granted only by patterns that name them: Azure's wildcards ("*" of Owner
// and Contributor, "*/read" of Reader) describe Azure's resource providers, and must not hand
// a Contributor the bootstrap admin's secrets.
const OperatorPrefix = "Strongroom/"

// IsOperatorAction reports whether action is one of the server's operator actions.
func IsOperatorAction(action string) bool { return hasPrefixFold(action, OperatorPrefix) }

func matchAllow(patterns []string, action string, operator bool) bool {
	for _, p := range patterns {
		if operator && !hasPrefixFold(p, OperatorPrefix) {
			continue
		}
		if Match(p, action) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if Match(p, action) {
			return true
		}
	}
	return false
}

// Assignment grants Role to PrincipalID (a user, group, service principal or managed identity)
// at Scope and every scope below it.
type Assignment struct {
	ID          string // the assignment's full resource id (or a fixed name for built-in ones)
	PrincipalID string
	Role        *Role
	Scope       string
}

// Request is one question.
type Request struct {
	PrincipalID string
	// Groups are the groups PrincipalID belongs to, transitively: their assignments count too.
	Groups     []string
	Action     Action
	DataAction bool   // true for data-plane actions (checked against DataActions)
	Scope      string // e.g. "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/x"
	// TargetRole is the role GUID of the role assignment being written or deleted, for roles
	// whose AssignableRoles limit it; empty for every other action.
	TargetRole string
}

// Decision is the answer and why.
type Decision struct {
	Allowed      bool
	AssignmentID string // the assignment that granted it, for audit
	Reason       string // "DeniedWithNoValidRBAC" or "Allowed"
}

// Denial reasons, as Key Vault spells them.
const (
	ReasonAllowed = "Allowed"
	ReasonNoRBAC  = "DeniedWithNoValidRBAC"
)

// Decider answers requests; Assignments and the rbac package's index implement it.
type Decider interface {
	Decide(req Request) Decision
}

// Assignments is a fixed list of assignments that decides by itself (tests, tools).
type Assignments []Assignment

// Decide answers req against the list.
func (as Assignments) Decide(req Request) Decision { return Decide(req, as) }

// Decide answers req against assignments: allowed when an assignment to the principal or one of
// its groups, at the request's scope or above it, has a role that allows the action (and, for a
// role limited in what it may assign, the target role is one of those).
func Decide(req Request, assignments []Assignment) Decision {
	for i := range assignments {
		a := &assignments[i]
		if a.Role == nil || !appliesTo(a.PrincipalID, req) || !ScopeContains(a.Scope, req.Scope) || !Grants(a.Role, req) {
			continue
		}
		return Decision{Allowed: true, AssignmentID: a.ID, Reason: ReasonAllowed}
	}
	return Decision{Reason: ReasonNoRBAC}
}

// Grants reports whether role allows req's action, its AssignableRoles condition included (the
// scope and the principal are the caller's to check).
func Grants(role *Role, req Request) bool {
	if !role.Allows(string(req.Action), req.DataAction) {
		return false
	}
	return len(role.AssignableRoles) == 0 || !writesAssignment(req) || containsFold(role.AssignableRoles, req.TargetRole)
}

// writesAssignment reports whether req writes or deletes a role assignment: the actions the
// AssignableRoles condition limits.
func writesAssignment(req Request) bool {
	return !req.DataAction && (strings.EqualFold(string(req.Action), ActionRoleAssignmentWrite) ||
		strings.EqualFold(string(req.Action), ActionRoleAssignmentDelete))
}

// The role-assignment actions.
const (
	ActionRoleAssignmentWrite  = "Microsoft.Authorization/roleAssignments/write"
	ActionRoleAssignmentDelete = "Microsoft.Authorization/roleAssignments/delete"
)

func appliesTo(principal string, req Request) bool {
	return strings.EqualFold(principal, req.PrincipalID) || containsFold(req.Groups, principal)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ScopeContains reports whether scope is parent or equal to child, segment-wise and
// case-insensitively. "/" contains everything. It runs on every request, so it compares in
// place instead of lower-casing copies.
func ScopeContains(parent, child string) bool {
	p := strings.TrimRight(parent, "/")
	c := strings.TrimRight(child, "/")
	if p == "" {
		return true
	}
	// The segment boundary first: it rejects most unrelated scopes without comparing them.
	return len(c) >= len(p) && (len(c) == len(p) || c[len(p)] == '/') && strings.EqualFold(c[:len(p)], p)
}

// Match reports whether action matches pattern, case-insensitively, where "*" matches any run of
// characters.
func Match(pattern, action string) bool {
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return strings.EqualFold(pattern, action)
	}
	if !hasPrefixFold(action, first) {
		return false
	}
	action = action[len(first):]
	for {
		part, more, wild := strings.Cut(rest, "*")
		if !wild { // the last part must end the action
			return len(action) >= len(part) && strings.EqualFold(action[len(action)-len(part):], part)
		}
		j := indexFold(action, part)
		if j < 0 {
			return false
		}
		action, rest = action[j+len(part):], more
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// indexFold is strings.Index, case-insensitively (patterns and actions are ASCII).
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
