package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/azkv/arm"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/service"
)

// armAudiences are the token audiences the management plane accepts: ARM's own, as in Azure
// (the server's origin is the directory's audience, which ARM refuses).
func (s *Server) armAudiences() []string {
	return []string{"https://management.core.windows.net/", "https://management.azure.com/"}
}

// armRoute is one management-plane route. Literal segments match case-insensitively (ARM
// clients differ in case: az sends "resourcegroups", the Go SDK "resourceGroups"); "{}"
// segments capture the caller's spelling.
type armRoute struct {
	method  string
	pattern []string
	op      string
	handle  func(a *armReq, p []string)
	// public routes take no ARM token: the cloud metadata, and the identity agents' routes,
	// whose handlers authenticate the host themselves before reading anything.
	public bool
}

func route(method, pattern, op string, h func(a *armReq, p []string)) armRoute {
	return armRoute{method: method, pattern: strings.Split(strings.Trim(pattern, "/"), "/"), op: op, handle: h}
}

// publicRoute is a route without ARM authentication (see armRoute.public).
func publicRoute(method, pattern, op string, h func(a *armReq, p []string)) armRoute {
	r := route(method, pattern, op, h)
	r.public = true
	return r
}

// armRoutes is every management-plane route with a fixed number of segments; each file that
// serves a part of the plane adds its own table.
var armRoutes = slices.Concat(coreRoutes, graphRoutes, graphCredentialRoutes, accessPolicyRoutes, managedIdentityRoutes, eventSubscriptionRoutes, monitorRoutes, auditQueryRoutes)

