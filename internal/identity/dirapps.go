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

// Applications and their service principals, as Graph models them: an application object
// (its own object id, an appId and the client secrets) and, once created for that appId, a
// service principal (the object id tokens carry as oid). Principals made before applications
// existed (the bootstrap admin, /sys/principals) are service principals whose secrets live on
// the principal record; both kinds sign in and revoke alike.

// CreateApplication creates an application object with a fresh appId and no credentials.
func (s *Service) CreateApplication(ctx context.Context, displayName string) (Application, error) {
	if err := validateDirName(displayName, "Application"); err != nil {
		return Application{}, err
	}
	rec := applicationRecord{V: recordVersion, ID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: displayName, CreatedAt: s.now().UTC()}
	aKey, iKey := prefixApplication+rec.ID, prefixAppIndex+rec.AppID
	aOp, err := s.putRecord(ctx, aKey, rec)
	if err != nil {
		return Application{}, fmt.Errorf("creating application: %w", err)
	}
	iOp, err := s.putRecord(ctx, iKey, appIndexRecord{V: recordVersion, ApplicationID: rec.ID})
	if err != nil {
		return Application{}, fmt.Errorf("creating application: %w", err)
	}
	if err := s.apply(ctx, []store.Op{store.RequireAbsent(aKey), store.RequireAbsent(iKey), aOp, iOp}); err != nil {
		return Application{}, fmt.Errorf("creating application: %w", err)
	}
	return rec.application(), nil
}

// ListApplications returns every application object, in object id order.
func (s *Service) ListApplications(ctx context.Context) ([]Application, error) {
	var out []Application
	err := s.scanRecords(ctx, prefixApplication, func() versioned { return &applicationRecord{} }, func(v versioned) {
		out = append(out, v.(*applicationRecord).application())
	})
	if err != nil {
		return nil, fmt.Errorf("listing applications: %w", err)
	}
	return out, nil
}

// GetApplication returns the application with that object id or appId.
func (s *Service) GetApplication(ctx context.Context, idOrAppID string) (Application, error) {
	_, rec, err := s.findApplication(ctx, idOrAppID)
	if err != nil {
		return Application{}, fmt.Errorf("reading application: %w", err)
	}
	return rec.application(), nil
}

// findApplication reads an application by object id or appId, with its sealed bytes.
func (s *Service) findApplication(ctx context.Context, idOrAppID string) ([]byte, *applicationRecord, error) {
	var rec applicationRecord
	sealed, err := s.findViaAppIndex(ctx, idOrAppID, prefixApplication, func(x *appIndexRecord) string { return x.ApplicationID }, ErrObjectNotFound, &rec)
	if err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// DeleteApplication deletes an application, its service principal (as Entra does), their
// memberships and directory roles, in one write: every token either minted stops verifying.
func (s *Service) DeleteApplication(ctx context.Context, idOrAppID string) error {
	for range 3 {
		sealed, rec, err := s.findApplication(ctx, idOrAppID)
		if err != nil {
			return fmt.Errorf("deleting application: %w", err)
		}
		aKey, iKey := prefixApplication+rec.ID, prefixAppIndex+rec.AppID
		ops := []store.Op{store.RequireEqual(aKey, sealed), store.Delete(aKey)}
		// The index names the service principal (read from the store, not memory, so that
		// no principal is left behind without its index).
		idxSealed, err := s.st.Get(ctx, iKey)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleting application: %w", err)
		}
		var idx appIndexRecord
		if err == nil {
			if err := s.openRecord(ctx, iKey, idxSealed, &idx); err != nil {
				return fmt.Errorf("deleting application: %w", err)
			}
			ops = append(ops, store.RequireEqual(iKey, idxSealed))
		}
		ops = append(ops, store.Delete(iKey))
		if spID := idx.ObjectID; spID != "" {
			if adm := s.admin.Load(); adm != nil && adm.ObjectID == spID {
				return fmt.Errorf("deleting application: %w", ErrProtectedPrincipal)
			}
			ops = append(ops, store.Delete(prefixPrincipal+spID))
			ops = append(ops, s.cascadeOps(spID)...)
		}
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting application: %w", err)
		}
		s.erase()
		return nil
	}
	return fmt.Errorf("deleting application: %w", store.ErrConflict)
}

