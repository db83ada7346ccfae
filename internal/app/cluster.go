package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
type clusterStore struct {
	*raftstore.Store
	node *cluster.Node
	log  *slog.Logger

	mu     sync.Mutex
	svc    *service.Service
	vaults map[string]bool // vault record keys ever reported, so a snapshot restore can refresh them
	// onRestore is called (on its own goroutine) after a snapshot replaced the whole file while a
	// service was bound: the server rebuilds identities and the API handler from it.
	onRestore func()
	// onJoin records a join attempt this node decided as leader (the audit log opens after the
	// store, so it is set later; attempts before that are only logged).
	onJoin func(ctx context.Context, a cluster.JoinAttempt) error
	// onOperator records an operator call this node executed (set with onJoin).
	onOperator cluster.OperatorAuditFunc

	compact compactState // local compactions (cluster_compact.go)
}

func openClusterStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	cs := &clusterStore{log: log, vaults: map[string]bool{}, compact: compactState{changed: make(chan struct{})}}
	node, err := cluster.Start(ctx, cluster.Options{
		DataDir: cfg.DataDir, Cluster: cfg.Cluster, Log: log.With("component", "cluster"), RaftLog: os.Stderr,
		OnApplied: cs.applied,
		AuditJoin: func(ctx context.Context, a cluster.JoinAttempt) error {
			cs.mu.Lock()
			fn := cs.onJoin
			cs.mu.Unlock()
			if fn == nil {
				return errors.New("the audit log is not open yet")
			}
			return fn(ctx, a)
		},
		AuditOperator: func(ctx context.Context, op string, status int) error {
			cs.mu.Lock()
			fn := cs.onOperator
			cs.mu.Unlock()
			if fn == nil {
				return errors.New("the audit log is not open yet")
			}
			return fn(ctx, op, status)
		},
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
	compact := false
	cs.mu.Lock()
	svc := cs.svc
	for _, k := range keys {
		if strings.HasPrefix(k, vaultRecordPrefix) {
			cs.vaults[k] = true
		}
		compact = compact || k == compactRequestKey
	}
	var hook func()
	if restored && svc != nil { // unbound: bindStore refreshes everything when it binds
		keys = cs.refreshKeysLocked()
		hook = cs.onRestore
	}
	cs.mu.Unlock()
	if compact {
		cs.compactLocal() // here, on the apply goroutine: see cluster_compact.go
	}
	if svc == nil || len(keys) == 0 {
		return
	}
	if err := svc.KeysApplied(context.Background(), keys); err != nil {
		cs.log.Error("refreshing caches after replicated writes", "err", err)
	}
	if hook != nil {
		// Not on Raft's apply goroutine: rebuilding reads the store and may wait for it.
		go hook()
	}
}

// setClusterAudit registers the functions that record join attempts and operator calls decided
// by a cluster node.
func setClusterAudit(st any, join func(ctx context.Context, a cluster.JoinAttempt) error, op cluster.OperatorAuditFunc) {
	if cs, ok := st.(*clusterStore); ok {
		cs.mu.Lock()
		cs.onJoin, cs.onOperator = join, op
		cs.mu.Unlock()
	}
}

// setOnRestore registers fn to run after a snapshot restore replaced a cluster store's file.
func setOnRestore(st any, fn func()) {
	if cs, ok := st.(*clusterStore); ok {
		cs.mu.Lock()
		cs.onRestore = fn
		cs.mu.Unlock()
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

// auditJoin writes a join attempt to this (leader) node's audit log: the claimed node id, labels
// and address, the caller's address and the outcome; never the token.
func (c *core) auditJoin(ctx context.Context, a cluster.JoinAttempt) error {
	ip, _, err := net.SplitHostPort(a.RemoteAddr)
	if err != nil {
		ip = ""
	}
	desc := "admitted as a non-voter"
	switch {
	case a.Status == http.StatusForbidden:
		desc = "refused: the join token is unknown, used or expired"
	case a.Status == http.StatusConflict:
		desc = "refused: a member with this node id exists"
	case a.Status >= 500:
		desc = "failed"
	case a.Status >= 400:
		desc = "refused: malformed join request"
	}
	desc = fmt.Sprintf("node %q region %q cluster address %q dr replica %t: %s", a.NodeID, a.Region, a.ClusterAddr, a.NonVoter, desc)
	rec := sysRecord(a.Time, "ClusterJoin", a.Status, ip, c.cfg.PublicURL+"/sys/cluster/join")
	rec.ResultDescription, rec.Properties.ID = desc, a.NodeID
	if err := c.auditLog().Write(ctx, rec); err != nil {
		return fmt.Errorf("auditing a join attempt: %w", err)
	}
	return nil
}
