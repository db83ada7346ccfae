package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/strongroom/strongroom/internal/outbound"
	"github.com/strongroom/strongroom/internal/service"
)

// eventSubscriptionRoutes serve Event Grid event subscriptions on a vault (the vault is the
// system topic), as Microsoft.EventGrid does at api-version 2022-06-15, and the dead letters
// of each subscription (ours: Event Grid writes them to a storage blob instead):
//
//	PUT|GET|DELETE {vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/{name}
//	GET  {vaultId}/providers/Microsoft.EventGrid/eventSubscriptions
//	GET  {vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/{name}/deadLetters
//	POST {vaultId}/providers/Microsoft.EventGrid/eventSubscriptions/{name}/deadLetters/replay
//
// Authorized by Microsoft.EventGrid/eventSubscriptions/{read,write,delete} at the vault. The
// endpoint URL is never answered: only endpointBaseUrl, without its query string (which often
// carries a credential) and userinfo.
var eventSubscriptionRoutes = []armRoute{
	route("PUT", evSubPattern+"/{}", "EventSubscriptionWrite", (*armReq).putEventSubscription),
	route("GET", evSubPattern+"/{}", "EventSubscriptionRead", (*armReq).getEventSubscription),
	route("DELETE", evSubPattern+"/{}", "EventSubscriptionDelete", (*armReq).deleteEventSubscription),
	route("GET", evSubPattern, "EventSubscriptionList", (*armReq).listEventSubscriptions),
	route("GET", evSubPattern+"/{}/deadletters", "EventSubscriptionDeadLetterList", (*armReq).listDeadLetters),
	route("POST", evSubPattern+"/{}/deadletters/replay", "EventSubscriptionDeadLetterReplay", (*armReq).replayDeadLetters),
}

const evSubPattern = "subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}/providers/microsoft.eventgrid/eventsubscriptions"

// EventsAPI is what the event-subscription routes need from the event service.
type EventsAPI interface {
	// CheckDestination refuses an endpoint the server must not call (outbound.CheckURL).
	CheckDestination(rawURL string) error
}

type wireEventSubscription struct {
	ID         string          `json:"id,omitempty"`
	Name       string          `json:"name,omitempty"`
	Type       string          `json:"type,omitempty"`
	Properties *wireEvProps    `json:"properties,omitempty"`
	SystemData *wireSystemData `json:"systemData,omitempty"`
}

type wireSystemData struct {
	CreatedBy      string `json:"createdBy,omitempty"`
	CreatedByType  string `json:"createdByType,omitempty"`
	CreatedAt      string `json:"createdAt,omitempty"`
	LastModifiedAt string `json:"lastModifiedAt,omitempty"`
}

type wireEvProps struct {
	Topic                 string          `json:"topic,omitempty"`
	ProvisioningState     string          `json:"provisioningState,omitempty"`
	Destination           *wireEvDest     `json:"destination,omitempty"`
	Filter                *wireEvFilter   `json:"filter,omitempty"`
	Labels                []string        `json:"labels,omitempty"`
	EventDeliverySchema   string          `json:"eventDeliverySchema,omitempty"`
	RetryPolicy           *wireEvRetry    `json:"retryPolicy,omitempty"`
	DeadLetterDestination json.RawMessage `json:"deadLetterDestination,omitempty"`
}

type wireEvDest struct {
	EndpointType string          `json:"endpointType"`
	Properties   *wireEvDestProp `json:"properties,omitempty"`
}

type wireEvDestProp struct {
	EndpointURL                   string `json:"endpointUrl,omitempty"`
	EndpointBaseURL               string `json:"endpointBaseUrl,omitempty"`
	MaxEventsPerBatch             int    `json:"maxEventsPerBatch,omitempty"`
	PreferredBatchSizeInKilobytes int    `json:"preferredBatchSizeInKilobytes,omitempty"`
}

