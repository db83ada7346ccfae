package held

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAnswer(t *testing.T) {
	cases := []struct {
		name       string
		onWriter   bool // hold made on the real writer's headers
		handler    func(w http.ResponseWriter)
		discard    bool
		wantStatus int
		wantBody   string
		wantHeader string
	}{
		{"nothing written is 200", false, func(http.ResponseWriter) {}, false, 200, "", ""},
		{"first status wins", false, func(w http.ResponseWriter) {
			w.Header().Set("X-A", "1")
			w.WriteHeader(404)
			w.WriteHeader(500)
			w.Write([]byte("gone"))
		}, false, 404, "gone", "1"},
		{"write before status is 200", true, func(w http.ResponseWriter) {
			w.Header().Set("X-A", "2")
			w.Write([]byte("ok"))
			w.WriteHeader(500)
		}, false, 200, "ok", "2"},
		{"discard keeps headers, drops status and body", false, func(w http.ResponseWriter) {
			w.Header().Set("X-A", "3")
			w.WriteHeader(201)
			w.Write([]byte("secret-ish"))
		}, true, 200, "", "3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var a *Answer
			if c.onWriter {
				a = New(rec.Header())
			} else {
				a = New(nil)
			}
			c.handler(a)
			if rec.Body.Len() != 0 || rec.Header().Get("X-A") != "" && !c.onWriter {
				t.Fatal("the hold let something through before Send")
			}
			if c.discard {
				a.Discard()
			}
			a.Send(rec)
			if rec.Code != c.wantStatus || rec.Body.String() != c.wantBody || rec.Header().Get("X-A") != c.wantHeader {
				t.Errorf("sent %d %q X-A=%q, want %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("X-A"), c.wantStatus, c.wantBody, c.wantHeader)
			}
		})
	}
}

func TestAnswer_ResetReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	a := New(nil)
	a.Reset(nil, buf)
	a.Write([]byte("abc"))
	if &a.Body[0] != &buf[:1][0] {
		t.Error("Reset did not use the given buffer")
	}
}
