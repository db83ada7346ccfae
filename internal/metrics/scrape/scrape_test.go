package scrape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/metrics"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const publicURL = "https://localhost:8443"

// identities is a real identity service over a fresh store, with its bootstrap admin's token
// for the management plane.
func identities(t *testing.T) (*identity.Service, identity.Bootstrap, string) {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.New(ctx, st, kr, identity.Options{PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	boot, _, err := ids.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ids.ClientCredentials(ctx, boot.TenantID, boot.ClientID, boot.ClientSecret, "https://management.core.windows.net//.default")
	if err != nil {
		t.Fatal(err)
	}
	return ids, boot, tok.AccessToken
}

// Every /metrics refusal and the one way through: unauthenticated scrapes, sealed, no token,
// a bad token, a caller the service refuses, and one it allows (as itself).
func TestHandler_AuthorizesScrapes(t *testing.T) {
	ids, boot, token := identities(t)
	var asked []string // the callers authorize saw
	allow := func(ctx context.Context) error {
		c, _ := service.CallerFrom(ctx)
		asked = append(asked, c.ObjectID)
		return nil
	}
	deny := func(context.Context) error { return errors.New("no role") }
	serving := func(ids *identity.Service, authorize func(context.Context) error) func() (*identity.Service, func(context.Context) error) {
		return func() (*identity.Service, func(context.Context) error) { return ids, authorize }
	}
	cases := []struct {
		name    string
		public  bool
		serving func() (*identity.Service, func(context.Context) error)
		auth    string
		status  int
		code    string
	}{
		{"public scrape while sealed", true, serving(nil, nil), "", 200, ""},
		{"sealed", false, serving(nil, nil), "Bearer " + token, 503, "ServiceUnavailable"},
		{"no token", false, serving(ids, allow), "", 401, "AuthenticationFailed"},
		{"not a bearer token", false, serving(ids, allow), "Basic abc", 401, "AuthenticationFailed"},
		{"bad token", false, serving(ids, allow), "Bearer " + token + "x", 401, "InvalidAuthenticationToken"},
		{"caller without the role", false, serving(ids, deny), "Bearer " + token, 403, "AuthorizationFailed"},
		{"caller with the role", false, serving(ids, allow), "Bearer " + token, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("a scrape reached the next handler") })
			h := Handler(Options{Registry: metrics.New("vault.test"), Public: tc.public, PublicURL: publicURL, Serving: tc.serving}, next)
			req := httptest.NewRequest("GET", publicURL+"/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				if !strings.Contains(rec.Body.String(), "strongroom_") {
					t.Fatalf("no metrics in the scrape: %s", rec.Body)
				}
				return
			}
			var doc struct{ Error struct{ Code string } }
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.Error.Code != tc.code {
				t.Fatalf("error envelope %s, want code %s", rec.Body, tc.code)
			}
			if tc.status == 401 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), publicURL) && tc.code == "AuthenticationFailed" {
				t.Fatalf("401 without a WWW-Authenticate challenge: %v", rec.Header())
			}
		})
	}
	if len(asked) != 1 || asked[0] != boot.ObjectID {
		t.Fatalf("authorize saw callers %v, want the admin %s once", asked, boot.ObjectID)
	}
}

// Requests other than a scrape go to the next handler, counted.
func TestHandler_PassesOtherRequests(t *testing.T) {
	reg := metrics.New("vault.test")
	h := Handler(Options{Registry: reg, PublicURL: publicURL, Serving: func() (*identity.Service, func(context.Context) error) { return nil, nil }},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, req := range []*http.Request{httptest.NewRequest("GET", publicURL+"/health", nil), httptest.NewRequest("POST", publicURL+"/metrics", nil)} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusTeapot {
			t.Fatalf("%s %s: status %d, want the next handler's", req.Method, req.URL.Path, rec.Code)
		}
	}
}
