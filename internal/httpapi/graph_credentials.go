package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

// graphCredentialRoutes serve an application's certificate and federated credentials
// (keyCredentials, federatedIdentityCredentials). Writes need a directory role that may write
// applications, as addPassword does; reads are open to every authenticated caller, as the
// rest of the directory is. PATCH of an application here changes its keyCredentials and
// redirect URIs only.
var graphCredentialRoutes = []armRoute{
	route("PATCH", "v1.0/applications/{}", "GraphApplicationUpdate", graph((*graphReq).patchApplicationKeys)),
	route("POST", "v1.0/applications/{}/addKey", "GraphApplicationAddKey", graph((*graphReq).addKey)),
	route("POST", "v1.0/applications/{}/removeKey", "GraphApplicationRemoveKey", graph((*graphReq).removeKey)),
	route("GET", "v1.0/applications/{}/federatedIdentityCredentials", "GraphFederatedCredentialList", graph((*graphReq).listFederated)),
	route("POST", "v1.0/applications/{}/federatedIdentityCredentials", "GraphFederatedCredentialCreate", graph((*graphReq).createFederated)),
	route("GET", "v1.0/applications/{}/federatedIdentityCredentials/{}", "GraphFederatedCredentialGet", graph((*graphReq).getFederated)),
	route("PATCH", "v1.0/applications/{}/federatedIdentityCredentials/{}", "GraphFederatedCredentialUpdate", graph((*graphReq).patchFederated)),
	route("DELETE", "v1.0/applications/{}/federatedIdentityCredentials/{}", "GraphFederatedCredentialDelete", graph((*graphReq).deleteFederated)),
}

// graphKeyCredential is Graph's keyCredential.
type graphKeyCredential struct {
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         string  `json:"endDateTime"`
	Key                 *string `json:"key"`
	KeyID               string  `json:"keyId"`
	StartDateTime       string  `json:"startDateTime"`
	Type                string  `json:"type"`
	Usage               string  `json:"usage"`
}

// graphKeyCredentialInput is a keyCredential as PATCH and addKey send it.
type graphKeyCredentialInput struct {
	DisplayName   *string `json:"displayName"`
	EndDateTime   *string `json:"endDateTime"`
	Key           *string `json:"key"`
	KeyID         *string `json:"keyId"`
	StartDateTime *string `json:"startDateTime"`
	Type          *string `json:"type"`
	Usage         *string `json:"usage"`
}

func wireKeyCredential(k identity.KeyCredential) graphKeyCredential {
	cki := strings.ToUpper(hexString(k.CustomKeyIdentifier))
	out := graphKeyCredential{CustomKeyIdentifier: &cki, EndDateTime: graphTime(k.EndDateTime), KeyID: k.KeyID,
		StartDateTime: graphTime(k.StartDateTime), Type: k.Type, Usage: k.Usage}
	if k.DisplayName != "" {
		out.DisplayName = &k.DisplayName
	}
	return out
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// keyInput converts a wire keyCredential; ok is false once an error has been answered.
func (g *graphReq) keyInput(in graphKeyCredentialInput) (identity.KeyCredentialInput, bool) {
	var out identity.KeyCredentialInput
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out.KeyID, out.Type, out.Usage, out.DisplayName = str(in.KeyID), str(in.Type), str(in.Usage), str(in.DisplayName)
	if k := str(in.Key); k != "" {
		der, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'key' of resource 'KeyCredential'.")
			return out, false
		}
		out.Key = der
	} else if out.KeyID == "" {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property 'key' of resource 'KeyCredential'.")
		return out, false
	}
	for _, t := range []struct {
		name string
		v    *string
		dst  *time.Time
	}{{"startDateTime", in.StartDateTime, &out.Start}, {"endDateTime", in.EndDateTime, &out.End}} {
		if t.v == nil || *t.v == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, *t.v)
		if err != nil {
			g.error(http.StatusBadRequest, "Request_BadRequest", "Invalid value specified for property '"+t.name+"' of resource 'KeyCredential'.")
			return out, false
		}
		*t.dst = ts
	}
	return out, true
}

