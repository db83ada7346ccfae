// Package snaphttp answers an operator socket's snapshot calls (GET and POST /v1/snapshot) in
// both storage modes: one mapping from the outcome of a save or a restore to its answer. A save
// streams the file and, once a byte is sent, aborts the transfer on failure instead of ending a
// short file cleanly; a restore answers 400 for a file it refuses (snapshotfile.ErrRefused), 503
// while sealed (ErrSealed) and 500 otherwise. Each plane writes its own error envelope (Fail).
package snaphttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/strongroom/strongroom/internal/snapshotfile"
)

// ErrSealed matches the errors of Sealed: no snapshot is taken or restored while sealed.
var ErrSealed = errors.New("sealed")

// Sealed is an error whose text is msg and that matches ErrSealed.
func Sealed(msg string) error { return sealedError(msg) }

type sealedError string

func (e sealedError) Error() string        { return string(e) }
func (e sealedError) Is(target error) bool { return target == ErrSealed }

// Fail writes an error answer in the caller's envelope.
type Fail func(w http.ResponseWriter, status int, err error)

// Save streams what save writes as application/octet-stream. A save that fails before its
// first byte is answered 503 with its error; after it the transfer is aborted
// (http.ErrAbortHandler), so a client never takes a short file for a whole one.
func Save(w http.ResponseWriter, r *http.Request, save func(context.Context, io.Writer) error, fail Fail, log *slog.Logger) {
	w.Header().Set("Content-Type", "application/octet-stream")
	tw := &wroteTracker{w: w}
	if err := save(r.Context(), tw); err != nil {
		if !errors.Is(err, ErrSealed) {
			log.Error("saving snapshot", "err", err)
		}
		if !tw.wrote {
			w.Header().Del("Content-Type")
			fail(w, http.StatusServiceUnavailable, err)
			return
		}
		panic(http.ErrAbortHandler)
	}
}

// Restore restores the snapshot file in the request body with restore and answers with what
// its header says.
func Restore(w http.ResponseWriter, r *http.Request, restore func(context.Context, io.Reader) (snapshotfile.Info, error), fail Fail, log *slog.Logger) {
	info, err := restore(r.Context(), r.Body)
	switch {
	case errors.Is(err, snapshotfile.ErrRefused):
		fail(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrSealed):
		fail(w, http.StatusServiceUnavailable, err)
	case err != nil:
		log.Error("restoring snapshot", "err", err)
		fail(w, http.StatusInternalServerError, err)
	default:
		b, _ := json.Marshal(map[string]any{"restored": true, "sourceIndex": info.Index, "sourceNode": info.NodeID, "created": info.Created})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	}
}

type wroteTracker struct {
	w     io.Writer
	wrote bool
}

func (t *wroteTracker) Write(p []byte) (int, error) { t.wrote = true; return t.w.Write(p) }
