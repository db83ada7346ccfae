package service_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// BenchmarkService_DiskBytesPerSecret writes b.N secrets of 100-byte values (one version
// each) to a real bbolt file and reports the file's size per secret, the pages it uses, and
// what the records themselves take: each record kind's key and sealed value, per secret.
// "sequential" writes names in order from one writer on a file without the log; "wal-c16"
// writes from 16 writers through the write-ahead log, as the server does, and reports the
// log's folder too (its segments are preallocated, so it is a fixed cost, not per secret). Run it with a fixed count, e.g. -benchtime=20000x; docs/benchmarks.md breaks
// the figures down.
func BenchmarkService_DiskBytesPerSecret(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { diskBytesPerSecret(b, false) })
	b.Run("wal-c16", func(b *testing.B) { diskBytesPerSecret(b, true) })
}

func diskBytesPerSecret(b *testing.B, wal bool) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "data.db")
	var st *bolt.DB
	var err error
	if wal {
		st, err = bolt.OpenWithWAL(path, bolt.WALOptions{})
	} else {
		st, err = bolt.Open(path)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{1}, keyring.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := service.New(ctx, st, kr, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	actx := service.WithCaller(ctx, service.Caller{ObjectID: admin, TenantID: tenant})
	if _, _, err := svc.PutResourceGroup(actx, "rg", "eastus", nil); err != nil {
		b.Fatal(err)
	}
	days := 7
	if _, _, err := svc.PutVault(actx, "rg", "kv-bytes", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{
		TenantID: tenant, Sku: &service.Sku{Family: "A", Name: "standard"}, SoftDeleteRetentionInDays: &days}}); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("v", 100)
	var next atomic.Int64
	set := func() {
		name := fmt.Sprintf("perf-%07d", next.Add(1)-1)
		if _, err := svc.SetSecret(actx, "kv-bytes", name, service.SecretInput{Value: &value}); err != nil {
			b.Error(err)
		}
	}
	if wal {
		b.SetParallelism(8) // 16 writers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				set()
			}
		})
	} else {
		for b.Loop() {
			set()
		}
	}
	b.StopTimer()
	n := int(next.Load())
	// What each kind of record under the vault holds, keys and values.
	sizes := map[string]int{}
	if err := st.Scan(ctx, "v/", "", func(k string, v []byte) bool {
		kind := "version"
		switch {
		case strings.HasSuffix(k, "!~"):
			kind = "head"
		case strings.HasSuffix(k, "!}"), strings.HasSuffix(k, "/}"):
			kind = "tip"
		}
		sizes[kind+"-key"] += len(k)
		sizes[kind+"-value"] += len(v)
		return true
	}); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/float64(n), "file-B/secret")
	if wal {
		b.ReportMetric(float64(dirBytes(b, path+".wal"))/float64(n), "wal-B/secret")
	}
	// The file grows in steps (bbolt doubles its mapping up to 1 GiB, then adds 1 GiB), so its
	// size overstates what the pages take: report the high-water mark and the bytes the leaves
	// hold too.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		bs := tx.Bucket([]byte("kv")).Stats()
		b.ReportMetric(float64(tx.Size())/float64(n), "pages-B/secret")
		b.ReportMetric(float64(bs.LeafInuse)/float64(n), "leaf-inuse-B/secret")
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	total := 0
	for kind, size := range sizes {
		b.ReportMetric(float64(size)/float64(n), kind+"-B/secret")
		total += size
	}
	b.ReportMetric(float64(total)/float64(n), "records-B/secret")
}

// dirBytes is the size of every file under dir.
func dirBytes(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			total += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
