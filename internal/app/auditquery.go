package app

import "github.com/strongroom/strongroom/internal/httpapi"

// auditQuery is what the audit query route reads: this node's audit log.
func (s *server) auditQuery() httpapi.AuditQueryAPI { return nil }
