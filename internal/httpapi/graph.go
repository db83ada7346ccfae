package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
)

// The directory, in Microsoft Graph v1.0 shapes (graph_wire.go), served at the server's origin.
// Graph routes accept only tokens for https://graph.microsoft.com or the server's own origin
// (what the az cloud registration names as microsoftGraphResourceId), never an ARM token.
// Everyone authenticated may read the directory, as Entra's default user permissions allow;
// writes need a directory role (identity.AuthorizeDirectoryWrite): Global Administrator (the
// bootstrap admin), Application Administrator (applications, service principals and their
// secrets), User Administrator (users and groups), Groups Administrator (groups), Privileged
// Role Administrator (directory role assignments). Lists answer every match in one page.

// graphRoutes are the Microsoft Graph v1.0 routes the directory serves.
var graphRoutes = []armRoute{
	route("GET", "v1.0/me", "GraphMe", graph((*graphReq).me)),
	route("GET", "v1.0/applications", "GraphApplicationList", graph((*graphReq).listApplications)),
	route("POST", "v1.0/applications", "GraphApplicationCreate", graph((*graphReq).createApplication)),
	route("GET", "v1.0/applications/{}", "GraphApplicationGet", graph((*graphReq).getApplication)),
	route("DELETE", "v1.0/applications/{}", "GraphApplicationDelete", graph((*graphReq).deleteApplication)),
	route("POST", "v1.0/applications/{}/addPassword", "GraphApplicationAddPassword", graph((*graphReq).addPassword)),
	route("POST", "v1.0/applications/{}/removePassword", "GraphApplicationRemovePassword", graph((*graphReq).removePassword)),
	route("GET", "v1.0/servicePrincipals", "GraphServicePrincipalList", graph((*graphReq).listServicePrincipals)),
	route("POST", "v1.0/servicePrincipals", "GraphServicePrincipalCreate", graph((*graphReq).createServicePrincipal)),
	route("GET", "v1.0/servicePrincipals/{}", "GraphServicePrincipalGet", graph((*graphReq).getServicePrincipal)),
	route("PATCH", "v1.0/servicePrincipals/{}", "GraphServicePrincipalUpdate", graph((*graphReq).patchServicePrincipal)),
	route("DELETE", "v1.0/servicePrincipals/{}", "GraphServicePrincipalDelete", graph((*graphReq).deleteServicePrincipal)),
	route("GET", "v1.0/users", "GraphUserList", graph((*graphReq).listUsers)),
	route("POST", "v1.0/users", "GraphUserCreate", graph((*graphReq).createUser)),
	route("GET", "v1.0/users/{}", "GraphUserGet", graph((*graphReq).getUser)),
	route("PATCH", "v1.0/users/{}", "GraphUserUpdate", graph((*graphReq).patchUser)),
	route("DELETE", "v1.0/users/{}", "GraphUserDelete", graph((*graphReq).deleteUser)),
	route("POST", "v1.0/users/{}/getMemberObjects", "GraphUserMemberObjects", graph((*graphReq).getMemberObjects)),
	route("GET", "v1.0/groups", "GraphGroupList", graph((*graphReq).listGroups)),
	route("POST", "v1.0/groups", "GraphGroupCreate", graph((*graphReq).createGroup)),
	route("GET", "v1.0/groups/{}", "GraphGroupGet", graph((*graphReq).getGroup)),
	route("DELETE", "v1.0/groups/{}", "GraphGroupDelete", graph((*graphReq).deleteGroup)),
	route("GET", "v1.0/groups/{}/members", "GraphGroupMemberList", graph((*graphReq).listMembers)),
	route("POST", "v1.0/groups/{}/members/$ref", "GraphGroupMemberAdd", graph((*graphReq).addMember)),
	route("DELETE", "v1.0/groups/{}/members/{}/$ref", "GraphGroupMemberRemove", graph((*graphReq).removeMember)),
	route("GET", "v1.0/me/transitiveMemberOf", "GraphMeTransitiveMemberOf", graph((*graphReq).myTransitiveMemberOf)),
	route("GET", "v1.0/users/{}/transitiveMemberOf", "GraphUserTransitiveMemberOf", graph((*graphReq).transitiveMemberOf)),
	route("GET", "v1.0/servicePrincipals/{}/transitiveMemberOf", "GraphServicePrincipalTransitiveMemberOf", graph((*graphReq).transitiveMemberOf)),
	route("GET", "v1.0/groups/{}/transitiveMemberOf", "GraphGroupTransitiveMemberOf", graph((*graphReq).transitiveMemberOf)),
	route("POST", "v1.0/directoryObjects/{}/checkMemberGroups", "GraphCheckMemberGroups", graph((*graphReq).checkMemberGroups)),
	route("POST", "v1.0/directoryObjects/{}/getMemberObjects", "GraphMemberObjects", graph((*graphReq).getMemberObjects)),
	route("GET", "v1.0/roleManagement/directory/roleDefinitions", "GraphRoleDefinitionList", graph((*graphReq).listRoleDefinitions)),
	route("GET", "v1.0/roleManagement/directory/roleAssignments", "GraphRoleAssignmentList", graph((*graphReq).listRoleAssignments)),
	route("POST", "v1.0/roleManagement/directory/roleAssignments", "GraphRoleAssignmentCreate", graph((*graphReq).createRoleAssignment)),
	route("GET", "v1.0/roleManagement/directory/roleAssignments/{}", "GraphRoleAssignmentGet", graph((*graphReq).getRoleAssignment)),
	route("DELETE", "v1.0/roleManagement/directory/roleAssignments/{}", "GraphRoleAssignmentDelete", graph((*graphReq).deleteRoleAssignment)),
}

