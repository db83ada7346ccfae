// The event outbox: the ops a change adds to its own batch, so an event exists exactly when the
// change that caused it committed, and the due-time index for near-expiry and expiry.

package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Event is one Key Vault event as stored: what the Event Grid and CloudEvents schemas carry.
// It never holds a secret value.
type Event struct {
	ID      string    `json:"id"`
	Type    string    `json:"eventType"`
	Time    time.Time `json:"eventTime"`
	Topic   string    `json:"topic"`   // the vault's ARM id
	Subject string    `json:"subject"` // the object's name
	VaultID string    `json:"vaultId"` // internal: which subscriptions it fans out to
	Data    EventData `json:"data"`
}

// EventData is Key Vault's data object (KeyVaultSecretNewVersionCreatedEventData and its
// siblings): PascalCase keys, NBF and EXP as Unix seconds.
type EventData struct {
	ID         string `json:"Id"`
	VaultName  string `json:"VaultName"`
	ObjectType string `json:"ObjectType"`
	ObjectName string `json:"ObjectName"`
	Version    string `json:"Version"`
	NBF        *int64 `json:"NBF,omitempty"`
	EXP        *int64 `json:"EXP,omitempty"`
	// Rotation events only (rotation_due.go).
	RotationID string `json:"RotationId,omitempty"`
	Step       string `json:"Step,omitempty"`
	Attempt    int    `json:"Attempt,omitempty"`
	Error      string `json:"Error,omitempty"`
}

const (
	dueNear = "n" // SecretNearExpiry
	dueExp  = "e" // SecretExpired
)

func msKey(t time.Time) string { return fmt.Sprintf("%0*d", msDigits, max(t.UnixMilli(), 0)) }

// outboxOp seals ev into an outbox entry.
func (s *Service) outboxOp(ctx context.Context, ev *Event) (store.Op, error) {
	key := evOutPrefix + msKey(ev.Time) + "-" + ev.ID
	b, err := s.seal(ctx, keyring.SystemKeyID, key, ev)
	if err != nil {
		return store.Op{}, fmt.Errorf("sealing event: %w", err)
	}
	return store.Put(key, b), nil
}

func (s *Service) secretEvent(v *Vault, typ, name string, sv *SecretVersion) *Event {
	uri := ""
	if s.opts.VaultURI != nil {
		uri = s.opts.VaultURI(v.Name) + "/secrets/" + name + "/" + sv.Version
	}
	return &Event{ID: uuid.NewString(), Type: typ, Time: s.now().UTC(), Topic: s.ResourceID(v), Subject: name, VaultID: v.ID,
		Data: EventData{ID: uri, VaultName: v.Name, ObjectType: "Secret", ObjectName: name, Version: sv.Version, NBF: sv.NotBefore, EXP: sv.Expires}}
}

// newVersionEventOps are the ops SetSecret adds for version sv of name: the
// SecretNewVersionCreated event when the vault has subscribers, and the expiry index entries
// when sv expires.
func (s *Service) newVersionEventOps(ctx context.Context, v *Vault, name string, sv *SecretVersion) ([]store.Op, error) {
	ops := s.expiryDueOps(v, name, sv)
	if s.hasSubscriptions(ctx, v.ID) {
		op, err := s.outboxOp(ctx, s.secretEvent(v, EventSecretNewVersionCreated, name, sv))
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// expiryDueOps indexes when the version's near-expiry and expiry events are due. An entry is
// only a candidate (see dueExpiry): one left by an older exp or version is dropped when due.
func (s *Service) expiryDueOps(v *Vault, name string, sv *SecretVersion) []store.Op {
	if sv.Expires == nil {
		return nil
	}
	exp := *sv.Expires
	near := max(exp-int64(NearExpiryLead/time.Second), s.now().Unix())
	if near >= exp {
		near = exp // already within the lead and past: expired alone fires
	}
	ops := []store.Op{store.Put(evDueKey(exp, dueExp, v.ID, name, sv.Version), []byte{evMarkerV1})}
	if near < exp {
		ops = append(ops, store.Put(evDueKey(near, dueNear, v.ID, name, sv.Version), []byte{evMarkerV1}))
	}
	return ops
}

func evDueKey(at int64, kind, vaultID, name, version string) string {
	at = min(max(at, 0), maxDue)
	return evDuePrefix + fmt.Sprintf("%0*d", dueDigits, at) + "/" + kind + "/" + vaultID + "/" + strings.ToUpper(name) + "/" + strings.ToLower(version)
}

type evDueEntry struct {
	key, kind, vaultID, name, version string
	at                                int64
}

func parseEvDueKey(key string) (evDueEntry, bool) {
	rest, ok := strings.CutPrefix(key, evDuePrefix)
	p := strings.Split(rest, "/")
	if !ok || len(p) < 5 || len(p[0]) != dueDigits || (p[1] != dueNear && p[1] != dueExp) {
		return evDueEntry{}, false
	}
	at, err := strconv.ParseInt(p[0], 10, 64)
	if err != nil {
		return evDueEntry{}, false
	}
	// A secret name holds no '/', so the version is the last part.
	return evDueEntry{key: key, kind: p[1], vaultID: p[2], name: strings.Join(p[3:len(p)-1], "/"), version: p[len(p)-1], at: at}, true
}

// updateEventOps are the ops UpdateSecret adds when it changes the latest version's exp.
func (s *Service) updateEventOps(v *Vault, name string, before *int64, sv *SecretVersion) []store.Op {
	if sv.Expires == nil || (before != nil && *before == *sv.Expires) {
		return nil
	}
	return s.expiryDueOps(v, name, sv)
}

// accessPolicyEventOps is the VaultAccessPolicyChanged event for vault v, when it has
// subscribers.
func (s *Service) accessPolicyEventOps(ctx context.Context, v *Vault) ([]store.Op, error) {
	if !s.hasSubscriptions(ctx, v.ID) {
		return nil, nil
	}
	uri := ""
	if s.opts.VaultURI != nil {
		uri = s.opts.VaultURI(v.Name)
	}
	ev := &Event{ID: uuid.NewString(), Type: EventVaultAccessPolicyChanged, Time: s.now().UTC(), Topic: s.ResourceID(v),
		Subject: v.Name, VaultID: v.ID, Data: EventData{ID: uri, VaultName: v.Name, ObjectType: "Vault", ObjectName: v.Name}}
	op, err := s.outboxOp(ctx, ev)
	if err != nil {
		return nil, err
	}
	return []store.Op{op}, nil
}

// policiesChanged reports whether an update changes who may use the data plane: the access
// policies or the permission model.
func policiesChanged(old, v *Vault) bool {
	if old.usesAccessPolicies() != v.usesAccessPolicies() {
		return true
	}
	a, b := old.Properties.AccessPolicies, v.Properties.AccessPolicies
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if !samePrincipal(a[i], b[i]) || !sameList(a[i].Permissions.Secrets, b[i].Permissions.Secrets) ||
			!sameList(a[i].Permissions.Keys, b[i].Permissions.Keys) || !sameList(a[i].Permissions.Certificates, b[i].Permissions.Certificates) ||
			!sameList(a[i].Permissions.Storage, b[i].Permissions.Storage) {
			return true
		}
	}
	return false
}

func sameList(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !containsFold(b, x) {
			return false
		}
	}
	return true
}
