// Event subscriptions (Microsoft.EventGrid/eventSubscriptions on a vault): the stored records,
// their validation and the guarded CRUD the ARM routes call. Which vaults have subscriptions is
// kept in memory on every node (eventState), so a secret write in a vault nobody subscribes to
// writes no outbox entry.

package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Layout (values sealed with the system DEK unless said otherwise; keys name only vault ids,
// subscription names, event ids and, for the expiry index, secret names as the heads' keys do):
//
//	sys/ev/sub/<vault id>/<lower name>                    a subscription (EventSubscription)
//	sys/ev/val/<vault id>/<lower name>                    awaiting its validation handshake (plaintext marker)
//	sys/ev/out/<13-digit unix ms>-<event id>              an event not yet fanned out (Event)
//	sys/ev/q/<13-digit due unix ms>/<vault id>/<name>/<event id>  one delivery to one subscription (Delivery)
//	sys/ev/dl/<vault id>/<lower name>/<event id>          a dead-lettered delivery (DeadLetter)
//	sys/ev/due/<12-digit unix s>/<n|e>/<vault id>/<UPPER secret>/<version>  near-expiry or expiry due (plaintext marker)
const (
	evPrefix       = "sys/ev/"
	evSubPrefix    = evPrefix + "sub/"
	evValPrefix    = evPrefix + "val/"
	evOutPrefix    = evPrefix + "out/"
	evQueuePrefix  = evPrefix + "q/"
	evDeadPrefix   = evPrefix + "dl/"
	evDuePrefix    = evPrefix + "due/"
	evMarkerV1     = 1
	msDigits       = 13
	evChunk        = 256
	maxSubsInVault = 500 // Event Grid's limit of subscriptions per system topic
)

// Event Grid names.
const (
	EventSecretNewVersionCreated  = "Microsoft.KeyVault.SecretNewVersionCreated"
	EventSecretNearExpiry         = "Microsoft.KeyVault.SecretNearExpiry"
	EventSecretExpired            = "Microsoft.KeyVault.SecretExpired"
	EventVaultAccessPolicyChanged = "Microsoft.KeyVault.VaultAccessPolicyChanged"

	SchemaEventGrid  = "EventGridSchema"
	SchemaCloudEvent = "CloudEventSchemaV1_0"

	SubscriptionCreating  = "Creating"
	SubscriptionSucceeded = "Succeeded"
	SubscriptionFailed    = "Failed"

	DefaultMaxDeliveryAttempts = 30
	DefaultEventTTLMinutes     = 1440
	// NearExpiryLead is how long before exp SecretNearExpiry fires, as in Key Vault.
	NearExpiryLead = 30 * 24 * time.Hour
)

// The ARM actions on event subscriptions (at the vault's scope).
const (
	ActionEventSubscriptionsRead   = "Microsoft.EventGrid/eventSubscriptions/read"
	ActionEventSubscriptionsWrite  = "Microsoft.EventGrid/eventSubscriptions/write"
	ActionEventSubscriptionsDelete = "Microsoft.EventGrid/eventSubscriptions/delete"
)

// KeyVaultEventTypes are Key Vault's secret and vault event types: what a subscription that
// lists none receives.
var KeyVaultEventTypes = []string{EventSecretNewVersionCreated, EventSecretNearExpiry, EventSecretExpired, EventVaultAccessPolicyChanged}

// EventTypes are the event types a vault's subscriptions may include: Key Vault's, and the
// rotation events, which a subscription receives only when it lists them.
var EventTypes = append(slices.Clone(KeyVaultEventTypes),
	EventSecretRotationStarted, EventSecretRotationSucceeded, EventSecretRotationFailed, EventSecretRotationAbandoned)

// EventSubscription is a stored subscription. EndpointURL holds the full URL, query included:
// it never leaves the service except to the delivery worker (the routes show it redacted).
type EventSubscription struct {
	Name                string          `json:"name"`
	VaultID             string          `json:"vaultId"`
	VaultName           string          `json:"vaultName"`
	ResourceGroup       string          `json:"resourceGroup"`
	Topic               string          `json:"topic"` // the vault's ARM id
	UID                 string          `json:"uid"`   // differs between two subscriptions of the same name
	EndpointURL         string          `json:"endpointUrl"`
	IncludedEventTypes  []string        `json:"includedEventTypes,omitempty"`
	SubjectBeginsWith   string          `json:"subjectBeginsWith,omitempty"`
	SubjectEndsWith     string          `json:"subjectEndsWith,omitempty"`
	Schema              string          `json:"schema"`
	MaxDeliveryAttempts int             `json:"maxDeliveryAttempts"`
	EventTTLMinutes     int             `json:"eventTimeToLiveInMinutes"`
	DeadLetter          json.RawMessage `json:"deadLetterDestination,omitempty"`
	Labels              []string        `json:"labels,omitempty"`
	State               string          `json:"provisioningState"`
	ValidationCode      string          `json:"validationCode"`
	ValidationAttempts  int             `json:"validationAttempts,omitempty"`
	Created             time.Time       `json:"created"`
	CreatedBy           string          `json:"createdBy"`
	Updated             time.Time       `json:"updated"`

	raw []byte // the sealed record read, the guard of a write that depends on it
}

// EventSubscriptionInput is a PUT's body as the routes parse it; zero values take defaults.
type EventSubscriptionInput struct {
	EndpointType        string
	EndpointURL         string
	IncludedEventTypes  []string
	SubjectBeginsWith   string
	SubjectEndsWith     string
	Schema              string
	MaxDeliveryAttempts int
	EventTTLMinutes     int
	DeadLetter          json.RawMessage
	Labels              []string
	// CheckDestination validates the endpoint (outbound.CheckURL with the server's allowance),
	// after the caller is authorized; nil accepts every URL (tests of the service alone).
	CheckDestination func(rawURL string) error
}

var evSubNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{1,62}[A-Za-z0-9]$`)

// eventState is the in-memory set of subscriptions' names per vault id. The zero value is
// ready; load fills it at first use.
type eventState struct {
	mu     sync.RWMutex
	loaded bool
	subs   map[string]map[string]struct{} // vault id -> lower names
}

func (s *Service) loadEvents(ctx context.Context) error {
	s.events.mu.RLock()
	loaded := s.events.loaded
	s.events.mu.RUnlock()
	if loaded {
		return nil
	}
	subs := map[string]map[string]struct{}{}
	err := s.st.Scan(ctx, evSubPrefix, "", func(key string, _ []byte) bool {
		if id, name, ok := strings.Cut(strings.TrimPrefix(key, evSubPrefix), "/"); ok {
			if subs[id] == nil {
				subs[id] = map[string]struct{}{}
			}
			subs[id][name] = struct{}{}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("loading event subscriptions: %w", err)
	}
	s.events.mu.Lock()
	if !s.events.loaded {
		s.events.subs, s.events.loaded = subs, true
	}
	s.events.mu.Unlock()
	return nil
}

// noteSubscription records that key now exists or not.
func (s *Service) noteSubscription(key string, exists bool) {
	id, name, ok := strings.Cut(strings.TrimPrefix(key, evSubPrefix), "/")
	if !ok {
		return
	}
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	if !s.events.loaded {
		return // the first load reads the store
	}
	if name == "" { // a purged vault's subscriptions, removed by prefix
		delete(s.events.subs, id)
		return
	}
	if exists {
		if s.events.subs[id] == nil {
			s.events.subs[id] = map[string]struct{}{}
		}
		s.events.subs[id][name] = struct{}{}
	} else if m := s.events.subs[id]; m != nil {
		delete(m, name)
		if len(m) == 0 {
			delete(s.events.subs, id)
		}
	}
}

// hasSubscriptions reports whether vault id has any subscription. On a load error it says yes:
// an outbox entry too many is dropped at fan-out, one too few is a lost event.
func (s *Service) hasSubscriptions(ctx context.Context, vaultID string) bool {
	if err := s.loadEvents(ctx); err != nil {
		return true
	}
	s.events.mu.RLock()
	defer s.events.mu.RUnlock()
	return len(s.events.subs[vaultID]) > 0
}

// eventKeysApplied keeps the subscription set current with another node's writes.
func (s *Service) eventKeysApplied(ctx context.Context, keys []string) {
	for _, k := range keys {
		if !strings.HasPrefix(k, evSubPrefix) {
			continue
		}
		_, err := s.st.Get(ctx, k)
		s.noteSubscription(k, err == nil)
	}
}

func subKey(vaultID, name string) string { return evSubPrefix + vaultID + "/" + strings.ToLower(name) }
func valKey(vaultID, name string) string { return evValPrefix + vaultID + "/" + strings.ToLower(name) }

func evBad(field, format string, args ...any) *Error {
	return newErr(ErrBadRequest, "InvalidRequest", "", "Invalid value for %s: %s", field, fmt.Sprintf(format, args...))
}

func subNotFound(name string) *Error {
	return newErr(ErrNotFound, "ResourceNotFound", "", "The Resource 'Microsoft.EventGrid/eventSubscriptions/%s' was not found.", name)
}

// validateSubscription checks in and fills its defaults; errors name the field.
func validateSubscription(in *EventSubscriptionInput) error {
	if in.EndpointType == "" {
		in.EndpointType = "WebHook"
	}
	if !strings.EqualFold(in.EndpointType, "WebHook") {
		return evBad("properties.destination.endpointType", "only WebHook destinations are supported")
	}
	if in.EndpointURL == "" {
		return evBad("properties.destination.properties.endpointUrl", "the endpoint URL is required")
	}
	if in.CheckDestination != nil {
		if err := in.CheckDestination(in.EndpointURL); err != nil {
			return evBad("properties.destination.properties.endpointUrl", "%v", err)
		}
	}
	for i, t := range in.IncludedEventTypes {
		j := slices.IndexFunc(EventTypes, func(e string) bool { return strings.EqualFold(e, t) })
		if j < 0 {
			return evBad("properties.filter.includedEventTypes", "'%s' is not an event type of Microsoft.KeyVault.vaults (use %s)", t, strings.Join(EventTypes, ", "))
		}
		in.IncludedEventTypes[i] = EventTypes[j]
	}
	if len(in.SubjectBeginsWith) > 256 || len(in.SubjectEndsWith) > 256 {
		return evBad("properties.filter", "subject filters are at most 256 characters")
	}
	switch {
	case in.Schema == "":
		in.Schema = SchemaEventGrid
	case strings.EqualFold(in.Schema, SchemaEventGrid):
		in.Schema = SchemaEventGrid
	case strings.EqualFold(in.Schema, SchemaCloudEvent):
		in.Schema = SchemaCloudEvent
	default:
		return evBad("properties.eventDeliverySchema", "'%s' is not supported (use %s or %s)", in.Schema, SchemaEventGrid, SchemaCloudEvent)
	}
	if in.MaxDeliveryAttempts == 0 {
		in.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if in.MaxDeliveryAttempts < 1 || in.MaxDeliveryAttempts > 30 {
		return evBad("properties.retryPolicy.maxDeliveryAttempts", "must be between 1 and 30")
	}
	if in.EventTTLMinutes == 0 {
		in.EventTTLMinutes = DefaultEventTTLMinutes
	}
	if in.EventTTLMinutes < 1 || in.EventTTLMinutes > 1440 {
		return evBad("properties.retryPolicy.eventTimeToLiveInMinutes", "must be between 1 and 1440")
	}
	if len(in.DeadLetter) > 4096 {
		return evBad("properties.deadLetterDestination", "too large")
	}
	if len(in.Labels) > 16 {
		return evBad("properties.labels", "at most 16 labels")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// PutEventSubscription creates or replaces subscription name on vault (rg, vaultName). A new
// subscription, or one whose endpoint changed, starts Creating and is validated (the Event
// Grid handshake) by the delivery worker before anything is delivered to it.
func (s *Service) PutEventSubscription(ctx context.Context, rg, vaultName, name string, in EventSubscriptionInput) (sub EventSubscription, created bool, err error) {
	if err := s.guard(ctx, ActionEventSubscriptionsWrite, false, s.vaultScope(rg, vaultName)); err != nil {
		return sub, false, err
	}
	if !evSubNameRE.MatchString(name) {
		return sub, false, evBad("name", "'%s' must be 3-64 letters, digits and hyphens", name)
	}
	if err := validateSubscription(&in); err != nil {
		return sub, false, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return sub, false, err
	}
	if err := s.loadEvents(ctx); err != nil {
		return sub, false, err
	}
	c, _ := CallerFrom(ctx)
	err = retry(func() error {
		var old EventSubscription
		key := subKey(v.ID, name)
		raw, found, err := s.get(ctx, keyring.SystemKeyID, key, &old)
		if err != nil {
			return err
		}
		if !found {
			s.events.mu.RLock()
			n := len(s.events.subs[v.ID])
			s.events.mu.RUnlock()
			if n >= maxSubsInVault {
				return newErr(ErrBadRequest, "InvalidRequest", "", "A vault may have at most %d event subscriptions.", maxSubsInVault)
			}
		}
		now := s.now().UTC()
		sub = EventSubscription{Name: name, VaultID: v.ID, VaultName: v.Name, ResourceGroup: v.ResourceGroup, Topic: s.ResourceID(v),
			UID: randomHex(8), EndpointURL: in.EndpointURL, IncludedEventTypes: in.IncludedEventTypes,
			SubjectBeginsWith: in.SubjectBeginsWith, SubjectEndsWith: in.SubjectEndsWith, Schema: in.Schema,
			MaxDeliveryAttempts: in.MaxDeliveryAttempts, EventTTLMinutes: in.EventTTLMinutes, DeadLetter: in.DeadLetter,
			Labels: in.Labels, State: SubscriptionCreating, ValidationCode: randomHex(16),
			Created: now, CreatedBy: c.ObjectID, Updated: now}
		if found {
			sub.Name, sub.UID, sub.Created, sub.CreatedBy = old.Name, old.UID, old.Created, old.CreatedBy
			if old.EndpointURL == in.EndpointURL && old.State == SubscriptionSucceeded {
				sub.State, sub.ValidationCode = SubscriptionSucceeded, old.ValidationCode // validated already
			}
		}
		sealed, err := s.seal(ctx, keyring.SystemKeyID, key, &sub)
		if err != nil {
			return err
		}
		ops := []store.Op{headGuard(key, raw, found), store.Put(key, sealed)}
		if sub.State == SubscriptionCreating {
			ops = append(ops, store.Put(valKey(v.ID, name), []byte{evMarkerV1}))
		}
		if err := s.apply(ctx, ops); err != nil {
			return err
		}
		sub.raw, created = sealed, !found
		return nil
	})
	if err != nil {
		return EventSubscription{}, false, err
	}
	s.noteSubscription(subKey(v.ID, name), true)
	return sub, created, nil
}

// GetEventSubscription returns subscription name of the vault.
func (s *Service) GetEventSubscription(ctx context.Context, rg, vaultName, name string) (EventSubscription, error) {
	if err := s.guard(ctx, ActionEventSubscriptionsRead, false, s.vaultScope(rg, vaultName)); err != nil {
		return EventSubscription{}, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return EventSubscription{}, err
	}
	sub, found, err := s.subscription(ctx, v.ID, name)
	if err == nil && !found {
		err = subNotFound(name)
	}
	return sub, err
}

func (s *Service) subscription(ctx context.Context, vaultID, name string) (EventSubscription, bool, error) {
	var sub EventSubscription
	raw, found, err := s.get(ctx, keyring.SystemKeyID, subKey(vaultID, name), &sub)
	sub.raw = raw
	return sub, found, err
}

// ListEventSubscriptions returns the vault's subscriptions in name order.
func (s *Service) ListEventSubscriptions(ctx context.Context, rg, vaultName string) ([]EventSubscription, error) {
	if err := s.guard(ctx, ActionEventSubscriptionsRead, false, s.vaultScope(rg, vaultName)); err != nil {
		return nil, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return nil, err
	}
	return s.vaultSubscriptions(ctx, v.ID)
}

// vaultSubscriptions reads every subscription of a vault (at most maxSubsInVault).
func (s *Service) vaultSubscriptions(ctx context.Context, vaultID string) ([]EventSubscription, error) {
	var out []EventSubscription
	var openErr error
	err := s.st.Scan(ctx, evSubPrefix+vaultID+"/", "", func(key string, raw []byte) bool {
		var sub EventSubscription
		if openErr = s.open(ctx, keyring.SystemKeyID, key, raw, &sub); openErr != nil {
			return false
		}
		sub.raw = raw
		out = append(out, sub)
		return true
	})
	if err == nil {
		err = openErr
	}
	if err != nil {
		return nil, fmt.Errorf("reading event subscriptions: %w", err)
	}
	return out, nil
}

// DeleteEventSubscription removes a subscription; its queued deliveries are dropped as they
// come due, its dead letters with it. Deleting one that does not exist is not an error (ARM
// answers 204).
func (s *Service) DeleteEventSubscription(ctx context.Context, rg, vaultName, name string) (existed bool, err error) {
	if err := s.guard(ctx, ActionEventSubscriptionsDelete, false, s.vaultScope(rg, vaultName)); err != nil {
		return false, err
	}
	v, err := s.liveVault(rg, vaultName)
	if err != nil {
		return false, err
	}
	key := subKey(v.ID, name)
	_, err = s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	ops := []store.Op{evDrop(key), evDrop(valKey(v.ID, name)), evDropPrefix(evDeadPrefix + v.ID + "/" + strings.ToLower(name) + "/")}
	// Erased afterwards: the record held the endpoint URL, whose query may be a credential.
	if err := s.destroy(func() error { return s.apply(ctx, ops) }); err != nil {
		return false, err
	}
	s.noteSubscription(key, false)
	return true, nil
}

// vaultEventDropOps remove a purged vault's subscriptions, pending handshakes and dead letters
// (its queued deliveries and expiry entries are dropped as they come due). They join the
// vault's destroy, so subscription records, which hold endpoint URLs, are erased with it.
func vaultEventDropOps(vaultID string) []store.Op {
	return []store.Op{evDropPrefix(evSubPrefix + vaultID + "/"), evDropPrefix(evValPrefix + vaultID + "/"),
		evDropPrefix(evDeadPrefix + vaultID + "/")}
}