type wireEvFilter struct {
	IncludedEventTypes     []string `json:"includedEventTypes,omitempty"`
	SubjectBeginsWith      string   `json:"subjectBeginsWith"`
	SubjectEndsWith        string   `json:"subjectEndsWith"`
	IsSubjectCaseSensitive bool     `json:"isSubjectCaseSensitive"`
}

type wireEvRetry struct {
	MaxDeliveryAttempts      int `json:"maxDeliveryAttempts"`
	EventTimeToLiveInMinutes int `json:"eventTimeToLiveInMinutes"`
}

func (a *armReq) eventSubscriptionID(rg, vault, name string) string {
	return "/subscriptions/" + a.s.cfg.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + vault +
		"/providers/Microsoft.EventGrid/eventSubscriptions/" + name
}

func (a *armReq) wireEventSubscription(sub service.EventSubscription) wireEventSubscription {
	types := sub.IncludedEventTypes
	if len(types) == 0 {
		types = service.KeyVaultEventTypes // Event Grid answers the types a subscription to all receives
	}
	return wireEventSubscription{
		ID: a.eventSubscriptionID(sub.ResourceGroup, sub.VaultName, sub.Name), Name: sub.Name, Type: "Microsoft.EventGrid/eventSubscriptions",
		Properties: &wireEvProps{
			Topic: sub.Topic, ProvisioningState: sub.State,
			Destination: &wireEvDest{EndpointType: "WebHook", Properties: &wireEvDestProp{
				EndpointBaseURL: outbound.Redact(sub.EndpointURL), MaxEventsPerBatch: 1, PreferredBatchSizeInKilobytes: 64}},
			Filter:                &wireEvFilter{IncludedEventTypes: types, SubjectBeginsWith: sub.SubjectBeginsWith, SubjectEndsWith: sub.SubjectEndsWith},
			Labels:                sub.Labels,
			EventDeliverySchema:   sub.Schema,
			RetryPolicy:           &wireEvRetry{MaxDeliveryAttempts: sub.MaxDeliveryAttempts, EventTimeToLiveInMinutes: sub.EventTTLMinutes},
			DeadLetterDestination: sub.DeadLetter,
		},
		SystemData: &wireSystemData{CreatedBy: sub.CreatedBy, CreatedByType: "Application",
			CreatedAt: sub.Created.UTC().Format(time.RFC3339Nano), LastModifiedAt: sub.Updated.UTC().Format(time.RFC3339Nano)},
	}
}

// events returns the event service, or answers 501 when the server has none.
func (a *armReq) events() (EventsAPI, bool) {
	if a.s.cfg.Events == nil {
		a.fail(&service.Error{Kind: errInternal, Code: "NotImplemented", Message: "Event subscriptions are not available on this server."})
		return nil, false
	}
	return a.s.cfg.Events, true
}

func (a *armReq) putEventSubscription(p []string) {
	rg, vault, name := p[0], p[1], p[2]
	a.setVaultScope(rg, vault)
	ev, ok := a.events()
	if !ok {
		return
	}
	var body wireEventSubscription
	if !a.decode(&body) {
		return
	}
	if body.Properties == nil || body.Properties.Destination == nil {
		a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequest", Message: "Invalid value for properties.destination: the destination is required."})
		return
	}
	pr := body.Properties
	in := service.EventSubscriptionInput{EndpointType: pr.Destination.EndpointType, Schema: pr.EventDeliverySchema,
		DeadLetter: pr.DeadLetterDestination, Labels: pr.Labels, CheckDestination: ev.CheckDestination}
	if pr.Destination.Properties != nil {
		in.EndpointURL = pr.Destination.Properties.EndpointURL
	}
	if pr.Filter != nil {
		in.IncludedEventTypes, in.SubjectBeginsWith, in.SubjectEndsWith = pr.Filter.IncludedEventTypes, pr.Filter.SubjectBeginsWith, pr.Filter.SubjectEndsWith
		if pr.Filter.IsSubjectCaseSensitive {
			a.fail(&service.Error{Kind: service.ErrBadRequest, Code: "InvalidRequest", Message: "Invalid value for properties.filter.isSubjectCaseSensitive: only case-insensitive subject filters are supported."})
			return
		}
	}
	if pr.RetryPolicy != nil {
		in.MaxDeliveryAttempts, in.EventTTLMinutes = pr.RetryPolicy.MaxDeliveryAttempts, pr.RetryPolicy.EventTimeToLiveInMinutes
	}
	sub, created, err := a.s.svc.PutEventSubscription(a.ctx, rg, vault, name, in)
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.eventSubscriptionID(sub.ResourceGroup, sub.VaultName, sub.Name)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(a.w, status, a.wireEventSubscription(sub))
}