// AddPassword gives an application a new client secret (Graph's addPassword) and returns it
// with its value, which is stored only hashed and never shown again. A zero end means Graph's
// default of two years from now.
func (s *Service) AddPassword(ctx context.Context, idOrAppID, displayName string, end time.Time) (PasswordCredential, error) {
	now := s.now().UTC()
	switch {
	case end.IsZero():
		end = now.Add(defaultSecretLifetime)
	case !end.After(now):
		return PasswordCredential{}, badInput("Invalid value specified for property 'endDateTime' of resource 'PasswordCredential': it must be in the future.")
	case end.After(now.Add(maxSecretLifetime)):
		return PasswordCredential{}, badInput("Invalid value specified for property 'endDateTime' of resource 'PasswordCredential': it is too far in the future.")
	}
	if displayName != "" {
		if err := validateDisplayName(displayName); err != nil {
			return PasswordCredential{}, badInput("Invalid value specified for property 'displayName' of resource 'PasswordCredential'.")
		}
	}
	secret, err := newClientSecret()
	if err != nil {
		return PasswordCredential{}, err
	}
	cred, err := s.hashSecret(ctx, uuid.NewString(), secret)
	if err != nil {
		return PasswordCredential{}, fmt.Errorf("adding password: %w", err)
	}
	cred.DisplayName, cred.EndsAt, cred.Hint = displayName, end.UTC(), secret[:3]
	err = s.updateApplication(ctx, idOrAppID, func(rec *applicationRecord) error {
		if len(rec.Secrets) >= maxSecrets {
			return conflict("The application already has %d client secrets, the most it may hold; remove one first (removePassword).", maxSecrets)
		}
		rec.Secrets = append(rec.Secrets, cred)
		return nil
	})
	if err != nil {
		return PasswordCredential{}, fmt.Errorf("adding password: %w", err)
	}
	pc := cred.credential()
	pc.SecretText = secret
	return pc, nil
}