var coreRoutes = []armRoute{
	publicRoute("GET", "metadata/endpoints", "MetadataGet", (*armReq).metadata),
	route("GET", "subscriptions", "SubscriptionList", (*armReq).listSubscriptions),
	route("GET", "subscriptions/{}", "SubscriptionGet", (*armReq).getSubscription),
	route("GET", "tenants", "TenantList", (*armReq).listTenants),
	route("GET", "subscriptions/{}/resources", "ResourceList", (*armReq).listResources),
	route("GET", "subscriptions/{}/resourcegroups", "ResourceGroupList", (*armReq).listGroups),
	route("PUT", "subscriptions/{}/resourcegroups/{}", "ResourceGroupWrite", (*armReq).putGroup),
	route("GET", "subscriptions/{}/resourcegroups/{}", "ResourceGroupRead", (*armReq).getGroup),
	route("HEAD", "subscriptions/{}/resourcegroups/{}", "ResourceGroupRead", (*armReq).headGroup),
	route("DELETE", "subscriptions/{}/resourcegroups/{}", "ResourceGroupDelete", (*armReq).deleteGroup),
	route("GET", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults", "VaultList", (*armReq).listVaultsInGroup),
	route("PUT", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}", "VaultPut", (*armReq).putVault),
	route("PATCH", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}", "VaultPatch", (*armReq).patchVault),
	route("GET", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}", "VaultGet", (*armReq).getVault),
	route("DELETE", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}", "VaultDelete", (*armReq).deleteVault),
	route("GET", "subscriptions/{}/providers/microsoft.keyvault/vaults", "VaultList", (*armReq).listVaults),
	route("GET", "subscriptions/{}/providers/microsoft.keyvault/deletedvaults", "VaultListDeleted", (*armReq).listDeletedVaults),
	route("GET", "subscriptions/{}/providers/microsoft.keyvault/locations/{}/deletedvaults/{}", "VaultGetDeleted", (*armReq).getDeletedVault),
	route("POST", "subscriptions/{}/providers/microsoft.keyvault/locations/{}/deletedvaults/{}/purge", "VaultPurge", (*armReq).purgeDeletedVault),
	route("POST", "subscriptions/{}/providers/microsoft.keyvault/checknameavailability", "VaultCheckNameAvailability", (*armReq).checkName),
	route("GET", "subscriptions/{}/providers/microsoft.keyvault/managedhsms", "ManagedHsmList", (*armReq).emptyList),
	// az keyvault list-deleted lists deleted managed HSMs too and fails on an error.
	route("GET", "subscriptions/{}/providers/microsoft.keyvault/deletedmanagedhsms", "ManagedHsmListDeleted", (*armReq).emptyList),
	route("POST", "subscriptions/{}/providers/microsoft.keyvault/register", "ProviderRegister", (*armReq).register),
	route("GET", "subscriptions/{}/providers/microsoft.keyvault", "ProviderGet", (*armReq).register),
	route("GET", "sys/keyring", "KeyringStatus", (*armReq).keyringStatus),
	route("POST", "sys/keyring/rotate", "KeyringRotate", (*armReq).keyringRotate),
	route("POST", "sys/keyring/rewrap", "KeyringRewrap", (*armReq).keyringRewrap),
	route("GET", "sys/keyring/rewrap", "KeyringRewrapStatus", (*armReq).keyringRewrapStatus),
	route("POST", "sys/keyring/retire", "KeyringRetire", (*armReq).keyringRetire),
	route("POST", "sys/backup-keys/rotate", "BackupKeyRotate", (*armReq).backupKeyRotate),
	route("DELETE", "sys/backup-keys/{}", "BackupKeyRevoke", (*armReq).backupKeyRevoke),
	route("POST", "sys/compact", "StoreCompact", (*armReq).compact),
	route("POST", "sys/seal", "Seal", (*armReq).seal),
	route("POST", "sys/rekey", "Rekey", (*armReq).rekey),
	route("POST", "sys/seal/migrate", "SealMigrate", (*armReq).migrateSeal),
	route("POST", "sys/principals", "PrincipalCreate", (*armReq).principalCreate),
	route("GET", "sys/principals/{}", "PrincipalGet", (*armReq).principalGet),
	route("DELETE", "sys/principals/{}", "PrincipalDelete", (*armReq).principalDelete),
	route("POST", "sys/principals/{}/disable", "PrincipalDisable", (*armReq).principalDisable),
	route("POST", "sys/principals/{}/enable", "PrincipalEnable", (*armReq).principalEnable),
	route("POST", "sys/principals/{}/secrets", "PrincipalSecretAdd", (*armReq).principalSecretAdd),
	route("DELETE", "sys/principals/{}/secrets/{}", "PrincipalSecretRemove", (*armReq).principalSecretRemove),
	route("POST", "sys/signing-keys/rotate", "SigningKeyRotate", (*armReq).signingKeyRotate),
}

func matchRoute(method, path string) (*armRoute, []string, bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	pathMatched := false
	for i := range armRoutes {
		rt := &armRoutes[i]
		if len(rt.pattern) != len(seg) {
			continue
		}
		var params []string
		ok := true
		for j, p := range rt.pattern {
			if p == "{}" {
				if seg[j] == "" {
					ok = false
					break
				}
				params = append(params, seg[j])
			} else if !strings.EqualFold(p, seg[j]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method == method {
			return rt, params, true
		}
	}
	return nil, nil, pathMatched
}

// armReq is one management-plane request being served.
type armReq struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context // the request's, with the caller once authenticated
	// The audit facts serving finds, recorded by serveARM once the handler has answered.
	op, resourceID, objectID string
	claims                   *identity.Claims
}

func (s *Server) serveARM(w http.ResponseWriter, r *http.Request) {
	if scope, rest, ok := authorizationPath(r.URL.Path); ok {
		s.serveAuthorization(w, r, scope, rest)
		return
	}
	if scope, verb, ok := insightsPath(r.URL.Path); ok {
		s.serveInsights(w, r, scope, verb)
		return
	}
	rt, params, pathOK := matchRoute(r.Method, r.URL.Path)
	if rt == nil {
		code, status := "InvalidResourceType", http.StatusNotFound
		if pathOK {
			code, status = "MethodNotAllowed", http.StatusMethodNotAllowed
		}
		azkv.WriteError(w, status, azkv.NewError(code, "The requested path "+r.URL.Path+" with method "+r.Method+" is not supported.", ""))
		return
	}
	a := &armReq{s: s, w: w, r: r, ctx: r.Context(), op: rt.op}
	ri := info(r)
	ri.arm = a // the facts of an intent taken while it is served
	a.serve(rt, params)
	ri.op, ri.resourceID, ri.objectID = a.op, a.resourceID, a.objectID
	if a.claims != nil {
		ri.setClaims(*a.claims)
	}
}

func (a *armReq) serve(rt *armRoute, params []string) {
	s, r := a.s, a.r
	if !rt.public && !a.authenticate(isGraphRoute(rt)) {
		return
	}
	// "/subscriptions/" (the list route with a trailing slash) names no subscription.
	underSubscription := strings.HasPrefix(strings.ToLower(r.URL.Path), "/subscriptions/") && len(params) > 0
	if len(params) > 0 && underSubscription && !strings.EqualFold(params[0], s.cfg.SubscriptionID) {
		writeError(a.w, &service.Error{Kind: service.ErrNotFound, Code: "SubscriptionNotFound", Message: "The subscription '" + params[0] + "' could not be found."})
		return
	}
	if underSubscription {
		params = params[1:]
		a.resourceID = "/subscriptions/" + s.cfg.SubscriptionID
	}
	rt.handle(a, params)
}

// authenticate checks the request's ARM token and puts the caller in a.ctx; it answers the
// challenge itself and returns false when the token does not verify.
func (a *armReq) authenticate(graphRoute bool) bool {
	// ARM accepts only its own audiences. Graph routes (only those: not a role route whose
	// scope happens to start with /v1.0/) let ARM tokens through here so that graph() refuses
	// them in Graph's words; every other audience fails here.
	audiences := a.s.armAudiences()
	if graphRoute {
		audiences = append(audiences, a.s.graphAudiences()...)
	}
	claims, failure := a.s.authenticate(a.ctx, a.r, audiences)
	if failure != "" {
		a.challenge(failure)
		return false
	}
	a.claims, a.ctx = &claims, withCaller(a.ctx, &claims)
	return true
}

// isGraphRoute reports whether rt is one of the directory's routes (graphRoutes and
// graphCredentialRoutes, whose operation names start with "Graph").
func isGraphRoute(rt *armRoute) bool {
	return strings.HasPrefix(rt.op, "Graph") && isGraphPattern(rt.pattern)
}

func isGraphPattern(pattern []string) bool {
	return len(pattern) > 0 && strings.EqualFold(pattern[0], "v1.0")
}

// challenge answers a request without a valid ARM token as ARM does.
func (a *armReq) challenge(msg string) {
	a.w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+a.s.cfg.PublicURL+"/"+a.s.cfg.TenantID+`", error="invalid_token", error_description="`+strings.ReplaceAll(msg, `"`, "'")+`"`)
	code := "InvalidAuthenticationToken"
	if a.r.Header.Get("Authorization") == "" {
		code = "AuthenticationFailed"
	}
	writeError(a.w, &service.Error{Kind: errUnauthorized, Code: code, Message: msg})
}

func (a *armReq) decode(v any) bool {
	body, err := io.ReadAll(a.r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "RequestTooLarge", Message: "The request body is too large."})
		return false
	case err != nil:
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request body could not be read."})
		return false
	case len(body) == 0:
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content was empty."})
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content was invalid and could not be deserialized: " + jsonProblem(err)})
		return false
	}
	return true
}

