package httpapi_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/strongroom/strongroom/internal/httpapi"
)

// Requests on one connection share its token memo (ConnContext). A memo hit must still refuse
// whatever Verify refuses: another token of the same length, a token for another audience, and
// the token of a principal disabled after it was remembered.
func TestServer_TokenMemoRechecks(t *testing.T) {
	e := newTestAPI(t, &flakySink{})
	ctx := context.Background()
	p, secret, err := e.ids.CreateServicePrincipal(ctx, "memo")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.ids.ClientCredentials(ctx, e.tenantID, p.AppID, secret, "https://vault.azure.net/.default")
	if err != nil {
		t.Fatal(err)
	}
	conn := httpapi.ConnContext(ctx, nil) // one connection for every request below
	get := func(token string) int {
		req := httptest.NewRequest("GET", "https://kv-audit.vault.localhost:9/secrets/s?api-version=7.4", nil).WithContext(conn)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec.Code
	}
	forged := []byte(e.token)
	forged[len(forged)-2] ^= 1 // same length, one bit of the signature off
	steps := []struct {
		name  string
		token string
		want  int
	}{
		{"admin, remembered", e.token, 404},
		{"admin again, from the memo", e.token, 404},
		{"a forged token of the same length", string(forged), 401},
		{"the admin's management token", e.armToken, 401},
		{"admin after the refusals", e.token, 404},
		{"an application without a role", tok.AccessToken, 403},
		{"the same, from the memo", tok.AccessToken, 403},
	}
	for _, s := range steps {
		if got := get(s.token); got != s.want {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
	if _, err := e.ids.SetDisabled(ctx, p.ObjectID, true); err != nil {
		t.Fatal(err)
	}
	if got := get(tok.AccessToken); got != 401 {
		t.Fatalf("remembered token of a disabled principal: status %d, want 401", got)
	}
}
