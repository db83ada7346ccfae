package app

import (
	"context"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/cluster"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/metrics/scrape"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// registerGauges adds the server's state to the registry: seal state, the audit log's health
// and Stats, storage and the file systems under the data and audit folders (a cluster node's Raft collector is
// registered when its store opens, storage.go). It also fixes the request metrics' operation
// names (the API's route table) and vault label cap.
func (s *server) registerGauges() {
	s.metrics.SetOperations(httpapi.OperationNames())
	s.metrics.SetMaxVaultLabels(s.cfg.Metrics.MaxVaultLabels)
	s.metrics.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_sealed", Help: "1 while this server is sealed (or uninitialized), 0 while it serves."},
			func() float64 { return b2f(s.sys.Sealed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_initialized", Help: "1 once the data folder holds a keyring."},
			func() float64 { return b2f(s.sys.Status().Initialized) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_audit_healthy", Help: "1 while audit records can be written; 0 once the sink failed (requests are refused)."},
			func() float64 { return b2f(s.audit.Healthy()) }),
	)
	s.metrics.MustRegister(auditCollector{s.audit})
	s.registerStorageGauges()
	for _, fs := range []struct{ label, dir string }{{"data", s.cfg.DataDir}, {"audit", filepath.Join(s.cfg.DataDir, "audit")}} {
		labels := prometheus.Labels{"dir": fs.label}
		s.metrics.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_filesystem_free_bytes", ConstLabels: labels,
				Help: "Bytes available to the server on the file system holding its data (dir=data) or audit (dir=audit) folder."},
				func() float64 { free, _ := statfs(fs.dir); return free }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_filesystem_size_bytes", ConstLabels: labels,
				Help: "Size of the file system holding the server's data (dir=data) or audit (dir=audit) folder."},
				func() float64 { _, size := statfs(fs.dir); return size }),
		)
	}
}

