// Package bench implements `strongroom bench`, a closed-loop load generator for the secrets data
// plane, and the trivial server, the in-memory HTTPS server that sets the ceiling a real server is
// compared against (see docs/benchmarks.md). The trivial server accepts any token, so it is not
// part of the product binary: it is built from ./internal/bench/trivialserver and listens on
// loopback only.
//
// The load generator follows the methodology of the design's perf anchors: one keep-alive
// HTTP/1.1 TLS connection per worker, a warm-up that is not measured, a fixed measurement window,
// latency percentiles over every completed operation, and the server's CPU time per operation read
// from /proc. Setup (token, resource group, vault, pre-populated secrets) goes through the same
// endpoints an Azure client would use, so the exact same command runs against Strongroom and
// against the trivial server.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand returns the `bench` command.
func NewCommand() *cobra.Command {
	cfg := DefaultConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive load against a running server",
		Long: "Drive closed-loop load against the secrets data plane of a running server and report " +
			"ops/s, errors, latency percentiles and (with --server-pid) the server's CPU time per operation.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !asJSON {
				cfg.Progress = cmd.ErrOrStderr()
			}
			res, err := Run(ctx, cfg)
			if err != nil {
				return err
			}
			return writeResult(cmd.OutOrStdout(), res, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", cfg.Server, "base URL of the server's control plane (token endpoint and ARM)")
	f.StringVar(&cfg.CAFile, "ca-file", cfg.CAFile, "PEM file with the CA that signed the server's certificate (required)")
	f.StringVar(&cfg.AdminFile, "admin-file", cfg.AdminFile, "JSON file with tenantId, subscriptionId, clientId and clientSecret (required)")
	f.StringVar(&cfg.Vault, "vault", cfg.Vault, "vault to create (if missing) and load")
	f.StringVar(&cfg.ResourceGroup, "resource-group", cfg.ResourceGroup, "resource group that holds the vault")
	f.StringVar(&cfg.DNSSuffix, "dns-suffix", cfg.DNSSuffix, "vault DNS suffix; the data plane is https://{vault}.{suffix}:{server port}")
	f.StringVar(&cfg.Scope, "scope", cfg.Scope, "OAuth2 scope of the data-plane token")
	f.StringVar(&cfg.APIVersion, "api-version", cfg.APIVersion, "Key Vault api-version sent on data-plane requests")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent closed-loop workers, one connection each")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the measured window")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before the window")
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "workload: read, write or mix")
	f.Float64Var(&cfg.MixRead, "mix-read", cfg.MixRead, "share of reads in mix mode (0..1)")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "secret value size in bytes")
	f.IntVar(&cfg.Secrets, "secrets", cfg.Secrets, "number of secret names; reads and writes pick uniformly among them")
	f.BoolVar(&cfg.Populate, "populate", cfg.Populate, "write one version of every secret before the run")
	f.Int64Var(&cfg.MaxOps, "max-ops", cfg.MaxOps, "stop the measured window after this many operations")
	f.IntVar(&cfg.ServerPID, "server-pid", cfg.ServerPID, "pid of the server process, to report its CPU µs/op from /proc (0 = off)")
	f.BoolVar(&cfg.HTTP2, "h2", cfg.HTTP2, "use HTTP/2 instead of HTTP/1.1 (still one connection per worker)")
	f.IntVar(&cfg.Groups, "groups", cfg.Groups, "directory groups to create before the run; with --assignments, the run reads as an application granted through 10 nested groups")
	f.IntVar(&cfg.Assignments, "assignments", cfg.Assignments, "role assignments to create before the run, spread over the groups")
	f.StringVar(&cfg.ReaderFile, "reader-file", cfg.ReaderFile, "with --groups/--assignments: file keeping the reader's credentials, so later runs reuse the load instead of building it again")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	cmd.AddCommand(newScaleCommand())
	return cmd
}

// writeResult prints res as text or as one JSON object.
func writeResult(w io.Writer, res Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("writing result: %w", err)
		}
		return nil
	}
	_, err := io.WriteString(w, res.Format())
	return err
}
