package app

import (
	"log/slog"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/keyring"
)

// auditOptions is the audit log's rotation, retention, disk alarm and checkpoint policy.
func auditOptions(cfg config.Config, log *slog.Logger) audit.Options {
	a := cfg.Audit
	return audit.Options{MaxFileBytes: a.MaxFileBytes, RetainFiles: a.RetainFiles, MinFreeBytes: a.MinFreeBytes,
		CheckpointRecords: a.CheckpointRecords, CheckpointInterval: a.CheckpointInterval, Logger: log.With("component", "audit")}
}

// signAudit hands the audit log the keyring's checkpoint signing key for as long as this serving
// state lives (the key exists only while unsealed; sealed, records are chained unsigned). The
// returned func takes it back when the serving state closes.
func (s *server) signAudit(kr *keyring.Keyring) (release func()) {
	key, err := kr.AuditSigningKey()
	if err != nil {
		s.log.Error("audit checkpoints stay unsigned: deriving the signing key", "err", err)
		return func() {}
	}
	release, err = s.audit.Sign(key)
	if err != nil {
		s.log.Warn("audit checkpoints are signed, but the public key file was not written", "err", err)
	}
	return release
}
