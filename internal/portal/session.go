package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
)

// Sessions (backend for frontend). The browser holds only SessionCookie, 256 random bits; the
// store holds the session under the SHA-256 of that id, sealed under the keyring's system
// key with its storage key as associated data, like every identity record: the person's
// tokens never reach the browser, and a reader of the data folder learns only that sessions
// exist. A session ends at sign-out (its record is deleted), after IdleTimeout without a
// request, or AbsoluteTimeout after sign-in; an ended session's cookie opens nothing.

// SessionCookie is the session cookie's name; the __Host- prefix makes the browser refuse it
// unless it is Secure, has Path=/ and no Domain, so no other host can set or read it.
const SessionCookie = "__Host-sr_session"

const (
	prefixSession = "id/portal/session/" // + hex SHA-256 of the session id
	sessionV      = 1
)

// session is one signed-in person's server-side state.
type session struct {
	V        int       `json:"v"`
	UserID   string    `json:"userId"`
	UPN      string    `json:"upn"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`  // sign-in time: the absolute timeout and "recent sign-in"
	LastSeen time.Time `json:"lastSeen"` // the idle timeout
	Refresh  string    `json:"refresh"`  // the newest refresh token of the sign-in
	// Tokens are access tokens by plane ("arm", "data", "graph").
	Tokens map[string]accessToken `json:"tokens"`

	key    string // storage key (not stored)
	sealed []byte // the record as read, which a write must still find (saveSession)
}

type accessToken struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

type sessionCtxKey struct{}

func sessionFrom(r *http.Request) *session {
	s, _ := r.Context().Value(sessionCtxKey{}).(*session)
	return s
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefixSession + hex.EncodeToString(sum[:])
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// expired reports why s no longer counts at now, or "".
func (p *Portal) expired(s *session, now time.Time) string {
	switch {
	case now.Sub(s.Created) >= p.opts.Config.AbsoluteTimeout:
		return "absolute"
	case now.Sub(s.LastSeen) >= p.opts.Config.IdleTimeout:
		return "idle"
	}
	return ""
}

// loadSession reads the session the request's cookie names; nil when there is none or it
// ended (an ended session's record is deleted).
func (p *Portal) loadSession(ctx context.Context, r *http.Request) (*session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url
		return nil, nil
	}
	key := sessionKey(c.Value)
	sealed, err := p.opts.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading portal session: %w", err)
	}
	s, err := p.openSession(ctx, key, sealed)
	if err != nil {
		return nil, err
	}
	if why := p.expired(s, p.opts.Now()); why != "" {
		p.opts.Log.Info("portal session ended", "reason", why, "user", s.UserID)
		_ = p.opts.Store.Apply(ctx, []store.Op{store.Delete(key)})
		return nil, nil
	}
	return s, nil
}

func (p *Portal) openSession(ctx context.Context, key string, sealed []byte) (*session, error) {
	pt, err := p.opts.Keyring.Open(ctx, keyring.SystemKeyID, key, sealed)
	if err != nil {
		return nil, fmt.Errorf("opening portal session: %w", err)
	}
	var s session
	err = json.Unmarshal(pt, &s)
	clear(pt)
	if err != nil || s.V != sessionV {
		return nil, fmt.Errorf("decoding portal session: unsupported record (version %d)", s.V)
	}
	s.key, s.sealed = key, sealed
	return &s, nil
}

// errSessionGone means the session's record was deleted (sign-out, a timeout, the sweeper)
// after the request read it.
var errSessionGone = errors.New("the portal session has ended")

// sealSession seals s for its storage key.
func (p *Portal) sealSession(ctx context.Context, s *session) ([]byte, error) {
	pt, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding portal session: %w", err)
	}
	sealed, err := p.opts.Keyring.Seal(ctx, keyring.SystemKeyID, s.key, pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("sealing portal session: %w", err)
	}
	return sealed, nil
}

