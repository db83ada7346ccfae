package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/store"
)

// Application hosts: the machines a managed identity may act on, as Azure assigns a
// user-assigned identity to a VM. An operator registers a host by name and gets a one-time
// registration token (short-lived, single use, stored only as its SHA-256); the identity agent
// on that host redeems it once with a certificate request for a key it generated itself, and
// the server answers with a certificate naming the host, signed by the deployment's host CA.
// The server keeps only that certificate (public) and the host's assigned identities:
//
//	id/host/<lower name>  hostRecord
//	id/hostca             hostCARecord: the host CA's certificate and PKCS#8 key (sealed)
//
// The agent then proves its host on every token request with a host assertion (hostassert.go)
// signed by that key, and the server decides each mint against the host record as stored now:
// a removed host, or an identity no longer assigned to it, gets no token.

const (
	prefixHost = "id/host/"
	keyHostCA  = "id/hostca"

	// DefaultHostTokenTTL is how long a registration token lives unless the operator says.
	DefaultHostTokenTTL = time.Hour
	// MaxHostTokenTTL bounds it.
	MaxHostTokenTTL   = 24 * time.Hour
	hostTokenPrefix   = "srh1."
	hostCertLifetime  = 365 * 24 * time.Hour
	maxIdentitiesHost = 64
)

// Host errors. Callers test them with errors.Is.
var (
	// ErrHostNotFound means no host has that name (or it was removed).
	ErrHostNotFound = errors.New("host not found")
	// ErrBadRegistrationToken means a registration token is unknown, used or expired.
	ErrBadRegistrationToken = errors.New("the registration token is unknown, used or expired")
	// ErrHostCredential means a host assertion did not check out.
	ErrHostCredential = errors.New("invalid host credential")
	// ErrIdentityNotAssigned means the identity a host asked for is not assigned to it.
	ErrIdentityNotAssigned = errors.New("the identity is not assigned to this host")
	// ErrNoHostIdentity means a host asked for its identity but has none assigned.
	ErrNoHostIdentity = errors.New("no managed identity is assigned to this host")
	// ErrAmbiguousIdentity means a host with several identities asked without naming one.
	ErrAmbiguousIdentity = errors.New("several managed identities are assigned to this host: name one (client_id, object_id or mi_res_id)")
)

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Host is an application host.
type Host struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	Registered bool // its agent redeemed a registration token
	// RegisteredAt, CertificateThumbprint (SHA-256 of the DER, hex) and CertificateNotAfter
	// describe the certificate it holds, once registered.
	RegisteredAt          time.Time
	CertificateThumbprint string
	CertificateNotAfter   time.Time
	// RegistrationExpiresOn is the pending registration token's expiry, zero when none is.
	RegistrationExpiresOn time.Time
	Identities            []HostIdentity
}

// HostIdentity is a managed identity assigned to a host.
type HostIdentity struct {
	ResourceID, ResourceGroup, Name string
	PrincipalID, ClientID           string
	AssignedAt                      time.Time
}

// HostIdentitySelector names the identity a host asks for: at most one field is set (the App
// Service protocol's client_id, object_id or mi_res_id); none means the host's only identity.
type HostIdentitySelector struct {
	ClientID, ObjectID, ResourceID string
}

type hostRecord struct {
	V            int                  `json:"v"`
	ID           string               `json:"id"`
	Name         string               `json:"name"`
	CreatedAt    time.Time            `json:"createdAt"`
	TokenHash    string               `json:"tokenHash,omitempty"` // hex SHA-256 of the pending registration token
	TokenExpires time.Time            `json:"tokenExpires,omitempty"`
	CertDER      []byte               `json:"cert,omitempty"`
	RegisteredAt time.Time            `json:"registeredAt,omitempty"`
	Identities   []hostIdentityRecord `json:"identities,omitempty"`
}

type hostIdentityRecord struct {
	ResourceGroup string    `json:"resourceGroup"`
	Name          string    `json:"name"`
	ObjectID      string    `json:"objectId"`
	AppID         string    `json:"appId"`
	CredID        string    `json:"credId"` // the marker on the identity's principal (managed.go)
	AssignedAt    time.Time `json:"assignedAt"`
}

type hostCARecord struct {
	V       int    `json:"v"`
	CertDER []byte `json:"cert"`
	KeyDER  []byte `json:"key"`
}

func (r *hostRecord) version() int   { return r.V }
func (r *hostCARecord) version() int { return r.V }

func hostKey(name string) string { return prefixHost + strings.ToLower(name) }

// ValidateHostName checks a host name: 1-63 letters, digits, ".", "_" or "-", starting with a
// letter or digit (a host name, so it reads well in certificates and logs).
func ValidateHostName(name string) error {
	if !hostNameRE.MatchString(name) {
		return badInput("The host name '%s' is invalid: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit.", echoID(name))
	}
	return nil
}

