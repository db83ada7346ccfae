package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// User-assigned managed identities (Microsoft.ManagedIdentity/userAssignedIdentities). Each is
// a service principal (servicePrincipalType "ManagedIdentity", as Graph calls it) with a client
// id and no client secret, ever: it gets tokens only through a host it is assigned to
// (host.go), never at the token endpoint. Its ARM facts (resource group, name, location, tags)
// are a record of their own beside the principal:
//
//	id/msi/<lower rg>/<lower name>  managedRecord
//	id/msioid/<objectId>            managedIndexRecord: the principal's identity (rg, name)
//
// Tokens of a managed identity carry as sr_cred the id of the host assignment that minted
// them. The principal record lists those ids as credentials that can never sign in (no hash,
// already ended), so unassigning the identity from a host, removing the host or deleting the
// identity revokes every token minted through it on the next request, on every node, exactly
// as a removed client secret does.

// ServicePrincipalTypeManagedIdentity is Graph's servicePrincipalType of a managed identity.
const ServicePrincipalTypeManagedIdentity = "ManagedIdentity"

const (
	prefixManaged      = "id/msi/"
	prefixManagedIndex = "id/msioid/"
)

// managedIndexRecord names the identity a service principal belongs to.
type managedIndexRecord struct {
	V             int    `json:"v"`
	ResourceGroup string `json:"resourceGroup"`
	Name          string `json:"name"`
}

func (r *managedIndexRecord) version() int { return r.V }

// maxHostsPerIdentity bounds the hosts one identity is assigned to (each is a credential id
// every verification of its tokens scans).
const maxHostsPerIdentity = 64

