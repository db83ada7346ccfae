package bench

import (
	"encoding/binary"
	"hash/crc32"
)

// Bridges for the external tests.
var (
	ParseProcStat    = parseProcStat
	MapLocalhost     = mapLocalhost
	ParseMachineBusy = parseMachineBusy
	ParseProcStatus  = parseProcStatus
	CountRecords     = countRecords
	ListeningPort    = listeningPort
	Group            = group
	MiB              = mib
	MiddleCursor     = middleCursor
	ParseListPage    = func(body []byte) ([]string, string, error) {
		p, err := parseListPage(body)
		return p.names, p.next, err
	}
	CheckLoopback = checkLoopback
)

// MiddleLink runs middleLink on a first page of names with nextLink next.
func MiddleLink(next string, names []string, cursor string) (string, string) {
	return middleLink(listPage{names: names, next: next}, cursor)
}

// Place runs layout.place for a layout of vaults × perVault secrets on port 8443.
func Place(prefix string, vaults, perVault, i int, write bool) (host, u string) {
	l := layout{prefix: prefix, vaults: vaults, perVault: perVault, suffix: "vault.localhost", port: 8443, query: "api-version=7.4"}
	h, url := l.place(i, write)
	return h, url.String()
}

// WALRecord frames payload as a write-ahead log record of segment seq (internal/store/bolt/wal.go).
func WALRecord(seq uint64, payload []byte) []byte {
	rec := make([]byte, 16, 16+len(payload))
	rec = append(rec, payload...)
	binary.BigEndian.PutUint64(rec[0:8], seq)
	binary.BigEndian.PutUint32(rec[8:12], uint32(len(payload)))
	t := crc32.MakeTable(crc32.Castagnoli)
	binary.BigEndian.PutUint32(rec[12:16], crc32.Update(crc32.Checksum(rec[:12], t), t, payload))
	return rec
}

// TailLog is the server log buffer of scale mode.
type TailLog = tailLog

// TailLogKeep is how much of its head and tail it keeps.
const TailLogKeep = tailLogKeep

// Data folder helpers of scale mode.
var (
	DiskUsageOf = diskUsage
	DropCaches  = dropCaches
	CachedBytes = cachedBytes
	WALPending  = walPending
)