func (a *armReq) fail(err error) { writeError(a.w, err) }

// errNoProperties answers an ARM PUT whose body has no "properties" object.
var errNoProperties = &service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequestContent", Message: "The request content is missing 'properties'."}

func (a *armReq) ok(status int, v any, err error) {
	if err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, status, v)
}

func (a *armReq) metadata(_ []string) {
	public := a.s.cfg.PublicURL
	host := strings.TrimPrefix(strings.TrimPrefix(public, "https://"), "http://")
	port := ""
	if i := strings.LastIndex(host, ":"); i >= 0 {
		port = host[i:]
	}
	writeJSON(a.w, http.StatusOK, arm.Metadata{
		Name: "Strongroom", ResourceManager: public + "/", Portal: public + "/", Graph: public + "/",
		MicrosoftGraphResourceID: public + "/",
		Authentication: arm.MetadataAuthentication{
			LoginEndpoint:    public + "/",
			Audiences:        []string{"https://management.core.windows.net/", "https://management.azure.com/"},
			Tenant:           a.s.cfg.TenantID,
			IdentityProvider: "AAD",
		},
		Suffixes: arm.MetadataSuffixes{KeyVaultDNS: a.s.cfg.DNSSuffix + port},
	})
}

func (a *armReq) subscription() arm.Subscription {
	return arm.Subscription{
		ID: "/subscriptions/" + a.s.cfg.SubscriptionID, SubscriptionID: a.s.cfg.SubscriptionID,
		TenantID: a.s.cfg.TenantID, DisplayName: "Strongroom", State: "Enabled",
		AuthorizationSource: "RoleBased", ManagedByTenants: []arm.ManagedByTenant{},
		SubscriptionPolicies: arm.SubscriptionPolicies{LocationPlacementID: "Public_2014-09-01", QuotaID: "Strongroom", SpendingLimit: "Off"},
	}
}

