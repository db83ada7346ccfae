package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// maxSecrets bounds a principal's client secrets: a wrong secret is hashed against each of them,
// so each one adds a hash to every failed sign-in. Two allow a rotation with overlap (add the
// new secret, move clients over, remove the old one).
const maxSecrets = 2

// SecretInfo describes a client secret, never its value.
type SecretInfo struct {
	KeyID     string    `json:"keyId"`
	CreatedAt time.Time `json:"createdAt"`
}

// PrincipalInfo is a principal as operators see it: its credentials' ids, never their values.
type PrincipalInfo struct {
	ObjectID    string       `json:"objectId"`
	AppID       string       `json:"appId"`
	DisplayName string       `json:"displayName"`
	Type        string       `json:"type"`
	Disabled    bool         `json:"disabled"`
	Secrets     []SecretInfo `json:"secrets"`
}

func (r *principalRecord) info() PrincipalInfo {
	in := PrincipalInfo{ObjectID: r.ObjectID, AppID: r.AppID, DisplayName: r.DisplayName, Type: r.Type,
		Disabled: r.Disabled, Secrets: make([]SecretInfo, len(r.Secrets))}
	for i, c := range r.Secrets {
		in.Secrets[i] = SecretInfo{KeyID: c.ID, CreatedAt: c.CreatedAt}
	}
	return in
}

// DescribePrincipal returns the principal with that object or app id.
func (s *Service) DescribePrincipal(ctx context.Context, objectIDOrAppID string) (PrincipalInfo, error) {
	_, rec, err := s.findPrincipal(ctx, objectIDOrAppID)
	if err != nil {
		return PrincipalInfo{}, fmt.Errorf("describing principal: %w", err)
	}
	return rec.info(), nil
}

// AddSecret gives the principal a new client secret and returns it (stored only hashed: it is
// never shown again). With replace, the principal's other secrets are removed in the same
// write, which revokes every token they minted; without, a principal holding maxSecrets
// secrets gets ErrTooManySecrets.
func (s *Service) AddSecret(ctx context.Context, objectIDOrAppID string, replace bool) (PrincipalInfo, SecretInfo, string, error) {
	if _, rec, err := s.findPrincipal(ctx, objectIDOrAppID); err == nil {
		if _, ok := s.ManagedIdentityOf(ctx, rec.ObjectID); ok {
			return PrincipalInfo{}, SecretInfo{}, "", ErrManagedIdentitySecret
		}
	}
	secret, err := newClientSecret()
	if err != nil {
		return PrincipalInfo{}, SecretInfo{}, "", err
	}
	cred, err := s.hashSecret(ctx, uuid.NewString(), secret)
	if err != nil {
		return PrincipalInfo{}, SecretInfo{}, "", fmt.Errorf("adding client secret: %w", err)
	}
	in, err := s.updatePrincipal(ctx, objectIDOrAppID, func(rec *principalRecord) error {
		if replace {
			rec.Secrets = nil
		}
		if len(rec.Secrets) >= maxSecrets {
			return fmt.Errorf("%w: it already has %d; remove one first, or replace them", ErrTooManySecrets, maxSecrets)
		}
		rec.Secrets = append(rec.Secrets, cred)
		return nil
	})
	if err != nil {
		return PrincipalInfo{}, SecretInfo{}, "", fmt.Errorf("adding client secret: %w", err)
	}
	if replace {
		s.erase() // the replaced secrets' hashes are in freed pages
	}
	return in, SecretInfo{KeyID: cred.ID, CreatedAt: cred.CreatedAt}, secret, nil
}

// RemoveSecret deletes one client secret by key id; every token it minted stops verifying.
func (s *Service) RemoveSecret(ctx context.Context, objectIDOrAppID, keyID string) (PrincipalInfo, error) {
	in, err := s.updatePrincipal(ctx, objectIDOrAppID, func(rec *principalRecord) error {
		i := slices.IndexFunc(rec.Secrets, func(c secretRecord) bool { return c.ID == keyID })
		if i < 0 {
			return ErrSecretNotFound
		}
		if len(rec.Secrets) == 1 && s.isAdmin(rec) {
			return ErrProtectedPrincipal
		}
		rec.Secrets = slices.Delete(rec.Secrets, i, i+1)
		return nil
	})
	if err != nil {
		return PrincipalInfo{}, fmt.Errorf("removing client secret: %w", err)
	}
	s.erase()
	return in, nil
}

// SetDisabled disables or enables a principal. Disabling revokes every token it holds (they
// stay revoked after it is enabled again) and refuses new ones.
func (s *Service) SetDisabled(ctx context.Context, objectIDOrAppID string, disabled bool) (PrincipalInfo, error) {
	in, err := s.updatePrincipal(ctx, objectIDOrAppID, func(rec *principalRecord) error {
		if disabled && s.isAdmin(rec) {
			return ErrProtectedPrincipal
		}
		if disabled && !rec.Disabled {
			rec.Generation++
		}
		rec.Disabled = disabled
		return nil
	})
	if err != nil {
		return PrincipalInfo{}, fmt.Errorf("updating principal: %w", err)
	}
	return in, nil
}

