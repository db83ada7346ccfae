package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/service"
)

// managedIdentityRoutes serve Microsoft.ManagedIdentity (user-assigned identities) and the
// identity hosts they are assigned to.
//
// Management plane (ARM token; authorized by service.Authorize*):
//
//	PUT|PATCH|GET|DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}
//	GET  /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
//	GET  /subscriptions/{s}/providers/Microsoft.ManagedIdentity/userAssignedIdentities
//	GET  /subscriptions/{s}/providers/Strongroom.Identity/hosts
//	PUT|GET|DELETE /subscriptions/{s}/providers/Strongroom.Identity/hosts/{name}   (PUT answers the one-time registration token)
//	POST /subscriptions/{s}/providers/Strongroom.Identity/hosts/{name}/assignIdentity    {"identityId": "<identity resource id>"}
//	POST /subscriptions/{s}/providers/Strongroom.Identity/hosts/{name}/unassignIdentity  {"identityId": "<identity resource id>"}
//
// Identity agents (no ARM token: each request proves a host, see identity.VerifyHostAssertion):
//
//	POST /providers/Strongroom.Identity/hostAgent/register   {"registrationToken","csr"} -> host certificate
//	POST /providers/Strongroom.Identity/hostAgent/token      X-Strongroom-Host-Assertion; {"resource","clientId"|"objectId"|"miResId"}
//
// The agent routes are public (no ARM token): each handler authenticates the host itself
// before reading anything.
var managedIdentityRoutes = []armRoute{
	route("PUT", "subscriptions/{}/resourcegroups/{}/providers/microsoft.managedidentity/userassignedidentities/{}", "UserAssignedIdentityWrite", (*armReq).putIdentity),
	route("PATCH", "subscriptions/{}/resourcegroups/{}/providers/microsoft.managedidentity/userassignedidentities/{}", "UserAssignedIdentityWrite", (*armReq).patchIdentity),
	route("GET", "subscriptions/{}/resourcegroups/{}/providers/microsoft.managedidentity/userassignedidentities/{}", "UserAssignedIdentityRead", (*armReq).getIdentity),
	route("DELETE", "subscriptions/{}/resourcegroups/{}/providers/microsoft.managedidentity/userassignedidentities/{}", "UserAssignedIdentityDelete", (*armReq).deleteIdentity),
	route("GET", "subscriptions/{}/resourcegroups/{}/providers/microsoft.managedidentity/userassignedidentities", "UserAssignedIdentityList", (*armReq).listIdentitiesInGroup),
	route("GET", "subscriptions/{}/providers/microsoft.managedidentity/userassignedidentities", "UserAssignedIdentityList", (*armReq).listIdentities),
	route("GET", "subscriptions/{}/providers/strongroom.identity/hosts", "IdentityHostList", (*armReq).listHosts),
	route("PUT", "subscriptions/{}/providers/strongroom.identity/hosts/{}", "IdentityHostRegister", (*armReq).putHost),
	route("GET", "subscriptions/{}/providers/strongroom.identity/hosts/{}", "IdentityHostRead", (*armReq).getHost),
	route("DELETE", "subscriptions/{}/providers/strongroom.identity/hosts/{}", "IdentityHostDelete", (*armReq).deleteHost),
	route("POST", "subscriptions/{}/providers/strongroom.identity/hosts/{}/assignidentity", "IdentityHostAssign", (*armReq).assignHostIdentity),
	route("POST", "subscriptions/{}/providers/strongroom.identity/hosts/{}/unassignidentity", "IdentityHostUnassign", (*armReq).unassignHostIdentity),
	publicRoute("POST", "providers/strongroom.identity/hostagent/register", "IdentityHostRedeem", (*armReq).agentRegister),
	publicRoute("POST", "providers/strongroom.identity/hostagent/token", "IdentityHostToken", (*armReq).agentToken),
}

// HostAssertionHeader carries an agent's host assertion.
const HostAssertionHeader = "X-Strongroom-Host-Assertion"

