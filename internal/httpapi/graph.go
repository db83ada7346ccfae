package httpapi

import (
	"net/http"

	"github.com/strongroom/strongroom/internal/azkv/arm"
)

// graphRoutes are the Microsoft Graph v1.0 routes the directory serves.
var graphRoutes = []armRoute{
	route("GET", "v1.0/me", "GraphMe", (*armReq).graphMe),
	route("GET", "v1.0/serviceprincipals", "GraphServicePrincipals", (*armReq).graphServicePrincipals),
}

func (a *armReq) graphMe(_ []string) {
	c := a.caller()
	writeJSON(a.w, http.StatusOK, arm.GraphUser{ID: c.ObjectID, AppID: c.AppID})
}

func (a *armReq) graphServicePrincipals(_ []string) {
	c := a.caller()
	writeJSON(a.w, http.StatusOK, arm.List[arm.GraphServicePrincipal]{Value: []arm.GraphServicePrincipal{{ID: c.ObjectID, AppID: c.AppID, ServicePrincipalNames: []string{c.AppID}}}})
}