// patchApplicationKeys is PATCH /v1.0/applications/{id} with keyCredentials (the list
// replaces the application's certificates; entries with only a keyId keep a held one) and/or
// the redirect URIs of publicClient, web and spa (kept as one list, which replaces the
// registered one when any of the three is sent). A displayName equal to the application's own is
// accepted and changes nothing: az's create-for-rbac, run again, patches the application it found
// by that name. Renaming is not supported.
func (g *graphReq) patchApplicationKeys(p []string) {
	g.setResource("applications", p[0])
	type redirects struct {
		RedirectURIs []string `json:"redirectUris"`
	}
	var in struct {
		KeyCredentials *[]graphKeyCredentialInput `json:"keyCredentials"`
		PublicClient   *redirects                 `json:"publicClient"`
		Web            *redirects                 `json:"web"`
		Spa            *redirects                 `json:"spa"`
		DisplayName    *string                    `json:"displayName"`
	}
	if !g.decode(&in) {
		return
	}
	var uris []string
	setURIs := false
	for _, r := range []*redirects{in.PublicClient, in.Web, in.Spa} {
		if r != nil {
			setURIs = true
			uris = append(uris, r.RedirectURIs...)
		}
	}
	if in.KeyCredentials == nil && !setURIs && in.DisplayName == nil {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Only the keyCredentials and redirect URIs (publicClient, web, spa) of an application can be updated.")
		return
	}
	var keys []identity.KeyCredentialInput
	if in.KeyCredentials != nil {
		keys = make([]identity.KeyCredentialInput, 0, len(*in.KeyCredentials))
		for _, k := range *in.KeyCredentials {
			ki, ok := g.keyInput(k)
			if !ok {
				return
			}
			keys = append(keys, ki)
		}
	}
	if !g.authorize(identity.DirWriteApplications) {
		return
	}
	if in.DisplayName != nil {
		app, err := g.dir.GetApplication(g.ctx, p[0])
		if err != nil {
			g.fail(err, p[0])
			return
		}
		if *in.DisplayName != app.DisplayName {
			g.error(http.StatusBadRequest, "Request_BadRequest", "The displayName of an application cannot be changed here; only the keyCredentials and redirect URIs (publicClient, web, spa) can be updated.")
			return
		}
	}
	if setURIs {
		if err := g.dir.SetRedirectURIs(g.ctx, p[0], uris); err != nil {
			g.fail(err, p[0])
			return
		}
	}
	if in.KeyCredentials != nil {
		if _, err := g.dir.SetKeyCredentials(g.ctx, p[0], keys); err != nil {
			g.fail(err, p[0])
			return
		}
	}
	g.noContent()
}

// addKey is Graph's addKey. A proof, when sent, must be a JWT signed by one of the
// application's current certificates; the directory role is what authorizes the write.
func (g *graphReq) addKey(p []string) {
	g.setResource("applications", p[0])
	var in struct {
		KeyCredential *graphKeyCredentialInput `json:"keyCredential"`
		Proof         string                   `json:"proof"`
	}
	if !g.decode(&in) || !g.required(in.KeyCredential != nil, "keyCredential", "Application") {
		return
	}
	ki, ok := g.keyInput(*in.KeyCredential)
	if !ok {
		return
	}
	if !g.authorize(identity.DirWriteApplications) || !g.proof(p[0], in.Proof) {
		return
	}
	kc, err := g.dir.AddKeyCredential(g.ctx, p[0], ki)
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := struct {
		Context string `json:"@odata.context"`
		graphKeyCredential
	}{g.context("microsoft.graph.keyCredential"), wireKeyCredential(kc)}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) removeKey(p []string) {
	g.setResource("applications", p[0])
	var in struct {
		KeyID *string `json:"keyId"`
		Proof string  `json:"proof"`
	}
	if !g.decode(&in) || !g.required(in.KeyID != nil && *in.KeyID != "", "keyId", "KeyCredential") ||
		!g.authorize(identity.DirWriteApplications) || !g.proof(p[0], in.Proof) {
		return
	}
	if err := g.dir.RemoveKeyCredential(g.ctx, p[0], *in.KeyID); err != nil {
		g.fail(err, p[0])
		return
	}
	g.noContent()
}

// proof checks an addKey/removeKey proof when one was sent.
func (g *graphReq) proof(app, proof string) bool {
	if proof == "" {
		return true
	}
	if err := g.dir.VerifyKeyProof(g.ctx, app, proof); err != nil {
		g.fail(err, app)
		return false
	}
	return true
}

