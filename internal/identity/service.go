package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrInvalidClient means the client id or secret did not check out.
	ErrInvalidClient = errors.New("invalid client")
	// ErrUnknownClient means no principal has that client (app) id. It wraps ErrInvalidClient, so
	// callers that do not care about the difference can test for that alone.
	ErrUnknownClient = fmt.Errorf("%w: unknown client id", ErrInvalidClient)
	// ErrInvalidScope means a token request's scope does not name exactly one resource with
	// the "/.default" suffix client-credential flows require.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidToken means a bearer token failed verification; the wrapping error says why.
	ErrInvalidToken = errors.New("invalid token")
	// ErrPrincipalNotFound means no principal has that object or app id.
	ErrPrincipalNotFound = errors.New("principal not found")
	// ErrUnknownTenant means a tenant id or alias does not name this deployment's tenant.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrInvalidDisplayName means a display name is empty, too long or has control characters.
	ErrInvalidDisplayName = errors.New("invalid display name")
	// ErrPrincipalDisabled means the client's secret was right but its principal is disabled.
	ErrPrincipalDisabled = errors.New("principal disabled")
	// ErrSecretNotFound means a principal has no client secret with that key id.
	ErrSecretNotFound = errors.New("client secret not found")
	// ErrManagedIdentitySecret means a secret was asked for a managed identity, which never
	// holds one (its tokens come through an identity agent on a host it is assigned to).
	ErrManagedIdentitySecret = errors.New("a managed identity holds no client secret")
	// ErrTooManySecrets means a principal already holds maxSecrets client secrets.
	ErrTooManySecrets = errors.New("too many client secrets")
	// ErrProtectedPrincipal means the change would leave the deployment without a usable
	// bootstrap admin (disabling or deleting it, or removing its last secret).
	ErrProtectedPrincipal = errors.New("the bootstrap admin cannot be disabled, deleted or left without a secret")
)

// Principal type names, as Entra spells them.
const (
	TypeServicePrincipal = "ServicePrincipal"
)

// adminDisplayName names the bootstrap admin service principal.
const adminDisplayName = "strongroom-admin"

// Storage keys; see the package documentation.
const (
	keyDeployment      = "id/deployment"
	keyAdmin           = "id/admin"
	prefixSigningKey   = "id/signkey/"
	prefixPrincipal    = "id/principal/"
	prefixAppIndex     = "id/appid/"
	recordVersion      = 1
	defaultLifetime    = time.Hour
	maxTenantEchoBytes = 64
)

// Options configures a Service.
type Options struct {
	// PublicURL is the scheme://host[:port] clients reach Strongroom at, e.g.
	// "https://localhost:8443". Required. A trailing "/" is ignored. Token issuers are
	// PublicURL + "/" + tenant + "/v2.0".
	PublicURL string
	// DNSSuffix is the data plane's DNS suffix ("vault.localhost"): the token endpoint serves
	// "https://<DNSSuffix>[:port]" as a resource. Default: "vault." + PublicURL's host name
	// (the server's default), and "vault.localhost".
	DNSSuffix string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// TokenLifetime is how long minted access tokens live. Default: 1h.
	TokenLifetime time.Duration
	// Erased is called after a write destroyed credential material (a deleted principal, a
	// removed client secret, a dropped signing key), so the store can erase the freed pages
	// that still hold it (see docs/security-model.md). Nil: nothing is called.
	Erased func()
	// RefreshTokenMaxInactive is how long a refresh token family lives without a redemption.
	// Default: DefaultRefreshTokenMaxInactive (90 days, Entra's default); negative: no limit.
	RefreshTokenMaxInactive time.Duration
	// RefreshTokenMaxAge is how long a family lives from its sign-in however often it is
	// redeemed. Default: 0, no limit (Entra's default "until-revoked").
	RefreshTokenMaxAge time.Duration

	// kdf overrides the secret-hashing cost; zero means defaultKDF. Only tests set it, through
	// export_test.go, as they do hashQueue (waiters per hash slot) and hashWait.
	kdf       kdfParams
	hashQueue int
	hashWait  time.Duration
}

