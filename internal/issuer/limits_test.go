package issuer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
)

// A client id that failed identity.ClientFailureLimit times is answered like Entra answers a
// locked account (400 invalid_grant, AADSTS50053, Retry-After) without hashing, the right
// secret included; each attempt reaches the audit hook with its client id and reason, never
// the secret.
func TestIssuer_TokenEndpoint_Lockout(t *testing.T) {
	ts := newTestServer(t)
	p, secret, err := ts.id.CreateServicePrincipal(context.Background(), "locked")
	if err != nil {
		t.Fatal(err)
	}
	type note struct{ client, oid, failure string }
	var mu sync.Mutex
	var notes []note
	iss := issuer.New(ts.id, ts.srv.URL)
	iss.OnAttempt(func(_ *http.Request, a issuer.Attempt) {
		mu.Lock()
		notes = append(notes, note{a.ClientID, a.ObjectID, a.Failure})
		mu.Unlock()
	})
	mux := http.NewServeMux()
	iss.Register(mux)
	send := func(secret string) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {p.AppID}, "client_secret": {secret},
			"scope": {"https://vault.localhost:8443/.default"}}
		r := httptest.NewRequest("POST", "/"+ts.boot.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.10:1234"
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	const wrong = "not-the-secret"
	for i := range identity.ClientFailureLimit {
		if w := send(wrong); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: HTTP %d, want 401", i, w.Code)
		}
	}
	hashes := ts.id.HashCount()
	for _, s := range []string{wrong, secret} {
		w := send(s)
		var body map[string]any
		_, _, body = decode(t, w.Result())
		desc, _ := body["error_description"].(string)
		codes, _ := body["error_codes"].([]any)
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if w.Code != http.StatusBadRequest || body["error"] != "invalid_grant" || len(codes) != 1 || codes[0] != float64(50053) ||
			!strings.HasPrefix(desc, "AADSTS50053: ") || err != nil || ra < 1 || ra > 300 {
			t.Fatalf("locked out: HTTP %d, Retry-After %q, body %v", w.Code, w.Header().Get("Retry-After"), redact(body))
		}
	}
	if got := ts.id.HashCount(); got != hashes {
		t.Fatalf("%d hashes ran for locked-out requests, want 0", got-hashes)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != identity.ClientFailureLimit+2 {
		t.Fatalf("%d audit notes, want %d", len(notes), identity.ClientFailureLimit+2)
	}
	for i, n := range notes {
		want := "token refused: wrong client secret"
		if i >= identity.ClientFailureLimit {
			want = "token refused: client id locked out"
		}
		if n.client != p.AppID || n.failure != want || n.oid != "" || strings.Contains(n.failure+n.client, secret) {
			t.Fatalf("note %d = %+v, want client %s and %q", i, n, p.AppID, want)
		}
	}
}

// A successful request's audit note carries the client and object ids and no failure.
func TestIssuer_TokenEndpoint_AuditNoteOnSuccess(t *testing.T) {
	ts := newTestServer(t)
	var got [3]string
	iss := issuer.New(ts.id, ts.srv.URL)
	iss.OnAttempt(func(_ *http.Request, a issuer.Attempt) {
		got = [3]string{a.ClientID, a.ObjectID, a.Failure}
	})
	mux := http.NewServeMux()
	iss.Register(mux)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ts.boot.ClientID}, "client_secret": {ts.boot.ClientSecret},
		"scope": {"https://vault.localhost:8443/.default"}}
	r := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusOK || got != [3]string{ts.boot.ClientID, ts.boot.ObjectID, ""} {
		t.Fatalf("HTTP %d, note %v", w.Code, got)
	}
}