// RemovePassword deletes an application's client secret by key id; every token it minted
// stops verifying on the next request, on every node.
func (s *Service) RemovePassword(ctx context.Context, idOrAppID, keyID string) error {
	err := s.updateApplication(ctx, idOrAppID, func(rec *applicationRecord) error {
		i := slices.IndexFunc(rec.Secrets, func(c secretRecord) bool { return c.ID == keyID })
		if i < 0 {
			return badInput("No password credential with keyId '%s' was found on the application.", echoID(keyID))
		}
		rec.Secrets = slices.Delete(rec.Secrets, i, i+1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing password: %w", err)
	}
	s.erase()
	return nil
}

func (s *Service) updateApplication(ctx context.Context, idOrAppID string, change func(*applicationRecord) error) error {
	for range 3 {
		sealed, rec, err := s.findApplication(ctx, idOrAppID)
		if err != nil {
			return err
		}
		if err := change(rec); err != nil {
			return err
		}
		key := prefixApplication + rec.ID
		put, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return err
		}
		err = s.apply(ctx, []store.Op{store.RequireEqual(key, sealed), put})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
	return store.ErrConflict
}

// CreateServicePrincipalForApp creates the service principal of an application (Graph's
// POST /servicePrincipals {appId}); an application has at most one.
func (s *Service) CreateServicePrincipalForApp(ctx context.Context, appID string) (ServicePrincipal, error) {
	for range 3 {
		_, app, err := s.findApplication(ctx, appID)
		if errors.Is(err, ErrObjectNotFound) {
			return ServicePrincipal{}, badInput("The appId '%s' of the service principal does not reference a valid application object.", echoID(appID))
		}
		if err != nil {
			return ServicePrincipal{}, fmt.Errorf("creating service principal: %w", err)
		}
		iKey := prefixAppIndex + app.AppID
		idxSealed, err := s.st.Get(ctx, iKey)
		if err != nil {
			return ServicePrincipal{}, fmt.Errorf("creating service principal: %w", err)
		}
		var idx appIndexRecord
		if err := s.openRecord(ctx, iKey, idxSealed, &idx); err != nil {
			return ServicePrincipal{}, fmt.Errorf("creating service principal: %w", err)
		}
		if idx.ObjectID != "" {
			return ServicePrincipal{}, conflict("The service principal for application '%s' already exists.", app.AppID)
		}
		rec := principalRecord{V: recordVersion, ObjectID: uuid.NewString(), AppID: app.AppID, TenantID: s.tenantID,
			Type: TypeServicePrincipal, DisplayName: app.DisplayName, CreatedAt: s.now().UTC()}
		pKey := prefixPrincipal + rec.ObjectID
		pOp, err := s.putRecord(ctx, pKey, rec)
		if err != nil {
			return ServicePrincipal{}, err
		}
		idx.ObjectID = rec.ObjectID
		iOp, err := s.putRecord(ctx, iKey, idx)
		if err != nil {
			return ServicePrincipal{}, err
		}
		err = s.apply(ctx, []store.Op{store.RequireEqual(iKey, idxSealed), store.RequireEqual(prefixApplication+app.ID, mustGet(ctx, s, prefixApplication+app.ID)),
			store.RequireAbsent(pKey), pOp, iOp})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return ServicePrincipal{}, fmt.Errorf("creating service principal: %w", err)
		}
		return rec.servicePrincipal(app.ID), nil
	}
	return ServicePrincipal{}, fmt.Errorf("creating service principal: %w", store.ErrConflict)
}

// mustGet reads key's sealed bytes for a precondition; a failed read gives a value that
// cannot match, so the batch fails with a conflict and is retried.
func mustGet(ctx context.Context, s *Service, key string) []byte {
	v, err := s.st.Get(ctx, key)
	if err != nil {
		return []byte{0}
	}
	return v
}

func (r *principalRecord) servicePrincipal(applicationID string) ServicePrincipal {
	return ServicePrincipal{ID: r.ObjectID, AppID: r.AppID, DisplayName: r.DisplayName, AccountEnabled: !r.Disabled,
		ApplicationID: applicationID, CreatedAt: r.CreatedAt}
}

// ListServicePrincipals returns every service principal, in object id order.
func (s *Service) ListServicePrincipals(ctx context.Context) ([]ServicePrincipal, error) {
	var out []ServicePrincipal
	err := s.scanRecords(ctx, prefixPrincipal, func() versioned { return &principalRecord{} }, func(v versioned) {
		rec := v.(*principalRecord)
		out = append(out, rec.servicePrincipal(s.applicationOf(rec.AppID)))
	})
	if err != nil {
		return nil, fmt.Errorf("listing service principals: %w", err)
	}
	return out, nil
}

// applicationOf returns the object id of the application with appID, from memory.
func (s *Service) applicationOf(appID string) string {
	s.dir.mu.RLock()
	defer s.dir.mu.RUnlock()
	return s.dir.appByAppID[appID]
}

// GetServicePrincipal returns the service principal with that object id or appId.
func (s *Service) GetServicePrincipal(ctx context.Context, idOrAppID string) (ServicePrincipal, error) {
	_, rec, err := s.findPrincipal(ctx, idOrAppID)
	if errors.Is(err, ErrPrincipalNotFound) {
		err = ErrObjectNotFound
	}
	if err != nil {
		return ServicePrincipal{}, fmt.Errorf("reading service principal: %w", err)
	}
	return rec.servicePrincipal(s.applicationOf(rec.AppID)), nil
}

// SetServicePrincipalEnabled is Graph's PATCH accountEnabled: disabling revokes its tokens.
func (s *Service) SetServicePrincipalEnabled(ctx context.Context, idOrAppID string, enabled bool) (ServicePrincipal, error) {
	if _, err := s.SetDisabled(ctx, idOrAppID, !enabled); err != nil {
		if errors.Is(err, ErrPrincipalNotFound) {
			return ServicePrincipal{}, ErrObjectNotFound
		}
		return ServicePrincipal{}, err
	}
	return s.GetServicePrincipal(ctx, idOrAppID)
}

// loadClient finds the service principal that signs in with clientID and the credentials it
// may sign in with: its own (older principals) and its application's. A client id without a
// service principal is store.ErrNotFound.
func (s *Service) loadClient(ctx context.Context, clientID string) (*principalRecord, []secretRecord, error) {
	id, ok := normalizeID(clientID)
	if !ok {
		return nil, nil, store.ErrNotFound
	}
	var idx appIndexRecord
	if err := s.getRecord(ctx, prefixAppIndex+id, &idx); err != nil {
		return nil, nil, err
	}
	if idx.ObjectID == "" {
		return nil, nil, store.ErrNotFound
	}
	rec, err := s.loadPrincipal(ctx, idx.ObjectID)
	if err != nil {
		return nil, nil, err
	}
	if rec.AppID != id {
		return nil, nil, fmt.Errorf("loading principal for app %q: index points at another app", id)
	}
	now := s.now()
	var creds []secretRecord
	for _, c := range rec.Secrets {
		if c.usable(now) {
			creds = append(creds, c)
		}
	}
	if idx.ApplicationID != "" {
		var app applicationRecord
		switch err := s.getRecord(ctx, prefixApplication+idx.ApplicationID, &app); {
		case err == nil:
			for _, c := range app.Secrets {
				if c.usable(now) {
					creds = append(creds, c)
				}
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, nil, err
		}
	}
	return rec, creds, nil
}

// scanRecords opens every record under prefix with a fresh value from newRec.
func (s *Service) scanRecords(ctx context.Context, prefix string, newRec func() versioned, each func(versioned)) error {
	type raw struct {
		key    string
		sealed []byte
	}
	var recs []raw
	if err := s.st.Scan(ctx, prefix, "", func(k string, v []byte) bool {
		recs = append(recs, raw{k, v})
		return true
	}); err != nil {
		return err
	}
	for _, r := range recs {
		v := newRec()
		if err := s.openRecord(ctx, r.key, r.sealed, v); err != nil {
			return err
		}
		each(v)
	}
	return nil
}

// cascadeOps deletes what refers to objectID when it is deleted: its memberships, its own
// members' records if it is a group, and its directory role assignments (from memory, which
// is current; a record left behind by a concurrent write refers to nothing and counts for
// nothing).
func (s *Service) cascadeOps(objectID string) []store.Op {
	var ops []store.Op
	for _, g := range s.dir.parentsOf(objectID) {
		ops = append(ops, store.Delete(prefixMember+g+"/"+objectID))
	}
	for m := range s.dir.directMembers(objectID) {
		ops = append(ops, store.Delete(prefixMember+objectID+"/"+m))
	}
	_, assignments := s.dir.rolesOf(objectID)
	for _, a := range assignments {
		ops = append(ops, store.Delete(prefixDirRole+a))
	}
	return ops
}
