package portal

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Read-only views over APIs the server has: a secret's rotation policy and status (data
// plane, docs/rotation.md), and a vault's event subscriptions (docs/events.md), policy
// compliance (docs/policy.md) and audit records (docs/audit.md) through ARM. Each page shows
// what the API answered and nothing more; a refusal is shown on the page in words, with the
// API's status, never as a failure of the portal.

const (
	eventsAPIVersion   = "2022-06-15"
	insightsAPIVersion = "2019-10-01"
	policyAPIVersion   = "2021-06-01"
	auditAPIVersion    = "2026-01-01"
	auditPageSize      = 50
)

// refusal is an API error to show inside a page, with its status and, for a 403, what right
// is needed; ok is false when err is not an API answer (the caller treats it as a failure).
func refusal(err error, hint string) (msg string, status int, ok bool) {
	ae, isAPI := err.(*apiError)
	if !isAPI {
		return "", 0, false
	}
	msg = friendly(ae)
	if ae.Status == http.StatusForbidden && hint != "" {
		msg += " " + hint
	}
	return msg, ae.Status, true
}

// The rotation blade of a secret.

type rotationPolicy struct {
	ID              string `json:"id"`
	LifetimeActions []struct {
		Trigger struct {
			TimeAfterCreate  string `json:"timeAfterCreate"`
			TimeBeforeExpiry string `json:"timeBeforeExpiry"`
		} `json:"trigger"`
		Action struct {
			Type string `json:"type"`
		} `json:"action"`
	} `json:"lifetimeActions"`
	Attributes struct {
		ExpiryTime string `json:"expiryTime"`
		Created    *int64 `json:"created"`
		Updated    *int64 `json:"updated"`
	} `json:"attributes"`
	Rotator *struct {
		Kind             string `json:"kind"`
		Strategy         string `json:"strategy"`
		URL              string `json:"url"`
		ConnectionSecret string `json:"connectionSecret"`
		SigningSecret    string `json:"signingSecret"`
		Generator        *struct {
			Length  int      `json:"length"`
			Classes []string `json:"classes"`
			Bytes   int      `json:"bytes"`
		} `json:"generator"`
	} `json:"rotator"`
}

type rotationStatus struct {
	State       string `json:"state"`
	Step        string `json:"step"`
	Trigger     string `json:"trigger"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"lastError"`
	Started     *int64 `json:"started"`
	NextAttempt *int64 `json:"nextAttempt"`
	LastRotated *int64 `json:"lastRotated"`
	LastVersion string `json:"lastVersion"`
	LastOutcome string `json:"lastOutcome"`
	NextDue     *int64 `json:"nextDue"`
}

// lifetimeRow is one lifetime action in words.
type lifetimeRow struct{ Action, When string }

func (p *Portal) serveRotation(w http.ResponseWriter, r *http.Request) {
	vault, name := r.PathValue("vault"), r.PathValue("name")
	const hint = "Reading a rotation policy and its status needs Key Vault Secrets Officer (rotationpolicy/read) or an access policy with getrotationpolicy."
	base := "/secrets/" + pathEscape(name)
	var pol rotationPolicy
	var st rotationStatus
	polErr, stErr := "", ""
	status := http.StatusOK
	if err := p.data(r, vault, http.MethodGet, base+"/rotationpolicy", nil, nil, &pol, ""); err != nil {
		msg, s, ok := refusal(err, hint)
		if !ok {
			p.apiFailure(w, r, err)
			return
		}
		polErr, status = msg, s
	}
	if err := p.data(r, vault, http.MethodGet, base+"/rotationstatus", nil, nil, &st, ""); err != nil {
		msg, _, ok := refusal(err, hint)
		if !ok {
			p.apiFailure(w, r, err)
			return
		}
		stErr = msg
	} else {
		status = http.StatusOK // the page shows something the API answered
	}
	if polErr == "" {
		status = http.StatusOK
	}
	var rows []lifetimeRow
	for _, a := range pol.LifetimeActions {
		when := durationWords(a.Trigger.TimeAfterCreate) + " after the latest version was created"
		if a.Trigger.TimeAfterCreate == "" {
			when = durationWords(a.Trigger.TimeBeforeExpiry) + " before the latest version expires"
		}
		rows = append(rows, lifetimeRow{Action: a.Action.Type, When: when})
	}
	generator, endpoint := "", ""
	if rt := pol.Rotator; rt != nil {
		endpoint = baseURL(rt.URL)
		if g := rt.Generator; g != nil {
			switch {
			case g.Bytes > 0:
				generator = strconv.Itoa(g.Bytes) + " random bytes (base64)"
			default:
				n, classes := g.Length, "lower, upper, digit, symbol"
				if n == 0 {
					n = 32
				}
				if len(g.Classes) > 0 {
					classes = strings.Join(g.Classes, ", ")
				}
				generator = strconv.Itoa(n) + " characters (" + classes + ")"
			}
		}
	}
	p.render(w, r, status, "rotation", pageData{Title: "Rotation · " + name, Vault: vault, Blade: "secrets", Can: p.vaultCan(r, vault),
		Data: map[string]any{"Name": name, "P": pol, "S": st, "PolicyError": polErr, "StatusError": stErr, "Rows": rows,
			"Own": pol.ID != "", "Expiry": durationWords(pol.Attributes.ExpiryTime), "Generator": generator, "Endpoint": endpoint}})
}

