// Package authz makes authorization decisions from data passed in: who is asking, which action,
// on which ARM-style scope. It holds no state and does no I/O, so every decision is a pure
// function that can be tested exhaustively. Deny is the default: only a matching assignment
// allows.
package authz

import "strings"

// Action is an Azure-style operation name, e.g. "Microsoft.KeyVault/vaults/secrets/getSecret/action".
type Action string

// Role is a named set of permitted actions; patterns may use "*" for any run of characters
// within the remaining action (Azure semantics: comparison is case-insensitive).
type Role struct {
	ID          string
	Name        string
	Actions     []string // control-plane
	DataActions []string // data-plane
}

// Assignment grants Role to PrincipalID at Scope and every scope below it.
type Assignment struct {
	ID          string
	PrincipalID string
	Role        Role
	Scope       string
}

// Request is one question.
type Request struct {
	PrincipalID string
	Action      Action
	DataAction  bool   // true for data-plane actions (checked against DataActions)
	Scope       string // e.g. "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/x"
}

// Decision is the answer and why.
type Decision struct {
	Allowed      bool
	AssignmentID string // the assignment that granted it, for audit
	Reason       string // "DeniedWithNoValidRBAC" or "Allowed"
}

// Owner is the built-in role that may do everything (the bootstrap admin holds it at "/").
var Owner = Role{
	ID:          "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
	Name:        "Owner",
	Actions:     []string{"*"},
	DataActions: []string{"*"},
}

// Decide answers req against assignments.
func Decide(req Request, assignments []Assignment) Decision {
	for _, a := range assignments {
		if a.PrincipalID != req.PrincipalID || !ScopeContains(a.Scope, req.Scope) {
			continue
		}
		patterns := a.Role.Actions
		if req.DataAction {
			patterns = a.Role.DataActions
		}
		for _, p := range patterns {
			if Match(p, string(req.Action)) {
				return Decision{Allowed: true, AssignmentID: a.ID, Reason: "Allowed"}
			}
		}
	}
	return Decision{Reason: "DeniedWithNoValidRBAC"}
}

// ScopeContains reports whether scope is parent or equal to child, segment-wise and
// case-insensitively. "/" contains everything.
func ScopeContains(parent, child string) bool {
	p := strings.ToLower(strings.TrimRight(parent, "/"))
	c := strings.ToLower(strings.TrimRight(child, "/"))
	if p == "" {
		return true
	}
	return c == p || strings.HasPrefix(c, p+"/")
}

// Match reports whether action matches pattern, where "*" matches any run of characters.
func Match(pattern, action string) bool {
	pattern, action = strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == action
	}
	if !strings.HasPrefix(action, parts[0]) {
		return false
	}
	rest := action[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		j := strings.Index(rest, parts[i])
		if j < 0 {
			return false
		}
		rest = rest[j+len(parts[i]):]
	}
	return strings.HasSuffix(rest, parts[len(parts)-1])
}
