package bolt

import (
	"strings"
	"sync"

	"github.com/google/btree"
)

// memEntry is the newest value of one key written since the last checkpoint; deleted marks a
// delete, which must hide whatever the file still holds for the key.
type memEntry struct {
	key     string
	value   []byte
	deleted bool
}

func lessEntry(a, b memEntry) bool { return a.key < b.key }

// memtable holds the batches logged to one write-ahead log segment and not yet checkpointed into
// the file: in key order for scans and checkpoints, and in a map for point reads (keys share long
// prefixes, so a tree search costs several long comparisons; a profile of reads put it at 3 % of
// the server's CPU). Only the commit loop changes it, under overlay.mu.
type memtable struct {
	tree  *btree.BTreeG[memEntry]
	byKey map[string]memEntry
}

func newMemtable() *memtable {
	return &memtable{tree: btree.NewG(32, lessEntry), byKey: make(map[string]memEntry)}
}

func (m *memtable) set(e memEntry) {
	m.tree.ReplaceOrInsert(e)
	m.byKey[e.key] = e
}

func (m *memtable) get(key string) (memEntry, bool) {
	e, ok := m.byKey[key]
	return e, ok
}

// overlay is the part of the store that is durable in the write-ahead log but not yet in the
// bbolt file: mem takes new batches; frozen is the previous memtable while the checkpointer
// writes it to the file (nil otherwise). Readers look here first, then in the file.
type overlay struct {
	mu     sync.RWMutex
	mem    *memtable
	frozen *memtable
}

// lookup returns the overlay's entry for key, if it has one.
func (o *overlay) lookup(key string) (memEntry, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if e, ok := o.mem.get(key); ok {
		return e, true
	}
	if o.frozen != nil {
		return o.frozen.get(key)
	}
	return memEntry{}, false
}

// rangeLocked returns, in key order, the overlay's entries whose keys start with prefix and sort
// at or after from (mem's entry wins over frozen's). Call with mu held.
func (o *overlay) rangeLocked(prefix, from string) []memEntry {
	collect := func(m *memtable) []memEntry {
		var out []memEntry
		if m == nil {
			return nil
		}
		m.tree.AscendGreaterOrEqual(memEntry{key: from}, func(e memEntry) bool {
			if !strings.HasPrefix(e.key, prefix) {
				return false
			}
			out = append(out, e)
			return true
		})
		return out
	}
	newer, older := collect(o.mem), collect(o.frozen)
	if len(older) == 0 {
		return newer
	}
	if len(newer) == 0 {
		return older
	}
	out := make([]memEntry, 0, len(newer)+len(older))
	i, j := 0, 0
	for i < len(newer) || j < len(older) {
		switch {
		case j == len(older) || (i < len(newer) && newer[i].key < older[j].key):
			out = append(out, newer[i])
			i++
		case i == len(newer) || older[j].key < newer[i].key:
			out = append(out, older[j])
			j++
		default: // same key: the newer memtable wins
			out = append(out, newer[i])
			i++
			j++
		}
	}
	return out
}