// isoDurationRE is an ISO-8601 duration in whole units, as rotation policies write them.
var isoDurationRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

// durationWords is an ISO-8601 duration in words ("P30D" is "30 days"); anything else is
// shown as it is.
func durationWords(d string) string {
	m := isoDurationRE.FindStringSubmatch(d)
	if d == "" || d == "P" || d == "PT" || m == nil {
		return d
	}
	units := []string{"year", "month", "week", "day", "hour", "minute", "second"}
	var parts []string
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, _ := strconv.Atoi(m[i+1])
		if n != 1 {
			u += "s"
		}
		parts = append(parts, strconv.Itoa(n)+" "+u)
	}
	if len(parts) == 0 {
		return d
	}
	return strings.Join(parts, ", ")
}

// baseURL is a URL without its query, fragment and user info, which often carry a credential
// (the API answers event endpoints the same way).
func baseURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}

// The Events blade: the vault's event subscriptions.

type eventSubscription struct {
	Name       string `json:"name"`
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
		Destination       struct {
			EndpointType string `json:"endpointType"`
			Properties   struct {
				EndpointBaseURL string `json:"endpointBaseUrl"`
			} `json:"properties"`
		} `json:"destination"`
		Filter struct {
			IncludedEventTypes []string `json:"includedEventTypes"`
			SubjectBeginsWith  string   `json:"subjectBeginsWith"`
			SubjectEndsWith    string   `json:"subjectEndsWith"`
		} `json:"filter"`
		EventDeliverySchema string `json:"eventDeliverySchema"`
		RetryPolicy         *struct {
			MaxDeliveryAttempts      int `json:"maxDeliveryAttempts"`
			EventTimeToLiveInMinutes int `json:"eventTimeToLiveInMinutes"`
		} `json:"retryPolicy"`
	} `json:"properties"`
}

func (p *Portal) serveEvents(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	var list struct {
		Value []eventSubscription `json:"value"`
	}
	status, msg := http.StatusOK, ""
	if err := p.arm(r, http.MethodGet, v.ID+"/providers/Microsoft.EventGrid/eventSubscriptions", eventsAPIVersion, nil, nil, &list); err != nil {
		var isAPI bool
		if msg, status, isAPI = refusal(err, "Reading event subscriptions needs Microsoft.EventGrid/eventSubscriptions/read at the vault (Reader has it)."); !isAPI {
			p.apiFailure(w, r, err)
			return
		}
	}
	p.render(w, r, status, "events", pageData{Title: "Events · " + v.Name, Vault: v.Name, Blade: "events", Can: can, Error: msg,
		Data: map[string]any{"Subs": list.Value, "Failed": msg != ""}})
}

// The Policies blade: the vault's compliance with the policy assignments that apply to it.

type stateCount struct {
	ComplianceState string `json:"complianceState"`
	Count           int    `json:"count"`
}

type policyResults struct {
	NonCompliantResources int          `json:"nonCompliantResources"`
	NonCompliantPolicies  int          `json:"nonCompliantPolicies"`
	ResourceDetails       []stateCount `json:"resourceDetails"`
}

type policySummary struct {
	Value []struct {
		Results           policyResults `json:"results"`
		PolicyAssignments []struct {
			PolicyAssignmentID string        `json:"policyAssignmentId"`
			Results            policyResults `json:"results"`
			PolicyDefinitions  []struct {
				PolicyDefinitionID string `json:"policyDefinitionId"`
				Effect             string `json:"effect"`
			} `json:"policyDefinitions"`
		} `json:"policyAssignments"`
	} `json:"value"`
}

