package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/service"
)

// Users, groups and memberships.

func (g *graphReq) listUsers(_ []string) {
	f, ok := g.filter()
	if !ok {
		return
	}
	users, err := g.dir.ListUsers(g.ctx)
	if err != nil {
		g.fail(err, "")
		return
	}
	out := graphList[graphUser]{Context: g.context("users"), Value: []graphUser{}}
	for _, u := range users {
		keep, ok := g.keep(f, "User", func(p string) ([]string, bool) {
			switch p {
			case "userprincipalname":
				return []string{u.UserPrincipalName}, true
			case "id":
				return []string{u.ID}, true
			case "displayname":
				return []string{u.DisplayName}, true
			case "mailnickname":
				return []string{u.MailNickname}, true
			case "mail":
				return nil, true
			}
			return nil, false
		})
		if !ok {
			return
		}
		if keep {
			out.Value = append(out.Value, wireUser(u))
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createUser(_ []string) {
	var in graphUserInput
	if !g.decode(&in) ||
		!g.required(in.UserPrincipalName != nil, "userPrincipalName", "User") ||
		!g.required(in.DisplayName != nil, "displayName", "User") ||
		!g.required(in.AccountEnabled != nil, "accountEnabled", "User") ||
		!g.required(in.PasswordProfile != nil && in.PasswordProfile.Password != nil, "passwordProfile", "User") ||
		!g.authorize(identity.DirWriteUsers) {
		return
	}
	nick := ""
	if in.MailNickname != nil {
		nick = *in.MailNickname
	}
	u, err := g.dir.CreateUser(g.ctx, identity.UserInput{UserPrincipalName: *in.UserPrincipalName, DisplayName: *in.DisplayName,
		MailNickname: nick, Password: *in.PasswordProfile.Password, AccountEnabled: *in.AccountEnabled})
	if err != nil {
		g.fail(err, "")
		return
	}
	g.setResource("users", u.ID)
	out := wireUser(u)
	out.Context = g.context("users/$entity")
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getUser(p []string) {
	u, err := g.dir.GetUser(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireUser(u)
	out.Context = g.context("users/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) patchUser(p []string) {
	g.setResource("users", p[0])
	var in graphUserInput
	if !g.decode(&in) {
		return
	}
	newPassword := in.PasswordProfile != nil && in.PasswordProfile.Password != nil
	if !g.required(in.AccountEnabled != nil || newPassword, "accountEnabled", "User") || !g.authorizeOn(identity.DirWriteUsers, p[0]) {
		return
	}
	if newPassword {
		if _, err := g.dir.SetUserPassword(g.ctx, p[0], *in.PasswordProfile.Password); err != nil {
			g.fail(err, p[0])
			return
		}
	}
	if in.AccountEnabled != nil {
		if _, err := g.dir.SetUserEnabled(g.ctx, p[0], *in.AccountEnabled); err != nil {
			g.fail(err, p[0])
			return
		}
	}
	g.noContent()
}

func (g *graphReq) deleteUser(p []string) {
	g.setResource("users", p[0])
	if !g.authorizeOn(identity.DirWriteUsers, p[0]) {
		return
	}
	if err := g.dir.DeleteUser(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

// revokeSignInSessions is Graph's POST users/{id}/revokeSignInSessions: every
// refresh token the user holds stops working (identity.RevokeSignInSessions); access tokens
// live out their hour, as in Entra. Users may revoke their own sessions; anyone else's takes
// User Administrator (an administrator's: Global or Privileged Role Administrator).
func (g *graphReq) revokeSignInSessions(p []string) {
	g.setResource("users", p[0])
	u, err := g.dir.GetUser(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	if u.ID == g.caller().ObjectID {
		if slot := service.DecisionFrom(g.ctx); slot != nil {
			slot.Allowed = true
		}
	} else if !g.authorizeOn(identity.DirWriteUsers, u.ID) {
		return
	}
	if err := g.dir.RevokeSignInSessions(g.ctx, u.ID); err != nil {
		g.fail(err, p[0])
		return
	}
	writeJSON(g.w, http.StatusOK, map[string]any{"@odata.context": g.context("Edm.Boolean"), "value": true})
}

// Groups.

func (g *graphReq) listGroups(_ []string) {
	f, ok := g.filter()
	if !ok {
		return
	}
	groups, err := g.dir.ListGroups(g.ctx)
	if err != nil {
		g.fail(err, "")
		return
	}
	out := graphList[graphGroup]{Context: g.context("groups"), Value: []graphGroup{}}
	for _, gr := range groups {
		keep, ok := g.keep(f, "Group", func(p string) ([]string, bool) {
			switch p {
			case "displayname":
				return []string{gr.DisplayName}, true
			case "id":
				return []string{gr.ID}, true
			case "mailnickname":
				return []string{gr.MailNickname}, true
			}
			return nil, false
		})
		if !ok {
			return
		}
		if keep {
			out.Value = append(out.Value, wireGroup(gr))
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createGroup(_ []string) {
	var in graphGroupInput
	if !g.decode(&in) ||
		!g.required(in.DisplayName != nil, "displayName", "Group") ||
		!g.required(in.MailNickname != nil, "mailNickname", "Group") ||
		!g.required(in.SecurityEnabled != nil, "securityEnabled", "Group") {
		return
	}
	if (in.MailEnabled != nil && *in.MailEnabled) || len(in.GroupTypes) > 0 {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Only security groups are supported: mailEnabled must be false and groupTypes empty.")
		return
	}
	if !g.authorize(identity.DirWriteGroups) {
		return
	}
	desc := ""
	if in.Description != nil {
		desc = *in.Description
	}
	gr, err := g.dir.CreateGroup(g.ctx, identity.GroupInput{DisplayName: *in.DisplayName, MailNickname: *in.MailNickname,
		SecurityEnabled: *in.SecurityEnabled, Description: desc})
	if err != nil {
		g.fail(err, "")
		return
	}
	g.setResource("groups", gr.ID)
	out := wireGroup(gr)
	out.Context = g.context("groups/$entity")
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getGroup(p []string) {
	gr, err := g.dir.GetGroup(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireGroup(gr)
	out.Context = g.context("groups/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) deleteGroup(p []string) {
	g.setResource("groups", p[0])
	if !g.authorize(identity.DirWriteGroups) {
		return
	}
	if err := g.dir.DeleteGroup(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

func (g *graphReq) listMembers(p []string) {
	members, err := g.dir.ListMembers(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := graphList[graphMember]{Context: g.context("directoryObjects"), Value: make([]graphMember, 0, len(members))}
	for _, m := range members {
		out.Value = append(out.Value, wireMember(m))
	}
	writeJSON(g.w, http.StatusOK, out)
}

// addMember takes {"@odata.id": "<origin>/v1.0/directoryObjects/{id}"}; Graph also accepts
// the public cloud's origin and the users/, servicePrincipals/ and groups/ forms.
func (g *graphReq) addMember(p []string) {
	g.setResource("groups", p[0])
	var in graphRefInput
	if !g.decode(&in) || !g.required(in.ODataID != nil && *in.ODataID != "", "@odata.id", "DirectoryObject") {
		return
	}
	memberID, ok := memberFromRef(*in.ODataID)
	if !ok {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid URL format specified in @odata.bind for members.")
		return
	}
	if !g.authorize(identity.DirWriteGroups) {
		return
	}
	g.objectID = memberID
	if err := g.dir.AddMember(g.ctx, p[0], memberID); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

// memberFromRef reads the object id from an @odata.id reference.
func memberFromRef(ref string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(seg) < 2 {
		return "", false
	}
	switch strings.ToLower(seg[len(seg)-2]) {
	case "directoryobjects", "users", "serviceprincipals", "groups":
	default:
		return "", false
	}
	id := seg[len(seg)-1]
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", false
	}
	return strings.ToLower(id), true
}

func (g *graphReq) removeMember(p []string) {
	g.setResource("groups", p[0])
	g.objectID = p[1]
	if !g.authorize(identity.DirWriteGroups) {
		return
	}
	if err := g.dir.RemoveMember(g.ctx, p[0], p[1]); err != nil {
		g.fail(err, p[1])
		return
	}
	g.noContent()
}

func (g *graphReq) checkMemberGroups(p []string) {
	var in graphCheckMemberGroupsInput
	if !g.decode(&in) {
		return
	}
	if _, ok := g.dir.PrincipalType(p[0]); !ok {
		g.fail(identity.ErrObjectNotFound, p[0])
		return
	}
	if len(in.GroupIDs) == 0 || len(in.GroupIDs) > 20 {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'groupIds': 1 to 20 group ids are required.")
		return
	}
	writeJSON(g.w, http.StatusOK, graphList[string]{Context: g.context("Collection(Edm.String)"), Value: g.dir.CheckMemberGroups(p[0], in.GroupIDs)})
}

func (g *graphReq) getMemberObjects(p []string) {
	id := p[0]
	if u, err := g.dir.GetUser(g.ctx, id); err == nil { // users/{upn}/getMemberObjects
		id = u.ID
	} else if _, ok := g.dir.PrincipalType(id); !ok {
		g.fail(identity.ErrObjectNotFound, p[0])
		return
	}
	out := graphList[string]{Context: g.context("Collection(Edm.String)"), Value: append([]string{}, g.dir.GroupsOf(id)...)}
	writeJSON(g.w, http.StatusOK, out)
}

// transitiveMemberOf lists the groups an object is in, directly or through nesting, as the
// authorization code sees them (identity.GroupsOf: this node's in-memory directory).
func (g *graphReq) transitiveMemberOf(p []string) {
	id := p[0]
	if u, err := g.dir.GetUser(g.ctx, id); err == nil { // users/{upn}/...
		id = u.ID
	} else if _, ok := g.dir.PrincipalType(id); !ok {
		g.fail(identity.ErrObjectNotFound, p[0])
		return
	}
	g.writeGroups(g.dir.GroupsOf(id))
}

func (g *graphReq) myTransitiveMemberOf(_ []string) {
	g.writeGroups(g.dir.GroupsOf(g.caller().ObjectID))
}

func (g *graphReq) writeGroups(ids []string) {
	out := graphList[graphGroup]{Context: g.context("directoryObjects"), Value: make([]graphGroup, 0, len(ids))}
	for _, id := range ids {
		gr, err := g.dir.GetGroup(g.ctx, id)
		if errors.Is(err, identity.ErrObjectNotFound) {
			continue // deleted a moment ago
		}
		if err != nil {
			g.fail(err, id)
			return
		}
		w := wireGroup(gr)
		w.ODataType = "#microsoft.graph.group"
		out.Value = append(out.Value, w)
	}
	writeJSON(g.w, http.StatusOK, out)
}

// Directory roles.
