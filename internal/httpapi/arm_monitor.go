package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/strongroom/strongroom/internal/alerts"
	"github.com/strongroom/strongroom/internal/service"
)

// monitorRoutes serve alert rules, fired alerts and honeytokens (Strongroom.Monitor). All are
// operator calls (service.Action* in service/alerts.go: only the Strongroom Operator role grants
// them), so that a vault's readers cannot learn which of its secrets are decoys.
//
//	GET    /providers/Strongroom.Monitor/alertRules               the effective rules (config, then API)
//	PUT    /providers/Strongroom.Monitor/alertRules/{name}        {"properties": {"kind", "enabled", "threshold", "window", ...}}
//	GET    /providers/Strongroom.Monitor/alertRules/{name}
//	DELETE /providers/Strongroom.Monitor/alertRules/{name}        a built-in rule returns to its configured settings
//	GET    /providers/Strongroom.Monitor/alerts[?$top=N]          the alerts this node fired, newest first
//	GET    {vaultId}/providers/Strongroom.Monitor/honeytokens
//	PUT|GET|DELETE {vaultId}/providers/Strongroom.Monitor/honeytokens/{secretName}
var monitorRoutes = []armRoute{
	route("GET", "providers/strongroom.monitor/alertrules", "AlertRuleList", (*armReq).listAlertRules),
	route("PUT", "providers/strongroom.monitor/alertrules/{}", "AlertRuleWrite", (*armReq).putAlertRule),
	route("GET", "providers/strongroom.monitor/alertrules/{}", "AlertRuleRead", (*armReq).getAlertRule),
	route("DELETE", "providers/strongroom.monitor/alertrules/{}", "AlertRuleDelete", (*armReq).deleteAlertRule),
	route("GET", "providers/strongroom.monitor/alerts", "AlertList", (*armReq).listAlerts),
	route("GET", honeytokensPattern, "HoneytokenList", (*armReq).listHoneytokens),
	route("PUT", honeytokensPattern+"/{}", "HoneytokenWrite", (*armReq).putHoneytoken),
	route("GET", honeytokensPattern+"/{}", "HoneytokenRead", (*armReq).getHoneytoken),
	route("DELETE", honeytokensPattern+"/{}", "HoneytokenDelete", (*armReq).deleteHoneytoken),
}

const honeytokensPattern = "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}/providers/strongroom.monitor/honeytokens"

// AlertsAPI is what the alert routes need from the alert engine (internal/app's adapter).
type AlertsAPI interface {
	// ParseRule validates a rule's properties over its kind's defaults; errors name the field.
	ParseRule(name string, props []byte) (alerts.Rule, error)
	// Rules are the effective rules; Alerts the fired alerts kept, newest first, at most max.
	Rules() []alerts.RuleInfo
	Alerts(max int) []alerts.Alert
}

const alertRuleType = "Strongroom.Monitor/alertRules"

type wireAlertRule struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Properties wireAlertRuleFields `json:"properties"`
}

type wireAlertRuleFields struct {
	alerts.Rule
	Source string `json:"source"` // "config" or "api"
}

func toWireRule(r alerts.RuleInfo) wireAlertRule {
	return wireAlertRule{ID: "/providers/" + alertRuleType + "/" + r.Name, Name: r.Name, Type: alertRuleType,
		Properties: wireAlertRuleFields{Rule: r.Rule, Source: r.Source}}
}

// alertsEngine returns the engine, or answers 501 when alerting is off.
func (a *armReq) alertsEngine() (AlertsAPI, bool) {
	if a.s.cfg.Alerts == nil {
		a.fail(&service.Error{Kind: errInternal, Code: "NotImplemented", Message: "Alerting is disabled on this server (alerts.disabled)."})
		return nil, false
	}
	return a.s.cfg.Alerts, true
}

// authorizeAlerts checks the operator action op and returns the engine.
func (a *armReq) authorizeAlerts(op string) (AlertsAPI, bool) {
	if err := a.s.svc.AuthorizeAlerts(a.ctx, op); err != nil {
		a.fail(err)
		return nil, false
	}
	return a.alertsEngine()
}

func (a *armReq) findRule(eng AlertsAPI, name string) (alerts.RuleInfo, bool) {
	i := slices.IndexFunc(eng.Rules(), func(r alerts.RuleInfo) bool { return strings.EqualFold(r.Name, name) })
	if i < 0 {
		a.fail(&service.Error{Kind: service.ErrNotFound, Code: "ResourceNotFound", Message: "The alert rule '" + name + "' was not found."})
		return alerts.RuleInfo{}, false
	}
	return eng.Rules()[i], true
}

