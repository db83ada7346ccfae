// Package service is Strongroom's domain: resource groups, vaults, secrets, versions, soft
// delete, purge and backup. It never sees HTTP. Every exported method first passes the one
// authorization choke point, guard, which asks authz with the caller taken from the context; the
// HTTP layer audits the outcome of every request.
//
// Storage layout (all values sealed by the keyring; keys are plaintext):
//
//	arm/rg/<lower rg name>                     resource group      (system DEK)
//	arm/vault/<lower vault name>               vault, live or deleted (system DEK)
//	v/<vault id>/n/<UPPER secret name>!<ver>   one secret version with its value (vault DEK)
//	v/<vault id>/n/<UPPER secret name>!}       secret tip: 16 random bytes the head names (plaintext)
//	v/<vault id>/n/<UPPER secret name>!~       secret head: latest version, deletion (vault DEK)
//	v/<vault id>/}                             vault tip: 16 random bytes the vault record names
//	v/<vault id>/d/<UPPER secret name>         deleted-secrets index entry (plaintext, deletedindex.go)
//	sys/purge-due/<due>/s/<vault id>/<UPPER secret name>  purge-due index entry (plaintext, purgedue.go)
//	sys/purge-due/<due>/v/<vault id>/<lower vault name>   the same for a deleted vault
//
// Tips make an older copy of a head or vault record detectable (integrity.go).
//
// (Vaults created before key layouts existed keep heads at v/<id>/n/<NAME> and versions at
// v/<id>/x/<NAME>/<ver>; see LayoutSplit in secrets.go.)
//
// Secret names are case-insensitive, so their keys use the upper-cased name while the record
// keeps the caller's spelling. Purging a vault destroys its DEK and deletes its prefix.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/authz"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/rotation"
	"github.com/strongroom/strongroom/internal/store"
)

// Error kinds: the HTTP layer maps each to one status.
var (
	ErrBadRequest  = errors.New("bad request") // 400
	ErrForbidden   = errors.New("forbidden")   // 403
	ErrNotFound    = errors.New("not found")   // 404
	ErrConflict    = errors.New("conflict")    // 409
	ErrThrottled   = errors.New("throttled")   // 429
	ErrUnavailable = errors.New("unavailable") // 503
)

// Error is a domain error with the Key Vault (or ARM) code and message the client will see.
// Message never contains a secret value.
type Error struct {
	Kind    error
	Code    string
	Inner   string
	Message string
	// Target and AdditionalInfo are ARM's error target and details (a policy denial's
	// PolicyViolation).
	Target         string
	AdditionalInfo []map[string]any
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

func newErr(kind error, code, inner, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Inner: inner, Message: fmt.Sprintf(format, args...)}
}

// Caller is the authenticated principal a request acts for.
type Caller struct {
	ObjectID string
	AppID    string
	TenantID string
	Type     string
	Issuer   string // the token's iss, which access-policy denials name
	// ClientAuthenticated is true when the token's client (AppID) proved itself with a
	// credential; only then does a compound access-policy entry (an application acting for a
	// user) match, since a public client's id is anyone's to send.
	ClientAuthenticated bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller in ctx.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Decision records what guard decided, for the audit record of the request.
type Decision struct {
	Allowed bool
	// ByPolicy is true when the vault's access policies decided (isAccessPolicyMatch), false
	// when role assignments did (isRbacAuthorized).
	ByPolicy bool
	// AssignmentID is the role assignment that allowed the request, or for an access-policy
	// decision the object id of the matching entry.
	AssignmentID string
	// Policies are the policy assignments' verdicts on the write (policyenforce.go).
	Policies []PolicyOutcome
}

type decisionKey struct{}

// WithDecisionSlot returns a ctx in which guard records its decision; read it with DecisionFrom.
func WithDecisionSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, decisionKey{}, &Decision{})
}

// DecisionFrom returns the decision guard recorded, if any.
func DecisionFrom(ctx context.Context) *Decision {
	d, _ := ctx.Value(decisionKey{}).(*Decision)
	return d
}

