package httpapi_test

import (
	"context"
	"encoding/json"

	"github.com/strongroom/strongroom/internal/alerts"
	"github.com/strongroom/strongroom/internal/service"
)

// goldenAlerts is the alert engine of the test API, kept current with the rules stored in the
// service as the server's is (internal/app/alerts.go).
type goldenAlerts struct{ eng *alerts.Engine }

func newGoldenAlerts(svc *service.Service) goldenAlerts {
	var rules []alerts.Rule
	for _, k := range alerts.Kinds {
		rules = append(rules, alerts.Default(k))
	}
	g := goldenAlerts{eng: alerts.New(alerts.Options{Rules: rules})}
	refresh := func() {
		stored, _ := service.Alerting(svc).Rules(context.Background())
		var api []alerts.Rule
		for _, st := range stored {
			if r, err := alerts.ParseRule(st.Name, st.Properties); err == nil {
				api = append(api, r)
			}
		}
		g.eng.SetOverrides(api)
	}
	service.Alerting(svc).Watch(refresh)
	return g
}

func (g goldenAlerts) ParseRule(name string, props []byte) (alerts.Rule, error) {
	return alerts.ParseRule(name, props)
}
func (g goldenAlerts) Rules() []alerts.RuleInfo      { return g.eng.Rules() }
func (g goldenAlerts) Alerts(max int) []alerts.Alert { return g.eng.Alerts(max) }

// monitorGoldenCalls records a golden response of every route of arm_monitor.go.
func monitorGoldenCalls(g *goldenRun) {
	const av = "?api-version=2026-01-01"
	rules := "/providers/Strongroom.Monitor/alertRules"
	g.call("alertrule-list", "GET", rules+av, "")
	g.call("alertrule-put-created", "PUT", rules+"/bruteForce"+av, `{"properties":{"threshold":3,"window":"2m"}}`)
	g.call("alertrule-put-updated", "PUT", rules+"/bruteForce"+av, `{"properties":{"threshold":4,"window":"2m","enabled":false}}`)
	g.call("alertrule-put-new-kind", "PUT", rules+"/sweep-strict"+av, `{"properties":{"kind":"RateSpike","threshold":20}}`)
	g.call("alertrule-put-no-kind", "PUT", rules+"/custom"+av, `{"properties":{"threshold":3}}`)
	g.call("alertrule-put-invalid", "PUT", rules+"/bruteForce"+av, `{"properties":{"threshold":0}}`)
	g.call("alertrule-put-unknown-field", "PUT", rules+"/bruteForce"+av, `{"properties":{"colour":"red"}}`)
	g.call("alertrule-get", "GET", rules+"/bruteForce"+av, "")
	g.call("alertrule-get-missing", "GET", rules+"/nope"+av, "")
	g.call("alertrule-list-overridden", "GET", rules+av, "")
	g.call("alertrule-delete", "DELETE", rules+"/sweep-strict"+av, "")
	g.call("alertrule-delete-missing", "DELETE", rules+"/sweep-strict"+av, "")
	g.call("alertrule-delete-override", "DELETE", rules+"/bruteForce"+av, "")
	g.call("alert-list", "GET", "/providers/Strongroom.Monitor/alerts"+av, "")
	g.call("alert-list-top", "GET", "/providers/Strongroom.Monitor/alerts"+av+"&$top=5", "")
	g.call("alert-list-bad-top", "GET", "/providers/Strongroom.Monitor/alerts"+av+"&$top=x", "")

	hts := g.sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-audit/providers/Strongroom.Monitor/honeytokens"
	g.call("honeytoken-put", "PUT", hts+"/db-decoy"+av, "")
	g.call("honeytoken-put-bad-name", "PUT", hts+"/bad_name"+av, "")
	g.call("honeytoken-put-missing-vault", "PUT", g.sub+"/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-nope/providers/Strongroom.Monitor/honeytokens/x"+av, "")
	g.call("honeytoken-list", "GET", hts+av, "")
	g.call("honeytoken-get", "GET", hts+"/DB-DECOY"+av, "")
	g.call("honeytoken-get-not-one", "GET", hts+"/other"+av, "")
	g.call("honeytoken-delete", "DELETE", hts+"/db-decoy"+av, "")
	listed := g.call("honeytoken-list-empty", "GET", hts+av, "")
	if b, _ := json.Marshal(listed); string(b) != `{"value":[]}` {
		g.t.Errorf("honeytokens after the delete: %s", b)
	}
}
