// The $filter forms of the role routes, as az and the SDKs send them.

package service

import "strings"

// AssignmentFilter is a parsed $filter of a role assignment list.
type AssignmentFilter struct {
	AtScope     bool   // atScope(): assignments at the scope or above it
	PrincipalID string // principalId eq '...'
	AssignedTo  string // assignedTo('...'): the principal and its groups
}

// ParseAssignmentFilter reads the $filter forms az and the SDKs send, alone or joined by "and".
func ParseAssignmentFilter(f string) (AssignmentFilter, error) {
	var out AssignmentFilter
	f = strings.TrimSpace(f)
	if f == "" {
		return out, nil
	}
	for _, part := range splitAnd(f) {
		p := strings.TrimSpace(part)
		lower := strings.ToLower(p)
		switch {
		case strings.ReplaceAll(lower, " ", "") == "atscope()":
			out.AtScope = true
		case strings.HasPrefix(lower, "principalid"):
			v, ok := quotedAfter(p, "eq")
			if !ok {
				return out, badFilter(f)
			}
			out.PrincipalID = v
		case strings.HasPrefix(lower, "assignedto("):
			v := strings.Trim(strings.TrimSpace(strings.TrimSuffix(p[len("assignedTo("):], ")")), "'")
			if v == "" {
				return out, badFilter(f)
			}
			out.AssignedTo = v
		default:
			return out, badFilter(f)
		}
	}
	return out, nil
}

func splitAnd(f string) []string {
	var parts []string
	for {
		i := strings.Index(strings.ToLower(f), " and ")
		if i < 0 {
			return append(parts, f)
		}
		parts, f = append(parts, f[:i]), f[i+5:]
	}
}

// quotedAfter returns the quoted value after op in "name op 'value'".
func quotedAfter(expr, op string) (string, bool) {
	fields := strings.Fields(expr)
	if len(fields) != 3 || !strings.EqualFold(fields[1], op) {
		return "", false
	}
	v := fields[2]
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
		return "", false
	}
	return v[1 : len(v)-1], true
}

func badFilter(f string) error {
	return newErr(ErrBadRequest, "InvalidFilterInQueryString", "", "The filter '%s' is not supported.", f)
}

// RoleDefinitionFilter is a parsed $filter of a role definition list.
type RoleDefinitionFilter struct {
	RoleName string // roleName eq '...'
	Type     string // type eq 'BuiltInRole' | 'CustomRole'
}

// ParseRoleDefinitionFilter reads "roleName eq '...'" and "type eq '...'".
func ParseRoleDefinitionFilter(f string) (RoleDefinitionFilter, error) {
	var out RoleDefinitionFilter
	if strings.TrimSpace(f) == "" {
		return out, nil
	}
	for _, part := range splitAnd(strings.TrimSpace(f)) {
		p := strings.TrimSpace(part)
		lower := strings.ToLower(p)
		i := strings.Index(lower, " eq ")
		if i < 0 {
			return out, badFilter(f)
		}
		v := strings.TrimSpace(p[i+4:])
		if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			return out, badFilter(f)
		}
		v = v[1 : len(v)-1]
		switch strings.TrimSpace(lower[:i]) {
		case "rolename":
			out.RoleName = v
		case "type":
			out.Type = v
		default:
			return out, badFilter(f)
		}
	}
	return out, nil
}