// Options configures a Service.
type Options struct {
	SubscriptionID string
	TenantID       string
	// VaultURI returns a vault's data-plane base URL ("https://name.vault.localhost:8443").
	VaultURI func(name string) string
	// Authorizer decides with the role assignments (the rbac package's index; a fixed
	// authz.Assignments in tests). Required.
	Authorizer authz.Decider
	// Roles stores role assignments and custom roles (the Microsoft.Authorization routes); nil
	// means a store of New's own (tools and tests that decide with a fixed Authorizer).
	Roles *rbac.Service
	// GroupsOf returns a principal's groups, transitively (the directory); nil means none.
	GroupsOf func(objectID string) []string
	// PrincipalTypes checks role assignments' principals against the directory; nil trusts
	// the request.
	PrincipalTypes PrincipalTypes
	// DeleteIdentitiesIn deletes a resource group's managed identities (the directory keeps
	// them) when the group is deleted; nil: there are none to delete.
	DeleteIdentitiesIn func(ctx context.Context, resourceGroup string) error
	// Now is the clock; nil means time.Now. Tests inject it to move past retention periods.
	Now func() time.Time
	// Erased is called after a purge freed storage that held ciphertext, so the store can erase
	// the freed pages (secure deletion); nil does nothing.
	Erased func()
	// Background bounds background jobs (rewrap); it ends when the server seals or stops.
	Background context.Context
	// KeysApplied, if set, also receives every KeysApplied call (the identity service keeps its
	// principal states and signing keys current with it).
	KeysApplied func(ctx context.Context, keys []string) error
	// Log receives failed integrity checks (names and reasons, never values); nil means
	// slog.Default().
	Log *slog.Logger
	// Leads, if set, reports whether this node leads its cluster; RunPurger then passes only
	// while it does, so one node purges instead of every node racing to (the guarded batches
	// keep racing nodes correct, but each loser's batch is a wasted proposal). nil: always.
	Leads func() bool
	// Rotators are the secret rotators by kind (webhook, postgres); generate is built in.
	Rotators map[string]rotation.Rotator
	// RotationLimits lowers the floors of rotation policies (a dev profile); nil: Key Vault's.
	RotationLimits *rotation.Limits
	// RotationRetryBase is the wait after a rotation step's first failure (10 s when zero).
	RotationRetryBase time.Duration
	// RotationStepDone, if set, is called after each rotation step is recorded (pending,
	// applied, tested, committed): a test hook (the crash tests kill the server there).
	RotationStepDone func(step string)
	// RotationFailed, if set, hears of each failed rotation step (the alert engine); msg
	// holds no value.
	RotationFailed func(vault, secret, rotationID, step, msg string)
}

// Service is safe for concurrent use.
type Service struct {
	st   store.Store
	kr   *keyring.Keyring
	opts Options

	vaultMu   sync.RWMutex
	vaults    map[string]*Vault // lower name -> live or deleted vault, the cache of arm/vault/*
	rewrapMu  sync.Mutex
	rewrapJob RewrapJob
	// vaultWrite serializes vault mutations so the cache and the store agree; vault changes are
	// rare, secret writes never take it.
	vaultWrite sync.Mutex
	// alerts holds the alert rules and honeytokens in memory (alerts.go).
	alerts alertState
	// events holds which vaults have event subscriptions (events.go).
	events eventState
	// rotation holds which vaults have rotation policies (rotation.go).
	rotation rotationState
	// policies holds the policy definitions, assignments and exemptions (policies.go).
	policies policyState
}