// graphAudience is Microsoft Graph's resource id.
const graphAudience = "https://graph.microsoft.com"

// graphAudiences are the token audiences Graph routes accept.
func (s *Server) graphAudiences() []string {
	return []string{graphAudience, s.cfg.PublicURL}
}

func isGraphPath(path string) bool {
	p := strings.TrimPrefix(path, "/")
	return len(p) >= 5 && strings.EqualFold(p[:5], "v1.0/") || strings.EqualFold(p, "v1.0")
}

// graphReq is one Graph request: the ARM request it arrived as, and the directory.
type graphReq struct {
	*armReq
	dir *identity.Service
}

// graph adapts a Graph handler to the route table: it refuses tokens of other audiences and
// servers without a directory, with Graph's error envelope.
func graph(h func(g *graphReq, p []string)) func(a *armReq, p []string) {
	return func(a *armReq, p []string) {
		g := &graphReq{armReq: a}
		if a.claims == nil || !audienceIn(a.claims.Audience, a.s.graphAudiences()) {
			a.w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+a.s.cfg.PublicURL+"/"+a.s.cfg.TenantID+`", error="invalid_token"`)
			g.error(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
			return
		}
		dir, ok := a.s.tokens.(*identity.Service)
		if !ok {
			g.error(http.StatusNotImplemented, "NotImplemented", "The directory is not available on this server.")
			return
		}
		g.dir = dir
		h(g, p)
	}
}

// audienceIn matches as identity.Verify does: one trailing "/" ignored, case-insensitively.
func audienceIn(aud string, allowed []string) bool {
	a := strings.TrimSuffix(aud, "/")
	for _, w := range allowed {
		if strings.EqualFold(a, strings.TrimSuffix(w, "/")) {
			return true
		}
	}
	return false
}

// graphError is Graph's error envelope.
type graphError struct {
	Error graphErrorBody `json:"error"`
}

type graphErrorBody struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	InnerError graphInnerError `json:"innerError"`
}

type graphInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

func (g *graphReq) error(status int, code, msg string) {
	req := info(g.r).id
	client := g.r.Header.Get("client-request-id")
	if _, err := uuid.Parse(client); err != nil {
		client = req
	}
	writeJSON(g.w, status, graphError{Error: graphErrorBody{Code: code, Message: msg,
		InnerError: graphInnerError{Date: graphTime(time.Now()), RequestID: req, ClientRequestID: client}}})
}

