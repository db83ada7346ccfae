package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/snapshotfile"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Snapshots of a single-node server (`strongroom operator snapshot save|restore`) use the file
// format cluster snapshots use (internal/snapshotfile): the whole bbolt store as of one
// read transaction, chunked AES-256-GCM under a random data key that travels in a header sealed
// under the root key. The single-node server serves them on its own operator socket,
// <data_dir>/operator.sock (mode 0600), as a cluster node does:
//
//	GET  /v1/status    {"mode": "single-node"}
//	GET  /v1/snapshot  an encrypted snapshot file
//	POST /v1/snapshot  restore the store from a snapshot file

var errSealedSnapshot = errors.New("the server is sealed: unseal it before taking or restoring a snapshot")

// writeSnapshot writes an encrypted snapshot of the running server's store to w: the whole
// cluster's (on the leader only) or the single-node bbolt file's.
func (c *core) writeSnapshot(ctx context.Context, w io.Writer) error {
	u := c.active.Load()
	if u == nil {
		return errSealedSnapshot
	}
	if cs, ok := c.st.(*cluster.Store); ok {
		return cs.Node().SaveSnapshot(ctx, w)
	}
	db, ok := c.st.(*bolt.DB)
	if !ok {
		return fmt.Errorf("this store does not take snapshots")
	}
	_, err := snapshotfile.Write(u.kr, c.cfg.DataDir, "", w, func(bw io.Writer) (uint64, error) {
		snap, err := db.Snapshot()
		if err != nil {
			return 0, err
		}
		defer snap.Close()
		if _, err := snap.WriteTo(bw); err != nil {
			return 0, fmt.Errorf("writing the store: %w", err)
		}
		return snap.Index, nil
	})
	return err
}

// restoreSnapshot replaces a single node's store with a snapshot file. The whole file is
// authenticated and decrypted into a temporary file before anything changes; then the store file
// is swapped (bolt.DB.RestoreLive) and the serving state is rebuilt from it.
func (c *core) restoreSnapshot(ctx context.Context, r io.Reader) (snapshotfile.Info, error) {
	u := c.active.Load()
	if u == nil {
		return snapshotfile.Info{}, errSealedSnapshot
	}
	db, ok := c.st.(*bolt.DB)
	if !ok {
		return snapshotfile.Info{}, fmt.Errorf("this store is restored with `operator raft snapshot restore`")
	}
	tmp, err := os.CreateTemp(c.cfg.DataDir, ".snapshot-restore-*")
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	info, err := snapshotfile.Open(u.kr, r, bw)
	if err != nil {
		return info, err
	}
	if err := bw.Flush(); err != nil {
		return info, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	if err := db.RestoreLive(ctx, tmp); err != nil {
		return info, err
	}
	if err := c.reload(ctx); err != nil {
		return info, fmt.Errorf("the store was restored but reloading it failed (restart the server): %w", err)
	}
	c.log.Info("snapshot restored", "created", info.Created, "source_node", info.NodeID)
	return info, nil
}

// reload rebuilds the serving state (keyring, identities, vault cache, API handler, background
// jobs) from the store after its whole content was replaced by a snapshot restore, without
// sealing: the keyring is re-read under the root key this server already holds.
func (c *core) reload(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.active.Load()
	if old == nil {
		return nil // sealed meanwhile: the next unseal reads the restored store
	}
	if err := old.kr.Reload(ctx); err != nil {
		return fmt.Errorf("reloading the keyring: %w", err)
	}
	ids, err := identity.New(ctx, c.st, old.kr, identity.Options{PublicURL: c.cfg.PublicURL, Erased: c.requestErasure})
	if err != nil {
		return fmt.Errorf("reloading identities: %w", err)
	}
	u, err := c.build(ctx, old.kr, ids)
	if err != nil {
		return err
	}
	if !c.active.CompareAndSwap(old, u) {
		u.close()
		return nil
	}
	old.close()
	c.log.Info("serving state reloaded from the restored store", "tenant_id", ids.TenantID())
	return nil
}

// startOperatorSocket serves the single-node operator API on <data_dir>/operator.sock. A cluster
// node's socket is the cluster package's (the same snapshot routes, plus membership).
func (c *core) startOperatorSocket() (stop func(), err error) {
	path := cluster.SocketPath(c.cfg.DataDir)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on operator socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("securing operator socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		c.writeJSON(w, 200, map[string]any{"mode": "single-node", "sealed": c.sealed()})
	})
	mux.HandleFunc("GET /v1/snapshot", cluster.AuditOperation(c.auditLog(), cluster.SocketPath(c.cfg.DataDir), "OperatorSnapshotSave", true, func(w http.ResponseWriter, r *http.Request) {
		if c.sealed() {
			c.fail(w, 503, "ServiceUnavailable", errSealedSnapshot.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		tw := &wroteTracker{w: w}
		if err := c.writeSnapshot(r.Context(), tw); err != nil {
			c.log.Error("saving snapshot", "err", err)
			if !tw.wrote {
				w.Header().Del("Content-Type")
				c.fail(w, 503, "ServiceUnavailable", err.Error())
				return
			}
			panic(http.ErrAbortHandler) // a broken transfer, never a short file
		}
		c.log.Info("snapshot saved")
	}))
	mux.HandleFunc("POST /v1/snapshot", cluster.AuditOperation(c.auditLog(), cluster.SocketPath(c.cfg.DataDir), "OperatorSnapshotRestore", false, func(w http.ResponseWriter, r *http.Request) {
		info, err := c.restoreSnapshot(r.Context(), r.Body)
		switch {
		case errors.Is(err, snapshotfile.ErrRefused):
			c.fail(w, 400, "Bad Request", err.Error())
		case errors.Is(err, errSealedSnapshot):
			c.fail(w, 503, "ServiceUnavailable", err.Error())
		case err != nil:
			c.log.Error("restoring snapshot", "err", err)
			c.fail(w, 500, "InternalServerError", err.Error())
		default:
			c.writeJSON(w, 200, map[string]any{"restored": true, "sourceIndex": info.Index, "sourceNode": info.NodeID, "created": info.Created})
		}
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		c.fail(w, 400, "Bad Request", "this server is not in cluster mode: only `operator snapshot save|restore` work on its operator socket")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnContext: cluster.SocketConnContext}
	go func() { _ = srv.Serve(ln) }()
	return func() { srv.Close(); os.Remove(path) }, nil
}

type wroteTracker struct {
	w     io.Writer
	wrote bool
}

func (t *wroteTracker) Write(p []byte) (int, error) { t.wrote = true; return t.w.Write(p) }
