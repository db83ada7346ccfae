package bench

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The single-node server's files in its data folder (internal/app/storage.go).
const (
	storeFileName = "strongroom.db"
	walDirName    = storeFileName + ".wal"
	auditDirName  = "audit"
)

// DiskUsage is the data folder's size by kind, in bytes (apparent file sizes).
type DiskUsage struct {
	StoreBytes int64 `json:"store_bytes"`   // the store file plus its write-ahead log
	DBBytes    int64 `json:"db_file_bytes"` // the bbolt file alone
	WALBytes   int64 `json:"wal_bytes"`     // the log's segment files (pre-sized, so a constant)
	AuditBytes int64 `json:"audit_bytes"`   // the audit folder
	OtherBytes int64 `json:"other_bytes"`   // everything else (TLS material, seal key, snapshots)
}

// diskUsage walks dir and sizes its files by kind.
func diskUsage(dir string) (DiskUsage, error) {
	var u DiskUsage
	err := eachFile(dir, func(rel string, size int64) error {
		switch top, _, _ := strings.Cut(rel, string(filepath.Separator)); {
		case top == storeFileName:
			u.DBBytes += size
		case top == walDirName:
			u.WALBytes += size
		case top == auditDirName:
			u.AuditBytes += size
		default:
			u.OtherBytes += size
		}
		return nil
	})
	u.StoreBytes = u.DBBytes + u.WALBytes
	return u, err
}

// eachFile calls fn with the path relative to dir and the size of every regular file under dir.
func eachFile(dir string, fn func(rel string, size int64) error) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return fn(rel, info.Size())
	})
	if err != nil {
		return fmt.Errorf("walking data folder: %w", err)
	}
	return nil
}

// dropCaches evicts the data folder's files from the page cache, for a cold start. fadvise
// needs no privilege: each file is synced (DONTNEED skips dirty pages) and then advised
// POSIX_FADV_DONTNEED, which the kernel honours for pages nobody maps, so the server must be
// stopped. system syncs and writes 1 to /proc/sys/vm/drop_caches (root only), which drops the
// whole machine's page cache, other users' included.
func dropCaches(dir, method string) error {
	switch method {
	case ColdCacheSystem:
		unix.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
			return fmt.Errorf("dropping the page cache (needs root): %w", err)
		}
		return nil
	case ColdCacheFadvise:
		return eachFile(dir, func(rel string, _ int64) error {
			f, err := os.Open(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			defer f.Close()
			_ = unix.Fdatasync(int(f.Fd())) // best effort: an unsynced page only stays cached
			if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
				return fmt.Errorf("evicting %s from the page cache: %w", rel, err)
			}
			return nil
		})
	}
	return nil
}

// cachedBytes sums the data folder's pages resident in the page cache (mincore over a read-only
// mapping of each file), to show what a cache drop left behind.
func cachedBytes(dir string) (int64, error) {
	page := int64(os.Getpagesize())
	var total int64
	err := eachFile(dir, func(rel string, size int64) error {
		if size == 0 {
			return nil
		}
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mapping %s: %w", rel, err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (size+page-1)/page)
		if err := mincore(m, vec); err != nil {
			return fmt.Errorf("mincore %s: %w", rel, err)
		}
		for _, v := range vec {
			total += int64(v&1) * page
		}
		return nil
	})
	return total, err
}

// mincore fills vec with one byte per page of m, bit 0 set for a page in memory
// (golang.org/x/sys/unix has no wrapper for it on Linux).
func mincore(m, vec []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// walPending counts what the store's write-ahead log holds that is not checkpointed into the
// store file yet: the valid records whose sequence number is their segment file's (a
// checkpointed segment is renamed to a later number, so its old records no longer match). It
// reads the record framing of internal/store/bolt/wal.go — seq (8 bytes BE) | payload length
// (4) | CRC-32C (4) | payload, a payload starting with its op count as a uvarint — and nothing
// of the payload's contents. It may race a checkpoint; the figure is a reading, not a lock.
func walPending(dataDir string) (bytes, ops int64, err error) {
	dir := filepath.Join(dataDir, walDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("reading log folder: %w", err)
	}
	for _, e := range entries {
		seqHex, ok := strings.CutSuffix(e.Name(), ".log")
		seq, perr := strconv.ParseUint(seqHex, 16, 64)
		if !ok || perr != nil || len(seqHex) != 16 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, 0, fmt.Errorf("reading log segment: %w", err)
		}
		b, o := countRecords(data, seq)
		bytes, ops = bytes+b, ops+o
	}
	return bytes, ops, nil
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// countRecords returns the payload bytes and ops of segment seq's valid leading records.
func countRecords(data []byte, seq uint64) (bytes, ops int64) {
	const hdr = 16
	for off := 0; len(data)-off >= hdr; {
		h := data[off : off+hdr]
		n := int(binary.BigEndian.Uint32(h[8:12]))
		if binary.BigEndian.Uint64(h[0:8]) != seq || n > len(data)-off-hdr {
			break
		}
		payload := data[off+hdr : off+hdr+n]
		if crc32.Update(crc32.Checksum(h[:12], castagnoliTable), castagnoliTable, payload) != binary.BigEndian.Uint32(h[12:16]) {
			break
		}
		count, _ := binary.Uvarint(payload)
		bytes, ops = bytes+int64(n), ops+int64(count)
		off += hdr + n
	}
	return bytes, ops
}
