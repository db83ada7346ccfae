package config

import (
	"fmt"
	"time"
)

// AuditConfig configures the audit log beyond its fixed location (<data_dir>/audit/audit.log):
// size-based rotation, retention of rotated files, the low-disk alarm and how often a signed
// checkpoint record is written (internal/audit).
type AuditConfig struct {
	// MaxFileBytes rotates the active file once it reaches this size. Default 256 MiB; at least 1 MiB.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// RetainFiles is how many rotated files are kept; older ones are deleted (the deletion is
	// recorded in the log). Default 0: keep all.
	RetainFiles int `yaml:"retain_files"`
	// MinFreeBytes raises the low-disk alarm when the audit folder's file system has less free
	// space than this or than twice MaxFileBytes. Default 512 MiB.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// CheckpointRecords writes a signed checkpoint record after this many records. Default 1000.
	CheckpointRecords int `yaml:"checkpoint_records"`
	// CheckpointInterval writes one after this long when records were written since. Default 60s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Sinks are extra destinations for copies of every record (syslog, an HTTP collector), set
	// here only, never through the API; a failing one never holds up a request (auditsinks.go).
	Sinks AuditSinksConfig `yaml:"sinks"`
}

// Audit defaults.
const (
	DefaultAuditMaxFileBytes       int64 = 256 << 20
	DefaultAuditMinFreeBytes       int64 = 512 << 20
	DefaultAuditCheckpointRecords        = 1000
	DefaultAuditCheckpointInterval       = 60 * time.Second
)

// validate checks the section and fills in its defaults.
func (c *AuditConfig) validate() error {
	if err := c.Sinks.Validate(); err != nil {
		return err
	}
	switch {
	case c.MaxFileBytes < 0:
		return fmt.Errorf("audit.max_file_bytes: must not be negative (0 = default %d)", DefaultAuditMaxFileBytes)
	case c.MaxFileBytes > 0 && c.MaxFileBytes < 1<<20:
		return fmt.Errorf("audit.max_file_bytes: must be at least 1048576 (1 MiB), got %d", c.MaxFileBytes)
	case c.RetainFiles < 0:
		return fmt.Errorf("audit.retain_files: must not be negative (0 = keep every rotated file)")
	case c.MinFreeBytes < 0:
		return fmt.Errorf("audit.min_free_bytes: must not be negative (0 = default %d)", DefaultAuditMinFreeBytes)
	case c.CheckpointRecords < 0:
		return fmt.Errorf("audit.checkpoint_records: must not be negative (0 = default %d)", DefaultAuditCheckpointRecords)
	case c.CheckpointInterval < 0:
		return fmt.Errorf("audit.checkpoint_interval: must not be negative (0 = default %s)", DefaultAuditCheckpointInterval)
	case c.CheckpointInterval > 0 && c.CheckpointInterval < time.Second:
		return fmt.Errorf("audit.checkpoint_interval: must be at least 1s, got %s", c.CheckpointInterval)
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultAuditMaxFileBytes
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultAuditMinFreeBytes
	}
	if c.CheckpointRecords == 0 {
		c.CheckpointRecords = DefaultAuditCheckpointRecords
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultAuditCheckpointInterval
	}
	return nil
}
