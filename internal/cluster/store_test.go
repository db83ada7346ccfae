package cluster

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/raftstore"
)

// recordingHooks is a server as the store sees it: it reports what the node called.
type recordingHooks struct {
	restored  chan struct{}
	compacted chan error
}

func (h *recordingHooks) Restored()           { h.restored <- struct{}{} }
func (h *recordingHooks) Compacted(err error) { h.compacted <- err }

// keysSink is a service whose caches follow applied keys.
type keysSink chan []string

func (k keysSink) KeysApplied(_ context.Context, keys []string) error {
	k <- slices.Sorted(slices.Values(keys))
	return nil
}

// newTestStore is a cluster store over a one-node Raft store, without the node's network.
func newTestStore(t *testing.T) (*Store, *recordingHooks) {
	t.Helper()
	h := &recordingHooks{restored: make(chan struct{}, 1), compacted: make(chan error, 1)}
	s := &Store{log: slog.New(slog.DiscardHandler), hooks: h, tracked: map[string]bool{},
		opts:    StoreOptions{TrackPrefix: "arm/vault/", AlwaysRefresh: []string{"keyring"}},
		compact: compactState{changed: make(chan struct{})}}
	_, tr := raft.NewInmemTransport("n0")
	rs, err := raftstore.Open(raftstore.Options{Dir: filepath.Join(t.TempDir(), "n0"), ID: "n0", Transport: tr, Bootstrap: true,
		OnApplied: s.applied, HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond, LeaderLeaseTimeout: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	s.Store = rs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := rs.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return s, h
}

func TestStore_CompactRunsThroughTheLogAndReportsToTheHooks(t *testing.T) {
	s, h := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Compact(ctx); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if err := <-h.compacted; err != nil {
		t.Fatalf("hook saw %v, want a successful compaction", err)
	}
	if v, err := s.Get(ctx, compactRequestKey); err != nil || len(v) == 0 {
		t.Fatalf("compaction request record: %q, %v", v, err)
	}
}

func TestStore_AppliedKeysReachTheBoundServiceAndARestoreRefreshesTracked(t *testing.T) {
	s, h := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink := make(keysSink, 4)
	s.mu.Lock()
	s.svc = sink // what Bind does, without the node's root sealer
	s.mu.Unlock()
	if err := s.Apply(ctx, []store.Op{store.Put("arm/vault/a", []byte("x")), store.Put("other", []byte("y"))}); err != nil {
		t.Fatal(err)
	}
	if got := <-sink; !slices.Equal(got, []string{"arm/vault/a", "other"}) {
		t.Fatalf("applied keys %v", got)
	}
	s.applied(nil, true) // a snapshot restore replaced the file
	if got := <-sink; !slices.Equal(got, []string{"arm/vault/a", "keyring"}) {
		t.Fatalf("keys refreshed after a restore %v, want every tracked key and the keyring", got)
	}
	<-h.restored
}
