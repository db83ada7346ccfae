package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/strongroom/strongroom/internal/store"
)

// Compaction in cluster mode. Every node keeps its own state-machine file, so every node must
// compact its own copy after a purge, and the copy must not race Raft's apply loop (a write
// applied during the copy would be lost at the swap). The compaction is therefore itself an
// entry in the log: Compact commits a put of compactRequestKey, and each node, when it applies
// that entry, compacts its file on Raft's apply goroutine, the file's only writer, after every
// earlier entry (the purge) and before any later one. Reads continue during the copy and wait for
// the swap; this node's apply pipeline (and, on the leader, acknowledgements) pauses meanwhile.
// The same path serves `operator compact` and the compaction that follows purges
// (compact_delay).

// compactRequestKey holds the time of the last compaction request (plaintext, no secret).
const compactRequestKey = "sys/cluster/compact"

// compactState tracks this node's local compactions, so Compact can wait for its own.
type compactState struct {
	mu      sync.Mutex
	gen     uint64
	lastErr error
	changed chan struct{}
}

// Compact asks every member to compact its state-machine file and returns once this node has.
func (s *Store) Compact(ctx context.Context) error {
	s.compact.mu.Lock()
	gen := s.compact.gen
	s.compact.mu.Unlock()
	req := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	if err := s.Store.Apply(ctx, []store.Op{store.Put(compactRequestKey, req)}); err != nil {
		return fmt.Errorf("requesting compaction: %w", err)
	}
	for {
		s.compact.mu.Lock()
		done, err, ch := s.compact.gen > gen, s.compact.lastErr, s.compact.changed
		s.compact.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for this node's compaction: %w", ctx.Err())
		}
	}
}

// compactLocal compacts this node's file; it runs on Raft's apply goroutine (applied).
func (s *Store) compactLocal() {
	start := time.Now()
	err := s.Store.DB().CompactIndexed()
	if err != nil {
		s.log.Error("compacting the state-machine file", "err", err)
	} else {
		s.log.Info("compacted the state-machine file", "took", time.Since(start).Round(time.Millisecond))
	}
	c := &s.compact
	c.mu.Lock()
	c.gen++
	c.lastErr = err
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	s.hooks.Compacted(err)
}
