package snapshots

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/strongroom/strongroom/internal/azkv"
	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/snapshotfile/snaphttp"
)

// A single node serves its snapshots on its own operator socket, <data_dir>/operator.sock (mode
// 0600), as a cluster node does, with the cluster's audit of operator calls
// (cluster.AuditOperation) and its peer-credential caller (cluster.SocketConnContext):
//
//	GET  /v1/status    {"mode": "single-node", "sealed": bool}
//	GET  /v1/snapshot  an encrypted snapshot file
//	POST /v1/snapshot  restore the store from a snapshot file

// ServeSocket serves the single-node operator API on <data_dir>/operator.sock until stop.
func (s *SingleNode) ServeSocket() (stop func(), err error) {
	path := cluster.SocketPath(s.DataDir)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on operator socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("securing operator socket: %w", err)
	}
	srv := &http.Server{Handler: s.socketHandler(path), ReadHeaderTimeout: 10 * time.Second, ConnContext: cluster.SocketConnContext}
	go func() { _ = srv.Serve(ln) }()
	return func() { srv.Close(); os.Remove(path) }, nil
}

func (s *SingleNode) socketHandler(path string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		b, _ := json.Marshal(map[string]any{"mode": "single-node", "sealed": s.Sealer() == nil})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	})
	save := func(ctx context.Context, w io.Writer) error {
		err := s.Save(ctx, w)
		if err == nil {
			s.Log.Info("snapshot saved")
		}
		return err
	}
	mux.HandleFunc("GET /v1/snapshot", cluster.AuditOperation(s.Audit, path, "OperatorSnapshotSave", true, func(w http.ResponseWriter, r *http.Request) {
		snaphttp.Save(w, r, save, fail, s.Log)
	}))
	mux.HandleFunc("POST /v1/snapshot", cluster.AuditOperation(s.Audit, path, "OperatorSnapshotRestore", false, func(w http.ResponseWriter, r *http.Request) {
		snaphttp.Restore(w, r, s.Restore, fail, s.Log)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusBadRequest, "Bad Request", "this server is not in cluster mode: only `operator snapshot save|restore` work on its operator socket")
	})
	return mux
}

// fail is the single-node socket's envelope; its codes are the ones it has always answered.
func fail(w http.ResponseWriter, status int, err error) {
	code := map[int]string{http.StatusBadRequest: "Bad Request", http.StatusServiceUnavailable: "ServiceUnavailable"}[status]
	if code == "" {
		code = "InternalServerError"
	}
	writeError(w, status, code, err.Error())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	azkv.WriteError(w, status, azkv.NewError(code, msg, ""))
}