// managedNameRE is Azure's rule for user-assigned identity names: 3-128 characters, letters,
// digits, "-" and "_", starting with a letter or digit.
var managedNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$`)

// managedRGRE is a resource group name (ARM's rule).
var managedRGRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)

// ManagedIdentity is a user-assigned managed identity.
type ManagedIdentity struct {
	ResourceID    string
	Name          string
	ResourceGroup string
	Location      string
	Tags          map[string]string
	TenantID      string
	PrincipalID   string // the service principal's object id
	ClientID      string // its app id
	CreatedAt     time.Time
}

type managedRecord struct {
	V             int               `json:"v"`
	Name          string            `json:"name"`
	ResourceGroup string            `json:"resourceGroup"`
	Location      string            `json:"location"`
	Tags          map[string]string `json:"tags,omitempty"`
	ObjectID      string            `json:"objectId"`
	AppID         string            `json:"appId"`
	CreatedAt     time.Time         `json:"createdAt"`
}

func (r *managedRecord) version() int { return r.V }

func managedKey(rg, name string) string {
	return prefixManaged + strings.ToLower(rg) + "/" + strings.ToLower(name)
}

// ManagedIdentityID is the ARM resource id of the identity rg/name in this deployment.
func (s *Service) ManagedIdentityID(rg, name string) string {
	return "/subscriptions/" + s.subscriptionID + "/resourceGroups/" + rg +
		"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}

func (s *Service) managed(r *managedRecord) ManagedIdentity {
	return ManagedIdentity{ResourceID: s.ManagedIdentityID(r.ResourceGroup, r.Name), Name: r.Name,
		ResourceGroup: r.ResourceGroup, Location: r.Location, Tags: maps.Clone(r.Tags), TenantID: s.tenantID,
		PrincipalID: r.ObjectID, ClientID: r.AppID, CreatedAt: r.CreatedAt}
}

// ValidateManagedIdentityName checks rg and name against Azure's rules; errors are
// *InputError (ErrInvalidInput).
func ValidateManagedIdentityName(rg, name string) error {
	if !managedRGRE.MatchString(rg) {
		return badInput("The resource group name '%s' is invalid.", echoID(rg))
	}
	if !managedNameRE.MatchString(name) {
		return badInput("The identity name '%s' is invalid: it must be 3 to 128 letters, digits, '-' or '_', starting with a letter or digit.", echoID(name))
	}
	return nil
}

// PutManagedIdentity creates the identity rg/name with its service principal, or updates the
// tags of an existing one (its location stays what it was created with, as in Azure). created
// reports which.
func (s *Service) PutManagedIdentity(ctx context.Context, rg, name, location string, tags map[string]string) (ManagedIdentity, bool, error) {
	if err := ValidateManagedIdentityName(rg, name); err != nil {
		return ManagedIdentity{}, false, err
	}
	if strings.TrimSpace(location) == "" || len(location) > 64 {
		return ManagedIdentity{}, false, badInput("The 'location' property is required and must be a short location name.")
	}
	key := managedKey(rg, name)
	for range 3 {
		sealed, err := s.st.Get(ctx, key)
		switch {
		case err == nil:
			var rec managedRecord
			if err := s.openRecord(ctx, key, sealed, &rec); err != nil {
				return ManagedIdentity{}, false, fmt.Errorf("updating managed identity: %w", err)
			}
			rec.Tags = maps.Clone(tags)
			put, err := s.putRecord(ctx, key, rec)
			if err != nil {
				return ManagedIdentity{}, false, fmt.Errorf("updating managed identity: %w", err)
			}
			err = s.apply(ctx, []store.Op{store.RequireEqual(key, sealed), put})
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return ManagedIdentity{}, false, fmt.Errorf("updating managed identity: %w", err)
			}
			return s.managed(&rec), false, nil
		case !errors.Is(err, store.ErrNotFound):
			return ManagedIdentity{}, false, fmt.Errorf("reading managed identity: %w", err)
		}
		now := s.now().UTC()
		p := principalRecord{V: recordVersion, ObjectID: uuid.NewString(), AppID: uuid.NewString(), TenantID: s.tenantID,
			Type: TypeServicePrincipal, DisplayName: name, CreatedAt: now}
		rec := managedRecord{V: recordVersion, Name: name, ResourceGroup: rg, Location: location, Tags: maps.Clone(tags),
			ObjectID: p.ObjectID, AppID: p.AppID, CreatedAt: now}
		pKey, iKey := prefixPrincipal+p.ObjectID, prefixAppIndex+p.AppID
		mOp, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return ManagedIdentity{}, false, fmt.Errorf("creating managed identity: %w", err)
		}
		pOp, err := s.putRecord(ctx, pKey, p)
		if err != nil {
			return ManagedIdentity{}, false, fmt.Errorf("creating managed identity: %w", err)
		}
		iOp, err := s.putRecord(ctx, iKey, appIndexRecord{V: recordVersion, ObjectID: p.ObjectID})
		if err != nil {
			return ManagedIdentity{}, false, fmt.Errorf("creating managed identity: %w", err)
		}
		xKey := prefixManagedIndex + p.ObjectID
		xOp, err := s.putRecord(ctx, xKey, managedIndexRecord{V: recordVersion, ResourceGroup: rg, Name: name})
		if err != nil {
			return ManagedIdentity{}, false, fmt.Errorf("creating managed identity: %w", err)
		}
		err = s.apply(ctx, []store.Op{store.RequireAbsent(key), store.RequireAbsent(pKey), store.RequireAbsent(iKey), store.RequireAbsent(xKey), mOp, pOp, iOp, xOp})
		if errors.Is(err, store.ErrConflict) {
			continue // created meanwhile: update it instead
		}
		if err != nil {
			return ManagedIdentity{}, false, fmt.Errorf("creating managed identity: %w", err)
		}
		return s.managed(&rec), true, nil
	}
	return ManagedIdentity{}, false, fmt.Errorf("writing managed identity: %w", store.ErrConflict)
}

// GetManagedIdentity returns the identity rg/name; ErrObjectNotFound when there is none.
func (s *Service) GetManagedIdentity(ctx context.Context, rg, name string) (ManagedIdentity, error) {
	_, rec, err := s.findManaged(ctx, rg, name)
	if err != nil {
		return ManagedIdentity{}, fmt.Errorf("reading managed identity: %w", err)
	}
	return s.managed(rec), nil
}

func (s *Service) findManaged(ctx context.Context, rg, name string) ([]byte, *managedRecord, error) {
	if ValidateManagedIdentityName(rg, name) != nil {
		return nil, nil, ErrObjectNotFound
	}
	key := managedKey(rg, name)
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrObjectNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	var rec managedRecord
	if err := s.openRecord(ctx, key, sealed, &rec); err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// ListManagedIdentities returns the identities of resource group rg ("" for every group),
// ordered by resource group and name.
func (s *Service) ListManagedIdentities(ctx context.Context, rg string) ([]ManagedIdentity, error) {
	prefix := prefixManaged
	if rg != "" {
		if !managedRGRE.MatchString(rg) {
			return nil, nil
		}
		prefix += strings.ToLower(rg) + "/"
	}
	var out []ManagedIdentity
	err := s.scanRecords(ctx, prefix, func() versioned { return &managedRecord{} }, func(v versioned) {
		out = append(out, s.managed(v.(*managedRecord)))
	})
	if err != nil {
		return nil, fmt.Errorf("listing managed identities: %w", err)
	}
	return out, nil
}

// DeleteManagedIdentity deletes the identity rg/name and its service principal (with their
// group memberships and directory roles) in one write: every token it holds stops verifying.
// Hosts it was assigned to drop it the next time they are written or asked for a token.
func (s *Service) DeleteManagedIdentity(ctx context.Context, rg, name string) error {
	for range 3 {
		sealed, rec, err := s.findManaged(ctx, rg, name)
		if err != nil {
			return fmt.Errorf("deleting managed identity: %w", err)
		}
		key := managedKey(rg, name)
		ops := []store.Op{store.RequireEqual(key, sealed), store.Delete(key),
			store.Delete(prefixPrincipal + rec.ObjectID), store.Delete(prefixAppIndex + rec.AppID), store.Delete(prefixManagedIndex + rec.ObjectID)}
		ops = append(ops, s.cascadeOps(rec.ObjectID)...)
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting managed identity: %w", err)
		}
		return nil
	}
	return fmt.Errorf("deleting managed identity: %w", store.ErrConflict)
}

// ManagedIdentityOf returns the managed identity whose service principal objectID is, and
// false for any other object (for callers that show servicePrincipalType "ManagedIdentity", or
// must never give one a client secret). It is one store read.
func (s *Service) ManagedIdentityOf(ctx context.Context, objectID string) (ManagedIdentity, bool) {
	id, ok := normalizeID(objectID)
	if !ok {
		return ManagedIdentity{}, false
	}
	var x managedIndexRecord
	if err := s.getRecord(ctx, prefixManagedIndex+id, &x); err != nil {
		return ManagedIdentity{}, false
	}
	_, rec, err := s.findManaged(ctx, x.ResourceGroup, x.Name)
	if err != nil || rec.ObjectID != id {
		return ManagedIdentity{}, false
	}
	return s.managed(rec), true
}

// hostCredential is the marker a host assignment leaves on the identity's principal record:
// an id tokens can carry, which can never sign in (no hash, ended when made).
func hostCredential(id, hostName string, now time.Time) secretRecord {
	return secretRecord{ID: id, CreatedAt: now, EndsAt: now, DisplayName: "host:" + hostName}
}

func hasCredential(rec *principalRecord, id string) bool {
	return slices.ContainsFunc(rec.Secrets, func(c secretRecord) bool { return c.ID == id })
}

// DeleteManagedIdentitiesIn deletes every managed identity of resource group rg (when the
// group is deleted), each with its principal.
func (s *Service) DeleteManagedIdentitiesIn(ctx context.Context, rg string) error {
	mis, err := s.ListManagedIdentities(ctx, rg)
	for _, mi := range mis {
		if err == nil {
			err = s.DeleteManagedIdentity(ctx, rg, mi.Name)
		}
	}
	return err
}
