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
// case-insensitively. "/" contains everything. It runs on every request, so it compares in
// place instead of lower-casing copies.
func ScopeContains(parent, child string) bool {
	p := strings.TrimRight(parent, "/")
	c := strings.TrimRight(child, "/")
	if p == "" {
		return true
	}
	return hasPrefixFold(c, p) && (len(c) == len(p) || c[len(p)] == '/')
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
