package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// The device authorization grant (RFC 8628), as Entra serves it: a client asks for a device
// code and a user code, the user signs in at our origin (UPN and password, with the password
// grant's checks and failure limits) and enters the user code, and the client polls the token
// endpoint until it gets a user token. Pending flows are store records, so any node of a
// cluster can answer a poll or a sign-in; a flow is used once.

const (
	prefixDeviceCode = "id/devicecode/" // + hex SHA-256 of the device code
	prefixUserCode   = "id/usercode/"   // + the user code
	deviceCodeTTL    = 15 * time.Minute // Entra: 900 s
	// DevicePollInterval is the interval clients are told to poll at; faster polls get slow_down.
	DevicePollInterval = 5 * time.Second
	userCodeLen        = 9
	// maxPendingDeviceCodes bounds pending flows; past it new ones are refused until some expire.
	maxPendingDeviceCodes = 10_000
)

// userCodeAlphabet has no characters that read alike (0/O, 1/I/L).
const userCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// Device code errors, named as the token endpoint answers them.
var (
	// ErrAuthorizationPending: the user has not finished signing in yet.
	ErrAuthorizationPending = errors.New("authorization_pending")
	// ErrSlowDown: the client polled faster than the interval.
	ErrSlowDown = errors.New("slow_down")
	// ErrExpiredToken: the device code expired (or was already used).
	ErrExpiredToken = errors.New("expired_token")
	// ErrAccessDenied: the user declined.
	ErrAccessDenied = errors.New("access_denied")
	// ErrBadVerificationCode: no pending flow has that device or user code, or it belongs to
	// another client.
	ErrBadVerificationCode = errors.New("bad_verification_code")
	// ErrTooManyPending: too many flows are pending.
	ErrTooManyPending = errors.New("too many pending device code flows")
)

type deviceCodeRecord struct {
	V         int       `json:"v"`
	Hash      string    `json:"hash"` // its key's: hex SHA-256 of the device code
	ClientID  string    `json:"clientId"`
	Audience  string    `json:"aud"`
	Scp       string    `json:"scp"`
	UserCode  string    `json:"userCode"`
	ExpiresAt time.Time `json:"expiresAt"`
	Status    string    `json:"status"` // "pending", "approved", "denied"
	UserID    string    `json:"userId,omitempty"`
	OIDC      string    `json:"oidc,omitempty"` // the OIDC scopes asked for (openid, offline_access)
}

type userCodeRecord struct {
	V          int    `json:"v"`
	DeviceHash string `json:"deviceHash"`
}

func (r *deviceCodeRecord) version() int { return r.V }
func (r *userCodeRecord) version() int   { return r.V }

// DeviceCode is a started device authorization.
type DeviceCode struct {
	DeviceCode string // secret to the client; only its hash is stored
	UserCode   string
	ExpiresIn  int // seconds
	Interval   int // seconds
}

