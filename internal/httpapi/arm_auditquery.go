package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/auditquery"
	"github.com/strongroom/strongroom/internal/service"
)

// auditQueryRoutes serve queries over the audit log (ARM token; action
// Strongroom/operator/auditRecords/read at the route's scope, see service.AuthorizeAuditQuery):
//
//	GET /subscriptions/{s}/providers/Strongroom.Insights/auditRecords?api-version=2026-01-01&vault=&secret=&operation=&caller=&result=&since=&until=&limit=&$skipToken=
//	GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}/providers/Strongroom.Insights/auditRecords?...   (that vault's records)
//
// The answer is {"value": [AuditEvent records, oldest first], "nextLink": "...", "node": "..."}.
// Each node answers from its own audit folder: in a cluster, a request is recorded by the node
// that served it, and "node" says which node's log the page came from.
var auditQueryRoutes = []armRoute{
	route("GET", "subscriptions/{}/providers/strongroom.insights/auditrecords", "AuditRecordList", (*armReq).listAuditRecords),
	route("GET", "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}/providers/strongroom.insights/auditrecords", "AuditRecordList", (*armReq).listAuditRecords),
}

// AuditQueryAPI is what the audit query route needs from the audit log: this node's folder.
type AuditQueryAPI interface {
	QueryAudit(ctx context.Context, q auditquery.Query) (auditquery.Page, error)
	// Node names the node whose log answers (its cluster node id, or the host name).
	Node() string
}

// auditRecordPage is the route's answer; the records are the JSON lines as the log holds them.
type auditRecordPage struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"nextLink,omitempty"`
	Node     string            `json:"node"`
}

// vaultNamePattern and groupNamePattern keep the scope built from the path to names Azure allows.
var (
	vaultNamePattern = regexp.MustCompile(`^[A-Za-z0-9-]{3,24}$`)
	groupNamePattern = regexp.MustCompile(`^[-\w._()]{1,90}$`)
)

func (a *armReq) listAuditRecords(p []string) {
	scope := "/subscriptions/" + a.s.cfg.SubscriptionID
	vault := ""
	if len(p) == 2 {
		if !groupNamePattern.MatchString(p[0]) || strings.HasSuffix(p[0], ".") || !vaultNamePattern.MatchString(p[1]) {
			a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidResourceName", Message: "The resource group or vault name is invalid."})
			return
		}
		vault = p[1]
		scope += "/resourceGroups/" + p[0] + "/providers/Microsoft.KeyVault/vaults/" + vault
	}
	a.resourceID = scope
	// Authorized before anything else is read, so refusals look alike.
	if err := a.s.svc.AuthorizeAuditQuery(a.ctx, scope); err != nil {
		a.fail(err)
		return
	}
	api := a.s.cfg.AuditQuery
	if api == nil {
		a.fail(&service.Error{Kind: errInternal, Code: "NotImplemented", Message: "The audit query is not available on this server."})
		return
	}
	q, err := auditQueryFrom(a.r.URL.Query(), vault, time.Now())
	if err != nil {
		a.fail(badParam("%s", err.Error()))
		return
	}
	if vault != "" {
		q.ResourceGroup = p[0] // not an earlier vault of the same name in another group
	}
	q.VaultDNSSuffix = a.s.cfg.DNSSuffix
	page, err := api.QueryAudit(a.ctx, q)
	switch {
	case errors.Is(err, auditquery.ErrBadToken), errors.Is(err, auditquery.ErrStaleToken):
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidSkipToken", Message: "The $skipToken is not valid: " + err.Error() + "."})
		return
	case err != nil:
		a.s.log.Error("audit query failed", "request_id", info(a.r).id, "err", err)
		a.fail(err)
		return
	}
	out := auditRecordPage{Value: page.Records, Node: api.Node()}
	if out.Value == nil {
		out.Value = []json.RawMessage{}
	}
	if page.Next != "" {
		out.NextLink = a.nextLink(page.Next)
	}
	writeJSON(a.w, http.StatusOK, out)
}

// nextLink is this request's URL with the continuation token in $skipToken.
func (a *armReq) nextLink(token string) string {
	v := a.r.URL.Query()
	v.Del("$skiptoken")
	v.Set("$skipToken", token)
	return strings.TrimSuffix(a.s.cfg.PublicURL, "/") + a.r.URL.Path + "?" + v.Encode()
}

// auditQueryFrom reads the route's query parameters; vault is the route's vault ("" at the
// subscription).
func auditQueryFrom(v url.Values, vault string, now time.Time) (auditquery.Query, error) {
	var q auditquery.Query
	q.Vault = v.Get("vault")
	if vault != "" {
		if q.Vault != "" && !strings.EqualFold(q.Vault, vault) {
			return q, errors.New("The vault parameter must name the vault of the request's scope.")
		}
		q.Vault = vault
	}
	q.Secret = v.Get("secret")
	for _, op := range v["operation"] {
		for _, o := range strings.Split(op, ",") {
			if o = strings.TrimSpace(o); o != "" {
				q.Operations = append(q.Operations, o)
			}
		}
	}
	q.Caller, q.Result = v.Get("caller"), v.Get("result")
	var err error
	if q.Since, err = auditquery.ParseTime(v.Get("since"), now); err != nil {
		return q, errors.New("The since parameter: " + err.Error() + ".")
	}
	if q.Until, err = auditquery.ParseTime(v.Get("until"), now); err != nil {
		return q, errors.New("The until parameter: " + err.Error() + ".")
	}
	if s := firstOf(v, "limit", "$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > auditquery.MaxLimit {
			return q, errors.New("The limit parameter must be a number from 1 to " + strconv.Itoa(auditquery.MaxLimit) + ".")
		}
		q.Limit = n
	}
	q.Token = firstOf(v, "$skipToken", "$skiptoken")
	if err := q.Validate(); err != nil {
		return q, errors.New("Invalid filter: " + err.Error() + ".")
	}
	return q, nil
}

func firstOf(v url.Values, keys ...string) string {
	for _, k := range keys {
		if s := v.Get(k); s != "" {
			return s
		}
	}
	return ""
}
