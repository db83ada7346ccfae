package azkv_test

import (
	"net/http/httptest"
	"testing"

	"github.com/strongroom/strongroom/internal/azkv"
)

// Every plane's error body comes from WriteError: the envelope's bytes, its content type, and a
// cache policy that keeps the plane's own (the API planes' no-cache) or else forbids storing.
func TestWriteError(t *testing.T) {
	cases := []struct {
		name       string
		preset     string // Cache-Control set by the plane before the error
		env        azkv.Error
		wantBody   string
		wantCache  string
		wantStatus int
	}{
		{"plain", "", azkv.NewError("ServiceUnavailable", "retry", ""),
			`{"error":{"code":"ServiceUnavailable","message":"retry"}}`, "no-store", 503},
		{"inner code", "no-cache", azkv.NewError("Forbidden", "no", "ForbiddenByRbac"),
			`{"error":{"code":"Forbidden","message":"no","innererror":{"code":"ForbiddenByRbac"}}}`, "no-cache", 403},
		{"no HTML escaping", "", azkv.NewError("Bad Request", `the body must be {"id": "<node id>"} & more`, ""),
			`{"error":{"code":"Bad Request","message":"the body must be {\"id\": \"<node id>\"} & more"}}`, "no-store", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if c.preset != "" {
				rec.Header().Set("Cache-Control", c.preset)
			}
			azkv.WriteError(rec, c.wantStatus, c.env)
			if rec.Code != c.wantStatus || rec.Body.String() != c.wantBody {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, c.wantStatus, c.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Fatalf("Content-Type %q", got)
			}
			if got := rec.Header().Values("Cache-Control"); len(got) != 1 || got[0] != c.wantCache {
				t.Fatalf("Cache-Control %q, want %q", got, c.wantCache)
			}
		})
	}
}
