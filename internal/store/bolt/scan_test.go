package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

const scanPrefix = "v/0123456789abcdef0123456789abcdef/n/"

func scanKey(i int) string { return fmt.Sprintf("%sNAME-%06d", scanPrefix, i) }

// fill writes n keys in batches of 500, starting at key first.
func fill(tb testing.TB, db store.Store, first, n int, value []byte) {
	tb.Helper()
	for i := first; i < first+n; i += 500 {
		var ops []store.Op
		for j := i; j < min(i+500, first+n); j++ {
			ops = append(ops, store.Put(scanKey(j), value))
		}
		if err := db.Apply(context.Background(), ops); err != nil {
			tb.Fatal(err)
		}
	}
}

// checkpointAll moves everything logged into the file (a snapshot drains the log first).
func checkpointAll(tb testing.TB, db *bolt.DB) {
	tb.Helper()
	snap, err := db.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	snap.Close()
}

// scanPage returns the keys of one page: up to limit keys under scanPrefix after after.
func scanPage(tb testing.TB, db store.Store, after string, limit int) []string {
	tb.Helper()
	var keys []string
	err := db.Scan(context.Background(), scanPrefix, after, func(k string, _ []byte) bool {
		keys = append(keys, k)
		return len(keys) < limit
	})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// A page of a listing takes a bounded number of entries from the overlay however many writes
// are pending there: 20,000 logged, none checkpointed, and a page of 26 anywhere in the range.
func TestScan_PageVisitsBoundedOverlayEntries(t *testing.T) {
	db := openWAL(t, filepath.Join(t.TempDir(), "data.db"))
	defer db.Close()
	fill(t, db, 0, 5000, []byte("in the file"))
	checkpointAll(t, db)
	fill(t, db, 5000, 20000, []byte("pending"))
	for _, c := range []struct {
		name  string
		after string
		first int
	}{
		{"first page, file and overlay", "", 0},
		{"page inside the overlay", scanKey(12345), 12346},
		{"page across the file's end", scanKey(4990), 4991},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := db.OverlayVisits()
			keys := scanPage(t, db, c.after, 26)
			visits := db.OverlayVisits() - before
			if len(keys) != 26 || keys[0] != scanKey(c.first) || keys[25] != scanKey(c.first+25) {
				t.Fatalf("page = %d keys %q..%q; want 26 from %q", len(keys), keys[0], keys[len(keys)-1], scanKey(c.first))
			}
			if visits > 100 {
				t.Fatalf("a page of 26 took %d overlay entries of 20,000 pending; want at most 100", visits)
			}
		})
	}
}

// Scans see the store as it was when they began, while their callback writes (which would
// deadlock if a scan held the overlay's lock across it): keys put ahead of the cursor stay
// unseen, keys deleted ahead stay seen with their old values. With rare checkpoints the scan's
// keys and the callback's writes share one memtable; with frequent ones the overlay moves into
// the file meanwhile.
func TestScan_SnapshotWhileCallbackWrites(t *testing.T) {
	for _, c := range []struct {
		name       string
		checkpoint int64
	}{{"rare checkpoints", 8 << 20}, {"checkpoint every few batches", 4 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			checkpointEvery(t, c.checkpoint)
			db := openWAL(t, filepath.Join(t.TempDir(), "data.db"))
			defer db.Close()
			fill(t, db, 0, 300, []byte("old"))
			if seen := scanWritingAhead(t, db); seen != 300 {
				t.Fatalf("scan saw %d keys; want the 300 it began with", seen)
			}
		})
	}
}