func (s *Service) host(r *hostRecord) Host {
	h := Host{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, Registered: len(r.CertDER) > 0, RegisteredAt: r.RegisteredAt}
	if r.TokenHash != "" && s.now().Before(r.TokenExpires) {
		h.RegistrationExpiresOn = r.TokenExpires
	}
	if len(r.CertDER) > 0 {
		sum := sha256.Sum256(r.CertDER)
		h.CertificateThumbprint = hex.EncodeToString(sum[:])
		if c, err := x509.ParseCertificate(r.CertDER); err == nil {
			h.CertificateNotAfter = c.NotAfter
		}
	}
	h.Identities = make([]HostIdentity, 0, len(r.Identities))
	for _, i := range s.liveAssignments(r.Identities) {
		h.Identities = append(h.Identities, HostIdentity{ResourceID: s.ManagedIdentityID(i.ResourceGroup, i.Name),
			ResourceGroup: i.ResourceGroup, Name: i.Name, PrincipalID: i.ObjectID, ClientID: i.AppID, AssignedAt: i.AssignedAt})
	}
	return h
}

// RegisterHost registers the host name (or, when it exists, gives it a new pending
// registration, so a reinstalled host can register again; its assignments stay) and returns
// the one-time registration token, which lives for ttl (0: DefaultHostTokenTTL; at most
// MaxHostTokenTTL) and is stored only as its SHA-256. created reports whether the host is new.
func (s *Service) RegisterHost(ctx context.Context, name string, ttl time.Duration) (h Host, token string, created bool, err error) {
	if err := ValidateHostName(name); err != nil {
		return Host{}, "", false, err
	}
	switch {
	case ttl == 0:
		ttl = DefaultHostTokenTTL
	case ttl < time.Minute || ttl > MaxHostTokenTTL:
		return Host{}, "", false, badInput("The registration token lifetime must be between 1 minute and %s.", MaxHostTokenTTL)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Host{}, "", false, fmt.Errorf("generating registration token: %w", err)
	}
	token = hostTokenPrefix + name + "." + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	key := hostKey(name)
	for range 3 {
		sealed, rec, err := s.findHost(ctx, name)
		pre := store.RequireEqual(key, sealed)
		switch {
		case errors.Is(err, ErrHostNotFound):
			rec, pre, created = &hostRecord{V: recordVersion, ID: uuid.NewString(), Name: name, CreatedAt: s.now().UTC()}, store.RequireAbsent(key), true
		case err != nil:
			return Host{}, "", false, fmt.Errorf("registering host: %w", err)
		default:
			created = false
		}
		rec.TokenHash, rec.TokenExpires = hex.EncodeToString(sum[:]), s.now().Add(ttl).UTC().Truncate(time.Second)
		put, err := s.putRecord(ctx, key, rec)
		if err != nil {
			return Host{}, "", false, fmt.Errorf("registering host: %w", err)
		}
		err = s.apply(ctx, []store.Op{pre, put})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Host{}, "", false, fmt.Errorf("registering host: %w", err)
		}
		return s.host(rec), token, created, nil
	}
	return Host{}, "", false, fmt.Errorf("registering host: %w", store.ErrConflict)
}

// liveAssignments drops the assignments of identities deleted since (their principal is gone
// from memory, which every node keeps current).
func (s *Service) liveAssignments(as []hostIdentityRecord) []hostIdentityRecord {
	return slices.DeleteFunc(slices.Clone(as), func(a hostIdentityRecord) bool {
		_, ok := s.states.get(a.ObjectID)
		return !ok
	})
}

func (s *Service) findHost(ctx context.Context, name string) ([]byte, *hostRecord, error) {
	if ValidateHostName(name) != nil {
		return nil, nil, ErrHostNotFound
	}
	key := hostKey(name)
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrHostNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	var rec hostRecord
	if err := s.openRecord(ctx, key, sealed, &rec); err != nil {
		return nil, nil, err
	}
	return sealed, &rec, nil
}

// GetHost returns the host name; ErrHostNotFound when there is none.
func (s *Service) GetHost(ctx context.Context, name string) (Host, error) {
	_, rec, err := s.findHost(ctx, name)
	if err != nil {
		return Host{}, fmt.Errorf("reading host: %w", err)
	}
	return s.host(rec), nil
}

// ListHosts returns every host, by name.
func (s *Service) ListHosts(ctx context.Context) ([]Host, error) {
	var out []Host
	err := s.scanRecords(ctx, prefixHost, func() versioned { return &hostRecord{} }, func(v versioned) {
		out = append(out, s.host(v.(*hostRecord)))
	})
	if err != nil {
		return nil, fmt.Errorf("listing hosts: %w", err)
	}
	return out, nil
}

// RemoveHost deletes the host and, in the same write, the credentials its assignments left on
// its identities: its agent gets no further token, and the tokens it got stop verifying.
func (s *Service) RemoveHost(ctx context.Context, name string) error {
	for range 3 {
		sealed, rec, err := s.findHost(ctx, name)
		if err != nil {
			return fmt.Errorf("removing host: %w", err)
		}
		ops := []store.Op{store.RequireEqual(hostKey(name), sealed), store.Delete(hostKey(name))}
		for _, a := range rec.Identities {
			more, err := s.dropHostCredentialOps(ctx, a)
			if err != nil {
				return fmt.Errorf("removing host: %w", err)
			}
			ops = append(ops, more...)
		}
		err = s.apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("removing host: %w", err)
		}
		return nil
	}
	return fmt.Errorf("removing host: %w", store.ErrConflict)
}

