package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// notedIntent is a request's audit intent that can travel in the log (store.NotedIntent);
// journaled counts the times the store asked for it on its own instead.
type notedIntent struct {
	note      string
	journaled int
}

func (n *notedIntent) RecordIntent(context.Context) error { n.journaled++; return nil }
func (n *notedIntent) IntentNote(context.Context) ([]byte, error) {
	return []byte(n.note), nil
}

// TestWAL_NotesTravelWithTheirBatch: a batch's note is logged with it, never becomes a key, is
// handed back when the store reopens after a crash, and BeforeCheckpoint runs before a
// checkpoint flushes the segment holding it; a batch the log cannot carry (a prefix delete)
// makes its intent durable on its own instead.
func TestWAL_NotesTravelWithTheirBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	var mu sync.Mutex
	var handed [][]byte
	checkpoints := 0
	opts := bolt.WALOptions{
		Notes:            func(n [][]byte) error { mu.Lock(); handed = append(handed, n...); mu.Unlock(); return nil },
		BeforeCheckpoint: func() error { mu.Lock(); checkpoints++; mu.Unlock(); return nil },
	}
	db, err := bolt.OpenWithWAL(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		in := &notedIntent{note: fmt.Sprintf("intent-%d", i)}
		if err := db.Apply(store.WithIntent(context.Background(), in), []store.Op{store.Put(fmt.Sprintf("k%d", i), []byte("v"))}); err != nil {
			t.Fatal(err)
		}
		if in.journaled != 0 {
			t.Fatalf("batch %d: the intent was journaled although the log carries it", i)
		}
	}
	prefix := &notedIntent{note: "prefix"}
	if err := db.Apply(store.WithIntent(context.Background(), prefix), []store.Op{store.DeletePrefix("none/")}); err != nil {
		t.Fatal(err)
	}
	if prefix.journaled != 1 {
		t.Fatalf("a prefix delete's intent was journaled %d times, want 1", prefix.journaled)
	}
	mu.Lock()
	if checkpoints == 0 { // the prefix delete drained the log into the file
		t.Fatal("a checkpoint ran without BeforeCheckpoint")
	}
	mu.Unlock()
	if err := db.Apply(store.WithIntent(context.Background(), &notedIntent{note: "after"}), []store.Op{store.Put("k9", []byte("v"))}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := db.Scan(context.Background(), "", "", func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("keys %v: a note became a key, or a write was lost", keys)
	}
	db.Abandon() // a crash: "after" is only in the log
	handed = nil
	db, err = bolt.OpenWithWAL(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(handed) != 1 || string(handed[0]) != "after" {
		t.Fatalf("notes handed back after the crash: %q, want [after]", handed)
	}
}

// TestWAL_NotesDoNotCountTowardsCheckpoints: the checkpoint threshold bounds what the overlay
// holds, so the notes riding with the batches do not count towards it: batches of small writes
// with large notes checkpoint only once their writes reach the threshold.
func TestWAL_NotesDoNotCountTowardsCheckpoints(t *testing.T) {
	const threshold = bolt.MinCheckpointBytes
	tests := []struct {
		name            string
		noteSize        int
		valueSize       int
		batches         int
		wantCheckpoints bool
	}{
		{"large notes, small writes below the threshold", 4 * threshold, 8, 40, false},
		{"small notes, writes past the threshold", 8, threshold / 4, 12, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			checkpoints := 0
			db, err := bolt.OpenWithWAL(filepath.Join(t.TempDir(), "data.db"), bolt.WALOptions{
				CheckpointBytes:  threshold,
				BeforeCheckpoint: func() error { mu.Lock(); checkpoints++; mu.Unlock(); return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			note := string(make([]byte, tc.noteSize))
			for i := range tc.batches {
				ctx := store.WithIntent(context.Background(), &notedIntent{note: note})
				if err := db.Apply(ctx, []store.Op{store.Put(fmt.Sprintf("k%03d", i), make([]byte, tc.valueSize))}); err != nil {
					t.Fatal(err)
				}
			}
			db.Close() // a clean close checkpoints: count only what the writes started
			mu.Lock()
			defer mu.Unlock()
			if got := checkpoints > 1; got != tc.wantCheckpoints {
				t.Fatalf("%d checkpoints (the close's included); want checkpoints before the close: %v", checkpoints, tc.wantCheckpoints)
			}
		})
	}
}
