package events

import (
	"encoding/json"
	"time"

	"github.com/strongroom/strongroom/internal/service"
)

// gridEvent is the Event Grid schema of one event.
type gridEvent struct {
	ID              string `json:"id"`
	Topic           string `json:"topic"`
	Subject         string `json:"subject"`
	EventType       string `json:"eventType"`
	EventTime       string `json:"eventTime"`
	Data            any    `json:"data"`
	DataVersion     string `json:"dataVersion"`
	MetadataVersion string `json:"metadataVersion"`
}

// cloudEvent is the CloudEvents 1.0 schema (JSON format) of one event.
type cloudEvent struct {
	SpecVersion     string `json:"specversion"`
	Type            string `json:"type"`
	Source          string `json:"source"`
	Subject         string `json:"subject"`
	ID              string `json:"id"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            any    `json:"data"`
}

// Event Grid's own event type of the handshake.
const validationEventType = "Microsoft.EventGrid.SubscriptionValidationEvent"

type validationData struct {
	ValidationCode string `json:"validationCode"`
	ValidationURL  string `json:"validationUrl,omitempty"`
}

func eventTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// Encode renders ev in schema (service.SchemaEventGrid or service.SchemaCloudEvent) and
// returns the body and its content type. Event Grid posts an array of one event; CloudEvents
// in structured mode is the event object itself.
func Encode(schema string, ev service.Event) ([]byte, string, error) {
	return encode(schema, ev.ID, ev.Topic, ev.Subject, ev.Type, ev.Time, ev.Data)
}

func encode(schema, id, topic, subject, typ string, at time.Time, data any) ([]byte, string, error) {
	if schema == service.SchemaCloudEvent {
		b, err := json.Marshal(cloudEvent{SpecVersion: "1.0", Type: typ, Source: topic, Subject: subject, ID: id,
			Time: eventTime(at), DataContentType: "application/json", Data: data})
		return b, "application/cloudevents+json; charset=utf-8", err
	}
	b, err := json.Marshal([]gridEvent{{ID: id, Topic: topic, Subject: subject, EventType: typ, EventTime: eventTime(at),
		Data: data, DataVersion: "1", MetadataVersion: "1"}})
	return b, "application/json", err
}
