package app

import (
	"context"
	"os"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/auditquery"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/service"
)

// auditQuerySlots bounds the queries reading the folder at once (two): each reads files
// sequentially, and the requests the log records must not starve behind them.
var auditQuerySlots = make(chan struct{}, 2)

// auditQuery is what the audit query route reads: this node's audit log.
func (s *server) auditQuery() httpapi.AuditQueryAPI {
	node := s.cfg.Cluster.NodeID
	if node == "" {
		node, _ = os.Hostname()
	}
	return &auditFolder{dir: filepath.Join(s.cfg.DataDir, "audit"), node: node, slots: auditQuerySlots}
}

// auditFolder answers queries from the audit folder.
type auditFolder struct {
	dir, node string
	slots     chan struct{}
}

func (f *auditFolder) QueryAudit(ctx context.Context, q auditquery.Query) (auditquery.Page, error) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return auditquery.Page{}, ctx.Err()
	default:
		return auditquery.Page{}, &service.Error{Kind: service.ErrThrottled, Code: "TooManyRequests", Message: "Too many audit queries are running; retry shortly."}
	}
	defer func() { <-f.slots }()
	return auditquery.Run(ctx, f.dir, q)
}

func (f *auditFolder) Node() string { return f.node }
