package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
)

// Applications, their client secrets, and service principals.

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
