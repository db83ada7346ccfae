package servercmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/cluster"
)

// raftSnapshotCommand returns `snapshot save|restore`: whole-cluster snapshot files, encrypted
// and authenticated (the format of internal/snapshotfile).
func raftSnapshotCommand() *cobra.Command {
	return snapshotCommand("Save or restore an encrypted snapshot of the whole cluster")
}

// newOperatorSnapshotCommand returns `operator snapshot save|restore`, which works on a single
// node (its bbolt store) and on a cluster node (the whole cluster) alike.
func newOperatorSnapshotCommand() *cobra.Command {
	return snapshotCommand("Save or restore an encrypted snapshot of the server's store (single node or whole cluster)")
}

func snapshotCommand(short string) *cobra.Command {
	snap := &cobra.Command{Use: "snapshot", Short: short}
	var dataDir string
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Write a consistent, encrypted snapshot of the store to FILE (writes may continue)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := snapshotCall(cmd.Context(), dataDir, "GET", nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			// Write next to the target and rename only a complete transfer.
			tmp, err := os.CreateTemp(filepath.Dir(args[0]), ".snapshot-*")
			if err != nil {
				return fmt.Errorf("creating snapshot file: %w", err)
			}
			defer os.Remove(tmp.Name())
			n, err := io.Copy(tmp, resp.Body)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("receiving snapshot: %w", err)
			}
			if err := os.Rename(tmp.Name(), args[0]); err != nil {
				return fmt.Errorf("saving snapshot: %w", err)
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"file": args[0], "bytes": n})
		},
	}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the store (a single node's, or the whole cluster's) with a snapshot file made under the same root key",
		Long: "Restore checks the whole file (authenticity, integrity, completeness) before it changes anything; then the " +
			"store is replaced atomically (in a cluster every member installs it and writes in flight are aborted). The " +
			"snapshot brings its keyring, identities and vaults; each server rebuilds its caches from it without a restart.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("opening snapshot: %w", err)
			}
			defer f.Close()
			resp, err := snapshotCall(cmd.Context(), dataDir, "POST", f)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	for _, c := range []*cobra.Command{save, restore} {
		c.Flags().StringVar(&dataDir, "data-dir", "./strongroom-data", "data folder of a running node")
		snap.AddCommand(c)
	}
	return snap
}

// snapshotCall streams a snapshot over the operator socket; a non-200 answer becomes an error.
func snapshotCall(ctx context.Context, dataDir, method string, body io.Reader) (*http.Response, error) {
	sock := cluster.SocketPath(dataDir)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	req, err := http.NewRequestWithContext(ctx, method, "http://node/v1/snapshot", body)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("calling the node's operator socket %s (is the server running?): %w", sock, err)
	}
	if resp.StatusCode != 200 {
		defer cancel()
		defer resp.Body.Close()
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		return nil, fmt.Errorf("snapshot: HTTP %d: %s", resp.StatusCode, e.Error.Message)
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }
