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
// the server's CPU). Only the commit loop changes it, under overlay.mu; once frozen it never
// changes again, so a reader holding a frozen memtable needs no lock to walk it.
type memtable struct {
	tree  *btree.BTreeG[memEntry]
	byKey map[string]memValue
}

// memValue is a memEntry without its key, which the map holds already.
type memValue struct {
	value   []byte
	deleted bool
}

// newMemtable returns an empty memtable whose map is sized for hint keys: the previous
// memtable's count, so that a filling memtable does not rehash its way up (each doubling
// allocates the map anew: at 16,000 keys, a megabyte of garbage per segment).
func newMemtable(hint int) *memtable {
	return &memtable{tree: btree.NewG(32, lessEntry), byKey: make(map[string]memValue, hint)}
}

func (m *memtable) set(e memEntry) {
	m.tree.ReplaceOrInsert(e)
	m.byKey[e.key] = memValue{value: e.value, deleted: e.deleted}
}

func (m *memtable) get(key string) (memEntry, bool) {
	v, ok := m.byKey[key]
	return memEntry{key: key, value: v.value, deleted: v.deleted}, ok
}

// overlay is the part of the store that is durable in the write-ahead log but not yet in the
// bbolt file: mem takes new batches; frozen is the previous memtable while the checkpointer
// writes it to the file (nil otherwise). Readers look here first, then in the file.
type overlay struct {
	mu     sync.RWMutex
	mem    *memtable
	frozen *memtable
	// snap is a copy-on-write clone of mem's tree as it is now, made by the first scan after a
	// write and shared by the scans that follow until the next write (nil until then). A scan
	// walks it without the lock while the commit loop goes on writing mem: the clone costs
	// O(1), and the writer copies a tree node only the first time it changes one after a clone.
	snap *btree.BTreeG[memEntry]
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

// setLocked writes e into mem; call with mu held for writing (the commit loop only).
func (o *overlay) setLocked(e memEntry) {
	o.mem.set(e)
	o.snap = nil
}

// freezeLocked makes mem the frozen memtable and starts a new one; call with mu held for writing.
func (o *overlay) freezeLocked() *memtable {
	m := o.mem
	o.frozen, o.mem, o.snap = m, newMemtable(len(m.byKey)), nil
	return m
}

// overlayView is what a scan reads of the overlay: mem's tree as of one moment, the frozen
// memtable's (immutable) tree, and mem itself, to tell later whether it was frozen since.
type overlayView struct {
	memTree, frozenTree *btree.BTreeG[memEntry]
	mem                 *memtable
}

// view returns the overlay as it is now. Neither tree changes under the caller afterwards.
func (o *overlay) view() overlayView {
	o.mu.RLock()
	v := overlayView{memTree: o.snap, mem: o.mem}
	if o.frozen != nil {
		v.frozenTree = o.frozen.tree
	}
	o.mu.RUnlock()
	if v.memTree != nil {
		return v
	}
	o.mu.Lock() // Clone changes the tree's copy-on-write context: no writer, no other clone
	if o.snap == nil {
		o.snap = o.mem.tree.Clone()
	}
	v = overlayView{memTree: o.snap, mem: o.mem}
	if o.frozen != nil {
		v.frozenTree = o.frozen.tree
	}
	o.mu.Unlock()
	return v
}

// current reports whether mem is still the memtable v was taken from (not frozen since).
func (o *overlay) current(v overlayView) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.mem == v.mem
}

// A cursor takes entries from its tree a chunk at a time, one seek per chunk: the first chunk
// is small, because many scans want a single key (the first after a name), and each next
// chunk doubles, so a page of a listing (26 keys) costs three seeks and a full scan one seek
// per 256 entries.
const (
	firstChunk = 4
	maxChunk   = 256
)

// treeCursor walks one tree's entries under a prefix in key order, a chunk at a time, seeking
// past the chunk's last key for the next: it never holds more than a chunk of the tree.
type treeCursor struct {
	tree   *btree.BTreeG[memEntry]
	prefix string
	seek   string // where the next chunk starts
	buf    []memEntry
	pos    int
	chunk  int  // entries the next fill takes
	end    bool // the tree has nothing after buf
	visits int  // entries taken from the tree, for tests
}

func newTreeCursor(tree *btree.BTreeG[memEntry], prefix, from string) treeCursor {
	return treeCursor{tree: tree, prefix: prefix, seek: from, chunk: firstChunk, end: tree == nil}
}

// peek returns the entry at the cursor, or false at the end.
func (c *treeCursor) peek() (memEntry, bool) {
	if c.pos == len(c.buf) {
		if c.end {
			return memEntry{}, false
		}
		c.fill()
		if len(c.buf) == 0 {
			return memEntry{}, false
		}
	}
	return c.buf[c.pos], true
}

func (c *treeCursor) fill() {
	c.buf, c.pos = c.buf[:0], 0
	c.tree.AscendGreaterOrEqual(memEntry{key: c.seek}, func(e memEntry) bool {
		if !strings.HasPrefix(e.key, c.prefix) {
			return false
		}
		if cap(c.buf) < c.chunk {
			c.buf = make([]memEntry, 0, c.chunk) // here, so that an empty range allocates nothing
		}
		c.buf = append(c.buf, e)
		return len(c.buf) < c.chunk
	})
	c.visits += len(c.buf)
	if len(c.buf) < c.chunk {
		c.end = true
		return
	}
	c.seek = c.buf[len(c.buf)-1].key + "\x00" // the least key after it
	c.chunk = min(2*c.chunk, maxChunk)
}

// overlayCursor merges mem's and frozen's cursors into one ordered walk; on a key both hold,
// mem's entry (the newer) wins.
type overlayCursor struct{ mem, frozen treeCursor }

func newOverlayCursor(v overlayView, prefix, from string) *overlayCursor {
	return &overlayCursor{mem: newTreeCursor(v.memTree, prefix, from), frozen: newTreeCursor(v.frozenTree, prefix, from)}
}

// peek returns the overlay's next entry, or false at the end.
func (o *overlayCursor) peek() (memEntry, bool) {
	m, okm := o.mem.peek()
	f, okf := o.frozen.peek()
	switch {
	case !okf:
		return m, okm
	case !okm || f.key < m.key:
		return f, true
	default:
		return m, true
	}
}

// next moves past key, which peek returned.
func (o *overlayCursor) next(key string) {
	if m, ok := o.mem.peek(); ok && m.key == key {
		o.mem.pos++
	}
	if f, ok := o.frozen.peek(); ok && f.key == key {
		o.frozen.pos++
	}
}

func (o *overlayCursor) visits() int { return o.mem.visits + o.frozen.visits }
