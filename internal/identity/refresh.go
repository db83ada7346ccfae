package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// Refresh tokens, as Entra issues them to users' public clients: the user-facing grants
// (password, device code, authorization code) return one when the scope asks for
// offline_access, and grant_type=refresh_token redeems it for an access token to any resource
// the token endpoint serves (a refresh token is multi-resource) and a new refresh token.
//
// A sign-in starts a family; each redemption rotates it (the presented token stops working,
// the new one is the family's only valid token). Presenting a rotated token again is treated
// as theft (OAuth 2.0 Security BCP §4.14): the whole family is revoked, so whichever of the
// thief and the user redeems next gets invalid_grant and the user signs in again.
//
// Tokens are opaque: base64url of a 16-byte family id and 32 random bytes (256 bits of
// secret). Only the SHA-256 of a token is stored, in its family's record in the store, so any
// node of a cluster redeems it; rotation is a compare-and-set on that record, so two nodes
// cannot both redeem one token. A family is bound to the user's password (its key id), token
// generation and session epoch at sign-in: a password change or reset, disabling, deletion or
// revokeSignInSessions invalidates it on its next use on every node, and the user's families
// are then deleted as well.
//
// Lifetimes are Entra's defaults: a family dies after RefreshTokenMaxInactive (90 days) without
// a redemption, and has no maximum age (Entra's "until-revoked") unless RefreshTokenMaxAge is
// set. Expiry is checked lazily, on use; nothing sweeps the store. The store stays bounded
// because a user holds at most maxFamiliesPerClient families per client id and
// maxFamiliesPerUser in all (public clients may name any client id): a new sign-in past a cap
// first forgets the user's dead families, then evicts the oldest.

const (
	prefixRefreshFamily = "id/rtfamily/" // + family id (32 hex digits)
	prefixRefreshUser   = "id/rtuser/"   // + user object id: the user's families, for caps and revocation

	// DefaultRefreshTokenMaxInactive is Entra's default refresh token max inactive time.
	DefaultRefreshTokenMaxInactive = 90 * 24 * time.Hour
	maxFamiliesPerClient           = 16
	maxFamiliesPerUser             = 64
	// maxPriorHashes is how many rotated tokens of a family are remembered for reuse detection.
	maxPriorHashes = 16

	familyIDLen     = 16
	refreshTokenLen = familyIDLen + 32
)

// Refresh token errors. Each wraps ErrInvalidRefreshToken, so callers that do not care why can
// test for that alone.
var (
	// ErrInvalidRefreshToken means a refresh token is unknown, malformed, revoked, expired or
	// another client's (invalid_grant).
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrMalformedRefreshToken means the value cannot be one of our refresh tokens.
	ErrMalformedRefreshToken = fmt.Errorf("%w: malformed", ErrInvalidRefreshToken)
	// ErrRefreshTokenClient means the refresh token was issued to another client id.
	ErrRefreshTokenClient = fmt.Errorf("%w: issued to another client", ErrInvalidRefreshToken)
	// ErrRefreshTokenReused means an already rotated refresh token was presented: its whole
	// family is now revoked.
	ErrRefreshTokenReused = fmt.Errorf("%w: already redeemed; its sign-in session is revoked", ErrInvalidRefreshToken)
	// ErrRefreshTokenExpired means the family outlived its inactivity limit or maximum age.
	ErrRefreshTokenExpired = fmt.Errorf("%w: expired", ErrInvalidRefreshToken)
	// ErrRefreshTokenRevoked means the user's password changed, the user was disabled or
	// deleted, or the user's sign-in sessions were revoked since the family was issued (or the
	// family was revoked after a reuse, or evicted by the cap).
	ErrRefreshTokenRevoked = fmt.Errorf("%w: revoked", ErrInvalidRefreshToken)
)

