package portal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// fakeApps is a registered portal application whose redirect URIs are uris.
type fakeApps struct{ uris []string }

func (fakeApps) CreateApplication(context.Context, string) (identity.Application, error) {
	return identity.Application{}, errors.New("not in this test")
}
func (fakeApps) GetApplication(context.Context, string) (identity.Application, error) {
	return identity.Application{}, errors.New("not in this test")
}
func (fakeApps) SetRedirectURIs(context.Context, string, []string) error {
	return errors.New("not in this test")
}
func (f fakeApps) RedirectURIs(context.Context, string) ([]string, error) { return f.uris, nil }

// storedPortal is a portal with a real store and keyring, a clock the test moves, and api as
// the server's handler.
type storedPortal struct {
	*Portal
	st  store.Store
	mu  sync.Mutex
	now time.Time
}

func newStoredPortal(t *testing.T, api http.Handler) *storedPortal {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(context.Background(), st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sp := &storedPortal{Portal: newTestPortal(t), st: st, now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	sp.opts.Store, sp.opts.Keyring, sp.opts.Now = st, kr, sp.clock
	sp.opts.Apps = fakeApps{uris: []string{sp.redirectURI()}}
	sp.clientID = "portal-app"
	sp.SetAPI(api)
	return sp
}

func (sp *storedPortal) clock() time.Time {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.now
}

func (sp *storedPortal) advance(d time.Duration) {
	sp.mu.Lock()
	sp.now = sp.now.Add(d)
	sp.mu.Unlock()
}

// request is a same-origin request carrying the session cookie id.
func (sp *storedPortal) request(method, path, id string) *http.Request {
	r := httptest.NewRequest(method, "https://localhost:8443"+path, nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
	return r
}

// signIn stores a session, as the callback does, and returns its cookie value.
func (sp *storedPortal) signIn(t *testing.T) string {
	t.Helper()
	id, err := sp.newSession(context.Background(), &session{UserID: "u1", Refresh: "refresh-1",
		Tokens: map[string]accessToken{"arm": {Token: "arm-1", Expires: sp.clock().Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// signOut is POST /portal/logout with the cookie.
func (sp *storedPortal) signOut(t *testing.T, id string) {
	t.Helper()
	w := httptest.NewRecorder()
	sp.ServeHTTP(w, sp.request("POST", "/portal/logout", id))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-out: HTTP %d %s", w.Code, w.Body)
	}
}

// A request that read the session before sign-out writes nothing after it: not the activity
// touch, not the keep-alive, not a token refreshed while the sign-out happened.
func TestSessionStaysGoneAfterSignOut(t *testing.T) {
	var signOutDuringRefresh func()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			if signOutDuringRefresh != nil {
				signOutDuringRefresh()
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"data-2","refresh_token":"refresh-2","expires_in":3600}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	tests := []struct {
		name string
		// save runs a save path for the session s, read before the sign-out, as request r.
		save    func(sp *storedPortal, r *http.Request, s *session) error
		wantErr error
	}{
		{"touch", func(sp *storedPortal, _ *http.Request, s *session) error {
			sp.advance(time.Minute) // past touchEvery, so touch writes
			return sp.touch(context.Background(), s)
		}, errSessionGone},
		{"keep-alive", func(sp *storedPortal, r *http.Request, s *session) error {
			w := httptest.NewRecorder()
			sp.serveKeepAlive(w, r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s)))
			if w.Code != http.StatusUnauthorized {
				return fmt.Errorf("keep-alive answered %d", w.Code)
			}
			return errSessionGone
		}, errSessionGone},
		{"token refresh", func(sp *storedPortal, r *http.Request, s *session) error {
			_, err := sp.token(r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s)), "data")
			return err
		}, errSignInAgain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := newStoredPortal(t, api)
			id := sp.signIn(t)
			r := sp.request("POST", "/portal/session/keepalive", id)
			s, err := sp.loadSession(context.Background(), r)
			if err != nil || s == nil {
				t.Fatalf("loading the session: %v %v", s, err)
			}
			if tt.name == "token refresh" {
				// The sign-out lands while the refresh token is being redeemed.
				signOutDuringRefresh = func() { signOutDuringRefresh = nil; sp.signOut(t, id) }
			} else {
				sp.signOut(t, id)
			}
			if err := tt.save(sp, r, s); !errors.Is(err, tt.wantErr) {
				t.Fatalf("the save path returned %v, want %v", err, tt.wantErr)
			}
			if _, err := sp.st.Get(context.Background(), sessionKey(id)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the session record is back after sign-out (err %v)", err)
			}
			if s, _ := sp.loadSession(context.Background(), r); s != nil {
				t.Fatal("the cookie opens a session after sign-out")
			}
		})
	}
}

// Two requests that read the same session both write: the second is applied over the first's
// record, so neither change is lost and neither fails.
func TestSessionConcurrentWritesMerge(t *testing.T) {
	sp := newStoredPortal(t, http.NotFoundHandler())
	id := sp.signIn(t)
	r := sp.request("GET", "/portal/vaults", id)
	a, _ := sp.loadSession(context.Background(), r)
	b, _ := sp.loadSession(context.Background(), r)
	if a == nil || b == nil {
		t.Fatal("no session")
	}
	if err := sp.saveSession(context.Background(), a, func(s *session) { s.Tokens["graph"] = accessToken{Token: "graph-1"} }); err != nil {
		t.Fatal(err)
	}
	sp.advance(time.Minute)
	if err := sp.touch(context.Background(), b); err != nil {
		t.Fatalf("the second write: %v", err)
	}
	got, err := sp.loadSession(context.Background(), r)
	if err != nil || got == nil {
		t.Fatalf("reading back: %v", err)
	}
	if got.Tokens["graph"].Token != "graph-1" || !got.LastSeen.Equal(sp.clock()) {
		t.Fatalf("after both writes: tokens %v, last seen %v (want %v)", got.Tokens, got.LastSeen, sp.clock())
	}
}
