package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// maxDisplayNameLen bounds display names (Entra allows 120 characters for applications; we
// allow a little more).
const maxDisplayNameLen = 256

// Principal is a directory identity that can hold tokens.
type Principal struct {
	ObjectID    string // oid
	AppID       string // client id (appid / azp)
	TenantID    string
	Type        string // TypeServicePrincipal or TypeUser
	DisplayName string
}

type principalRecord struct {
	V           int            `json:"v"`
	ObjectID    string         `json:"objectId"`
	AppID       string         `json:"appId"`
	TenantID    string         `json:"tenantId"`
	Type        string         `json:"type"`
	DisplayName string         `json:"displayName"`
	CreatedAt   time.Time      `json:"createdAt"`
	Secrets     []secretRecord `json:"secrets,omitempty"`
	// Disabled principals get no tokens and their tokens do not verify.
	Disabled bool `json:"disabled,omitempty"`
	// Generation is stamped into tokens (claim sr_gen); disabling increments it, so tokens
	// minted before a disable stay revoked after the principal is enabled again.
	Generation uint64 `json:"gen,omitempty"`
}

type appIndexRecord struct {
	V        int    `json:"v"`
	ObjectID string `json:"objectId"` // the service principal's; "" while the app has none
	// ApplicationID is the application object's id; "" for principals made before
	// applications existed, whose secrets are on the principal record.
	ApplicationID string `json:"applicationId,omitempty"`
}

func (r *principalRecord) version() int { return r.V }
func (r *appIndexRecord) version() int  { return r.V }

func (r *principalRecord) principal() Principal {
	return Principal{ObjectID: r.ObjectID, AppID: r.AppID, TenantID: r.TenantID, Type: r.Type, DisplayName: r.DisplayName}
}

// CreateServicePrincipal creates a service principal with one client secret and returns the
// secret, which is stored only hashed and cannot be shown again.
func (s *Service) CreateServicePrincipal(ctx context.Context, displayName string) (Principal, string, error) {
	p, secret, ops, err := s.newServicePrincipal(ctx, displayName)
	if err != nil {
		return Principal{}, "", fmt.Errorf("creating service principal: %w", err)
	}
	if err := s.st.Apply(ctx, ops); err != nil {
		return Principal{}, "", fmt.Errorf("creating service principal: %w", err)
	}
	if err := s.refreshPrincipal(ctx, p.ObjectID); err != nil {
		return Principal{}, "", fmt.Errorf("creating service principal: %w", err)
	}
	return p, secret, nil
}

// newServicePrincipal builds a service principal with a fresh secret and the ops that store it.
func (s *Service) newServicePrincipal(ctx context.Context, displayName string) (Principal, string, []store.Op, error) {
	if err := validateDisplayName(displayName); err != nil {
		return Principal{}, "", nil, err
	}
	secret, err := newClientSecret()
	if err != nil {
		return Principal{}, "", nil, err
	}
	cred, err := s.hashSecret(ctx, uuid.NewString(), secret)
	if err != nil {
		return Principal{}, "", nil, err
	}
	rec := principalRecord{
		V:           recordVersion,
		ObjectID:    uuid.NewString(),
		AppID:       uuid.NewString(),
		TenantID:    s.tenantID,
		Type:        TypeServicePrincipal,
		DisplayName: displayName,
		CreatedAt:   s.now().UTC(),
		Secrets:     []secretRecord{cred},
	}
	pKey, iKey := prefixPrincipal+rec.ObjectID, prefixAppIndex+rec.AppID
	pOp, err := s.putRecord(ctx, pKey, rec)
	if err != nil {
		return Principal{}, "", nil, err
	}
	iOp, err := s.putRecord(ctx, iKey, appIndexRecord{V: recordVersion, ObjectID: rec.ObjectID})
	if err != nil {
		return Principal{}, "", nil, err
	}
	ops := []store.Op{store.RequireAbsent(pKey), store.RequireAbsent(iKey), pOp, iOp}
	return rec.principal(), secret, ops, nil
}

func validateDisplayName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("validating display name: empty: %w", ErrInvalidDisplayName)
	}
	if len(name) > maxDisplayNameLen {
		return fmt.Errorf("validating display name: longer than %d bytes: %w", maxDisplayNameLen, ErrInvalidDisplayName)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("validating display name: contains control characters: %w", ErrInvalidDisplayName)
	}
	return nil
}

// LookupPrincipal finds a principal by object id or by app (client) id.
func (s *Service) LookupPrincipal(ctx context.Context, objectIDOrAppID string) (Principal, error) {
	rec, err := s.loadPrincipal(ctx, objectIDOrAppID)
	if errors.Is(err, store.ErrNotFound) {
		rec, err = s.loadByAppID(ctx, objectIDOrAppID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrPrincipalNotFound
	}
	if err != nil {
		return Principal{}, fmt.Errorf("looking up principal: %w", err)
	}
	return rec.principal(), nil
}

func (s *Service) loadPrincipal(ctx context.Context, objectID string) (*principalRecord, error) {
	objectID, ok := normalizeID(objectID)
	if !ok {
		return nil, store.ErrNotFound
	}
	var rec principalRecord
	if err := s.getRecord(ctx, prefixPrincipal+objectID, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// loadByAppID follows the app-id index; a missing index entry or principal is store.ErrNotFound.
func (s *Service) loadByAppID(ctx context.Context, appID string) (*principalRecord, error) {
	appID, ok := normalizeID(appID)
	if !ok {
		return nil, store.ErrNotFound
	}
	var idx appIndexRecord
	if err := s.getRecord(ctx, prefixAppIndex+appID, &idx); err != nil {
		return nil, err
	}
	if idx.ObjectID == "" {
		return nil, store.ErrNotFound // an application without a service principal
	}
	rec, err := s.loadPrincipal(ctx, idx.ObjectID)
	if err != nil {
		return nil, err
	}
	if rec.AppID != appID {
		return nil, fmt.Errorf("loading principal for app %q: index points at another app", appID)
	}
	return rec, nil
}

// normalizeID screens an id before it becomes part of a storage key: it must be non-empty,
// bounded and free of "/" so one id can never address another record. GUIDs are matched
// case-insensitively, as Entra does, by using their canonical lowercase form.
func normalizeID(id string) (string, bool) {
	if id == "" || len(id) > maxClientIDLen || strings.ContainsAny(id, "/\x00") {
		return "", false
	}
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String(), true
	}
	return id, true
}