// assignmentCompliance is one row of the Policies blade.
type assignmentCompliance struct {
	Assignment, Scope, Definition, Effect string
	Inherited                             bool
	NonCompliant                          int
	Details                               []stateCount
}

func (p *Portal) servePolicy(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	var sum policySummary
	status, msg := http.StatusOK, ""
	if err := p.arm(r, http.MethodPost, v.ID+"/providers/Microsoft.PolicyInsights/policyStates/latest/summarize", insightsAPIVersion, nil, nil, &sum); err != nil {
		var isAPI bool
		if msg, status, isAPI = refusal(err, "Reading compliance needs Microsoft.PolicyInsights/policyStates/summarize/read (Reader has it)."); !isAPI {
			p.apiFailure(w, r, err)
			return
		}
	}
	var total policyResults
	var rows []assignmentCompliance
	if len(sum.Value) > 0 {
		total = sum.Value[0].Results
		names := p.definitionNames(r)
		for _, a := range sum.Value[0].PolicyAssignments {
			row := assignmentCompliance{Assignment: lastSegment(a.PolicyAssignmentID), NonCompliant: a.Results.NonCompliantResources}
			for _, d := range a.Results.ResourceDetails {
				row.Details = append(row.Details, stateCount{ComplianceState: policyWords(d.ComplianceState), Count: d.Count})
			}
			row.Scope, _, _ = strings.Cut(a.PolicyAssignmentID, "/providers/Microsoft.Authorization/policyAssignments/")
			row.Inherited = !strings.EqualFold(row.Scope, v.ID)
			if len(a.PolicyDefinitions) > 0 {
				d := a.PolicyDefinitions[0]
				row.Effect, row.Definition = policyWords(d.Effect), names[strings.ToLower(d.PolicyDefinitionID)]
				if row.Definition == "" {
					row.Definition = lastSegment(d.PolicyDefinitionID)
				}
			}
			rows = append(rows, row)
		}
	}
	p.render(w, r, status, "policy", pageData{Title: "Policies · " + v.Name, Vault: v.Name, Blade: "policy", Can: can, Error: msg,
		Data: map[string]any{"Total": total, "Rows": rows, "Failed": msg != ""}})
}

// policyWords spells the summary's lower-case effects and compliance states as the rest of
// the API and the Azure portal do; anything else is shown as answered.
func policyWords(s string) string {
	known := map[string]string{"audit": "Audit", "deny": "Deny", "disabled": "Disabled", "modify": "Modify",
		"auditifnotexists": "AuditIfNotExists", "compliant": "Compliant", "noncompliant": "Non-compliant", "exempt": "Exempt"}
	if w, ok := known[strings.ToLower(s)]; ok {
		return w
	}
	return s
}

// definitionNames maps policy definition ids (lower case) to display names; a person who may
// not list definitions sees ids instead.
func (p *Portal) definitionNames(r *http.Request) map[string]string {
	var list struct {
		Value []struct {
			ID         string `json:"id"`
			Properties struct {
				DisplayName string `json:"displayName"`
			} `json:"properties"`
		} `json:"value"`
	}
	out := map[string]string{}
	if err := p.arm(r, http.MethodGet, p.subscriptionPath()+"/providers/Microsoft.Authorization/policyDefinitions", policyAPIVersion, nil, nil, &list); err != nil {
		return out
	}
	for _, d := range list.Value {
		out[strings.ToLower(d.ID)] = d.Properties.DisplayName
	}
	return out
}

// The Audit records blade: the vault's records as the audit query answers them, a page at a
// time with the API's continuation token.

type auditRecord struct {
	Time              string `json:"time"`
	OperationName     string `json:"operationName"`
	ResultType        string `json:"resultType"`
	ResultSignature   string `json:"resultSignature"`
	ResultDescription string `json:"resultDescription"`
	CallerIPAddress   string `json:"callerIpAddress"`
	RequestID         string `json:"requestId"`
	Identity          *struct {
		Claim struct {
			AppID    string `json:"appid"`
			ObjectID string `json:"oid"`
			UPN      string `json:"upn"`
		} `json:"claim"`
	} `json:"identity"`
	Properties struct {
		ID             string `json:"id"`
		ClientInfo     string `json:"clientInfo"`
		HTTPStatusCode int    `json:"httpStatusCode"`
	} `json:"properties"`
}