// StartDeviceCode begins a device authorization for a public client (any GUID, as for the
// password grant) and a delegated scope. Errors: ErrUnknownTenant, ErrInvalidScope,
// ErrUnknownResource, ErrUnknownClient, ErrTooManyPending, or a storage error.
func (s *Service) StartDeviceCode(ctx context.Context, tenant, clientID, scope, remoteIP string) (DeviceCode, error) {
	if _, err := s.ResolveTenant(tenant); err != nil {
		return DeviceCode{}, err
	}
	aud, scp, err := s.servedUserAudience(scope)
	if err != nil {
		return DeviceCode{}, err
	}
	cid, ok := objectID(strings.ToLower(clientID))
	if !ok {
		return DeviceCode{}, fmt.Errorf("starting device code: %w", ErrUnknownClient)
	}
	// Anyone may start a flow (as at Entra), so starts are limited per source network and
	// the pending ones are bounded.
	now := s.now()
	if src := sourceKey(remoteIP); src != "" {
		if d := deviceStarts(s).lockedFor(src, now); d > 0 {
			return DeviceCode{}, &LockoutError{RetryAfter: d, BySource: true}
		}
		deviceStarts(s).fail(src, now)
	}
	if err := s.sweepDeviceCodes(ctx); err != nil {
		return DeviceCode{}, err
	}
	for range 3 {
		dc := make([]byte, 32)
		if _, err := rand.Read(dc); err != nil {
			return DeviceCode{}, err
		}
		device := base64.RawURLEncoding.EncodeToString(dc)
		user, err := newUserCode()
		if err != nil {
			return DeviceCode{}, err
		}
		hash := deviceHash(device)
		rec := deviceCodeRecord{V: recordVersion, Hash: hash, ClientID: cid, Audience: aud, Scp: scp, UserCode: user,
			ExpiresAt: s.now().Add(deviceCodeTTL).UTC(), Status: "pending", OIDC: oidcOf(scope).String()}
		dKey, uKey := prefixDeviceCode+hash, prefixUserCode+user
		dOp, err := s.putRecord(ctx, dKey, rec)
		if err != nil {
			return DeviceCode{}, err
		}
		uOp, err := s.putRecord(ctx, uKey, userCodeRecord{V: recordVersion, DeviceHash: hash})
		if err != nil {
			return DeviceCode{}, err
		}
		err = s.st.Apply(ctx, []store.Op{store.RequireAbsent(dKey), store.RequireAbsent(uKey), dOp, uOp})
		if errors.Is(err, store.ErrConflict) {
			continue // a user code collision: draw again
		}
		if err != nil {
			return DeviceCode{}, fmt.Errorf("starting device code: %w", err)
		}
		return DeviceCode{DeviceCode: device, UserCode: user, ExpiresIn: int(deviceCodeTTL / time.Second),
			Interval: int(DevicePollInterval / time.Second)}, nil
	}
	return DeviceCode{}, fmt.Errorf("starting device code: %w", store.ErrConflict)
}

// deviceStartsPerSource bounds the flows one network may start in deviceCodeTTL.
const deviceStartsPerSource = 30

var deviceStartLimits sync.Map // *Service -> *failureLimiter

func deviceStarts(s *Service) *failureLimiter {
	v, _ := deviceStartLimits.LoadOrStore(s, newFailureLimiter(deviceStartsPerSource, deviceCodeTTL, deviceCodeTTL, maxFailureEntries))
	return v.(*failureLimiter)
}

// sweepDeviceCodes refuses a new flow past maxPendingDeviceCodes, after deleting expired ones.
// Counting reads keys only; flows are opened only when the count is near the bound.
func (s *Service) sweepDeviceCodes(ctx context.Context) error {
	n := 0
	if err := s.st.Scan(ctx, prefixDeviceCode, "", func(string, []byte) bool { n++; return true }); err != nil {
		return fmt.Errorf("counting device codes: %w", err)
	}
	if n < maxPendingDeviceCodes/2 {
		return nil
	}
	now := s.now()
	var ops []store.Op
	n = 0
	err := s.scanRecords(ctx, prefixDeviceCode, func() versioned { return &deviceCodeRecord{} }, func(v versioned) {
		r := v.(*deviceCodeRecord)
		if now.After(r.ExpiresAt) {
			ops = append(ops, store.Delete(prefixDeviceCode+r.Hash), store.Delete(prefixUserCode+r.UserCode))
			return
		}
		n++
	})
	if err != nil {
		return fmt.Errorf("sweeping device codes: %w", err)
	}
	if len(ops) > 0 {
		if err := s.st.Apply(ctx, ops); err != nil {
			return fmt.Errorf("sweeping device codes: %w", err)
		}
	}
	if n >= maxPendingDeviceCodes {
		return ErrTooManyPending
	}
	return nil
}

func deviceHash(device string) string {
	sum := sha256.Sum256([]byte(device))
	return hex.EncodeToString(sum[:])
}

