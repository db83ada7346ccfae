package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/spf13/cobra"
)

// The event-type and label flags take several space-separated values, as az's do (and the
// group's arguments get az-style normalization).
func init() {
	multiValueFlags = append(multiValueFlags, "--included-event-types", "--labels")
	if !slices.Contains(ownCommands, "eventgrid") {
		ownCommands = append(ownCommands, "eventgrid")
	}
}

const eventGridAPIVersion = "2022-06-15"

// replayChunk is how many dead letters the server replays per call at most; a shorter answer
// is the last.
const replayChunk = 256

// eventgridCommand is az's "eventgrid" group: event subscriptions and dead letters.
func (a *app) eventgridCommand() *cobra.Command {
	return group(&cobra.Command{Use: "eventgrid", Short: "Manage event subscriptions and dead-lettered events"},
		group(&cobra.Command{Use: "event-subscription", Short: "Manage event subscriptions of a key vault"},
			a.evSubCreateCommand(), a.evSubListCommand(), a.evSubShowCommand(), a.evSubDeleteCommand()),
		group(&cobra.Command{Use: "dead-letter", Short: "List and replay events whose delivery was given up (Strongroom's)"},
			a.deadLetterListCommand(), a.deadLetterReplayCommand()),
	)
}

// evSource is the --source-resource-id flag: the vault (the Event Grid system topic).
type evSource struct{ id, name string }

func (e *evSource) register(c *cobra.Command, withName bool) {
	c.Flags().StringVar(&e.id, "source-resource-id", "", "fully qualified identifier of the key vault (/subscriptions/.../providers/Microsoft.KeyVault/vaults/NAME)")
	if withName {
		c.Flags().StringVarP(&e.name, "name", "n", "", "name of the event subscription")
	}
}

// path is the subscriptions' collection path, or one subscription's with the name.
// open checks the flags and opens the logged-in session: what every eventgrid command starts with.
func (e *evSource) open(withName bool) (string, *session, error) {
	path, err := e.path(withName)
	if err != nil {
		return "", nil, err
	}
	s, err := openSession()
	return path, s, err
}

func (e *evSource) path(withName bool) (string, error) {
	id := strings.TrimRight(e.id, "/")
	low := strings.ToLower(id)
	if !strings.HasPrefix(low, "/subscriptions/") || !strings.Contains(low, "/providers/microsoft.keyvault/vaults/") || strings.ContainsAny(id, "?#") {
		return "", usageErrorf("argument --source-resource-id: expected a key vault's resource id (/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name})")
	}
	p := id + "/providers/Microsoft.EventGrid/eventSubscriptions"
	if withName {
		if e.name == "" || strings.ContainsAny(e.name, "/?#") {
			return "", usageErrorf("argument --name/-n: expected the event subscription's name")
		}
		p += "/" + e.name
	}
	return p, nil
}

// armJSON sends one management-plane request and decodes a JSON answer into out (nil: none).
// Errors are azcore.ResponseErrors, reported as every other command's are.
func (s *session) armJSON(ctx context.Context, method, path string, body, out any) (int, error) {
	return s.armJSONAt(ctx, method, path, eventGridAPIVersion, body, out)
}

