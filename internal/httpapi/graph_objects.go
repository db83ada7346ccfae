package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/strongroom/strongroom/internal/identity"
)

// maxGetByIds is Graph's limit on the ids of one getByIds request.
const maxGetByIds = 1000

// graphObject is a directory object as getByIds answers it: the fields clients name principals
// by (az role assignment list shows userPrincipalName, else servicePrincipalNames[0], else
// displayName).
type graphObject struct {
	ODataType             string   `json:"@odata.type"`
	ID                    string   `json:"id"`
	DisplayName           string   `json:"displayName"`
	UserPrincipalName     *string  `json:"userPrincipalName,omitempty"`
	AppID                 *string  `json:"appId,omitempty"`
	ServicePrincipalNames []string `json:"servicePrincipalNames,omitempty"`
}

// getByIds serves POST /v1.0/directoryObjects/getByIds ({"ids":[...], "types":[...]}): the
// objects that exist among ids, of the given types (all when none), in no particular order;
// unknown ids are left out, as in Graph.
func (g *graphReq) getByIds(_ []string) {
	var in struct {
		IDs   []string `json:"ids"`
		Types []string `json:"types"`
	}
	if !g.decode(&in) || !g.required(in.IDs != nil, "ids", "DirectoryObject") {
		return
	}
	if len(in.IDs) > maxGetByIds {
		g.error(http.StatusBadRequest, "Request_BadRequest", "Too many ids: at most 1000 may be given.")
		return
	}
	out := graphList[graphObject]{Context: g.context("directoryObjects"), Value: []graphObject{}}
	for _, id := range in.IDs {
		o, err := g.dir.GetObject(g.ctx, id)
		if errors.Is(err, identity.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			g.fail(err, "")
			return
		}
		if w := wireObject(o); typeWanted(in.Types, w.ODataType) {
			out.Value = append(out.Value, w)
		}
	}
	writeJSON(g.w, http.StatusOK, out)
}

func wireObject(o identity.DirectoryObject) graphObject {
	w := graphObject{ID: o.ID, DisplayName: o.DisplayName}
	switch o.Type {
	case identity.TypeUser:
		w.ODataType, w.UserPrincipalName = "#microsoft.graph.user", &o.UPN
	case identity.TypeServicePrincipal:
		w.ODataType, w.AppID, w.ServicePrincipalNames = "#microsoft.graph.servicePrincipal", &o.AppID, []string{o.AppID}
	default:
		w.ODataType = "#microsoft.graph.group"
	}
	return w
}

// typeWanted reports whether an object of odataType is among types ("user", "group",
// "servicePrincipal", any case); no types means every type.
func typeWanted(types []string, odataType string) bool {
	if len(types) == 0 {
		return true
	}
	name := strings.TrimPrefix(odataType, "#microsoft.graph.")
	for _, t := range types {
		if strings.EqualFold(strings.TrimPrefix(t, "microsoft.graph."), name) {
			return true
		}
	}
	return false
}
