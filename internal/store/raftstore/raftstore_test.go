package raftstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/raftstore"
	"github.com/strongroom/strongroom/internal/store/storetest"
)

// cluster is an in-process cluster on Raft's in-memory transport with real log, snapshot and
// state-machine files.
type cluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[raft.ServerID]*raftstore.Store
	trans map[raft.ServerID]*raft.InmemTransport
	dirs  map[raft.ServerID]string
	opts  func(*raftstore.Options)
}

func newCluster(t *testing.T, n int, tune func(*raftstore.Options)) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[raft.ServerID]*raftstore.Store{}, trans: map[raft.ServerID]*raft.InmemTransport{},
		dirs: map[raft.ServerID]string{}, opts: tune}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.nodes {
			s.Close()
		}
	})
	first := c.start("n0", true)
	waitLeader(t, first)
	for i := 1; i < n; i++ {
		id := raft.ServerID(fmt.Sprintf("n%d", i))
		c.start(id, false)
		if err := first.Raft().AddVoter(id, raft.ServerAddress(id), 0, 5*time.Second).Error(); err != nil {
			t.Fatalf("adding %s: %v", id, err)
		}
	}
	return c
}

// start opens (or reopens) node id and connects its transport to every other node.
func (c *cluster) start(id raft.ServerID, bootstrap bool) *raftstore.Store {
	c.t.Helper()
	c.mu.Lock()
	dir, ok := c.dirs[id]
	if !ok {
		dir = filepath.Join(c.t.TempDir(), string(id))
		c.dirs[id] = dir
	}
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	for oid, ot := range c.trans {
		if oid != id {
			tr.Connect(ot.LocalAddr(), ot)
			ot.Connect(tr.LocalAddr(), tr)
		}
	}
	c.trans[id] = tr
	c.mu.Unlock()
	o := raftstore.Options{
		Dir: dir, ID: id, Transport: tr, Bootstrap: bootstrap, Forward: c.forward,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond, LeaderLeaseTimeout: 250 * time.Millisecond,
	}
	if c.opts != nil {
		c.opts(&o)
	}
	s, err := raftstore.Open(o)
	if err != nil {
		c.t.Fatalf("opening %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = s
	c.mu.Unlock()
	return s
}

// stop closes node id and cuts it off the in-memory network.
func (c *cluster) stop(id raft.ServerID) {
	c.mu.Lock()
	s := c.nodes[id]
	delete(c.nodes, id)
	tr := c.trans[id]
	delete(c.trans, id)
	for _, ot := range c.trans {
		ot.Disconnect(tr.LocalAddr())
	}
	c.mu.Unlock()
	if err := s.Close(); err != nil {
		c.t.Errorf("closing %s: %v", id, err)
	}
}

func (c *cluster) forward(_ context.Context, _ raft.ServerAddress, id raft.ServerID, entry []byte) (uint64, error) {
	c.mu.Lock()
	s := c.nodes[id]
	c.mu.Unlock()
	if s == nil {
		return 0, raftstore.ErrNoLeader
	}
	return s.ApplyLeader(entry)
}

func (c *cluster) node(id raft.ServerID) *raftstore.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) leader() *raftstore.Store {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.nodes {
			if s.IsLeader() {
				c.mu.Unlock()
				return s
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader within 10s")
	return nil
}

func (c *cluster) follower() *raftstore.Store {
	c.t.Helper()
	l := c.leader()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.nodes {
		if s != l {
			return s
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func waitLeader(t *testing.T, s *raftstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStore_Conformance(t *testing.T) {
	cases := []struct {
		name  string
		nodes int
	}{
		{"OneNode", 1},
		{"ThreeNodesThroughFollower", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Exercise(t, func(t *testing.T) store.Store {
				c := newCluster(t, tc.nodes, nil)
				if tc.nodes == 1 {
					return c.leader()
				}
				return c.follower()
			})
		})
	}
}

func TestStore_Apply_ReplicatesToEveryNode(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	f := c.follower()
	for i := range 50 {
		if err := f.Apply(ctx, []store.Op{store.Put(fmt.Sprintf("k/%03d", i), []byte{byte(i)})}); err != nil {
			t.Fatal(err)
		}
	}
	idx := f.AppliedIndex()
	for _, id := range []raft.ServerID{"n0", "n1", "n2"} {
		s := c.node(id)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.WaitApplied(wctx, idx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if n := count(t, s, "k/"); n != 50 {
			t.Fatalf("%s holds %d keys, want 50", id, n)
		}
	}
}

func TestStore_ReadBarrier_OnlyOnLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.leader().ReadBarrier(ctx); err != nil {
		t.Fatalf("leader ReadBarrier: %v", err)
	}
	if err := c.follower().ReadBarrier(ctx); !errors.Is(err, raftstore.ErrNotLeader) {
		t.Fatalf("follower ReadBarrier err = %v, want ErrNotLeader", err)
	}
}

// A node that misses more writes than the leader keeps in its log catches up by installing a
// snapshot, and a restarted node keeps its file without re-applying entries.
func TestStore_RestartedNode_CatchesUpThroughSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(o *raftstore.Options) {
		o.SnapshotThreshold, o.TrailingLogs, o.SnapshotInterval = 64, 16, 100*time.Millisecond
	})
	ctx := context.Background()
	l := c.leader()
	var victim raft.ServerID
	for _, id := range []raft.ServerID{"n0", "n1", "n2"} {
		if c.node(id) != l {
			victim = id
			break
		}
	}
	c.stop(victim)
	const writes = 600
	for i := range writes {
		if err := c.leader().Apply(ctx, []store.Op{store.Put(fmt.Sprintf("w/%04d", i), []byte("v"))}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// Wait until the leader has snapshotted (and so compacted its log) well past what the victim
	// has: a snapshot taken early in the burst would leave the victim's entries in the log and
	// let it catch up by replication instead, which is not what this test is about.
	deadline := time.Now().Add(20 * time.Second)
	for {
		idx, _ := strconv.Atoi(c.leader().Raft().Stats()["last_snapshot_index"])
		if idx > writes/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leader took no snapshot")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := c.start(victim, false)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.WaitApplied(wctx, c.leader().AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "w/"); n != writes {
		t.Fatalf("restarted node holds %d keys, want %d", n, writes)
	}
	// Raft records the installed snapshot just after the FSM has restored it: poll briefly.
	for wait := time.Now().Add(5 * time.Second); s.Raft().Stats()["last_snapshot_index"] == "0"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("restarted node did not install a snapshot (stats %v)", s.Raft().Stats())
		}
	}
}

func count(t *testing.T, s store.Reader, prefix string) int {
	t.Helper()
	n := 0
	if err := s.Scan(context.Background(), prefix, "", func(string, []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}