// New loads the vault cache and returns a Service.
func New(ctx context.Context, st store.Store, kr *keyring.Keyring, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Roles == nil {
		roles, err := rbac.New(ctx, st, kr, rbac.Options{Now: opts.Now})
		if err != nil {
			return nil, err
		}
		opts.Roles = roles
	}
	s := &Service{st: st, kr: kr, opts: opts, vaults: map[string]*Vault{}}
	var loadErr error
	raws := map[string][]byte{}
	err := st.Scan(ctx, vaultPrefix, "", func(key string, raw []byte) bool {
		var v Vault
		if loadErr = s.open(ctx, keyring.SystemKeyID, key, raw, &v); loadErr != nil {
			return false
		}
		v.resourceID = s.rgID(v.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + v.Name
		v.auditID = strings.ToUpper(v.resourceID)
		v.loaded()
		v.prepare()
		s.vaults[key[len(vaultPrefix):]] = &v
		raws[key] = raw
		return true
	})
	if err == nil {
		err = loadErr
	}
	for name, v := range s.vaults { // checked at first use, not here (vaultintegrity.go)
		v.check = pendingCheck(vaultPrefix+name, raws[vaultPrefix+name])
	}
	if err != nil {
		return nil, fmt.Errorf("loading vaults: %w", err)
	}
	return s, nil
}

// guard is the single authorization choke point: every exported method calls it first.
func (s *Service) guard(ctx context.Context, action string, data bool, scope string) error {
	c, ok := CallerFrom(ctx)
	if !ok {
		return newErr(ErrForbidden, "Forbidden", "AccessDenied", "request has no authenticated caller")
	}
	req := authz.Request{PrincipalID: c.ObjectID, Groups: s.groupsOf(c.ObjectID), Action: authz.Action(action), DataAction: data, Scope: scope}
	return s.decide(ctx, c, req)
}

// guardData authorizes a data-plane action on vault v at scope: by the vault's access
// policies when it uses them (enableRbacAuthorization false), otherwise by role assignments.
func (s *Service) guardData(ctx context.Context, v *Vault, action, scope string) error {
	return s.guardDataAs(ctx, v, action, "", scope)
}

// guardDataAs is guardData with the access-policy permission given (policyPerm) rather than
// the one action maps to, for the operations whose two differ; "" means the mapped one.
func (s *Service) guardDataAs(ctx context.Context, v *Vault, action, policyPerm, scope string) error {
	c, ok := CallerFrom(ctx)
	if !ok {
		return newErr(ErrForbidden, "Forbidden", "AccessDenied", "request has no authenticated caller")
	}
	groups := s.groupsOf(c.ObjectID)
	if !v.usesAccessPolicies() {
		return s.decide(ctx, c, authz.Request{PrincipalID: c.ObjectID, Groups: groups, Action: authz.Action(action), DataAction: true, Scope: scope})
	}
	perm := policyPerm
	if perm == "" {
		perm, _ = authz.PolicyPermission(action)
	}
	principals := append(make([]string, 0, len(groups)+1), c.ObjectID)
	principals = append(principals, groups...)
	app := ""
	if c.ClientAuthenticated {
		app = c.AppID
	}
	matched, allowed := authz.PolicyAllowsApp(v.PolicyEntries(), principals, app, perm)
	if slot := DecisionFrom(ctx); slot != nil {
		slot.Allowed, slot.ByPolicy, slot.AssignmentID = allowed, true, matched
	}
	if allowed {
		return nil
	}
	return newErr(ErrForbidden, "Forbidden", authz.PolicyDenialInnerCode, "%s",
		authz.PolicyDenialMessage(c.AppID, c.ObjectID, c.Issuer, perm, v.Name, v.Location))
}

// groupsOf returns the caller's groups from the directory.
func (s *Service) groupsOf(objectID string) []string {
	if s.opts.GroupsOf == nil {
		return nil
	}
	return s.opts.GroupsOf(objectID)
}

// decide asks the authorizer, records the decision for the audit record and answers a denial
// in Key Vault's or ARM's words.
func (s *Service) decide(ctx context.Context, c Caller, req authz.Request) error {
	action, data, scope := string(req.Action), req.DataAction, req.Scope
	d := s.opts.Authorizer.Decide(req)
	if slot := DecisionFrom(ctx); slot != nil {
		slot.Allowed, slot.AssignmentID = d.Allowed, d.AssignmentID
	}
	if d.Allowed {
		return nil
	}
	if data {
		return newErr(ErrForbidden, "Forbidden", "ForbiddenByRbac",
			"Caller is not authorized to perform action on resource.\r\nCaller: appid=%s;oid=%s\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\nDecisionReason: '%s'",
			c.AppID, c.ObjectID, action, scope, d.Reason)
	}
	return newErr(ErrForbidden, "AuthorizationFailed", "",
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid.",
		c.AppID, c.ObjectID, action, scope)
}

func (s *Service) now() time.Time { return s.opts.Now() }

// seal marshals v and seals it for key under keyID.
func (s *Service) seal(ctx context.Context, keyID, key string, v any) ([]byte, error) {
	var b []byte
	if br, ok := v.(binaryRecord); ok {
		b = br.appendRecord(make([]byte, 0, 256))
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", key, err)
		}
	}
	out, err := s.kr.Seal(ctx, keyID, key, b)
	clear(b)
	return out, err
}