// refreshFamilyRecord is one sign-in's refresh tokens: the current token's hash and those of
// the last rotated ones.
type refreshFamilyRecord struct {
	V            int       `json:"v"`
	ID           string    `json:"id"`
	UserID       string    `json:"userId"`
	ClientID     string    `json:"clientId"`
	Confidential bool      `json:"confidential,omitempty"` // redemptions must authenticate the client
	Cred         string    `json:"cred"`                   // the user's password key id at sign-in
	Gen          uint64    `json:"gen"`                    // the user's token generation at sign-in
	Epoch        uint64    `json:"epoch"`                  // the user's session epoch at sign-in
	Audience     string    `json:"aud"`                    // the sign-in's resource: the default of a redemption without scope
	Scp          string    `json:"scp"`
	CreatedAt    time.Time `json:"createdAt"`
	LastUsed     time.Time `json:"lastUsed"` // when the current token was issued
	Hash         string    `json:"hash"`     // hex SHA-256 of the current token
	Prior        []string  `json:"prior,omitempty"`
}

// refreshUserRecord lists a user's families (id, client, creation), oldest first.
type refreshUserRecord struct {
	V        int               `json:"v"`
	Families []refreshUserItem `json:"families"`
}

type refreshUserItem struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"clientId"`
	CreatedAt time.Time `json:"createdAt"`
}

func (r *refreshFamilyRecord) version() int { return r.V }
func (r *refreshUserRecord) version() int   { return r.V }

// oidcRequest is what a request's OpenID Connect scopes ask for besides the access token.
type oidcRequest struct {
	OpenID  bool // an ID token
	Offline bool // a refresh token
	// Confidential: the client authenticated, so its refresh token needs its credential too.
	Confidential bool
}

// oidcOf reads the OIDC scopes of a scope parameter.
func oidcOf(scope string) oidcRequest {
	var o oidcRequest
	for _, sc := range strings.Fields(scope) {
		switch strings.ToLower(sc) {
		case "openid":
			o.OpenID = true
		case "offline_access":
			o.Offline = true
		}
	}
	return o
}

// String is the scope form stored with pending device and authorization codes.
func (o oidcRequest) String() string {
	var parts []string
	if o.OpenID {
		parts = append(parts, "openid")
	}
	if o.Offline {
		parts = append(parts, "offline_access")
	}
	return strings.Join(parts, " ")
}

// issueUser mints a user's access token and what the OIDC scopes ask for: an ID token
// (openid) and a new refresh token family (offline_access).
func (s *Service) issueUser(ctx context.Context, rec *userRecord, clientID, aud, scp string, o oidcRequest) (Token, error) {
	tok, err := s.mintUser(rec, clientID, aud, scp)
	if err != nil {
		return Token{}, err
	}
	if o.OpenID {
		if tok.IDToken, err = s.mintIDToken(rec, clientID); err != nil {
			return Token{}, err
		}
	}
	if o.Offline {
		if tok.RefreshToken, err = s.startRefreshFamily(ctx, rec, clientID, aud, scp, o.Confidential); err != nil {
			return Token{}, err
		}
	}
	return tok, nil
}

// newRefreshToken draws a token of family famID (32 hex digits) and returns it with its hash.
func newRefreshToken(famID string) (token, hash string, err error) {
	b := make([]byte, refreshTokenLen)
	if _, err := hex.Decode(b[:familyIDLen], []byte(famID)); err != nil {
		return "", "", fmt.Errorf("encoding refresh token: %w", err)
	}
	if _, err := rand.Read(b[familyIDLen:]); err != nil {
		return "", "", fmt.Errorf("generating refresh token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	clear(b)
	return token, deviceHash(token), nil
}

// familyOf returns the family id a refresh token names, or false when it cannot be ours.
func familyOf(token string) (string, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(refreshTokenLen) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != refreshTokenLen {
		return "", false
	}
	id := hex.EncodeToString(b[:familyIDLen])
	clear(b)
	return id, true
}

// startRefreshFamily records a new family for the user and client and returns its first
// token. Past a cap the user's dead families are forgotten first, then the oldest evicted.
func (s *Service) startRefreshFamily(ctx context.Context, user *userRecord, clientID, aud, scp string, confidential bool) (string, error) {
	idb := make([]byte, familyIDLen)
	if _, err := rand.Read(idb); err != nil {
		return "", fmt.Errorf("generating refresh token family: %w", err)
	}
	famID := hex.EncodeToString(idb)
	token, hash, err := newRefreshToken(famID)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	fam := refreshFamilyRecord{V: recordVersion, ID: famID, UserID: user.ObjectID, ClientID: clientID,
		Confidential: confidential, Cred: user.Password.ID, Gen: user.Generation, Epoch: user.SessionEpoch,
		Audience: aud, Scp: scp, CreatedAt: now, LastUsed: now, Hash: hash}
	famKey, idxKey := prefixRefreshFamily+famID, prefixRefreshUser+user.ObjectID
	famOp, err := s.putRecord(ctx, famKey, fam)
	if err != nil {
		return "", err
	}
	for range 3 {
		idx, cond, err := s.loadRefreshIndex(ctx, idxKey)
		if err != nil {
			return "", fmt.Errorf("issuing refresh token: %w", err)
		}
		var ops []store.Op
		items := idx.Families
		if countClient(items, clientID) >= maxFamiliesPerClient || len(items) >= maxFamiliesPerUser {
			items, ops, err = s.pruneFamilies(ctx, items)
			if err != nil {
				return "", fmt.Errorf("issuing refresh token: %w", err)
			}
		}
		for countClient(items, clientID) >= maxFamiliesPerClient {
			i := slices.IndexFunc(items, func(it refreshUserItem) bool { return it.ClientID == clientID })
			ops = append(ops, store.Delete(prefixRefreshFamily+items[i].ID))
			items = slices.Delete(items, i, i+1)
		}
		for len(items) >= maxFamiliesPerUser {
			ops = append(ops, store.Delete(prefixRefreshFamily+items[0].ID))
			items = items[1:]
		}
		items = append(slices.Clone(items), refreshUserItem{ID: famID, ClientID: clientID, CreatedAt: now})
		idxOp, err := s.putRecord(ctx, idxKey, refreshUserRecord{V: recordVersion, Families: items})
		if err != nil {
			return "", err
		}
		ops = append(ops, cond, store.RequireAbsent(famKey), famOp, idxOp)
		err = s.st.Apply(ctx, ops)
		if errors.Is(err, store.ErrConflict) {
			continue // another sign-in of this user changed the index
		}
		if err != nil {
			return "", fmt.Errorf("issuing refresh token: %w", err)
		}
		return token, nil
	}
	return "", fmt.Errorf("issuing refresh token: %w", store.ErrConflict)
}

// loadRefreshIndex reads a user's family index and the precondition a write of it needs.
func (s *Service) loadRefreshIndex(ctx context.Context, key string) (refreshUserRecord, store.Op, error) {
	var idx refreshUserRecord
	sealed, err := s.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return refreshUserRecord{V: recordVersion}, store.RequireAbsent(key), nil
	}
	if err != nil {
		return idx, store.Op{}, err
	}
	if err := s.openRecord(ctx, key, sealed, &idx); err != nil {
		return idx, store.Op{}, err
	}
	return idx, store.RequireEqual(key, sealed), nil
}

func countClient(items []refreshUserItem, clientID string) int {
	n := 0
	for _, it := range items {
		if it.ClientID == clientID {
			n++
		}
	}
	return n
}

// pruneFamilies drops the index entries whose family is gone (rotated away by reuse, expired,
// evicted) and deletes the expired ones. It reads at most maxFamiliesPerUser records and runs
// only when a sign-in meets a cap.
func (s *Service) pruneFamilies(ctx context.Context, items []refreshUserItem) ([]refreshUserItem, []store.Op, error) {
	var keep []refreshUserItem
	var ops []store.Op
	now := s.now()
	for _, it := range items {
		var fam refreshFamilyRecord
		switch err := s.getRecord(ctx, prefixRefreshFamily+it.ID, &fam); {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, nil, err
		}
		if s.familyExpired(&fam, now) {
			ops = append(ops, store.Delete(prefixRefreshFamily+it.ID))
			continue
		}
		keep = append(keep, it)
	}
	return keep, ops, nil
}

// familyExpired applies the refresh token lifetimes in force.
func (s *Service) familyExpired(fam *refreshFamilyRecord, now time.Time) bool {
	return (s.refreshInactive > 0 && now.Sub(fam.LastUsed) > s.refreshInactive) ||
		(s.refreshMaxAge > 0 && now.Sub(fam.CreatedAt) > s.refreshMaxAge)
}

// RefreshRequest is one grant_type=refresh_token request.
type RefreshRequest struct {
	Tenant, ClientID, RefreshToken string
	// Scope names the resource of the new access token (any the token endpoint serves, not
	// only the sign-in's) plus OIDC scopes; empty means the sign-in's resource.
	Scope string
	// ClientSecret authenticates a confidential client: required when the family was issued to
	// an authenticated client, checked whenever given.
	ClientSecret string
	// RemoteIP is the caller's address, for the per-source failure limit of client secrets.
	RemoteIP string
}

// RedeemRefreshToken exchanges a refresh token for an access token and the family's next
// refresh token (an ID token too when the scope has openid); the presented token is then used
// up. Errors: ErrUnknownTenant, ErrUnknownClient (malformed client id), ErrInvalidScope,
// ErrUnknownResource, ErrMalformedRefreshToken, ErrRefreshTokenClient, ErrRefreshTokenReused
// (the family is revoked), ErrRefreshTokenExpired, ErrRefreshTokenRevoked, ErrInvalidRefreshToken
// (unknown), ErrUserDisabled, the client-secret errors of IssueToken, or a storage error.
func (s *Service) RedeemRefreshToken(ctx context.Context, req RefreshRequest) (Token, error) {
	if _, err := s.ResolveTenant(req.Tenant); err != nil {
		return Token{}, err
	}
	clientID, ok := objectID(strings.ToLower(req.ClientID))
	if !ok {
		return Token{}, fmt.Errorf("redeeming refresh token: %w", ErrUnknownClient)
	}
	var aud, scp string
	if hasResourceScope(req.Scope) {
		var err error
		if aud, scp, err = s.servedUserAudience(req.Scope); err != nil {
			return Token{}, err
		}
	}
	famID, ok := familyOf(req.RefreshToken)
	if !ok {
		return Token{}, ErrMalformedRefreshToken
	}
	hash := deviceHash(req.RefreshToken)
	key := prefixRefreshFamily + famID
	for range 3 {
		sealed, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return Token{}, ErrRefreshTokenRevoked // revoked, expired, evicted, or never issued
		}
		if err != nil {
			return Token{}, fmt.Errorf("redeeming refresh token: %w", err)
		}
		var fam refreshFamilyRecord
		if err := s.openRecord(ctx, key, sealed, &fam); err != nil {
			return Token{}, fmt.Errorf("redeeming refresh token: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(hash), []byte(fam.Hash)) != 1 {
			if !slices.Contains(fam.Prior, hash) {
				return Token{}, ErrInvalidRefreshToken // a token of this family older than we remember
			}
			err := s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)})
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return Token{}, fmt.Errorf("revoking refresh token family: %w", err)
			}
			return Token{}, ErrRefreshTokenReused
		}
		if fam.ClientID != clientID {
			return Token{}, ErrRefreshTokenClient
		}
		now := s.now()
		if s.familyExpired(&fam, now) {
			_ = s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)}) // lazily; a retry finds it gone either way
			return Token{}, ErrRefreshTokenExpired
		}
		if req.ClientSecret != "" || fam.Confidential {
			if err := s.authenticateClient(ctx, clientID, req.ClientSecret, req.RemoteIP); err != nil {
				return Token{}, err
			}
		}
		_, user, err := s.findUser(ctx, fam.UserID)
		switch {
		case errors.Is(err, ErrObjectNotFound):
			_ = s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)})
			return Token{}, ErrRefreshTokenRevoked
		case err != nil:
			return Token{}, fmt.Errorf("redeeming refresh token: %w", err)
		case user.Disabled:
			return Token{}, ErrUserDisabled
		case user.Password.ID != fam.Cred || user.Generation != fam.Gen || user.SessionEpoch != fam.Epoch:
			_ = s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), store.Delete(key)})
			return Token{}, ErrRefreshTokenRevoked
		}
		next, nextHash, err := newRefreshToken(famID)
		if err != nil {
			return Token{}, err
		}
		fam.Prior = append(fam.Prior, fam.Hash)
		if len(fam.Prior) > maxPriorHashes {
			fam.Prior = fam.Prior[len(fam.Prior)-maxPriorHashes:]
		}
		fam.Hash, fam.LastUsed = nextHash, now.UTC()
		put, err := s.putRecord(ctx, key, fam)
		if err != nil {
			return Token{}, err
		}
		err = s.st.Apply(ctx, []store.Op{store.RequireEqual(key, sealed), put})
		if errors.Is(err, store.ErrConflict) {
			continue // redeemed or revoked meanwhile: the next read says which
		}
		if err != nil {
			return Token{}, fmt.Errorf("redeeming refresh token: %w", err)
		}
		if aud == "" {
			aud, scp = fam.Audience, fam.Scp
		}
		tok, err := s.mintUser(user, clientID, aud, scp)
		if err != nil {
			return Token{}, err
		}
		if oidcOf(req.Scope).OpenID {
			if tok.IDToken, err = s.mintIDToken(user, clientID); err != nil {
				return Token{}, err
			}
		}
		tok.RefreshToken = next
		return tok, nil
	}
	return Token{}, fmt.Errorf("redeeming refresh token: %w", store.ErrConflict)
}

// hasResourceScope reports whether scope names anything besides OIDC scopes.
func hasResourceScope(scope string) bool {
	for _, sc := range strings.Fields(scope) {
		if !oidcScopes[strings.ToLower(sc)] {
			return true
		}
	}
	return false
}

// authenticateClient checks a confidential client's secret with the failure limits of
// IssueToken.
func (s *Service) authenticateClient(ctx context.Context, clientID, secret, remoteIP string) error {
	if secret == "" {
		return fmt.Errorf("authenticating client: %w", ErrInvalidClient)
	}
	g, err := s.gate(clientID, remoteIP)
	if err != nil {
		return fmt.Errorf("authenticating client: %w", err)
	}
	rec, creds, err := s.loadClient(ctx, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("authenticating client: %w", err)
	}
	credID, err := s.checkSecret(ctx, secret, creds)
	if err == nil && rec != nil {
		g.outcome(credID != "")
	}
	switch {
	case err != nil:
		return fmt.Errorf("authenticating client: %w", err)
	case rec == nil:
		return fmt.Errorf("authenticating client: %w", ErrUnknownClient)
	case credID == "":
		return fmt.Errorf("authenticating client: %w", ErrInvalidClient)
	case rec.Disabled:
		return fmt.Errorf("authenticating client: %w", ErrPrincipalDisabled)
	}
	return nil
}

// RevokeSignInSessions is Graph's revokeSignInSessions: every refresh token the user holds
// stops working on every node (the user's session epoch moves on), and their families are
// deleted. Access tokens already issued live out their hour, as in Entra; disable the user to
// cut those too.
func (s *Service) RevokeSignInSessions(ctx context.Context, idOrUPN string) error {
	u, err := s.updateUser(ctx, idOrUPN, func(rec *userRecord) error {
		rec.SessionEpoch++
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoking sign-in sessions: %w", err)
	}
	s.dropRefreshFamilies(ctx, u.ID)
	return nil
}

// dropRefreshFamilies deletes a user's refresh token families after a change that revoked them
// (password, enabled, sessions, deletion). It is storage hygiene only: the families are already
// refused by their binding to the user's password, generation and epoch, so a failure here
// (say a concurrent sign-in changed the index three times) leaves nothing usable behind; the
// leftovers are pruned at the user's next sign-in past a cap.
func (s *Service) dropRefreshFamilies(ctx context.Context, userID string) {
	idxKey := prefixRefreshUser + userID
	for range 3 {
		idx, cond, err := s.loadRefreshIndex(ctx, idxKey)
		if err != nil || cond.Kind == store.OpRequireAbsent {
			return
		}
		ops := []store.Op{cond, store.Delete(idxKey)}
		for _, it := range idx.Families {
			ops = append(ops, store.Delete(prefixRefreshFamily+it.ID))
		}
		if err := s.st.Apply(ctx, ops); !errors.Is(err, store.ErrConflict) {
			return
		}
	}
}
