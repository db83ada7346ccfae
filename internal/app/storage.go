package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// openStore opens the configured store: the single-node bbolt file by default.
func openStore(_ context.Context, cfg config.Config, _ *slog.Logger) (store.Store, error) {
	return bolt.Open(filepath.Join(cfg.DataDir, "strongroom.db"))
}

// wrapHandler lets the storage mode add routes or forwarding in front of the API handler; the
// single-node store adds nothing.
func wrapHandler(h http.Handler, _ store.Store) http.Handler { return h }