func newUserCode() (string, error) {
	b := make([]byte, userCodeLen)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b), nil
}

// normalizeUserCode accepts a user code as people type it: any case, spaces and dashes.
func normalizeUserCode(code string) (string, bool) {
	code = strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(code))
	if len(code) != userCodeLen || strings.Trim(code, userCodeAlphabet) != "" {
		return "", false
	}
	return code, true
}

// DeviceSignIn is a user's answer to a device code at the sign-in page.
type DeviceSignIn struct {
	UserCode, Username, Password string
	Approve                      bool // false: the user declined (still signed in, to prove who declined)
	RemoteIP                     string
}

// CompleteDeviceCode signs the user in (the password grant's checks and failure limits) and
// approves or declines the pending flow the user code names. Errors: ErrBadVerificationCode,
// ErrExpiredToken, the user sign-in errors of PasswordToken, or a storage error.
func (s *Service) CompleteDeviceCode(ctx context.Context, in DeviceSignIn) error {
	code, ok := normalizeUserCode(in.UserCode)
	if !ok {
		return ErrBadVerificationCode
	}
	var idx userCodeRecord
	switch err := s.getRecord(ctx, prefixUserCode+code, &idx); {
	case errors.Is(err, store.ErrNotFound):
		return ErrBadVerificationCode
	case err != nil:
		return err
	}
	dKey := prefixDeviceCode + idx.DeviceHash
	sealed, err := s.st.Get(ctx, dKey)
	if errors.Is(err, store.ErrNotFound) {
		return ErrBadVerificationCode
	}
	if err != nil {
		return err
	}
	var rec deviceCodeRecord
	if err := s.openRecord(ctx, dKey, sealed, &rec); err != nil {
		return err
	}
	if !s.now().Before(rec.ExpiresAt) {
		return ErrExpiredToken
	}
	if rec.Status != "pending" {
		return ErrBadVerificationCode
	}
	user, err := s.authenticateUser(ctx, in.Username, in.Password, in.RemoteIP)
	if err != nil {
		return err
	}
	rec.UserID, rec.Status = user.ObjectID, "denied"
	if in.Approve {
		rec.Status = "approved"
	}
	put, err := s.putRecord(ctx, dKey, rec)
	if err != nil {
		return err
	}
	if err := s.st.Apply(ctx, []store.Op{store.RequireEqual(dKey, sealed), put}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ErrBadVerificationCode // answered meanwhile
		}
		return fmt.Errorf("completing device code: %w", err)
	}
	return nil
}

// authenticateUser checks a user's UPN and password exactly as PasswordToken does (failure
// limits before any hash, unknown users cost no hash, disabled users refused).
func (s *Service) authenticateUser(ctx context.Context, username, password, remoteIP string) (*userRecord, error) {
	upn := strings.ToLower(strings.TrimSpace(username))
	if len(upn) > maxUPNLen || !strings.Contains(upn, "@") {
		return nil, fmt.Errorf("authenticating user: %w", ErrUnknownUser)
	}
	g, err := s.gate("upn:"+upn, remoteIP)
	if err != nil {
		return nil, fmt.Errorf("authenticating user: %w", err)
	}
	_, rec, err := s.findUser(ctx, upn)
	if errors.Is(err, ErrObjectNotFound) {
		return nil, fmt.Errorf("authenticating user: %w", ErrUnknownUser)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating user: %w", err)
	}
	credID, err := s.checkSecret(ctx, password, []secretRecord{rec.Password})
	if err != nil {
		return nil, fmt.Errorf("authenticating user: %w", err)
	}
	g.outcome(credID != "")
	switch {
	case credID == "":
		return nil, fmt.Errorf("authenticating user: %w", ErrInvalidGrant)
	case rec.Disabled:
		return nil, fmt.Errorf("authenticating user: %w", ErrUserDisabled)
	}
	return rec, nil
}

