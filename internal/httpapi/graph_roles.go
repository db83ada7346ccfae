package httpapi

import (
	"net/http"

	"github.com/strongroom/strongroom/internal/identity"
)

// Directory role definitions and assignments.

func (g *graphReq) listRoleDefinitions(_ []string) {
	out := graphList[graphRoleDefinition]{Context: g.context("roleManagement/directory/roleDefinitions"), Value: []graphRoleDefinition{}}
	for _, r := range identity.DirectoryRoles {
		out.Value = append(out.Value, graphRoleDefinition{ID: r.ID, TemplateID: r.ID, DisplayName: r.DisplayName, Description: r.Description, IsBuiltIn: true, IsEnabled: true})
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) listRoleAssignments(_ []string) {
	f, ok := g.filter()
	if !ok {
		return
	}
	out := graphList[graphRoleAssignment]{Context: g.context("roleManagement/directory/roleAssignments"), Value: []graphRoleAssignment{}}
	for _, ra := range g.dir.ListDirectoryRoleAssignments() {
		keep, ok := g.keep(f, "UnifiedRoleAssignment", func(p string) ([]string, bool) {
			switch p {
			case "principalid":
				return []string{ra.PrincipalID}, true
			case "roledefinitionid":
				return []string{ra.RoleDefinitionID}, true
			}
			return nil, false
		})
		if !ok {
			return
		}
		if keep {
			out.Value = append(out.Value, wireRoleAssignment(ra))
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createRoleAssignment(_ []string) {
	var in graphRoleAssignmentInput
	if !g.decode(&in) ||
		!g.required(in.PrincipalID != nil, "principalId", "UnifiedRoleAssignment") ||
		!g.required(in.RoleDefinitionID != nil, "roleDefinitionId", "UnifiedRoleAssignment") ||
		!g.required(in.DirectoryScopeID != nil, "directoryScopeId", "UnifiedRoleAssignment") ||
		!g.authorize(identity.DirWriteRoles) {
		return
	}
	ra, err := g.dir.AssignDirectoryRole(g.ctx, *in.PrincipalID, *in.RoleDefinitionID, *in.DirectoryScopeID)
	if err != nil {
		g.fail(err, *in.PrincipalID)
		return
	}
	g.setResource("roleManagement/directory/roleAssignments", ra.ID)
	out := wireRoleAssignment(ra)
	out.Context = g.context("roleManagement/directory/roleAssignments/$entity")
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getRoleAssignment(p []string) {
	ra, err := g.dir.GetDirectoryRoleAssignment(p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireRoleAssignment(ra)
	out.Context = g.context("roleManagement/directory/roleAssignments/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) deleteRoleAssignment(p []string) {
	g.setResource("roleManagement/directory/roleAssignments", p[0])
	if !g.authorize(identity.DirWriteRoles) {
		return
	}
	if err := g.dir.DeleteDirectoryRoleAssignment(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}