// dropHostCredentialOps rewrites a's identity's principal without a's credential; nothing when
// the principal is gone (the identity was deleted).
func (s *Service) dropHostCredentialOps(ctx context.Context, a hostIdentityRecord) ([]store.Op, error) {
	pKey := prefixPrincipal + a.ObjectID
	sealed, err := s.st.Get(ctx, pKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p principalRecord
	if err := s.openRecord(ctx, pKey, sealed, &p); err != nil {
		return nil, err
	}
	p.Secrets = slices.DeleteFunc(p.Secrets, func(c secretRecord) bool { return c.ID == a.CredID })
	put, err := s.putRecord(ctx, pKey, p)
	if err != nil {
		return nil, err
	}
	return []store.Op{store.RequireEqual(pKey, sealed), put}, nil
}

// AssignHostIdentity assigns the managed identity rg/identityName to the host (a no-op when
// it already is).
func (s *Service) AssignHostIdentity(ctx context.Context, hostName, rg, identityName string) (Host, error) {
	for range 3 {
		hSealed, h, err := s.findHost(ctx, hostName)
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		mSealed, m, err := s.findManaged(ctx, rg, identityName)
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		h.Identities = s.liveAssignments(h.Identities) // an identity deleted since counts no more
		if slices.ContainsFunc(h.Identities, func(a hostIdentityRecord) bool { return a.ObjectID == m.ObjectID }) {
			return s.host(h), nil
		}
		if len(h.Identities) >= maxIdentitiesHost {
			return Host{}, conflict("The host already has %d identities, the most it may hold.", maxIdentitiesHost)
		}
		pKey := prefixPrincipal + m.ObjectID
		pSealed, err := s.st.Get(ctx, pKey)
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		var p principalRecord
		if err := s.openRecord(ctx, pKey, pSealed, &p); err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		if len(p.Secrets) >= maxHostsPerIdentity {
			return Host{}, conflict("The identity is already assigned to %d hosts, the most it may be.", maxHostsPerIdentity)
		}
		now := s.now().UTC()
		a := hostIdentityRecord{ResourceGroup: m.ResourceGroup, Name: m.Name, ObjectID: m.ObjectID, AppID: m.AppID,
			CredID: uuid.NewString(), AssignedAt: now}
		h.Identities = append(h.Identities, a)
		p.Secrets = append(p.Secrets, hostCredential(a.CredID, h.Name, now))
		hPut, err := s.putRecord(ctx, hostKey(hostName), h)
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		pPut, err := s.putRecord(ctx, pKey, p)
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		err = s.apply(ctx, []store.Op{store.RequireEqual(hostKey(hostName), hSealed), store.RequireEqual(pKey, pSealed),
			store.RequireEqual(managedKey(rg, identityName), mSealed), hPut, pPut})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Host{}, fmt.Errorf("assigning identity: %w", err)
		}
		return s.host(h), nil
	}
	return Host{}, fmt.Errorf("assigning identity: %w", store.ErrConflict)
}

// UnassignHostIdentity removes the identity rg/identityName from the host; the host gets no
// further token for it and the tokens it got through this host stop verifying. Unassigning an
// identity that is not assigned is ErrIdentityNotAssigned.
func (s *Service) UnassignHostIdentity(ctx context.Context, hostName, rg, identityName string) (Host, error) {
	for range 3 {
		hSealed, h, err := s.findHost(ctx, hostName)
		if err != nil {
			return Host{}, fmt.Errorf("unassigning identity: %w", err)
		}
		h.Identities = s.liveAssignments(h.Identities)
		i := slices.IndexFunc(h.Identities, func(a hostIdentityRecord) bool {
			return strings.EqualFold(a.ResourceGroup, rg) && strings.EqualFold(a.Name, identityName)
		})
		if i < 0 {
			return Host{}, fmt.Errorf("unassigning identity: %w", ErrIdentityNotAssigned)
		}
		a := h.Identities[i]
		h.Identities = slices.Delete(h.Identities, i, i+1)
		hPut, err := s.putRecord(ctx, hostKey(hostName), h)
		if err != nil {
			return Host{}, fmt.Errorf("unassigning identity: %w", err)
		}
		ops := []store.Op{store.RequireEqual(hostKey(hostName), hSealed), hPut}
		more, err := s.dropHostCredentialOps(ctx, a)
		if err != nil {
			return Host{}, fmt.Errorf("unassigning identity: %w", err)
		}
		err = s.apply(ctx, append(ops, more...))
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Host{}, fmt.Errorf("unassigning identity: %w", err)
		}
		return s.host(h), nil
	}
	return Host{}, fmt.Errorf("unassigning identity: %w", store.ErrConflict)
}