// saveSession applies change to s and writes it back, only over the record s was read from:
// a request that read the session before sign-out must not bring it back after. When another
// request wrote the record meanwhile, s is read again and change applied to that; when the
// record is gone, nothing is written and errSessionGone returned.
func (p *Portal) saveSession(ctx context.Context, s *session, change func(*session)) error {
	for attempt := 1; ; attempt++ {
		change(s)
		sealed, err := p.sealSession(ctx, s)
		if err != nil {
			return err
		}
		err = p.opts.Store.Apply(ctx, []store.Op{store.RequireEqual(s.key, s.sealed), store.Put(s.key, sealed)})
		if err == nil {
			s.sealed = sealed
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("writing portal session: %w", err)
		}
		raw, err := p.opts.Store.Get(ctx, s.key)
		if errors.Is(err, store.ErrNotFound) {
			return errSessionGone
		}
		if err != nil {
			return fmt.Errorf("reading portal session: %w", err)
		}
		if attempt == 4 { // another node's writes not yet seen here: give up rather than spin
			return fmt.Errorf("writing portal session: %w", store.ErrConflict)
		}
		fresh, err := p.openSession(ctx, s.key, raw)
		if err != nil {
			return err
		}
		*s = *fresh
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
}

// newSession stores a fresh session for a person who just signed in and returns its cookie
// value: always a new id, so an id planted before sign-in (session fixation) is worth nothing.
func (p *Portal) newSession(ctx context.Context, s *session) (string, error) {
	id := randomToken(32)
	s.V, s.key = sessionV, sessionKey(id)
	now := p.opts.Now().UTC()
	s.Created, s.LastSeen = now, now
	sealed, err := p.sealSession(ctx, s)
	if err != nil {
		return "", err
	}
	if err := p.opts.Store.Apply(ctx, []store.Op{store.RequireAbsent(s.key), store.Put(s.key, sealed)}); err != nil {
		return "", fmt.Errorf("writing portal session: %w", err)
	}
	s.sealed = sealed
	return id, nil
}

// touch records activity on s, writing at most every touchEvery (a tenth of the idle
// timeout, at most 30 s): the idle timeout is that much coarse, and a page view costs no
// write in the common case.
func (p *Portal) touch(ctx context.Context, s *session) error {
	every := min(p.opts.Config.IdleTimeout/10, 30*time.Second)
	now := p.opts.Now().UTC()
	if now.Sub(s.LastSeen) < every {
		return nil
	}
	return p.saveSession(ctx, s, func(s *session) { s.LastSeen = now })
}

// endSession deletes s's record: its cookie opens nothing from now on.
func (p *Portal) endSession(ctx context.Context, s *session) error {
	if err := p.opts.Store.Apply(ctx, []store.Op{store.Delete(s.key)}); err != nil {
		return fmt.Errorf("ending portal session: %w", err)
	}
	p.refreshMu.Delete(s.key)
	return nil
}

// SweepSessions deletes ended sessions nobody came back to; the server runs it periodically
// on the node that writes (the leader in a cluster).
func (p *Portal) SweepSessions(ctx context.Context) (int, error) {
	now := p.opts.Now()
	var gone []store.Op
	err := p.opts.Store.Scan(ctx, prefixSession, "", func(key string, raw []byte) bool {
		s, err := p.openSession(ctx, key, raw)
		if err != nil || p.expired(s, now) != "" {
			gone = append(gone, store.Delete(key))
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("scanning portal sessions: %w", err)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	if err := p.opts.Store.Apply(ctx, gone); err != nil {
		return 0, fmt.Errorf("deleting ended portal sessions: %w", err)
	}
	return len(gone), nil
}

// RunSweeper sweeps ended sessions every interval until ctx ends, when leads reports true.
func (p *Portal) RunSweeper(ctx context.Context, interval time.Duration, leads func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leads != nil && !leads() {
			continue
		}
		if n, err := p.SweepSessions(ctx); err != nil {
			p.opts.Log.Error("sweeping portal sessions", "err", err)
		} else if n > 0 {
			p.opts.Log.Info("swept ended portal sessions", "count", n)
		}
	}
}

func setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// authed wraps a page that needs a signed-in person: without a live session a GET is sent
// to sign in (and back), anything else is refused with 401.
func (p *Portal) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !namesValid(r) {
			p.renderError(w, r, http.StatusNotFound, "There is no portal page at this address: a vault or secret name in it is not one Key Vault allows.")
			return
		}
		s, err := p.loadSession(r.Context(), r)
		if err != nil {
			p.opts.Log.Error("portal session", "err", err)
			p.renderError(w, r, http.StatusInternalServerError, "Your session could not be read. Sign in again.")
			return
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/portal/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusFound)
				return
			}
			p.renderError(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if err := p.touch(r.Context(), s); errors.Is(err, errSessionGone) {
			p.renderError(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		} else if err != nil {
			p.opts.Log.Error("portal session", "err", err)
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s)))
	}
}

// serveKeepAlive answers the page's "Stay signed in" (authed has recorded the activity).
func (p *Portal) serveKeepAlive(w http.ResponseWriter, r *http.Request) {
	now := p.opts.Now().UTC()
	if err := p.saveSession(r.Context(), sessionFrom(r), func(s *session) { s.LastSeen = now }); errors.Is(err, errSessionGone) {
		p.renderError(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		return
	} else if err != nil {
		p.opts.Log.Error("portal session", "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]int{"idleSeconds": int(p.opts.Config.IdleTimeout.Seconds())})
}
