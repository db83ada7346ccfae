package httpapi_test

import (
	"net/http/httptest"
	"testing"
)

// ARM paths that name no subscription, or spell one oddly, are answered (never a panic that
// leaves the client without an answer and the request unaudited).
func TestServer_ARMPathsWithoutSubscription(t *testing.T) {
	sink := &flakySink{}
	e := newTestAPI(t, sink)
	for _, path := range []string{"/subscriptions/", "/subscriptions", "//subscriptions//", "/subscriptions/x/", "/SUBSCRIPTIONS/"} {
		t.Run(path, func(t *testing.T) {
			before := sink.n.Load()
			req := httptest.NewRequest("GET", "https://localhost:9"+path+"?api-version=2022-12-01", nil)
			req.Header.Set("Authorization", "Bearer "+e.armToken)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code == 0 || rec.Code >= 500 {
				t.Fatalf("GET %s: HTTP %d %s", path, rec.Code, rec.Body)
			}
			if sink.n.Load() != before+1 {
				t.Fatalf("GET %s was not audited", path)
			}
		})
	}
}