func (a *armReq) getEventSubscription(p []string) {
	a.setVaultScope(p[0], p[1])
	sub, err := a.s.svc.GetEventSubscription(a.ctx, p[0], p[1], p[2])
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.eventSubscriptionID(sub.ResourceGroup, sub.VaultName, sub.Name)
	writeJSON(a.w, http.StatusOK, a.wireEventSubscription(sub))
}

func (a *armReq) deleteEventSubscription(p []string) {
	a.setVaultScope(p[0], p[1])
	existed, err := a.s.svc.DeleteEventSubscription(a.ctx, p[0], p[1], p[2])
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.eventSubscriptionID(p[0], p[1], p[2])
	status := http.StatusOK
	if !existed {
		status = http.StatusNoContent
	}
	a.w.WriteHeader(status)
}

func (a *armReq) listEventSubscriptions(p []string) {
	a.setVaultScope(p[0], p[1])
	subs, err := a.s.svc.ListEventSubscriptions(a.ctx, p[0], p[1])
	if err != nil {
		a.fail(err)
		return
	}
	out := make([]wireEventSubscription, 0, len(subs))
	for _, sub := range subs {
		out = append(out, a.wireEventSubscription(sub))
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"value": out})
}

type wireDeadLetter struct {
	ID                  string `json:"id"`
	EventType           string `json:"eventType"`
	Subject             string `json:"subject"`
	EventTime           string `json:"eventTime"`
	Data                any    `json:"data"`
	DeliveryAttempts    int    `json:"deliveryAttempts"`
	DeadLetterReason    string `json:"deadLetterReason"`
	LastDeliveryOutcome string `json:"lastDeliveryOutcome,omitempty"`
	DeadLetteredAt      string `json:"deadLetteredAt"`
}

func (a *armReq) listDeadLetters(p []string) {
	a.setVaultScope(p[0], p[1])
	dls, err := a.s.svc.ListDeadLetters(a.ctx, p[0], p[1], p[2])
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.eventSubscriptionID(p[0], p[1], p[2])
	out := make([]wireDeadLetter, 0, len(dls))
	for _, d := range dls {
		out = append(out, wireDeadLetter{ID: d.Event.ID, EventType: d.Event.Type, Subject: d.Event.Subject,
			EventTime: d.Event.Time.UTC().Format(time.RFC3339Nano), Data: d.Event.Data, DeliveryAttempts: d.Attempts,
			DeadLetterReason: d.Reason, LastDeliveryOutcome: d.LastError, DeadLetteredAt: d.DeadLetteredAt.UTC().Format(time.RFC3339Nano)})
	}
	writeJSON(a.w, http.StatusOK, map[string]any{"value": out})
}

func (a *armReq) replayDeadLetters(p []string) {
	a.setVaultScope(p[0], p[1])
	n, err := a.s.svc.ReplayDeadLetters(a.ctx, p[0], p[1], p[2])
	if err != nil {
		a.fail(err)
		return
	}
	a.objectID = a.eventSubscriptionID(p[0], p[1], p[2])
	writeJSON(a.w, http.StatusOK, map[string]int{"replayed": n})
}
