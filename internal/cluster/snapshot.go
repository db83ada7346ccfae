package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom/strongroom/internal/snapshotfile"
	"github.com/strongroom/strongroom/internal/snapshotfile/snaphttp"
	"github.com/strongroom/strongroom/internal/store"
)

// Snapshot files (`operator raft snapshot save|restore`) hold the whole replicated store as of
// one linearizable point, in the format of internal/snapshotfile (encrypted and authenticated
// under a key sealed by the root key). This file serves them on the operator socket.

// RootSealer seals small payloads under the root key (keyring.Keyring implements it). A node has
// one only while unsealed.
type RootSealer = snapshotfile.RootSealer

type sealerBox struct{ s RootSealer }

// SetRootSealer gives the node the unsealed keyring (nil when sealed again).
func (n *Node) SetRootSealer(s RootSealer) {
	if s == nil {
		n.sealer.Store(nil)
		return
	}
	n.sealer.Store(&sealerBox{s})
	if n.localCAKey.Load() != nil {
		n.wg.Add(1)
		go n.moveCAKeyToStore()
	}
}

func (n *Node) rootSealer() RootSealer {
	if b := n.sealer.Load(); b != nil {
		return b.s
	}
	return nil
}

// writeSnapshot streams an encrypted snapshot of the store to w.
func (n *Node) writeSnapshot(ctx context.Context, w io.Writer) error {
	rs := n.rootSealer()
	if rs == nil {
		return errSealed
	}
	idx, err := snapshotfile.Write(rs, filepath.Join(n.opts.DataDir, "raft"), n.cfg.NodeID, w, func(bw io.Writer) (uint64, error) {
		return n.store.Backup(ctx, bw)
	})
	if err == nil {
		n.log.Info("snapshot saved", "index", idx)
	}
	return err
}

// errSealed matches snaphttp.ErrSealed, so a sealed node answers 503.
var errSealed = snaphttp.Sealed("this node is sealed: unseal it before taking or restoring a snapshot")

// restoreSnapshot verifies a whole snapshot stream into a temporary file, then replaces the
// cluster's state with it through Raft.
func (n *Node) restoreSnapshot(r io.Reader) (snapshotfile.Info, error) {
	rs := n.rootSealer()
	if rs == nil {
		return snapshotfile.Info{}, errSealed
	}
	tmp, err := os.CreateTemp(filepath.Join(n.opts.DataDir, "raft"), "snapshot-restore-*")
	if err != nil {
		return snapshotfile.Info{}, fmt.Errorf("creating temporary file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	h, err := snapshotfile.Open(rs, r, bw)
	if err != nil {
		return h, err
	}
	if err := bw.Flush(); err != nil {
		return h, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return h, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return h, err
	}
	// The cluster CA key record survives a restore (another cluster's snapshot lacks it).
	caKey, caErr := n.store.Get(context.Background(), n.caKeyRecord())
	if err := n.store.RestoreBackup(tmp, size, h.Index, 2*time.Minute); err != nil {
		return h, err
	}
	if caErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.store.Apply(ctx, []store.Op{store.Put(n.caKeyRecord(), caKey)})
		cancel()
		if err != nil {
			return h, fmt.Errorf("restored, but putting the cluster CA key record back failed (joins fail until it is): %w", err)
		}
	}
	n.log.Info("snapshot restored", "source_index", h.Index, "source_node", h.NodeID, "created", h.Created)
	return h, nil
}

func (n *Node) serveSnapshotSave(w http.ResponseWriter, r *http.Request) {
	snaphttp.Save(w, r, n.writeSnapshot, opFail, n.log)
}

func (n *Node) serveSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	snaphttp.Restore(w, r, func(_ context.Context, body io.Reader) (snapshotfile.Info, error) {
		return n.restoreSnapshot(body)
	}, opFail, n.log)
}
