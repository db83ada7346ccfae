// Package held holds an HTTP answer back until the call's audit record is written, so that a
// call whose record cannot be written is never acknowledged (fail-closed). Every entry point
// answers through it: the API edge, the /sys routes, the operator socket and cluster joins.
package held

import "net/http"

// Answer is a buffered http.ResponseWriter. Its zero value is not ready: use New, or Reset on
// a reused one.
type Answer struct {
	header http.Header
	own    bool // header is the hold's own map, copied to the real writer on Send
	status int
	wrote  bool
	// Body is the answer's bytes; a caller that pools buffers may hand one in through Reset and
	// take it back after Send.
	Body []byte
}

// New returns an empty answer whose headers go into header (nil: a map of its own).
func New(header http.Header) *Answer {
	a := &Answer{}
	a.Reset(header, nil)
	return a
}

// Reset makes a hold an empty 200 answer with header (nil: a map of its own) and body as the
// buffer to fill.
func (a *Answer) Reset(header http.Header, body []byte) {
	a.own = header == nil
	if a.own {
		header = http.Header{}
	}
	a.header, a.status, a.wrote, a.Body = header, http.StatusOK, false, body[:0]
}

// Discard drops what the handler wrote (its status and body, not its headers), so that a refusal
// can be written in its place.
func (a *Answer) Discard() {
	a.Body = a.Body[:0]
	a.status, a.wrote = http.StatusOK, false
}

// Header implements http.ResponseWriter.
func (a *Answer) Header() http.Header { return a.header }

// Write implements http.ResponseWriter.
func (a *Answer) Write(p []byte) (int, error) {
	a.wrote = true
	a.Body = append(a.Body, p...)
	return len(p), nil
}

// WriteHeader implements http.ResponseWriter; only the first status counts.
func (a *Answer) WriteHeader(status int) {
	if !a.wrote {
		a.status, a.wrote = status, true
	}
}

// Status is the status the handler answered (200 when it wrote nothing).
func (a *Answer) Status() int { return a.status }

// Send writes the held answer to w.
func (a *Answer) Send(w http.ResponseWriter) {
	if a.own {
		h := w.Header()
		for k, v := range a.header {
			h[k] = v
		}
	}
	w.WriteHeader(a.status)
	w.Write(a.Body)
}
