package app

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// clusterStore is the store a cluster node hands the rest of the server: the replicated store,
// plus the node (for request forwarding) and the fan-out of applied keys to the service.
// It deliberately has no Compact method: compaction of the state-machine file must be
// coordinated with Raft's apply loop, which is not done yet, so purges in cluster mode rely on
// cryptographic erasure alone.
type clusterStore struct {
	*raftstore.Store
	node *cluster.Node
	log  *slog.Logger

	mu     sync.Mutex
	svc    *service.Service
	vaults map[string]bool // vault record keys ever reported, so a snapshot restore can refresh them
}

func openClusterStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	cs := &clusterStore{log: log, vaults: map[string]bool{}}
	node, err := cluster.Start(ctx, cluster.Options{
		DataDir: cfg.DataDir, Cluster: cfg.Cluster, Log: log.With("component", "cluster"), RaftLog: os.Stderr,
		OnApplied: cs.applied,
	})
	if err != nil {
		return nil, err
	}
	cs.node, cs.Store = node, node.Store()
	return cs, nil
}

// Close stops the node (Raft, cluster port, operator socket) and closes the files.
func (cs *clusterStore) Close() error { return cs.node.Close() }

// vaultRecordPrefix is where the service keeps vault records (docs/architecture.md, Storage).
const vaultRecordPrefix = "arm/vault/"

// applied runs on Raft's apply goroutine after entries are durable on this node.
func (cs *clusterStore) applied(keys []string, restored bool) {
	cs.mu.Lock()
	svc := cs.svc
	for _, k := range keys {
		if strings.HasPrefix(k, vaultRecordPrefix) {
			cs.vaults[k] = true
		}
	}
	if restored && svc != nil { // unbound: bindStore refreshes everything when it binds
		keys = cs.refreshKeysLocked()
	}
	cs.mu.Unlock()
	if svc == nil || len(keys) == 0 {
		return
	}
	if err := svc.KeysApplied(context.Background(), keys); err != nil {
		cs.log.Error("refreshing caches after replicated writes", "err", err)
	}
}

// refreshKeysLocked lists every key whose cached copy may be stale after the whole file changed.
func (cs *clusterStore) refreshKeysLocked() []string {
	_ = cs.Store.Scan(context.Background(), vaultRecordPrefix, "", func(k string, _ []byte) bool {
		cs.vaults[k] = true
		return true
	})
	keys := []string{keyring.RingKey}
	for k := range cs.vaults {
		keys = append(keys, k)
	}
	return keys
}

// bindStore makes a cluster store keep svc's caches current: call it right after service.New
// and call the returned function when svc is dropped (seal). It also hands the node the unsealed
// keyring kr for snapshot files. It is a no-op for other stores.
// Keys applied between service.New and the binding are covered by a refresh of every vault
// record and the keyring at binding time.
func bindStore(st store.Store, svc *service.Service, kr *keyring.Keyring) (unbind func()) {
	cs, ok := st.(*clusterStore)
	if !ok {
		return func() {}
	}
	cs.node.SetRootSealer(kr) // snapshot files are sealed under the root key
	cs.mu.Lock()
	cs.svc = svc
	keys := cs.refreshKeysLocked()
	cs.mu.Unlock()
	if err := svc.KeysApplied(context.Background(), keys); err != nil {
		cs.log.Error("refreshing caches when binding the service", "err", err)
	}
	return func() {
		cs.mu.Lock()
		if cs.svc == svc {
			cs.svc = nil
			cs.node.SetRootSealer(nil)
		}
		cs.mu.Unlock()
	}
}