// registerStorageGauges exports the store file: its size, its write-ahead log's size on disk,
// whether it still accepts writes, and its group commits.
func (s *server) registerStorageGauges() {
	db := func() *bolt.DB { return storeDB(s.st) }
	s.metrics.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_store_file_size_bytes", Help: "Size of this node's store file (bbolt)."},
			func() float64 {
				if d := db(); d != nil {
					return fileSize(d.Path())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_store_wal_size_bytes", Help: "Bytes on disk of the store's write-ahead log segments (pre-allocated, 16 MiB each; 0 without a log)."},
			func() float64 {
				if d := db(); d != nil {
					return dirSize(d.Path() + ".wal")
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strongroom_store_healthy", Help: "1 while the store accepts writes; 0 once a write failed (the store refuses writes until restarted; /health answers 503)."},
			func() float64 {
				if d := db(); d != nil {
					return b2f(d.Failure() == nil)
				}
				return 1
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strongroom_store_commits_total", Help: "Group commits of this node's store file (each one fsync)."},
			func() float64 {
				if d := db(); d != nil {
					c, _ := d.CommitStats()
					return float64(c)
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strongroom_store_batches_total", Help: "Write batches committed to this node's store file (many per group commit under load)."},
			func() float64 {
				if d := db(); d != nil {
					_, b := d.CommitStats()
					return float64(b)
				}
				return 0
			}),
	)
}

// auditCollector exports the audit log's Stats, read once per scrape: its files, how far
// behind its last fsync and its last signed checkpoint are, and the disk alarm.
type auditCollector struct{ l *audit.Log }

var (
	descAuditBytes    = prometheus.NewDesc("strongroom_audit_written_bytes_total", "Bytes appended to the audit log since the server started, over all its files.", nil, nil)
	descAuditFile     = prometheus.NewDesc("strongroom_audit_file_size_bytes", "Size of the active audit file (audit.log); it rotates at audit.max_file_bytes.", nil, nil)
	descAuditRotated  = prometheus.NewDesc("strongroom_audit_rotated_files", "Rotated audit files in the audit folder (kept per audit.retain_files).", nil, nil)
	descAuditLowDisk  = prometheus.NewDesc("strongroom_audit_low_disk", "1 when the audit folder's file system has less free space than audit.min_free_bytes or twice audit.max_file_bytes: the log will soon fail closed.", nil, nil)
	descAuditSyncLag  = prometheus.NewDesc("strongroom_audit_sync_lag_seconds", "Seconds since the audit log's last successful fsync (it syncs every second: a growing value means a stuck disk).", nil, nil)
	descAuditLastSync = prometheus.NewDesc("strongroom_audit_last_sync_timestamp_seconds", "Unix time of the audit log's last successful fsync (0: none yet).", nil, nil)
	descAuditUnsigned = prometheus.NewDesc("strongroom_audit_unsigned_records", "Audit records that no signed checkpoint covers yet.", nil, nil)
	descAuditSigning  = prometheus.NewDesc("strongroom_audit_signing", "1 while the audit log signs checkpoints (a signing key is set: the server is unsealed).", nil, nil)
)

func (c auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAuditBytes, descAuditFile, descAuditRotated, descAuditLowDisk, descAuditSyncLag, descAuditLastSync, descAuditUnsigned, descAuditSigning} {
		ch <- d
	}
}

func (c auditCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	ch <- prometheus.MustNewConstMetric(descAuditBytes, prometheus.CounterValue, float64(st.BytesWritten))
	gauge(descAuditFile, float64(st.FileBytes))
	gauge(descAuditRotated, float64(st.RotatedFiles))
	gauge(descAuditLowDisk, b2f(st.LowDisk))
	lastSync := 0.0
	if !st.LastSync.IsZero() {
		lastSync = float64(st.LastSync.UnixNano()) / 1e9
	}
	gauge(descAuditLastSync, lastSync)
	gauge(descAuditSyncLag, st.SyncLag.Seconds())
	gauge(descAuditUnsigned, float64(st.RecordsSinceSignedCheckpoint))
	gauge(descAuditSigning, b2f(st.Signing))
}

// storeDB is the bbolt file under st: the single-node store itself, or a cluster node's state
// machine file.
func storeDB(st store.Store) *bolt.DB {
	switch v := st.(type) {
	case *bolt.DB:
		return v
	case *cluster.Store:
		return v.Store.DB()
	}
	return nil
}

func fileSize(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}

func dirSize(dir string) float64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return float64(n)
}

// statfs returns the bytes available to unprivileged users and the size of dir's file system.
func statfs(dir string) (free, size float64) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0
	}
	return float64(st.Bavail) * float64(st.Bsize), float64(st.Blocks) * float64(st.Bsize)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scrapeOptions serves /metrics with the serving state's token check (internal/metrics/scrape).
func (s *server) scrapeOptions() scrape.Options {
	return scrape.Options{Registry: s.metrics, Public: s.cfg.Metrics.IsPublic(), PublicURL: s.cfg.PublicURL,
		Serving: func() (*identity.Service, func(context.Context) error) {
			if u := s.sys.Serving(); u != nil {
				return u.Identities, u.AuthorizeMetrics
			}
			return nil, nil
		}}
}

// observe hands the API handler to the metrics: its requests are counted by vault, operation
// and result (httpapi.Config.Metrics), and scrapes read its vaults' budget saturation.
func (s *server) observe(h *httpapi.Server) *httpapi.Server {
	s.metrics.SetSaturation(h.ThrottleSaturation)
	return h
}

// auditLog is the audit log as every entry point uses it: failures are counted and records
// are copied to the extra sinks (audit.sinks); intents go to the log itself.
func (s *server) auditLog() serverAudit {
	return serverAudit{Recorder: s.recorder, log: s.audit}
}

// serverAudit records through the recorder chain and takes intents from the log.
type serverAudit struct {
	audit.Recorder
	log *audit.Log
}

func (a serverAudit) Intend(ctx context.Context, e audit.Event) (audit.IntentToken, error) {
	return a.log.Intend(ctx, e)
}

func (a serverAudit) IntentNote(e audit.Event) (audit.IntentToken, []byte, error) {
	return a.log.IntentNote(e)
}

func (a serverAudit) Resolve(t audit.IntentToken) { a.log.Resolve(t) }

// countingAudit counts audit records that could not be written.
type countingAudit struct {
	*audit.Log
	failures prometheus.Counter
}

func (a countingAudit) Record(ctx context.Context, e audit.Event) error {
	err := a.Log.Record(ctx, e)
	if err != nil {
		a.failures.Inc()
	}
	return err
}