// armJSONAt is armJSON at another api-version (path may carry its own query after "?").
func (s *session) armJSONAt(ctx context.Context, method, path, apiVersion string, body, out any) (int, error) {
	tok, err := s.armToken(ctx)
	if err != nil {
		return 0, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, method, s.armEndpoint()+path+sep+"api-version="+apiVersion, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, runtime.NewResponseError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// schemaChoices are az's --event-delivery-schema values and their wire names.
var schemaChoices = map[string]string{"eventgridschema": "EventGridSchema", "cloudeventschemav1_0": "CloudEventSchemaV1_0"}

func (a *app) evSubCreateCommand() *cobra.Command {
	var src evSource
	var endpoint, endpointType, schema, begins, ends, deadLetter string
	var types, labels []string
	var maxAttempts, ttl int
	c := leaf(&cobra.Command{
		Use:   "create",
		Short: "Create a new event subscription on a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := src.path(true)
			if err != nil {
				return err
			}
			if endpoint == "" {
				return usageErrorf("the following arguments are required: --endpoint")
			}
			if !strings.EqualFold(endpointType, "webhook") {
				return usageErrorf("argument --endpoint-type: invalid choice: '%s' (choose from 'webhook')", endpointType)
			}
			wireSchema, ok := schemaChoices[strings.ToLower(schema)]
			if !ok {
				return usageErrorf("argument --event-delivery-schema: invalid choice: '%s' (choose from 'eventgridschema', 'cloudeventschemav1_0')", schema)
			}
			props := map[string]any{
				"destination":         map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": endpoint}},
				"filter":              map[string]any{"includedEventTypes": nonEmpty(types), "subjectBeginsWith": begins, "subjectEndsWith": ends},
				"eventDeliverySchema": wireSchema,
				"retryPolicy":         map[string]any{"maxDeliveryAttempts": maxAttempts, "eventTimeToLiveInMinutes": ttl},
			}
			if len(labels) > 0 {
				props["labels"] = nonEmpty(labels)
			}
			if deadLetter != "" {
				props["deadLetterDestination"] = map[string]any{"endpointType": "StorageBlob", "properties": map[string]any{"resourceId": deadLetter}}
			}
			ctx := cmd.Context()
			s, err := openSession()
			if err != nil {
				return err
			}
			var out map[string]any
			if _, err := s.armJSON(ctx, http.MethodPut, path, map[string]any{"properties": props}, &out); err != nil {
				return err
			}
			// As az (a long-running operation): wait for the validation handshake's outcome.
			for deadline := time.Now().Add(60 * time.Second); provisioning(out) == "Creating" && time.Now().Before(deadline); {
				time.Sleep(500 * time.Millisecond)
				if _, err := s.armJSON(ctx, http.MethodGet, path, nil, &out); err != nil {
					return err
				}
			}
			if st := provisioning(out); st == "Failed" {
				return fmt.Errorf("the event subscription's endpoint failed the validation handshake (provisioningState Failed)")
			}
			return a.print(out)
		},
	})
	src.register(c, true)
	f := c.Flags()
	f.StringVar(&endpoint, "endpoint", "", "endpoint where Event Grid delivers events (a webhook URL)")
	f.StringVar(&endpointType, "endpoint-type", "webhook", "type of the destination endpoint: webhook")
	f.StringArrayVar(&types, "included-event-types", nil, "space-separated list of event types (e.g. Microsoft.KeyVault.SecretNewVersionCreated); all when absent")
	f.StringVar(&begins, "subject-begins-with", "", "an optional string to filter events by a prefix of the subject (the secret name)")
	f.StringVar(&ends, "subject-ends-with", "", "an optional string to filter events by a suffix of the subject")
	f.StringVar(&schema, "event-delivery-schema", "eventgridschema", "the schema of delivered events: eventgridschema, cloudeventschemav1_0")
	f.IntVar(&maxAttempts, "max-delivery-attempts", 30, "maximum number of delivery attempts, 1-30")
	f.IntVar(&ttl, "event-ttl", 1440, "event time to live, in minutes, 1-1440")
	f.StringVar(&deadLetter, "deadletter-endpoint", "", "accepted for az compatibility: dead letters are kept by the server (see `eventgrid dead-letter`)")
	f.StringArrayVar(&labels, "labels", nil, "space-separated list of labels")
	return c
}

func nonEmpty(vs []string) []string {
	out := []string{}
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func provisioning(sub map[string]any) string {
	p, _ := sub["properties"].(map[string]any)
	st, _ := p["provisioningState"].(string)
	return st
}

func (a *app) evSubListCommand() *cobra.Command {
	var src evSource
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the event subscriptions of a key vault",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, s, err := src.open(false)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if _, err := s.armJSON(cmd.Context(), http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			if out.Value == nil {
				out.Value = []map[string]any{}
			}
			return a.print(out.Value)
		},
	})
	src.register(c, false)
	return c
}

func (a *app) evSubShowCommand() *cobra.Command {
	var src evSource
	c := leaf(&cobra.Command{
		Use:   "show",
		Short: "Get the details of an event subscription (the endpoint is shown without its query string)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, s, err := src.open(true)
			if err != nil {
				return err
			}
			var out map[string]any
			if _, err := s.armJSON(cmd.Context(), http.MethodGet, path, nil, &out); err != nil {
				return notFoundOr(err, "event subscription", "getting event subscription")
			}
			return a.print(out)
		},
	})
	src.register(c, true)
	return c
}

func (a *app) evSubDeleteCommand() *cobra.Command {
	var src evSource
	c := leaf(&cobra.Command{
		Use:   "delete",
		Short: "Delete an event subscription",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, s, err := src.open(true)
			if err != nil {
				return err
			}
			_, err = s.armJSON(cmd.Context(), http.MethodDelete, path, nil, nil)
			return err
		},
	})
	src.register(c, true)
	return c
}

func (a *app) deadLetterListCommand() *cobra.Command {
	var src evSource
	c := leaf(&cobra.Command{
		Use:   "list",
		Short: "List the dead-lettered events of an event subscription",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, s, err := src.open(true)
			if err != nil {
				return err
			}
			var out struct {
				Value []map[string]any `json:"value"`
			}
			if _, err := s.armJSON(cmd.Context(), http.MethodGet, path+"/deadLetters", nil, &out); err != nil {
				return notFoundOr(err, "event subscription", "listing dead letters")
			}
			if out.Value == nil {
				out.Value = []map[string]any{}
			}
			return a.print(out.Value)
		},
	})
	src.register(c, true)
	return c
}

func (a *app) deadLetterReplayCommand() *cobra.Command {
	var src evSource
	c := leaf(&cobra.Command{
		Use:   "replay",
		Short: "Queue an event subscription's dead-lettered events for delivery again",
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, s, err := src.open(true)
			if err != nil {
				return err
			}
			total := 0
			for { // the server replays a bounded chunk per call
				var out struct {
					Replayed int `json:"replayed"`
				}
				if _, err := s.armJSON(cmd.Context(), http.MethodPost, path+"/deadLetters/replay", nil, &out); err != nil {
					return notFoundOr(err, "event subscription", "replaying dead letters")
				}
				total += out.Replayed
				if out.Replayed < replayChunk {
					break
				}
			}
			return a.print(map[string]int{"replayed": total})
		},
	})
	src.register(c, true)
	return c
}