// fail maps a directory error to Graph's codes; messages name ids, never secrets.
func (g *graphReq) fail(err error, id string) {
	var ie *identity.InputError
	switch {
	case errors.As(err, &ie) && errors.Is(ie, identity.ErrObjectNotFound):
		g.error(http.StatusNotFound, "Request_ResourceNotFound", ie.Msg)
	case errors.As(err, &ie):
		g.error(http.StatusBadRequest, "Request_BadRequest", ie.Msg)
	case errors.Is(err, identity.ErrObjectNotFound), errors.Is(err, identity.ErrPrincipalNotFound):
		g.error(http.StatusNotFound, "Request_ResourceNotFound",
			"Resource '"+echoGraph(id)+"' does not exist or one of its queried reference-property objects are not present.")
	case errors.Is(err, identity.ErrDirectoryForbidden):
		g.error(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	case errors.Is(err, identity.ErrProtectedPrincipal):
		g.error(http.StatusBadRequest, "Request_BadRequest", "The bootstrap admin cannot be disabled or deleted, and keeps its Global Administrator role.")
	case errors.Is(err, identity.ErrBusy):
		g.w.Header().Set("Retry-After", "1")
		g.error(http.StatusServiceUnavailable, "serviceNotAvailable", "The server is too busy hashing secrets; retry later.")
	default:
		g.s.log.Error("directory operation failed", "request_id", info(g.r).id, "err", err) // ids only
		g.error(http.StatusInternalServerError, "generalException", "The server encountered an internal error; see the server log for the request id.")
	}
}

// echoGraph bounds a caller-supplied id in a message.
func echoGraph(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// authorize answers 403 unless the caller may make writes of class perm.
func (g *graphReq) authorize(perm identity.DirPermission) bool {
	if err := g.dir.AuthorizeDirectoryWrite(g.caller().ObjectID, perm); err != nil {
		g.fail(err, "")
		return false
	}
	return true
}

// decode reads a JSON body into v, answering Graph's error for an unreadable one.
func (g *graphReq) decode(v any) bool {
	body, err := io.ReadAll(g.r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		g.error(http.StatusRequestEntityTooLarge, "Request_BadRequest", "The request body is too large.")
		return false
	case err != nil || len(strings.TrimSpace(string(body))) == 0 || json.Unmarshal(body, v) != nil:
		g.error(http.StatusBadRequest, "Request_BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return false
	}
	return true
}

// required answers Graph's error for a missing property and reports whether it was present.
func (g *graphReq) required(present bool, prop, resource string) bool {
	if !present {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property '"+prop+"' of resource '"+resource+"'.")
	}
	return present
}

func (g *graphReq) context(suffix string) string {
	return g.s.cfg.PublicURL + "/v1.0/$metadata#" + suffix
}

// filter parses $filter, answering Graph's error for one it does not support.
func (g *graphReq) filter() (*graphFilter, bool) {
	raw := queryValue(g.r.URL.RawQuery, "$filter")
	if raw == "" {
		raw = queryValue(g.r.URL.RawQuery, "%24filter")
	}
	f, ok := parseGraphFilter(raw)
	if !ok {
		g.error(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified: '"+echoGraph(raw)+"'.")
	}
	return f, ok
}

// keep applies f to one object; an unsupported property answers the error and stops the list.
func (g *graphReq) keep(f *graphFilter, resource string, props func(string) ([]string, bool)) (keep, ok bool) {
	if f == nil {
		return true, true
	}
	matched, ok := f.match(props)
	if !ok {
		g.error(http.StatusBadRequest, "Request_UnsupportedQuery",
			"Unsupported or invalid query filter clause specified for property '"+echoGraph(f.prop)+"' of resource '"+resource+"'.")
	}
	return matched, ok
}

func (g *graphReq) noContent() { g.w.WriteHeader(http.StatusNoContent) }

func (g *graphReq) setResource(kind, id string) { g.resourceID = "/v1.0/" + kind + "/" + id }

// me is the signed-in principal: a user, or the service principal of an app-only token.
func (g *graphReq) me(_ []string) {
	c := g.caller()
	if c.Type == identity.TypeUser {
		u, err := g.dir.GetUser(g.ctx, c.ObjectID)
		if err != nil {
			g.fail(err, c.ObjectID)
			return
		}
		out := wireUser(u)
		out.Context = g.context("users/$entity")
		writeJSON(g.w, http.StatusOK, out)
		return
	}
	sp, err := g.dir.GetServicePrincipal(g.ctx, c.ObjectID)
	if err != nil {
		g.fail(err, c.ObjectID)
		return
	}
	out := wireServicePrincipal(sp, g.s.cfg.TenantID)
	out.Context = g.context("servicePrincipals/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

// Applications.

func (g *graphReq) listApplications(_ []string) {
	f, ok := g.filter()
	if !ok {
		return
	}
	apps, err := g.dir.ListApplications(g.ctx)
	if err != nil {
		g.fail(err, "")
		return
	}
	out := graphList[graphApplication]{Context: g.context("applications"), Value: []graphApplication{}}
	for _, a := range apps {
		keep, ok := g.keep(f, "Application", func(p string) ([]string, bool) {
			switch p {
			case "appid":
				return []string{a.AppID}, true
			case "id":
				return []string{a.ID}, true
			case "displayname":
				return []string{a.DisplayName}, true
			}
			return nil, false
		})
		if !ok {
			return
		}
		if keep {
			out.Value = append(out.Value, wireApplication(a))
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createApplication(_ []string) {
	var in graphApplicationInput
	if !g.decode(&in) || !g.required(in.DisplayName != nil, "displayName", "Application") || !g.authorize(identity.DirWriteApplications) {
		return
	}
	app, err := g.dir.CreateApplication(g.ctx, *in.DisplayName)
	if err != nil {
		g.fail(err, "")
		return
	}
	g.setResource("applications", app.ID)
	out := wireApplication(app)
	out.Context = g.context("applications/$entity")
	g.w.Header().Set("Location", g.s.cfg.PublicURL+"/v1.0/applications/"+app.ID)
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getApplication(p []string) {
	app, err := g.dir.GetApplication(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireApplication(app)
	out.Context = g.context("applications/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) deleteApplication(p []string) {
	g.setResource("applications", p[0])
	if !g.authorize(identity.DirWriteApplications) {
		return
	}
	if err := g.dir.DeleteApplication(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

func (g *graphReq) addPassword(p []string) {
	g.setResource("applications", p[0])
	var in graphAddPasswordInput
	if b, _ := io.ReadAll(g.r.Body); len(strings.TrimSpace(string(b))) > 0 {
		if json.Unmarshal(b, &in) != nil {
			g.error(http.StatusBadRequest, "Request_BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
			return
		}
	}
	var name string
	var end time.Time
	if pc := in.PasswordCredential; pc != nil {
		if pc.DisplayName != nil {
			name = *pc.DisplayName
		}
		if pc.EndDateTime != nil && *pc.EndDateTime != "" {
			t, err := time.Parse(time.RFC3339Nano, *pc.EndDateTime)
			if err != nil {
				g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.")
				return
			}
			end = t
		}
	}
	if !g.authorize(identity.DirWriteApplications) {
		return
	}
	pc, err := g.dir.AddPassword(g.ctx, p[0], name, end)
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := struct {
		Context string `json:"@odata.context"`
		graphPasswordCredential
	}{g.context("microsoft.graph.passwordCredential"), wirePassword(pc)}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) removePassword(p []string) {
	g.setResource("applications", p[0])
	var in graphRemovePasswordInput
	if !g.decode(&in) || !g.required(in.KeyID != nil && *in.KeyID != "", "keyId", "PasswordCredential") || !g.authorize(identity.DirWriteApplications) {
		return
	}
	if err := g.dir.RemovePassword(g.ctx, p[0], *in.KeyID); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

// Service principals.

func (g *graphReq) listServicePrincipals(_ []string) {
	f, ok := g.filter()
	if !ok {
		return
	}
	sps, err := g.dir.ListServicePrincipals(g.ctx)
	if err != nil {
		g.fail(err, "")
		return
	}
	out := graphList[graphServicePrincipal]{Context: g.context("servicePrincipals"), Value: []graphServicePrincipal{}}
	for _, sp := range sps {
		keep, ok := g.keep(f, "ServicePrincipal", func(p string) ([]string, bool) {
			switch p {
			case "appid":
				return []string{sp.AppID}, true
			case "id":
				return []string{sp.ID}, true
			case "displayname":
				return []string{sp.DisplayName}, true
			case "serviceprincipalnames":
				return []string{sp.AppID}, true
			}
			return nil, false
		})
		if !ok {
			return
		}
		if keep {
			out.Value = append(out.Value, wireServicePrincipal(sp, g.s.cfg.TenantID))
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createServicePrincipal(_ []string) {
	var in graphServicePrincipalInput
	if !g.decode(&in) || !g.required(in.AppID != nil && *in.AppID != "", "appId", "ServicePrincipal") || !g.authorize(identity.DirWriteApplications) {
		return
	}
	sp, err := g.dir.CreateServicePrincipalForApp(g.ctx, *in.AppID)
	if err != nil {
		g.fail(err, *in.AppID)
		return
	}
	g.setResource("servicePrincipals", sp.ID)
	out := wireServicePrincipal(sp, g.s.cfg.TenantID)
	out.Context = g.context("servicePrincipals/$entity")
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getServicePrincipal(p []string) {
	sp, err := g.dir.GetServicePrincipal(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireServicePrincipal(sp, g.s.cfg.TenantID)
	out.Context = g.context("servicePrincipals/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) patchServicePrincipal(p []string) {
	g.setResource("servicePrincipals", p[0])
	var in graphServicePrincipalPatch
	if !g.decode(&in) || !g.required(in.AccountEnabled != nil, "accountEnabled", "ServicePrincipal") || !g.authorize(identity.DirWriteApplications) {
		return
	}
	if _, err := g.dir.SetServicePrincipalEnabled(g.ctx, p[0], *in.AccountEnabled); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

func (g *graphReq) deleteServicePrincipal(p []string) {
	g.setResource("servicePrincipals", p[0])
	if !g.authorize(identity.DirWriteApplications) {
		return
	}
	if err := g.dir.DeletePrincipal(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

// Users.

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
	if !g.required(in.AccountEnabled != nil || newPassword, "accountEnabled", "User") || !g.authorize(identity.DirWriteUsers) {
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
	if !g.authorize(identity.DirWriteUsers) {
		return
	}
	if err := g.dir.DeleteUser(g.ctx, p[0]); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
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