// Service is the directory and token authority. It is safe for concurrent use.
type Service struct {
	st        store.Store
	kr        *keyring.Keyring
	publicURL string
	dnsSuffix []string // lower-case data-plane suffixes served as token resources
	now       func() time.Time
	lifetime  time.Duration
	kdf       kdfParams

	refreshInactive, refreshMaxAge time.Duration // refresh.go; 0: no limit

	// The bounded hash queue (secret.go) and a count of hashes run, for tests and benchmarks.
	hashSlots   chan struct{}
	hashQueue   int
	hashWait    time.Duration
	hashWaiting atomic.Int64
	hashes      atomic.Uint64

	// Sign-in failure limits (lockout.go), per client id and per source network.
	clientFails *failureLimiter
	sourceFails *failureLimiter
	pairFails   *failureLimiter // failures of familiar pairs (familiar.go)
	familiar    *familiarPairs

	// Fixed after New.
	tenantID       string
	subscriptionID string

	// keys are the signing keys (signkey.go), replaced whole on rotation; states is what
	// verification needs to know of each principal (state.go). Both are reloaded from the store
	// by KeysApplied on every node, under refreshMu.
	keys      atomic.Pointer[keySet]
	states    principalStates
	dir       *dirState
	refreshMu sync.Mutex

	admin  atomic.Pointer[adminRecord]
	cache  *verifyCache
	erased func() // Options.Erased
}

// Bootstrap is what a deployment's first start hands to the operator.
type Bootstrap struct {
	TenantID       string
	SubscriptionID string
	ClientID       string
	// ClientSecret is set only when EnsureBootstrap just created the admin principal; it is
	// never stored and cannot be recovered later.
	ClientSecret string
	ObjectID     string
}

type deploymentRecord struct {
	V              int       `json:"v"`
	TenantID       string    `json:"tenantId"`
	SubscriptionID string    `json:"subscriptionId"`
	SigningKeyID   string    `json:"signingKeyId"`
	CreatedAt      time.Time `json:"createdAt"`
}

type adminRecord struct {
	V        int    `json:"v"`
	ObjectID string `json:"objectId"`
	AppID    string `json:"appId"`
}