// managedDirectory is what these routes need of the identity service (the server's Verifier).
type managedDirectory interface {
	PutManagedIdentity(ctx context.Context, rg, name, location string, tags map[string]string) (identity.ManagedIdentity, bool, error)
	GetManagedIdentity(ctx context.Context, rg, name string) (identity.ManagedIdentity, error)
	ListManagedIdentities(ctx context.Context, rg string) ([]identity.ManagedIdentity, error)
	DeleteManagedIdentity(ctx context.Context, rg, name string) error
	RegisterHost(ctx context.Context, name string, ttl time.Duration) (identity.Host, string, bool, error)
	GetHost(ctx context.Context, name string) (identity.Host, error)
	ListHosts(ctx context.Context) ([]identity.Host, error)
	RemoveHost(ctx context.Context, name string) error
	AssignHostIdentity(ctx context.Context, host, rg, name string) (identity.Host, error)
	UnassignHostIdentity(ctx context.Context, host, rg, name string) (identity.Host, error)
	RedeemHostRegistration(ctx context.Context, token string, csrDER []byte) (identity.Host, []byte, []byte, error)
	VerifyHostAssertion(ctx context.Context, assertion string, body []byte) (identity.Host, error)
	MintHostToken(ctx context.Context, host string, sel identity.HostIdentitySelector, resource, current string) (identity.Token, identity.HostIdentity, error)
}

// directory returns the identity service, or answers 501 when the server has none.
func (a *armReq) directory() (managedDirectory, bool) {
	d, ok := a.s.tokens.(managedDirectory)
	if !ok {
		a.fail(&service.Error{Kind: errInternal, Code: "NotImplemented", Message: "Managed identities are not available on this server."})
	}
	return d, ok
}

// msiError maps the identity service's errors to ARM's.
func msiError(err error, rg, name string) error {
	var in *identity.InputError
	switch {
	case errors.As(err, &in) && errors.Is(err, identity.ErrObjectConflict):
		return &service.Error{Kind: service.ErrConflict, Code: "Conflict", Message: in.Msg}
	case errors.As(err, &in):
		return &service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: in.Msg}
	case errors.Is(err, identity.ErrObjectNotFound):
		return service.IdentityNotFound(rg, name)
	case errors.Is(err, identity.ErrHostNotFound):
		return &service.Error{Kind: service.ErrNotFound, Code: "ResourceNotFound", Message: "The host '" + name + "' was not found."}
	case errors.Is(err, identity.ErrIdentityNotAssigned):
		return &service.Error{Kind: service.ErrNotFound, Code: "IdentityNotAssigned", Message: "The identity is not assigned to the host."}
	}
	return err
}

type wireIdentity struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Location   string             `json:"location"`
	Tags       map[string]string  `json:"tags"`
	Properties wireIdentityFields `json:"properties"`
}

type wireIdentityFields struct {
	TenantID    string `json:"tenantId"`
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
}

func toWireIdentity(m identity.ManagedIdentity) wireIdentity {
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return wireIdentity{ID: m.ResourceID, Name: m.Name, Type: "Microsoft.ManagedIdentity/userAssignedIdentities",
		Location: m.Location, Tags: tags, Properties: wireIdentityFields{TenantID: m.TenantID, PrincipalID: m.PrincipalID, ClientID: m.ClientID}}
}

