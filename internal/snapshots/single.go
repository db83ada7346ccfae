package snapshots

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/snapshotfile"
	"github.com/strongroom/strongroom/internal/snapshotfile/snaphttp"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// Snapshots of a single-node server use the file format cluster snapshots use: the whole bbolt
// store as of one read transaction, chunked AES-256-GCM under a random data key that travels in
// a header sealed under the root key.

var errSealed = snaphttp.Sealed("the server is sealed: unseal it before taking or restoring a snapshot")

// SingleNode takes and restores the snapshots of a single node's store.
type SingleNode struct {
	DB      *bolt.DB
	DataDir string
	Log     *slog.Logger
	// Audit records the operator socket's calls.
	Audit audit.Recorder
	// Sealer is the unsealed keyring, nil while the server is sealed.
	Sealer func() snapshotfile.RootSealer
	// Reload rebuilds the serving state after a restore replaced the store's content.
	Reload func(ctx context.Context) error
}

// Save writes an encrypted snapshot of the store to w.
func (s *SingleNode) Save(ctx context.Context, w io.Writer) error {
	rs := s.Sealer()
	if rs == nil {
		return errSealed
	}
	_, err := snapshotfile.Write(rs, s.DataDir, "", w, func(bw io.Writer) (uint64, error) {
		snap, err := s.DB.Snapshot()
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

// Restore replaces the store with a snapshot file. The whole file is authenticated and
// decrypted into a temporary file before anything changes; then the store file is swapped
// (bolt.DB.RestoreLive) and the serving state is rebuilt from it.
func (s *SingleNode) Restore(ctx context.Context, r io.Reader) (snapshotfile.Info, error) {
	rs := s.Sealer()
	if rs == nil {
		return snapshotfile.Info{}, errSealed
	}
	tmp, err := os.CreateTemp(s.DataDir, ".snapshot-restore-*")
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	info, err := snapshotfile.Open(rs, r, bw)
	if err != nil {
		return info, err
	}
	if err := bw.Flush(); err != nil {
		return info, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	if err := s.DB.RestoreLive(ctx, tmp); err != nil {
		return info, err
	}
	if err := s.Reload(ctx); err != nil {
		return info, fmt.Errorf("the store was restored but reloading it failed (restart the server): %w", err)
	}
	s.Log.Info("snapshot restored", "created", info.Created, "source_node", info.NodeID)
	return info, nil
}