// New loads the deployment (tenant, subscription, signing keys) from st, creating it on first
// use. Two servers racing to create it on one store agree on the winner's records.
func New(ctx context.Context, st store.Store, kr *keyring.Keyring, opts Options) (*Service, error) {
	pub, err := normalizePublicURL(opts.PublicURL)
	if err != nil {
		return nil, err
	}
	s := &Service{
		st:        st,
		kr:        kr,
		publicURL: pub,
		now:       opts.Now,
		lifetime:  opts.TokenLifetime,
		erased:    opts.Erased,
		kdf:       opts.kdf,
		hashQueue: opts.hashQueue,
		hashWait:  opts.hashWait,
		cache:     newVerifyCache(defaultCacheEntries),
		dir:       newDirState(),

		clientFails: newFailureLimiter(ClientFailureLimit, FailureWindow, LockoutDuration, maxFailureEntries),
		sourceFails: newFailureLimiter(IPFailureLimit, FailureWindow, LockoutDuration, maxFailureEntries),
		pairFails:   newFailureLimiter(ClientFailureLimit, FailureWindow, LockoutDuration, maxFailureEntries),
		familiar:    newFamiliarPairs(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.DNSSuffix != "" {
		s.dnsSuffix = []string{strings.ToLower(strings.TrimSuffix(opts.DNSSuffix, "."))}
	} else {
		u, _ := url.Parse(pub)
		s.dnsSuffix = []string{"vault." + strings.ToLower(u.Hostname()), "vault.localhost"}
	}
	if s.lifetime <= 0 {
		s.lifetime = defaultLifetime
	}
	switch s.refreshInactive, s.refreshMaxAge = opts.RefreshTokenMaxInactive, max(opts.RefreshTokenMaxAge, 0); {
	case s.refreshInactive == 0:
		s.refreshInactive = DefaultRefreshTokenMaxInactive
	case s.refreshInactive < 0:
		s.refreshInactive = 0
	}
	if s.kdf == (kdfParams{}) {
		s.kdf = defaultKDF
	}
	s.hashSlots = make(chan struct{}, hashConcurrency())
	if s.hashQueue <= 0 {
		s.hashQueue = hashQueuePerSlot * cap(s.hashSlots)
	}
	if s.hashWait <= 0 {
		s.hashWait = hashWait
	}

	dep, err := s.loadOrCreateDeployment(ctx)
	if err != nil {
		return nil, err
	}
	s.tenantID, s.subscriptionID = dep.TenantID, dep.SubscriptionID
	if err := s.loadSigningKeys(ctx, dep.SigningKeyID); err != nil {
		return nil, err
	}
	if err := s.loadPrincipalStates(ctx); err != nil {
		return nil, err
	}
	var adm adminRecord
	switch err := s.getRecord(ctx, keyAdmin, &adm); {
	case err == nil:
		s.admin.Store(&adm)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("loading admin principal: %w", err)
	}
	return s, nil
}

func normalizePublicURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return "", fmt.Errorf("parsing public url: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("parsing public url %q: want scheme://host[:port]", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func (s *Service) loadOrCreateDeployment(ctx context.Context) (deploymentRecord, error) {
	for range 2 {
		var dep deploymentRecord
		err := s.getRecord(ctx, keyDeployment, &dep)
		if err == nil {
			return dep, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return dep, fmt.Errorf("loading deployment: %w", err)
		}
		key, err := generateSigningKey()
		if err != nil {
			return dep, err
		}
		dep = deploymentRecord{
			V:              recordVersion,
			TenantID:       uuid.NewString(),
			SubscriptionID: uuid.NewString(),
			SigningKeyID:   key.kid,
			CreatedAt:      s.now().UTC(),
		}
		depOp, err := s.putRecord(ctx, keyDeployment, dep)
		if err != nil {
			return dep, err
		}
		keyOp, err := s.putSigningKey(ctx, key)
		if err != nil {
			return dep, err
		}
		err = s.st.Apply(ctx, []store.Op{store.RequireAbsent(keyDeployment), depOp, keyOp})
		if err == nil {
			return dep, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return dep, fmt.Errorf("creating deployment: %w", err)
		}
		// Another server created it first; load theirs.
	}
	return deploymentRecord{}, fmt.Errorf("creating deployment: %w", store.ErrConflict)
}

// EnsureBootstrap creates the bootstrap admin service principal ("strongroom-admin") on its
// first call and returns it with its plaintext secret and created=true. Later calls (also after
// a restart) return created=false and no secret. The tenant and subscription ids already exist:
// New creates them.
func (s *Service) EnsureBootstrap(ctx context.Context) (Bootstrap, bool, error) {
	b := Bootstrap{TenantID: s.tenantID, SubscriptionID: s.subscriptionID}
	for range 2 {
		if adm := s.admin.Load(); adm != nil {
			b.ClientID, b.ObjectID = adm.AppID, adm.ObjectID
			return b, false, nil
		}
		var adm adminRecord
		err := s.getRecord(ctx, keyAdmin, &adm)
		if err == nil {
			s.admin.Store(&adm)
			b.ClientID, b.ObjectID = adm.AppID, adm.ObjectID
			return b, false, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Bootstrap{}, false, fmt.Errorf("loading admin principal: %w", err)
		}
		p, secret, ops, err := s.newServicePrincipal(ctx, adminDisplayName)
		if err != nil {
			return Bootstrap{}, false, fmt.Errorf("creating admin principal: %w", err)
		}
		adm = adminRecord{V: recordVersion, ObjectID: p.ObjectID, AppID: p.AppID}
		admOp, err := s.putRecord(ctx, keyAdmin, adm)
		if err != nil {
			return Bootstrap{}, false, fmt.Errorf("creating admin principal: %w", err)
		}
		ops = append([]store.Op{store.RequireAbsent(keyAdmin), admOp}, ops...)
		err = s.st.Apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue // another server bootstrapped first
		}
		if err != nil {
			return Bootstrap{}, false, fmt.Errorf("creating admin principal: %w", err)
		}
		s.admin.Store(&adm)
		if err := s.refreshPrincipal(ctx, adm.ObjectID); err != nil {
			return Bootstrap{}, false, fmt.Errorf("creating admin principal: %w", err)
		}
		b.ClientID, b.ObjectID, b.ClientSecret = adm.AppID, adm.ObjectID, secret
		return b, true, nil
	}
	return Bootstrap{}, false, fmt.Errorf("creating admin principal: %w", store.ErrConflict)
}

// TenantID returns the deployment's tenant id (a lowercase GUID).
func (s *Service) TenantID() string { return s.tenantID }

// SubscriptionID returns the deployment's subscription id (a lowercase GUID).
func (s *Service) SubscriptionID() string { return s.subscriptionID }

// AdminObjectID returns the bootstrap admin's object id, or "" before EnsureBootstrap ran.
func (s *Service) AdminObjectID() string {
	if adm := s.admin.Load(); adm != nil {
		return adm.ObjectID
	}
	return ""
}

// PublicURL returns the normalized public URL (no trailing "/").
func (s *Service) PublicURL() string { return s.publicURL }

// ResolveTenant maps a tenant path segment to the deployment's tenant id. "" (the ADFS
// endpoints carry no tenant), "organizations", "common" and the tenant id itself (in any case)
// resolve; anything else is ErrUnknownTenant.
func (s *Service) ResolveTenant(tenant string) (string, error) {
	switch {
	case tenant == "", strings.EqualFold(tenant, "organizations"), strings.EqualFold(tenant, "common"),
		strings.EqualFold(tenant, s.tenantID):
		return s.tenantID, nil
	}
	if len(tenant) > maxTenantEchoBytes {
		tenant = tenant[:maxTenantEchoBytes] + "..."
	}
	return "", fmt.Errorf("resolving tenant %q: %w", tenant, ErrUnknownTenant)
}

// Issuer returns the token issuer for a tenant segment: PublicURL + "/" + tenantID + "/v2.0".
// Aliases ("", "organizations", "common") give the real tenant's issuer; an unknown tenant
// gives an issuer no token of ours carries.
func (s *Service) Issuer(tenant string) string {
	if tid, err := s.ResolveTenant(tenant); err == nil {
		tenant = tid
	}
	return s.publicURL + "/" + tenant + "/v2.0"
}

// putRecord seals v as JSON for storage at key and returns the Put op.
func (s *Service) putRecord(ctx context.Context, key string, v any) (store.Op, error) {
	pt, err := json.Marshal(v)
	if err != nil {
		return store.Op{}, fmt.Errorf("encoding %s: %w", key, err)
	}
	sealed, err := s.kr.Seal(ctx, keyring.SystemKeyID, key, pt)
	clear(pt)
	if err != nil {
		return store.Op{}, fmt.Errorf("sealing %s: %w", key, err)
	}
	return store.Put(key, sealed), nil
}

// getRecord reads, opens and decodes the record at key into v, which must have a V field.
// A missing record is store.ErrNotFound.
func (s *Service) getRecord(ctx context.Context, key string, v versioned) error {
	sealed, err := s.st.Get(ctx, key)
	if err != nil {
		return err
	}
	return s.openRecord(ctx, key, sealed, v)
}

func (s *Service) openRecord(ctx context.Context, key string, sealed []byte, v versioned) error {
	pt, err := s.kr.Open(ctx, keyring.SystemKeyID, key, sealed)
	if err != nil {
		return err
	}
	err = json.Unmarshal(pt, v)
	clear(pt)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	if got := v.version(); got != recordVersion {
		return fmt.Errorf("decoding %s: unsupported record version %d (this build reads %d)", key, got, recordVersion)
	}
	return nil
}

type versioned interface{ version() int }

func (r *deploymentRecord) version() int { return r.V }
func (r *adminRecord) version() int      { return r.V }

// erase reports a destroying write (Options.Erased).
func (s *Service) erase() {
	if s.erased != nil {
		s.erased()
	}
}
