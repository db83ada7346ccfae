package cluster

import (
	"context"
	"github.com/strongroom/strongroom/internal/audit"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// Store is the store a cluster node hands the rest of the server: the replicated store, plus
// the node (request forwarding, snapshots, status) and the fan-out of applied keys to the bound
// service's caches. Close stops the node. It is safe for concurrent use.
type Store struct {
	*raftstore.Store
	node  *Node
	log   *slog.Logger
	hooks StoreHooks
	opts  StoreOptions

	mu      sync.Mutex
	svc     KeysApplier
	tracked map[string]bool // keys under TrackPrefix ever applied, so a restore can refresh them

	compact compactState // local compactions (compact.go)
}

// StoreHooks is what the server gives the cluster store it opens. The store is opened before
// the server can serve (the server's state is built from the store), yet the node applies
// entries from Start on, so the hooks are passed at OpenStore instead of set later: the metrics
// they use must exist before OpenStore is called (and the audit log, StoreOptions.Audit). The
// node calls them from its own goroutines.
type StoreHooks interface {
	// Restored runs, on its own goroutine, after a snapshot restore replaced the whole file while
	// a service was bound: the server rebuilds its serving state (keyring, identities, handler).
	Restored()
	// Compacted observes each local compaction of this node's state-machine file (metrics).
	Compacted(err error)
}

// KeysApplier is the service whose caches follow the keys applied on this node.
type KeysApplier interface {
	KeysApplied(ctx context.Context, keys []string) error
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	DataDir string
	Cluster config.ClusterConfig
	Log     *slog.Logger
	RaftLog io.Writer // hashicorp/raft's own log lines; nil discards them
	Hooks   StoreHooks
	// Audit and PublicURL are passed to the node (Options): the audit log must be open first.
	Audit     audit.Recorder
	PublicURL string
	// TrackPrefix is where the bound service keeps records whose cached copies a snapshot restore
	// can make stale (the vault records); every key under it ever applied is refreshed then.
	TrackPrefix string
	// AlwaysRefresh are further keys refreshed after a restore and at Bind (the keyring record).
	AlwaysRefresh []string
}

// OpenStore starts this node (Start) and returns its store.
func OpenStore(ctx context.Context, o StoreOptions) (*Store, error) {
	s := &Store{log: o.Log, hooks: o.Hooks, opts: o, tracked: map[string]bool{}, compact: compactState{changed: make(chan struct{})}}
	node, err := Start(ctx, Options{
		DataDir: o.DataDir, Cluster: o.Cluster, Log: o.Log.With("component", "cluster"), RaftLog: o.RaftLog,
		OnApplied: s.applied,
		Audit:     o.Audit, PublicURL: o.PublicURL,
	})
	if err != nil {
		return nil, err
	}
	s.node, s.Store = node, node.Store()
	return s, nil
}

// Node is the cluster member behind the store.
func (s *Store) Node() *Node { return s.node }

// Handler forwards API requests to the leader while ready (see Node.Handler).
func (s *Store) Handler(h http.Handler, ready func() bool) http.Handler {
	return s.node.Handler(h, ready)
}

// Close stops the node (Raft, cluster port, operator socket) and closes the files.
func (s *Store) Close() error { return s.node.Close() }

// applied runs on Raft's apply goroutine after entries are durable on this node.
func (s *Store) applied(keys []string, restored bool) {
	compact := false
	s.mu.Lock()
	svc := s.svc
	for _, k := range keys {
		if s.opts.TrackPrefix != "" && strings.HasPrefix(k, s.opts.TrackPrefix) {
			s.tracked[k] = true
		}
		compact = compact || k == compactRequestKey
	}
	reload := false
	if restored && svc != nil { // unbound: Bind refreshes everything when it binds
		keys = s.refreshKeysLocked()
		reload = true
	}
	s.mu.Unlock()
	if compact {
		s.compactLocal() // here, on the apply goroutine: see compact.go
	}
	if svc == nil || len(keys) == 0 {
		return
	}
	if err := svc.KeysApplied(context.Background(), keys); err != nil {
		s.log.Error("refreshing caches after replicated writes", "err", err)
	}
	if reload {
		// Not on Raft's apply goroutine: rebuilding reads the store and may wait for it.
		go s.hooks.Restored()
	}
}

// refreshKeysLocked lists every key whose cached copy may be stale after the whole file changed.
func (s *Store) refreshKeysLocked() []string {
	if s.opts.TrackPrefix != "" {
		_ = s.Store.Scan(context.Background(), s.opts.TrackPrefix, "", func(k string, _ []byte) bool {
			s.tracked[k] = true
			return true
		})
	}
	keys := append([]string(nil), s.opts.AlwaysRefresh...)
	for k := range s.tracked {
		keys = append(keys, k)
	}
	return keys
}

// Bind makes the store keep svc's caches current: call it right after the service is built and
// call the returned function when the service is dropped (seal). It also hands the node the
// unsealed keyring rs for snapshot files and the cluster CA key. Keys applied between the
// service's construction and the binding are covered by a refresh of every tracked key at
// binding time.
func (s *Store) Bind(svc KeysApplier, rs RootSealer) (unbind func()) {
	s.node.SetRootSealer(rs)
	s.mu.Lock()
	s.svc = svc
	keys := s.refreshKeysLocked()
	s.mu.Unlock()
	if err := svc.KeysApplied(context.Background(), keys); err != nil {
		s.log.Error("refreshing caches when binding the service", "err", err)
	}
	return func() {
		s.mu.Lock()
		if s.svc == svc {
			s.svc = nil
			s.node.SetRootSealer(nil)
		}
		s.mu.Unlock()
	}
}