type identityInput struct {
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

func (a *armReq) authorizeIdentity(action service.MSIAction, p []string) bool {
	id, err := a.s.svc.AuthorizeUserAssignedIdentity(a.ctx, action, p[0], p[1])
	a.resourceID = id
	if err != nil {
		a.fail(err)
		return false
	}
	return true
}

func (a *armReq) putIdentity(p []string) {
	if !a.authorizeIdentity(service.ActionIdentityWrite, p) {
		return
	}
	var in identityInput
	if !a.decode(&in) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	m, created, err := d.PutManagedIdentity(a.ctx, p[0], p[1], in.Location, in.Tags)
	if err != nil {
		a.fail(msiError(err, p[0], p[1]))
		return
	}
	a.objectID = m.PrincipalID
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(a.w, status, toWireIdentity(m))
}

// patchIdentity updates tags (armmsi's Update); the identity must exist.
func (a *armReq) patchIdentity(p []string) {
	if !a.authorizeIdentity(service.ActionIdentityWrite, p) {
		return
	}
	var in identityInput
	if !a.decode(&in) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	m, err := d.GetManagedIdentity(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(msiError(err, p[0], p[1]))
		return
	}
	if in.Tags == nil {
		in.Tags = m.Tags
	}
	m, _, err = d.PutManagedIdentity(a.ctx, m.ResourceGroup, m.Name, m.Location, in.Tags)
	if err != nil {
		a.fail(msiError(err, p[0], p[1]))
		return
	}
	writeJSON(a.w, http.StatusOK, toWireIdentity(m))
}

func (a *armReq) getIdentity(p []string) {
	if !a.authorizeIdentity(service.ActionIdentityRead, p) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	m, err := d.GetManagedIdentity(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(msiError(err, p[0], p[1]))
		return
	}
	a.objectID = m.PrincipalID
	writeJSON(a.w, http.StatusOK, toWireIdentity(m))
}

func (a *armReq) deleteIdentity(p []string) {
	if !a.authorizeIdentity(service.ActionIdentityDelete, p) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	switch err := d.DeleteManagedIdentity(a.ctx, p[0], p[1]); {
	case errors.Is(err, identity.ErrObjectNotFound):
		a.w.WriteHeader(http.StatusNoContent) // ARM: deleting what is not there
	case err != nil:
		a.fail(msiError(err, p[0], p[1]))
	default:
		a.w.WriteHeader(http.StatusOK)
	}
}

func (a *armReq) listIdentitiesInGroup(p []string) { a.listIdentitiesIn(p[0]) }
func (a *armReq) listIdentities(_ []string)        { a.listIdentitiesIn("") }

func (a *armReq) listIdentitiesIn(rg string) {
	if err := a.s.svc.AuthorizeUserAssignedIdentityList(a.ctx, rg); err != nil {
		a.fail(err)
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	ms, err := d.ListManagedIdentities(a.ctx, rg)
	out := struct {
		Value []wireIdentity `json:"value"`
	}{Value: make([]wireIdentity, 0, len(ms))}
	for _, m := range ms {
		out.Value = append(out.Value, toWireIdentity(m))
	}
	a.ok(http.StatusOK, out, err)
}

// Hosts.

type wireHost struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Properties wireHostFields `json:"properties"`
}

type wireHostFields struct {
	HostID                     string             `json:"hostId"`
	CreatedOn                  string             `json:"createdOn"`
	Registered                 bool               `json:"registered"`
	RegisteredOn               string             `json:"registeredOn,omitempty"`
	CertificateThumbprint      string             `json:"certificateThumbprint,omitempty"`
	CertificateExpiresOn       string             `json:"certificateExpiresOn,omitempty"`
	RegistrationToken          string             `json:"registrationToken,omitempty"`
	RegistrationTokenExpiresOn string             `json:"registrationTokenExpiresOn,omitempty"`
	Identities                 []wireHostIdentity `json:"identities"`
}

type wireHostIdentity struct {
	ID          string `json:"id"`
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
	AssignedOn  string `json:"assignedOn"`
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return armTime(t)
}

func (a *armReq) toWireHost(h identity.Host) wireHost {
	w := wireHost{ID: "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Strongroom.Identity/hosts/" + h.Name, Name: h.Name,
		Type: "Strongroom.Identity/hosts", Properties: wireHostFields{HostID: h.ID, CreatedOn: armTime(h.CreatedAt),
			Registered: h.Registered, RegisteredOn: optTime(h.RegisteredAt), CertificateThumbprint: h.CertificateThumbprint,
			CertificateExpiresOn: optTime(h.CertificateNotAfter), RegistrationTokenExpiresOn: optTime(h.RegistrationExpiresOn),
			Identities: make([]wireHostIdentity, 0, len(h.Identities))}}
	for _, i := range h.Identities {
		w.Properties.Identities = append(w.Properties.Identities, wireHostIdentity{ID: i.ResourceID, PrincipalID: i.PrincipalID,
			ClientID: i.ClientID, AssignedOn: armTime(i.AssignedAt)})
	}
	return w
}

func (a *armReq) authorizeHost(action service.MSIAction, name string) bool {
	id, err := a.s.svc.AuthorizeHost(a.ctx, action, name)
	a.resourceID = id
	if err != nil {
		a.fail(err)
		return false
	}
	return true
}

func (a *armReq) listHosts(_ []string) {
	if !a.authorizeHost(service.ActionHostRead, "") {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	hs, err := d.ListHosts(a.ctx)
	out := struct {
		Value []wireHost `json:"value"`
	}{Value: make([]wireHost, 0, len(hs))}
	for _, h := range hs {
		out.Value = append(out.Value, a.toWireHost(h))
	}
	a.ok(http.StatusOK, out, err)
}

// putHost registers a host (or registers it again) and answers the registration token, once.
// The body is optional: {"properties": {"registrationTokenLifetimeSeconds": 3600}}.
func (a *armReq) putHost(p []string) {
	if !a.authorizeHost(service.ActionHostWrite, p[0]) {
		return
	}
	var in struct {
		Properties struct {
			TTL int64 `json:"registrationTokenLifetimeSeconds"`
		} `json:"properties"`
	}
	if a.r.ContentLength != 0 && !a.decode(&in) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	h, token, created, err := d.RegisterHost(a.ctx, p[0], time.Duration(in.Properties.TTL)*time.Second)
	if err != nil {
		a.fail(msiError(err, "", p[0]))
		return
	}
	w := a.toWireHost(h)
	w.Properties.RegistrationToken = token
	noStore(a.w) // the token is shown once
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(a.w, status, w)
}

func (a *armReq) getHost(p []string) {
	if !a.authorizeHost(service.ActionHostRead, p[0]) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	h, err := d.GetHost(a.ctx, p[0])
	if err != nil {
		a.fail(msiError(err, "", p[0]))
		return
	}
	writeJSON(a.w, http.StatusOK, a.toWireHost(h))
}

func (a *armReq) deleteHost(p []string) {
	if !a.authorizeHost(service.ActionHostDelete, p[0]) {
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	switch err := d.RemoveHost(a.ctx, p[0]); {
	case errors.Is(err, identity.ErrHostNotFound):
		a.w.WriteHeader(http.StatusNoContent)
	case err != nil:
		a.fail(msiError(err, "", p[0]))
	default:
		a.w.WriteHeader(http.StatusOK)
	}
}

func (a *armReq) assignHostIdentity(p []string)   { a.hostAssignment(p[0], true) }
func (a *armReq) unassignHostIdentity(p []string) { a.hostAssignment(p[0], false) }

func (a *armReq) hostAssignment(host string, assign bool) {
	var in struct {
		IdentityID string `json:"identityId"`
	}
	if !a.decode(&in) {
		return
	}
	rg, name, ok := a.parseIdentityID(in.IdentityID)
	if !ok {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidIdentityId", Message: "identityId must be the resource id of a user-assigned identity in this subscription."})
		return
	}
	id, err := a.s.svc.AuthorizeHostAssignment(a.ctx, host, rg, name)
	a.resourceID = id
	if err != nil {
		a.fail(err)
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	var h identity.Host
	if assign {
		h, err = d.AssignHostIdentity(a.ctx, host, rg, name)
	} else {
		h, err = d.UnassignHostIdentity(a.ctx, host, rg, name)
	}
	if errors.Is(err, identity.ErrHostNotFound) {
		err = msiError(err, "", host)
	}
	if err != nil {
		a.fail(msiError(err, rg, name))
		return
	}
	writeJSON(a.w, http.StatusOK, a.toWireHost(h))
}

// parseIdentityID splits /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}.
func (a *armReq) parseIdentityID(id string) (rg, name string, ok bool) {
	seg := strings.Split(strings.Trim(id, "/"), "/")
	if len(seg) != 8 || !strings.EqualFold(seg[0], "subscriptions") || !strings.EqualFold(seg[1], a.s.cfg.SubscriptionID) ||
		!strings.EqualFold(seg[2], "resourceGroups") || !strings.EqualFold(seg[4], "providers") ||
		!strings.EqualFold(seg[5], "Microsoft.ManagedIdentity") || !strings.EqualFold(seg[6], "userAssignedIdentities") ||
		seg[3] == "" || seg[7] == "" {
		return "", "", false
	}
	return seg[3], seg[7], true
}

// The agent routes.

type agentRegisterRequest struct {
	RegistrationToken string `json:"registrationToken"`
	CSR               string `json:"csr"` // base64 DER
}

type agentRegisterResponse struct {
	Host        string `json:"host"`
	HostID      string `json:"hostId"`
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM, the host CA
}

// agentRegister redeems a registration token. The token is the only credential; it is read from
// the body (never the URL, so it reaches no log) and spent whatever the outcome of the signing.
func (a *armReq) agentRegister(_ []string) {
	a.op = "IdentityHostRedeem"
	var in agentRegisterRequest
	if !a.decode(&in) {
		return
	}
	csr, err := base64.StdEncoding.DecodeString(in.CSR)
	if err != nil || in.RegistrationToken == "" {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "registrationToken and csr (base64 DER) are required."})
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	h, cert, ca, err := d.RedeemHostRegistration(a.ctx, in.RegistrationToken, csr)
	var inErr *identity.InputError
	switch {
	case errors.Is(err, identity.ErrBadRegistrationToken):
		a.fail(&service.Error{Kind: errUnauthorized, Code: "InvalidRegistrationToken", Message: "The registration token is unknown, used or expired."})
		return
	case errors.As(err, &inErr):
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: inErr.Msg})
		return
	case err != nil:
		a.fail(err)
		return
	}
	a.resourceID = "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Strongroom.Identity/hosts/" + h.Name
	noStore(a.w)
	writeJSON(a.w, http.StatusOK, agentRegisterResponse{Host: h.Name, HostID: h.ID, Certificate: string(cert), CA: string(ca)})
}

type agentTokenRequest struct {
	Resource string `json:"resource"`
	ClientID string `json:"clientId,omitempty"`
	ObjectID string `json:"objectId,omitempty"`
	MIResID  string `json:"miResId,omitempty"`
	// Current is the token the agent holds for this request, answered again while it may be.
	Current string `json:"current,omitempty"`
}

// agentTokenResponse is the server's answer to an agent's token request.
type agentTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   int64  `json:"expires_on"`
	ExpiresIn   int    `json:"expires_in"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
	ObjectID    string `json:"object_id"`
	MIResID     string `json:"mi_res_id"`
}

// agentToken mints a token for one of the identities assigned to the host the assertion proves.
func (a *armReq) agentToken(_ []string) {
	a.op = "IdentityHostToken"
	body, err := io.ReadAll(a.r.Body)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request body could not be read."})
		return
	}
	d, ok := a.directory()
	if !ok {
		return
	}
	h, err := d.VerifyHostAssertion(a.ctx, a.r.Header.Get(HostAssertionHeader), body)
	if err != nil {
		if !errors.Is(err, identity.ErrHostCredential) && !errors.Is(err, identity.ErrHostNotFound) {
			a.fail(err)
			return
		}
		a.fail(&service.Error{Kind: errUnauthorized, Code: "InvalidHostCredential", Message: "The host credential is missing or invalid, or the host was removed."})
		return
	}
	a.resourceID = "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Strongroom.Identity/hosts/" + h.Name
	var in agentTokenRequest
	if err := json.Unmarshal(body, &in); err != nil || in.Resource == "" {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "The body must be JSON naming a resource."})
		return
	}
	set := 0
	for _, v := range []string{in.ClientID, in.ObjectID, in.MIResID} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "Name the identity with at most one of clientId, objectId and miResId."})
		return
	}
	tok, hi, err := d.MintHostToken(a.ctx, h.Name, identity.HostIdentitySelector{ClientID: in.ClientID, ObjectID: in.ObjectID, ResourceID: in.MIResID}, in.Resource, in.Current)
	switch {
	case errors.Is(err, identity.ErrIdentityNotAssigned):
		a.fail(&service.Error{Kind: service.ErrForbidden, Code: "IdentityNotAssigned", Message: "The requested identity is not assigned to this host."})
	case errors.Is(err, identity.ErrNoHostIdentity), errors.Is(err, identity.ErrAmbiguousIdentity):
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "IdentityNotSpecified", Message: err.Error()})
	case errors.Is(err, identity.ErrUnknownResource), errors.Is(err, identity.ErrInvalidScope):
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "AADSTS500011", Message: "AADSTS500011: The resource principal named " + strconv.Quote(echoResource(in.Resource)) + " was not found in the tenant."})
	case errors.Is(err, identity.ErrPrincipalDisabled):
		a.fail(&service.Error{Kind: service.ErrForbidden, Code: "IdentityDisabled", Message: "The identity is disabled."})
	case errors.Is(err, identity.ErrHostNotFound), errors.Is(err, identity.ErrHostCredential):
		a.fail(&service.Error{Kind: errUnauthorized, Code: "InvalidHostCredential", Message: "The host credential is missing or invalid, or the host was removed."})
	case err != nil:
		a.fail(err)
	default:
		a.objectID = hi.PrincipalID
		noStore(a.w)
		writeJSON(a.w, http.StatusOK, agentTokenResponse{AccessToken: tok.AccessToken, ExpiresOn: tok.ExpiresOn.Unix(), ExpiresIn: tok.ExpiresIn,
			Resource: tok.Resource, TokenType: "Bearer", ClientID: hi.ClientID, ObjectID: hi.PrincipalID, MIResID: hi.ResourceID})
	}
}

func echoResource(r string) string {
	if len(r) > 200 {
		r = r[:200]
	}
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, r)
}

// noStore keeps an answer holding a credential out of every cache.
func noStore(w http.ResponseWriter) {
	w.Header()["Cache-Control"] = []string{"no-store"}
}