// scanWritingAhead scans the 300 keys fill wrote; at each it puts a new key after them all,
// overwrites the next and deletes the one after, and checks that the scan still sees the old.
func scanWritingAhead(t *testing.T, db store.Store) int {
	ctx := context.Background()
	seen := 0
	err := db.Scan(ctx, scanPrefix, "", func(k string, v []byte) bool {
		if k != scanKey(seen) || string(v) != "old" {
			t.Fatalf("scan step %d = %q=%q; want %q=old", seen, k, v, scanKey(seen))
		}
		ops := []store.Op{store.Put(scanKey(1000+seen), []byte("new")), store.Put(scanKey(seen+1), []byte("new"))}
		if seen+2 < 300 {
			ops = append(ops, store.Delete(scanKey(seen+2)))
		}
		if err := db.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Get(ctx, scanKey(seen+1)); err != nil || string(got) != "new" {
			t.Fatalf("Get in the callback = %q, %v; want new", got, err)
		}
		seen++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

// Every batch rewrites all 20 keys with its number, and checkpoints are frequent: each of the
// scans running alongside must see all 20 keys from one batch (no batch half seen), and from no
// batch older than the last one acknowledged before it began (none lost between the frozen
// memtable and the file), whichever memtable or file transaction held them.
func TestScan_ConcurrentScansSeeWholeBatches(t *testing.T) {
	checkpointEvery(t, 4<<10)
	ctx := context.Background()
	db := openWAL(t, filepath.Join(t.TempDir(), "data.db"))
	defer db.Close()
	batch := func(gen int) []store.Op {
		var ops []store.Op
		for i := range 20 {
			ops = append(ops, store.Put(scanKey(i), []byte(fmt.Sprint(gen))))
		}
		return ops
	}
	if err := db.Apply(ctx, batch(0)); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				floor := acked.Load()
				var vals []string
				if err := db.Scan(ctx, scanPrefix, "", func(_ string, v []byte) bool { vals = append(vals, string(v)); return true }); err != nil {
					errs <- err
					return
				}
				if err := oneBatch(vals, 20); err != nil {
					errs <- err
					return
				}
				if gen, _ := strconv.ParseInt(vals[0], 10, 64); gen < floor {
					errs <- fmt.Errorf("scan saw batch %d after batch %d was acknowledged", gen, floor)
					return
				}
			}
		}()
	}
	for gen := 1; gen <= 300; gen++ {
		if err := db.Apply(ctx, batch(gen)); err != nil {
			t.Fatal(err)
		}
		acked.Store(int64(gen))
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A scan whose viewed memtable is frozen and checkpointed before its file transaction begins
// (the file then holds writes the view lacks) must not mix the two: here a batch rewrites key 0
// and adds key 1 right then, and the scan must show both of that batch or neither.
func TestScan_MemtableCheckpointedBeforeBegin(t *testing.T) {
	ctx := context.Background()
	db := openWAL(t, filepath.Join(t.TempDir(), "data.db"))
	defer db.Close()
	if err := db.Apply(ctx, []store.Op{store.Put(scanKey(0), []byte("old"))}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	defer bolt.BeforeScanBegin(func() {
		once.Do(func() {
			if err := db.Apply(ctx, []store.Op{store.Put(scanKey(0), []byte("new")), store.Put(scanKey(1), []byte("new"))}); err != nil {
				t.Error(err)
			}
			checkpointAll(t, db)
		})
	})()
	var vals []string
	if err := db.Scan(ctx, scanPrefix, "", func(_ string, v []byte) bool { vals = append(vals, string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	if err := oneBatch(vals, len(vals)); err != nil || (len(vals) != 1 && len(vals) != 2) {
		t.Fatalf("scan = %q; want [old] or [new new]", vals)
	}
}

// oneBatch checks that a scan saw n values, all the same.
func oneBatch(vals []string, n int) error {
	for _, v := range vals {
		if v != vals[0] {
			return fmt.Errorf("scan saw keys from more than one batch: %q", vals)
		}
	}
	if len(vals) != n {
		return fmt.Errorf("scan saw %d keys; want %d", len(vals), n)
	}
	return nil
}

// BenchmarkScanPage lists the first page (26 keys, as a list of 25 does) of 20,000 keys with none
// of them pending in the overlay, and with all of them pending: in one scan, and restarted once
// per key (a scan of one key after the last, as the service's listing did).
func BenchmarkScanPage(b *testing.B) {
	for _, c := range []struct {
		pending  int
		restarts bool
	}{{0, false}, {20000, false}, {0, true}, {20000, true}} {
		b.Run(fmt.Sprintf("pending=%d/restarts=%v", c.pending, c.restarts), func(b *testing.B) {
			db, err := bolt.OpenWithWAL(filepath.Join(b.TempDir(), "data.db"), bolt.WALOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			fill(b, db, 0, 20000, randBytes(100))
			if c.pending == 0 {
				checkpointAll(b, db)
			}
			before := db.OverlayVisits()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				n := 0
				if c.restarts {
					for after := ""; n < 26; n++ {
						after = scanPage(b, db, after, 1)[0]
					}
				} else {
					n = len(scanPage(b, db, "", 26))
				}
				if n != 26 {
					b.Fatal("short page")
				}
			}
			b.ReportMetric(float64(db.OverlayVisits()-before)/float64(b.N), "overlay-visits/op")
		})
	}
}

// BenchmarkWritesWithPageScans is the store's share of a write load with listings alongside:
// 32 writers each put a secret's head and version (~1 KB logged) through the write-ahead log,
// with no reader, or with one listing a first page of the same range every millisecond. It
// reports the bytes allocated per write (writers' and reader's together: what the GC must
// collect) and the most heap in use seen, which the overlay bounds by the checkpoint size.
func BenchmarkWritesWithPageScans(b *testing.B) {
	for _, scan := range []bool{false, true} {
		b.Run(fmt.Sprintf("scans=%v", scan), func(b *testing.B) { benchWritesWithScans(b, scan) })
	}
}

func benchWritesWithScans(b *testing.B, scan bool) {
	ctx := context.Background()
	db, err := bolt.OpenWithWAL(filepath.Join(b.TempDir(), "data.db"), bolt.WALOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fill(b, db, 0, 20000, randBytes(100))
	stop, scans := make(chan struct{}), make(chan int, 1)
	go func() {
		n, tick := 0, time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				scans <- n
				return
			case <-tick.C:
				if scan {
					scanPage(b, db, "", 26)
					n++
				}
			}
		}
	}()
	var next atomic.Int64
	peak := heapPeak(stop)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			ops := []store.Op{store.Put(scanKey(20000+i)+"!~", randBytes(520)), store.Put(scanKey(20000+i)+"!v1", randBytes(450))}
			if err := db.Apply(ctx, ops); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	close(stop)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(<-scans)/b.Elapsed().Seconds(), "scans/s")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "alloc-B/write")
	b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MiB")
}

// heapPeak samples the heap in use every millisecond until stop closes, then sends its maximum.
func heapPeak(stop chan struct{}) chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var m runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	return out
}