// auditRow is one record as the table shows it.
type auditRow struct {
	Time, Operation, Result, Caller, Client, Object, IP, RequestID string
}

// auditWindows are the time windows the blade offers (the API's since values).
var auditWindows = []struct{ Value, Label string }{
	{"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"7d", "Last 7 days"}, {"30d", "Last 30 days"}, {"all", "Everything kept"},
}

func (p *Portal) serveAudit(w http.ResponseWriter, r *http.Request) {
	v, can, ok := p.vaultPage(w, r)
	if !ok {
		return
	}
	in := r.URL.Query()
	since, result, skip := in.Get("since"), in.Get("result"), in.Get("skip")
	known := false
	for _, win := range auditWindows {
		known = known || win.Value == since
	}
	if !known {
		since = "24h"
	}
	if result != "failure" {
		result = ""
	}
	if len(skip) > 4096 {
		skip = ""
	}
	q := url.Values{"limit": {strconv.Itoa(auditPageSize)}}
	if since != "all" {
		q.Set("since", since)
	}
	if result != "" {
		q.Set("result", result)
	}
	if skip != "" {
		q.Set("$skipToken", skip)
	}
	var page struct {
		Value    []auditRecord `json:"value"`
		NextLink string        `json:"nextLink"`
		Node     string        `json:"node"`
	}
	status, msg := http.StatusOK, ""
	if err := p.arm(r, http.MethodGet, v.ID+"/providers/Strongroom.Insights/auditRecords", auditAPIVersion, q, nil, &page); err != nil {
		var isAPI bool
		if msg, status, isAPI = refusal(err, "Reading a vault's audit records needs the Strongroom Audit Reader role (or Strongroom Operator) at the vault or above; Owner, Contributor and Reader do not have it."); !isAPI {
			p.apiFailure(w, r, err)
			return
		}
	}
	var oids []string
	for _, rec := range page.Value {
		if rec.Identity != nil && rec.Identity.Claim.UPN == "" && rec.Identity.Claim.ObjectID != "" {
			oids = append(oids, rec.Identity.Claim.ObjectID)
		}
	}
	names := p.userNames(r, oids)
	rows := make([]auditRow, 0, len(page.Value))
	for _, rec := range page.Value {
		row := auditRow{Operation: rec.OperationName, Client: rec.Properties.ClientInfo, IP: rec.CallerIPAddress, RequestID: rec.RequestID,
			Result: strings.TrimSpace(rec.ResultType + " " + rec.ResultSignature), Object: objectPath(rec.Properties.ID)}
		if t, err := time.Parse(time.RFC3339Nano, rec.Time); err == nil {
			row.Time = t.UTC().Format("2006-01-02 15:04:05 UTC")
		} else {
			row.Time = rec.Time
		}
		if id := rec.Identity; id != nil {
			row.Caller = firstNonEmpty(id.Claim.UPN, names[id.Claim.ObjectID], id.Claim.ObjectID, id.Claim.AppID)
		}
		rows = append(rows, row)
	}
	here := "/portal/vaults/" + pathEscape(v.Name) + "/audit"
	next := ""
	if tok := skipTokenOf(page.NextLink); tok != "" {
		nq := url.Values{"since": {since}, "skip": {tok}}
		if result != "" {
			nq.Set("result", result)
		}
		next = here + "?" + nq.Encode()
	}
	first := ""
	if skip != "" {
		fq := url.Values{"since": {since}}
		if result != "" {
			fq.Set("result", result)
		}
		first = here + "?" + fq.Encode()
	}
	p.render(w, r, status, "audit", pageData{Title: "Audit records · " + v.Name, Vault: v.Name, Blade: "audit", Can: can, Error: msg,
		Data: map[string]any{"Rows": rows, "Windows": auditWindows, "Since": since, "Result": result, "Next": next, "First": first,
			"Node": page.Node, "Failed": msg != ""}})
}

// skipTokenOf is the continuation token of an audit query's next link.
func skipTokenOf(next string) string {
	if next == "" {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil {
		return ""
	}
	return firstNonEmpty(u.Query().Get("$skipToken"), u.Query().Get("$skiptoken"))
}

// objectPath is the path of an object's id URL (/secrets/name/version), or the id itself.
func objectPath(id string) string {
	if u, err := url.Parse(id); err == nil && u.Host != "" {
		return u.Path
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
