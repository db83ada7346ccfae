package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/strongroom/strongroom/internal/auditquery"
)

// goldenAuditQuery stands in for the node's audit folder: it answers one record echoing the
// filter it was given (so the golden files show what the route passed on) and a continuation
// token when the limit is 1.
type goldenAuditQuery struct{}

func (goldenAuditQuery) QueryAudit(_ context.Context, q auditquery.Query) (auditquery.Page, error) {
	if q.Token == "bad" {
		return auditquery.Page{}, auditquery.ErrBadToken
	}
	rec, _ := json.Marshal(map[string]any{
		"time": "2026-12-01T10:00:00.0000000Z", "resourceId": "/VAULTS/" + strings.ToUpper(q.Vault), "operationName": "SecretGet",
		"category": "AuditEvent", "resultType": "Success", "resultSignature": "OK",
		"properties": map[string]any{"httpStatusCode": 200, "requestUri": "https://" + q.Vault + ".vault.localhost/secrets/" + q.Secret},
		"filter":     map[string]any{"operations": q.Operations, "caller": q.Caller, "result": q.Result, "since": !q.Since.IsZero(), "until": !q.Until.IsZero(), "limit": q.Limit, "dnsSuffix": q.VaultDNSSuffix, "token": q.Token, "resourceGroup": q.ResourceGroup},
	})
	p := auditquery.Page{Records: []json.RawMessage{rec}}
	if q.Limit == 1 && q.Token == "" {
		p.Next = "next-page"
	}
	return p, nil
}

func (goldenAuditQuery) Node() string { return "node-1" }

// auditQueryGoldenCalls records a golden response of every route of arm_auditquery.go.
func auditQueryGoldenCalls(g *goldenRun) {
	const av = "?api-version=2026-01-01"
	records := g.sub + "/providers/Strongroom.Insights/auditRecords"
	g.call("auditrecord-list", "GET", records+av+"&vault=kv-gold&secret=db&operation=SecretGet,SecretSet&caller=app&result=failure&since=24h&until=2099-01-01&limit=1", "")
	g.call("auditrecord-list-next", "GET", records+av+"&vault=kv-gold&$skipToken=next-page", "")
	g.call("auditrecord-list-vault", "GET", g.sub+"/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/kv-gold/providers/Strongroom.Insights/auditRecords"+av, "")
	g.call("auditrecord-list-vault-other", "GET", g.sub+"/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/kv-gold/providers/Strongroom.Insights/auditRecords"+av+"&vault=kv-min", "")
	g.call("auditrecord-list-bad-name", "GET", g.sub+"/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/k/providers/Strongroom.Insights/auditRecords"+av, "")
	g.call("auditrecord-list-bad-since", "GET", records+av+"&since=yesterday", "")
	g.call("auditrecord-list-bad-limit", "GET", records+av+"&limit=0", "")
	g.call("auditrecord-list-bad-token", "GET", records+av+"&$skipToken=bad", "")
	g.callAs("auditrecord-list-no-token", "", "GET", records+av, "")
}