// graphFederatedCredential is Graph's federatedIdentityCredential.
type graphFederatedCredential struct {
	Context     string   `json:"@odata.context,omitempty"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Description *string  `json:"description"`
	Audiences   []string `json:"audiences"`
}

func wireFederated(f identity.FederatedCredential) graphFederatedCredential {
	out := graphFederatedCredential{ID: f.ID, Name: f.Name, Issuer: f.Issuer, Subject: f.Subject, Audiences: f.Audiences}
	if f.Description != "" {
		out.Description = &f.Description
	}
	return out
}

func (g *graphReq) ficContext(app, suffix string) string {
	return g.context("applications('" + echoGraph(app) + "')/federatedIdentityCredentials" + suffix)
}

func (g *graphReq) listFederated(p []string) {
	all, err := g.dir.ListFederatedCredentials(g.ctx, p[0])
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := graphList[graphFederatedCredential]{Context: g.ficContext(p[0], ""), Value: []graphFederatedCredential{}}
	for _, f := range all {
		out.Value = append(out.Value, wireFederated(f))
	}
	writeJSON(g.w, http.StatusOK, out)
}

func (g *graphReq) createFederated(p []string) {
	g.setResource("applications", p[0])
	var in struct {
		Name        *string  `json:"name"`
		Issuer      *string  `json:"issuer"`
		Subject     *string  `json:"subject"`
		Description *string  `json:"description"`
		Audiences   []string `json:"audiences"`
	}
	body, err := io.ReadAll(g.r.Body)
	if err != nil || json.Unmarshal(body, &in) != nil {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return
	}
	const res = "FederatedIdentityCredential"
	if !g.required(in.Name != nil, "name", res) || !g.required(in.Issuer != nil, "issuer", res) ||
		!g.required(in.Subject != nil, "subject", res) || !g.authorize(identity.DirWriteApplications) {
		return
	}
	fc := identity.FederatedCredential{Name: *in.Name, Issuer: *in.Issuer, Subject: *in.Subject, Audiences: in.Audiences}
	if in.Description != nil {
		fc.Description = *in.Description
	}
	made, err := g.dir.CreateFederatedCredential(g.ctx, p[0], fc)
	if err != nil {
		g.fail(err, p[0])
		return
	}
	out := wireFederated(made)
	out.Context = g.ficContext(p[0], "/$entity")
	g.w.Header().Set("Location", g.s.cfg.PublicURL+"/v1.0/applications/"+echoGraph(p[0])+"/federatedIdentityCredentials/"+made.ID)
	writeJSON(g.w, http.StatusCreated, out)
}

func (g *graphReq) getFederated(p []string) {
	f, err := g.dir.GetFederatedCredential(g.ctx, p[0], p[1])
	if err != nil {
		g.fail(err, p[1])
		return
	}
	out := wireFederated(f)
	out.Context = g.ficContext(p[0], "/$entity")
	writeJSON(g.w, http.StatusOK, out)
}

// patchFederated is Graph's PATCH of a federated identity credential (204 No Content).
func (g *graphReq) patchFederated(p []string) {
	g.setResource("applications", p[0])
	var in struct {
		Name        *string   `json:"name"`
		Issuer      *string   `json:"issuer"`
		Subject     *string   `json:"subject"`
		Description *string   `json:"description"`
		Audiences   *[]string `json:"audiences"`
	}
	if !g.decode(&in) || !g.authorize(identity.DirWriteApplications) {
		return
	}
	if in.Name != nil {
		cur, err := g.dir.GetFederatedCredential(g.ctx, p[0], p[1])
		if err != nil {
			g.fail(err, p[1])
			return
		}
		if !strings.EqualFold(*in.Name, cur.Name) {
			g.error(http.StatusBadRequest, "Request_BadRequest", "Property 'name' of resource 'FederatedIdentityCredential' cannot be changed.")
			return
		}
	}
	_, err := g.dir.UpdateFederatedCredential(g.ctx, p[0], p[1], identity.FederatedCredentialPatch{Issuer: in.Issuer, Subject: in.Subject,
		Description: in.Description, Audiences: in.Audiences})
	if err != nil {
		g.fail(err, p[1])
		return
	}
	g.noContent()
}

func (g *graphReq) deleteFederated(p []string) {
	g.setResource("applications", p[0])
	if !g.authorize(identity.DirWriteApplications) {
		return
	}
	if err := g.dir.DeleteFederatedCredential(g.ctx, p[0], p[1]); err != nil {
		g.fail(err, p[1])
		return
	}
	g.noContent()
}