// DeletePrincipal deletes a principal and its app-id index entry; its tokens stop verifying.
func (s *Service) DeletePrincipal(ctx context.Context, objectIDOrAppID string) error {
	for range 3 {
		sealed, rec, err := s.findPrincipal(ctx, objectIDOrAppID)
		if err != nil {
			return fmt.Errorf("deleting principal: %w", err)
		}
		if s.isAdmin(rec) {
			return fmt.Errorf("deleting principal: %w", ErrProtectedPrincipal)
		}
		pKey, iKey := prefixPrincipal+rec.ObjectID, prefixAppIndex+rec.AppID
		ops := []store.Op{store.RequireEqual(pKey, sealed), store.Delete(pKey)}
		// An application keeps its appId (and its secrets) when its service principal goes.
		idxSealed, err := s.st.Get(ctx, iKey)
		var idx appIndexRecord
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("deleting principal: %w", err)
		default:
			if err := s.openRecord(ctx, iKey, idxSealed, &idx); err != nil {
				return fmt.Errorf("deleting principal: %w", err)
			}
		}
		if idx.ApplicationID != "" {
			idx.ObjectID = ""
			put, err := s.putRecord(ctx, iKey, idx)
			if err != nil {
				return fmt.Errorf("deleting principal: %w", err)
			}
			ops = append(ops, store.RequireEqual(iKey, idxSealed), put)
		} else {
			ops = append(ops, store.Delete(iKey))
		}
		ops = append(ops, s.cascadeOps(rec.ObjectID)...)
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue // changed meanwhile: look again
		}
		if err != nil {
			return fmt.Errorf("deleting principal: %w", err)
		}
		s.erase()
		return nil
	}
	return fmt.Errorf("deleting principal: %w", store.ErrConflict)
}

func (s *Service) isAdmin(rec *principalRecord) bool {
	adm := s.admin.Load()
	return adm != nil && adm.ObjectID == rec.ObjectID
}

// findPrincipal reads a principal by object id or app id, with its sealed bytes for a
// compare-and-set. A missing principal is ErrPrincipalNotFound.
func (s *Service) findPrincipal(ctx context.Context, objectIDOrAppID string) ([]byte, *principalRecord, error) {
	var rec principalRecord
	sealed, err := s.findViaAppIndex(ctx, objectIDOrAppID, prefixPrincipal, func(x *appIndexRecord) string { return x.ObjectID }, ErrPrincipalNotFound, &rec)
	if err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// findViaAppIndex reads into rec the record at prefix+ref (ref an object id) or, when there is
// none, at prefix+ the id that ref's appId index entry names (pick chooses which), and returns
// its sealed bytes for a compare-and-set. A missing record is notFound.
func (s *Service) findViaAppIndex(ctx context.Context, ref, prefix string, pick func(*appIndexRecord) string, notFound error, rec versioned) ([]byte, error) {
	id, ok := normalizeID(ref)
	if !ok {
		return nil, notFound
	}
	sealed, err := s.st.Get(ctx, prefix+id)
	if errors.Is(err, store.ErrNotFound) {
		var idx appIndexRecord
		switch err := s.getRecord(ctx, prefixAppIndex+id, &idx); {
		case errors.Is(err, store.ErrNotFound):
			return nil, notFound
		case err != nil:
			return nil, err
		}
		if id = pick(&idx); id == "" {
			return nil, notFound
		}
		sealed, err = s.st.Get(ctx, prefix+id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if err := s.openRecord(ctx, prefix+id, sealed, rec); err != nil {
		return nil, err
	}
	return sealed, nil
}

// updatePrincipal applies change to a principal record with compare-and-set (retrying when
// another writer got there first) and refreshes this node's state copy.
func (s *Service) updatePrincipal(ctx context.Context, objectIDOrAppID string, change func(*principalRecord) error) (PrincipalInfo, error) {
	for range 3 {
		sealed, rec, err := s.findPrincipal(ctx, objectIDOrAppID)
		if err != nil {
			return PrincipalInfo{}, err
		}
		if err := change(rec); err != nil {
			return PrincipalInfo{}, err
		}
		key := prefixPrincipal + rec.ObjectID
		put, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return PrincipalInfo{}, err
		}
		err = s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), put})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return PrincipalInfo{}, err
		}
		if err := s.refreshPrincipal(ctx, rec.ObjectID); err != nil {
			return PrincipalInfo{}, err
		}
		return rec.info(), nil
	}
	return PrincipalInfo{}, store.ErrConflict
}