// open opens a sealed record into v.
func (s *Service) open(ctx context.Context, keyID, key string, raw []byte, v any) error {
	b, err := s.kr.Open(ctx, keyID, key, raw)
	if err != nil {
		return err
	}
	if bd, ok := v.(binaryDecoder); ok && len(b) > 0 && (b[0] == recordBinaryV1 || b[0] == recordBinaryV2) {
		err = bd.decodeRecord(b)
	} else {
		err = json.Unmarshal(b, v) // other record types, and secret records written before v1
	}
	clear(b)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	return nil
}

// get reads and opens key into v; found is false when the key is absent. raw is the sealed
// bytes, usable as a compare-and-set token.
func (s *Service) get(ctx context.Context, keyID, key string, v any) (raw []byte, found bool, err error) {
	raw, err = s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := s.open(ctx, keyID, key, raw, v); err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

// apply writes ops; a precondition failure becomes errRetry so callers re-read and try again.
func (s *Service) apply(ctx context.Context, ops []store.Op) error {
	err := s.st.Apply(ctx, ops)
	if errors.Is(err, store.ErrConflict) {
		return errRetry
	}
	if err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	return nil
}

var errRetry = errors.New("concurrent change, retry")

// retry runs fn until it stops returning errRetry (optimistic concurrency on compare-and-set
// preconditions, which also holds when the store is replicated).
func retry(fn func() error) error {
	for range 50 {
		if err := fn(); !errors.Is(err, errRetry) {
			return err
		}
	}
	return newErr(ErrConflict, "Conflict", "", "too many concurrent changes to the same object; retry later")
}

// newVersion returns a 32-hex version id: 48 bits of milliseconds since the epoch, then 80
// random bits. Ids of one secret therefore sort by creation time, which puts a new version's
// record next to its head under the co-located layout (see secrets.go); the time is also in
// the version's "created" attribute, so the id reveals nothing new.
func newVersion(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the kernel RNG does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// newVaultID returns a vault's internal id: 64 random bits in hex. It prefixes every key of the
// vault's secrets, where a short id keeps B+tree branches wide (vaults made earlier have UUIDs).
func newVaultID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// KeysApplied tells the service that a replicated store applied writes to keys on this node
// (the Raft FSM calls it), so cached vault records stay current on every node.
func (s *Service) KeysApplied(ctx context.Context, keys []string) error {
	if slices.Contains(keys, keyring.RingKey) { // first: the records below may need its new terms
		if err := s.kr.Reload(ctx); err != nil {
			return fmt.Errorf("reloading keyring: %w", err)
		}
	}
	var idErr error
	if s.opts.KeysApplied != nil {
		if err := s.opts.KeysApplied(ctx, keys); err != nil {
			idErr = fmt.Errorf("refreshing identities: %w", err) // the vault caches still refresh
		}
	}
	s.alertKeysApplied(ctx, keys) // before the vaults: a failure there returns early
	s.eventKeysApplied(ctx, keys)
	s.rotationKeysApplied(keys)
	s.policyKeysApplied(keys)
	for _, k := range keys {
		name, ok := strings.CutPrefix(k, vaultPrefix)
		if !ok {
			continue
		}
		var v Vault
		raw, found, err := s.get(ctx, keyring.SystemKeyID, k, &v)
		if err == nil && found {
			err = s.checkVault(ctx, k, raw, &v)
		}
		if err != nil {
			return fmt.Errorf("reloading vault %s: %w", name, err)
		}
		s.vaultMu.Lock()
		if found {
			v.resourceID = s.rgID(v.ResourceGroup) + "/providers/Microsoft.KeyVault/vaults/" + v.Name
			v.auditID = strings.ToUpper(v.resourceID)
			v.loaded()
			v.prepare()
			s.vaults[name] = &v
		} else {
			delete(s.vaults, name)
		}
		s.vaultMu.Unlock()
	}
	return idErr
}

func (s *Service) erased() {
	if s.opts.Erased != nil {
		s.opts.Erased()
	}
}

// usesAccessPolicies reports whether the vault's data plane is authorized by its access
// policies (enableRbacAuthorization false) rather than by role assignments.
func (v *Vault) usesAccessPolicies() bool {
	p := v.Properties.EnableRbacAuthorization
	return p != nil && !*p
}

// Intent is the audit record a request must make durable before any change it causes commits;
// the store calls it before every batch (store.RecordIntent).
type Intent = store.Intent

// WithIntent returns ctx carrying the request's intent.
func WithIntent(ctx context.Context, in Intent) context.Context { return store.WithIntent(ctx, in) }