// lastPolls remembers each flow's last poll on this node, for slow_down.
type lastPolls struct {
	mu sync.Mutex
	m  map[string]time.Time
}

var devicePolls sync.Map // *Service -> *lastPolls

func (s *Service) polls() *lastPolls {
	v, _ := devicePolls.LoadOrStore(s, &lastPolls{m: map[string]time.Time{}})
	return v.(*lastPolls)
}

// tooSoon reports whether a poll came before the interval since the last answered one had
// passed, and records it when not.
func (p *lastPolls) tooSoon(hash string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, t := range p.m {
		if now.Sub(t) > deviceCodeTTL {
			delete(p.m, k)
		}
	}
	// Only answered polls count, so a client polling a little too fast still gets through.
	if last, ok := p.m[hash]; ok && now.Sub(last) < DevicePollInterval-time.Second/2 {
		return true
	}
	p.m[hash] = now
	return false
}

// PollDeviceCode answers the client's poll: a user token once approved (the flow is then
// used up), or ErrAuthorizationPending, ErrSlowDown, ErrExpiredToken, ErrAccessDenied,
// ErrBadVerificationCode (unknown code, or another client's), ErrUserDisabled, ErrUnknownTenant.
func (s *Service) PollDeviceCode(ctx context.Context, tenant, clientID, deviceCode string) (Token, error) {
	if _, err := s.ResolveTenant(tenant); err != nil {
		return Token{}, err
	}
	if deviceCode == "" || len(deviceCode) > 128 {
		return Token{}, ErrBadVerificationCode
	}
	hash := deviceHash(deviceCode)
	dKey := prefixDeviceCode + hash
	sealed, err := s.st.Get(ctx, dKey)
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, ErrExpiredToken // used, swept, or never issued: Entra says expired
	}
	if err != nil {
		return Token{}, err
	}
	var rec deviceCodeRecord
	if err := s.openRecord(ctx, dKey, sealed, &rec); err != nil {
		return Token{}, err
	}
	if cid, _ := objectID(strings.ToLower(clientID)); cid != rec.ClientID {
		return Token{}, ErrBadVerificationCode
	}
	now := s.now()
	if !now.Before(rec.ExpiresAt) {
		_ = s.st.Apply(ctx, []store.Op{store.RequireEqual(dKey, sealed), store.Delete(dKey), store.Delete(prefixUserCode + rec.UserCode)})
		return Token{}, ErrExpiredToken
	}
	if s.polls().tooSoon(hash, now) {
		return Token{}, ErrSlowDown
	}
	switch rec.Status {
	case "pending":
		return Token{}, ErrAuthorizationPending
	case "denied":
		_ = s.st.Apply(ctx, []store.Op{store.RequireEqual(dKey, sealed), store.Delete(dKey), store.Delete(prefixUserCode + rec.UserCode)})
		return Token{}, ErrAccessDenied
	}
	// Approved: use the flow up, once, then mint for the user as it is now.
	err = s.st.Apply(ctx, []store.Op{store.RequireEqual(dKey, sealed), store.Delete(dKey), store.Delete(prefixUserCode + rec.UserCode)})
	if errors.Is(err, store.ErrConflict) {
		return Token{}, ErrExpiredToken
	}
	if err != nil {
		return Token{}, err
	}
	return s.mintFor(ctx, rec.UserID, rec.ClientID, rec.Audience, rec.Scp, oidcOf(rec.OIDC))
}

// mintFor mints a user's tokens (issueUser) for userID if the user still exists and is enabled.
func (s *Service) mintFor(ctx context.Context, userID, clientID, aud, scp string, o oidcRequest) (Token, error) {
	_, user, err := s.findUser(ctx, userID)
	if errors.Is(err, ErrObjectNotFound) {
		return Token{}, ErrUnknownUser
	}
	if err != nil {
		return Token{}, err
	}
	if user.Disabled {
		return Token{}, ErrUserDisabled
	}
	return s.issueUser(ctx, user, clientID, aud, scp, o)
}
