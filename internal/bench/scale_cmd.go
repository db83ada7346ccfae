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

// newScaleCommand returns `bench scale`.
func newScaleCommand() *cobra.Command {
	cfg := DefaultScaleConfig()
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Grow a server it starts itself to N secrets and measure reads, lists, idle CPU, restarts, memory and disk",
		Long: "Start a strongroom server on a data folder (loopback only), write N secrets over V vaults through the " +
			"data plane, and report at --baseline secrets and at N: reads/s and server CPU per read, list-page " +
			"latency (first and middle page) with the write-ahead log full and empty, idle server CPU, restart " +
			"time warm and cold, RSS and anonymous memory, and bytes on disk per secret. The command signals only " +
			"the server process it started.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Progress = cmd.ErrOrStderr()
			res, err := RunScale(ctx, cfg)
			if err != nil && res.Baseline.Written == 0 {
				return err
			}
			// A run that failed late still prints what it measured: an hour of writes is
			// not thrown away for a failed last restart.
			if err != nil {
				res.Error = err.Error()
			}
			if werr := writeScaleResult(cmd.OutOrStdout(), res, asJSON); werr != nil {
				return werr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ServerBinary, "server-binary", cfg.ServerBinary, "strongroom binary to run as the server (default: this executable)")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data folder, fresh or existing (required)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "the server's loopback listen address (port 0: the server picks one, restarts reuse it)")
	f.StringArrayVar(&cfg.ServerFlags, "server-flag", nil, "extra flag for `strongroom server`, repeatable (e.g. --server-flag=--purge-interval=1h)")
	f.IntVar(&cfg.Secrets, "secrets", cfg.Secrets, "N: secrets to write in all")
	f.IntVar(&cfg.Vaults, "vaults", cfg.Vaults, "V: vaults to spread them over (N/V each; N must divide)")
	f.IntVar(&cfg.Baseline, "baseline", cfg.Baseline, "secrets at the small point measured before growing to N")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent writers and readers, one connection each")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "secret value size in bytes")
	f.DurationVar(&cfg.ReadWindow, "read-window", cfg.ReadWindow, "measured read window at each point")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured reads before each window")
	f.IntVar(&cfg.ListSamples, "list-samples", cfg.ListSamples, "list requests timed per page and log state")
	f.DurationVar(&cfg.Idle, "idle", cfg.Idle, "how long idle server CPU is sampled after the reads")
	f.DurationVar(&cfg.MaxDuration, "max-duration", cfg.MaxDuration, "bound on the writes, counted from the start; secrets not written by then are left out (reported)")
	f.DurationVar(&cfg.RestartTimeout, "restart-timeout", cfg.RestartTimeout, "bound on each server stop and start")
	f.StringVar(&cfg.ColdCache, "cold-cache", cfg.ColdCache, "cold restart: fadvise (evict the data folder's files, no root needed), system (/proc/sys/vm/drop_caches, root, whole machine) or off")
	f.StringVar(&cfg.Vault, "vault", cfg.Vault, "vault name (one vault) or vault name prefix (name-0 … name-{V-1})")
	f.StringVar(&cfg.ResourceGroup, "resource-group", cfg.ResourceGroup, "resource group that holds the vaults")
	f.StringVar(&cfg.DNSSuffix, "dns-suffix", cfg.DNSSuffix, "vault DNS suffix the server was started with")
	f.StringVar(&cfg.Scope, "scope", cfg.Scope, "OAuth2 scope of the data-plane token")
	f.StringVar(&cfg.APIVersion, "api-version", cfg.APIVersion, "Key Vault api-version sent on data-plane requests")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// writeScaleResult prints res as a table or as one JSON object.
func writeScaleResult(w io.Writer, res ScaleResult, asJSON bool) error {
	if asJSON {
		if err := json.NewEncoder(w).Encode(res); err != nil {
			return fmt.Errorf("writing result: %w", err)
		}
		return nil
	}
	_, err := io.WriteString(w, res.Format())
	return err
}