func (a *armReq) listAlertRules(_ []string) {
	eng, ok := a.authorizeAlerts(service.ActionAlertRulesRead)
	if !ok {
		return
	}
	out := []wireAlertRule{}
	for _, r := range eng.Rules() {
		out = append(out, toWireRule(r))
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"value": out})
}

func (a *armReq) getAlertRule(p []string) {
	a.resourceID = "/providers/" + alertRuleType + "/" + p[0]
	eng, ok := a.authorizeAlerts(service.ActionAlertRulesRead)
	if !ok {
		return
	}
	if r, ok := a.findRule(eng, p[0]); ok {
		writeJSON(a.w, http.StatusOK, toWireRule(r))
	}
}

func (a *armReq) putAlertRule(p []string) {
	a.resourceID = "/providers/" + alertRuleType + "/" + p[0]
	eng, ok := a.authorizeAlerts(service.ActionAlertRulesWrite)
	if !ok {
		return
	}
	var in struct {
		Properties json.RawMessage `json:"properties"`
	}
	if !a.decode(&in) {
		return
	}
	if len(in.Properties) == 0 {
		in.Properties = json.RawMessage("{}")
	}
	r, err := eng.ParseRule(p[0], in.Properties)
	if err != nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidAlertRule", Message: "The alert rule is not valid: " + err.Error()})
		return
	}
	props, err := json.Marshal(r)
	if err != nil {
		a.fail(err)
		return
	}
	created, err := a.s.svc.PutAlertRule(a.ctx, service.AlertRule{Name: r.Name, Properties: props})
	if err != nil {
		a.fail(err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(a.w, status, toWireRule(alerts.RuleInfo{Rule: r, Source: "api"}))
}

func (a *armReq) deleteAlertRule(p []string) {
	a.resourceID = "/providers/" + alertRuleType + "/" + p[0]
	err := a.s.svc.DeleteAlertRule(a.ctx, p[0])
	switch {
	case err == nil:
		a.w.WriteHeader(http.StatusOK)
	case service.IsNotFound(err):
		a.w.WriteHeader(http.StatusNoContent) // ARM: deleting what is not there
	default:
		a.fail(err)
	}
}

func (a *armReq) listAlerts(_ []string) {
	eng, ok := a.authorizeAlerts(service.ActionAlertsRead)
	if !ok {
		return
	}
	top := 0
	if v := a.r.URL.Query().Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "BadRequest", Message: "$top must be a positive number."})
			return
		}
		top = n
	}
	out := eng.Alerts(top)
	if out == nil {
		out = []alerts.Alert{}
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"value": out})
}

type wireHoneytoken struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		SecretName string `json:"secretName"`
	} `json:"properties"`
}

func (a *armReq) honeytokenVaultID(p []string) string {
	return "/subscriptions/" + a.s.cfg.SubscriptionID + "/resourceGroups/" + p[0] + "/providers/Microsoft.KeyVault/vaults/" + p[1]
}

func (a *armReq) wireHoneytoken(p []string, name string) wireHoneytoken {
	w := wireHoneytoken{ID: a.honeytokenVaultID(p) + "/providers/Strongroom.Monitor/honeytokens/" + name, Name: name, Type: "Strongroom.Monitor/honeytokens"}
	w.Properties.SecretName = name
	return w
}

func (a *armReq) listHoneytokens(p []string) {
	a.resourceID = a.honeytokenVaultID(p)
	names, err := a.s.svc.Honeytokens(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	out := []wireHoneytoken{}
	for _, n := range names {
		out = append(out, a.wireHoneytoken(p, n))
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"value": out})
}

func (a *armReq) putHoneytoken(p []string) {
	a.resourceID = a.honeytokenVaultID(p)
	if err := a.s.svc.SetHoneytoken(a.ctx, p[0], p[1], p[2], true); err != nil {
		a.fail(err)
		return
	}
	writeJSON(a.w, http.StatusOK, a.wireHoneytoken(p, p[2]))
}

func (a *armReq) getHoneytoken(p []string) {
	a.resourceID = a.honeytokenVaultID(p)
	names, err := a.s.svc.Honeytokens(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	if !slices.Contains(names, strings.ToUpper(p[2])) {
		a.fail(&service.Error{Kind: service.ErrNotFound, Code: "ResourceNotFound", Message: "The secret '" + p[2] + "' is not a honeytoken of vault '" + p[1] + "'."})
		return
	}
	writeJSON(a.w, http.StatusOK, a.wireHoneytoken(p, p[2]))
}

func (a *armReq) deleteHoneytoken(p []string) {
	a.resourceID = a.honeytokenVaultID(p)
	if err := a.s.svc.SetHoneytoken(a.ctx, p[0], p[1], p[2], false); err != nil {
		a.fail(err)
		return
	}
	a.w.WriteHeader(http.StatusOK)
}
