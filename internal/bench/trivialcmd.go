package bench

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// NewTrivialCommand returns the command of the trivial-server binary (./internal/bench/trivialserver).
// It is deliberately not under `strongroom bench`: the server accepts any token.
func NewTrivialCommand() *cobra.Command {
	var listen, certDir string
	var keyVaultHeaders bool
	cmd := &cobra.Command{
		Use:   "trivialserver",
		Short: "Serve the same endpoints from memory, as the ceiling for benchmarks",
		Long: "Serve the token, ARM and secrets endpoints the benchmark uses from an in-memory map over " +
			"TLS, doing the minimum per request. It writes ca.pem and admin.json into --cert-dir so the " +
			"same `strongroom bench` command runs against it. It listens on loopback addresses only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if certDir == "" {
				return fmt.Errorf("--cert-dir is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := NewTrivialServer(certDir, keyVaultHeaders)
			if err != nil {
				return err
			}
			ln, err := srv.Listen(listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "trivial server listening on %s (pid %d); CA in %s\n",
				ln.Addr(), os.Getpid(), certDir)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return srv.Shutdown(shutdownCtx)
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9443", "loopback address to listen on")
	cmd.Flags().StringVar(&certDir, "cert-dir", "", "directory for ca.pem and admin.json (required; created if missing)")
	cmd.Flags().BoolVar(&keyVaultHeaders, "key-vault-headers", false, "send Key Vault's data-plane response headers on secret responses, as Strongroom does")
	return cmd
}
