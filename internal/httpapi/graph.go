package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/service"
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
	route("POST", "v1.0/users/{}/revokeSignInSessions", "GraphUserRevokeSignInSessions", graph((*graphReq).revokeSignInSessions)),
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
	route("POST", "v1.0/directoryObjects/getByIds", "GraphGetByIds", graph((*graphReq).getByIds)),
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

// authorize answers 403 unless the caller may make writes of class perm, and records the
// decision (and the directory role assignment that allowed it) for the audit record.
func (g *graphReq) authorize(perm identity.DirPermission) bool {
	grant, err := g.dir.DirectoryWriteGrant(g.caller().ObjectID, perm)
	if slot := service.DecisionFrom(g.ctx); slot != nil {
		slot.Allowed, slot.AssignmentID = err == nil, grant
	}
	if err != nil {
		g.fail(err, "")
		return false
	}
	return true
}

// authorizeOn is authorize for a write to the existing principal ref (an object id or UPN):
// an administrator's account may be written only by a Global or Privileged Role Administrator.
func (g *graphReq) authorizeOn(perm identity.DirPermission, ref string) bool {
	target := ref
	if id, _, err := g.dir.ResolvePrincipal(g.ctx, ref); err == nil {
		target = id
	}
	grant, err := g.dir.DirectoryWriteGrantOn(g.caller().ObjectID, perm, target)
	if slot := service.DecisionFrom(g.ctx); slot != nil {
		slot.Allowed, slot.AssignmentID = err == nil, grant
	}
	if err != nil {
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
	matched, ok, bad := f.match(props)
	if !ok {
		g.error(http.StatusBadRequest, "Request_UnsupportedQuery",
			"Unsupported or invalid query filter clause specified for property '"+echoGraph(bad)+"' of resource '"+resource+"'.")
	}
	return matched, ok
}

func (g *graphReq) noContent() { g.w.WriteHeader(http.StatusNoContent) }

func (g *graphReq) setResource(kind, id string) { g.resourceID = "/v1.0/" + kind + "/" + id }

// me is the signed-in principal: a user, or the service principal of an app-only token.