func (a *armReq) listSubscriptions(_ []string) {
	writeJSON(a.w, http.StatusOK, arm.List[arm.Subscription]{Value: []arm.Subscription{a.subscription()}})
}

func (a *armReq) getSubscription(_ []string) { writeJSON(a.w, http.StatusOK, a.subscription()) }

func (a *armReq) listTenants(_ []string) {
	writeJSON(a.w, http.StatusOK, arm.List[arm.Tenant]{Value: []arm.Tenant{{
		ID: "/tenants/" + a.s.cfg.TenantID, TenantID: a.s.cfg.TenantID, DisplayName: "Strongroom", TenantCategory: "Home"}}})
}

func (a *armReq) emptyList(_ []string) {
	writeJSON(a.w, http.StatusOK, arm.List[struct{}]{Value: []struct{}{}})
}

func (a *armReq) register(_ []string) {
	writeJSON(a.w, http.StatusOK, arm.Provider{
		ID: "/subscriptions/" + a.s.cfg.SubscriptionID + "/providers/Microsoft.KeyVault", Namespace: "Microsoft.KeyVault",
		RegistrationState: "Registered", RegistrationPolicy: "RegistrationRequired",
		ResourceTypes: []arm.ProviderResourceType{{ResourceType: "vaults", Locations: []string{}, APIVersions: []string{"2023-07-01", "2022-07-01"}}},
	})
}

func (a *armReq) caller() service.Caller {
	c, _ := service.CallerFrom(a.ctx)
	return c
}

// wireGroup is a resource group as ARM returns it (tags null when it has none).
func (a *armReq) wireGroup(rg service.ResourceGroup) arm.ResourceGroup {
	return arm.ResourceGroup{
		ID: "/subscriptions/" + a.s.cfg.SubscriptionID + "/resourceGroups/" + rg.Name, Name: rg.Name,
		Type: "Microsoft.Resources/resourceGroups", Location: rg.Location, Tags: rg.Tags,
		Properties: arm.ResourceGroupProperties{ProvisioningState: "Succeeded"},
	}
}

func (a *armReq) putGroup(p []string) {
	var body arm.ResourceGroupInput
	if !a.decode(&body) {
		return
	}
	rg, created, err := a.s.svc.PutResourceGroup(a.ctx, p[0], body.Location, body.Tags)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	a.ok(status, a.wireGroup(rg), err)
}

func (a *armReq) getGroup(p []string) {
	rg, err := a.s.svc.GetResourceGroup(a.ctx, p[0])
	a.ok(http.StatusOK, a.wireGroup(rg), err)
}

func (a *armReq) headGroup(p []string) {
	_, err := a.s.svc.GetResourceGroup(a.ctx, p[0])
	if service.IsNotFound(err) {
		a.w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusNoContent)
}

func (a *armReq) listGroups(_ []string) {
	rgs, err := a.s.svc.ListResourceGroups(a.ctx)
	out := arm.List[arm.ResourceGroup]{Value: make([]arm.ResourceGroup, 0, len(rgs))}
	for _, rg := range rgs {
		out.Value = append(out.Value, a.wireGroup(rg))
	}
	a.ok(http.StatusOK, out, err)
}

func (a *armReq) deleteGroup(p []string) {
	if err := a.s.svc.DeleteResourceGroup(a.ctx, p[0]); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}

func armTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
