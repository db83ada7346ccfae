// Package servercmd holds the commands of the server binary that are the server's own, not an
// API client's: `server` (flags and config file → config.Config → app.Run), `operator raft`,
// `operator dr`, `operator snapshot` (calls on a node's operator socket, or offline on a stopped
// node's data folder) and `audit verify`. cmd/strongroom mounts them beside the client commands
// of internal/cli; nothing else imports this package.
package servercmd

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strongroom/strongroom/internal/app"
	"github.com/strongroom/strongroom/internal/config"
)

// NewServerCommand returns the `server` command.
func NewServerCommand() *cobra.Command {
	cfg := config.Default()
	var configFile string
	return serverCommand(&cfg, &configFile)
}

// serverCommand binds the server's flags to cfg and --config to configFile.
func serverCommand(cfg *config.Config, configFile *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Strongroom server (embedded default: one data folder, self-signed TLS, file seal)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resolved, err := resolveConfig(cmd, *configFile, *cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return app.Run(ctx, resolved, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(configFile, "config", "", "optional YAML config file; flags given explicitly override it")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data folder (store, TLS material, seal key, audit log)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTPS listen address (port 0 takes a free port, named in the \"strongroom listening\" log line)")
	f.StringVar(&cfg.DNSSuffix, "dns-suffix", cfg.DNSSuffix, "vaults are served at {vault}.<dns-suffix>")
	f.StringVar(&cfg.PublicURL, "public-url", "", "origin clients use as authority host and resource manager (default https://localhost:<listen port>)")
	f.IntVar(&cfg.VaultRequestsPer10s, "vault-requests-per-10s", cfg.VaultRequestsPer10s, "per-vault request budget per 10 seconds (0 disables throttling)")
	f.DurationVar(&cfg.PurgeInterval, "purge-interval", cfg.PurgeInterval, "how often expired soft-deleted objects are purged")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.TLS.CertFile, "tls-cert-file", "", "serve this PEM certificate chain instead of one from the local CA in <data-dir>/tls (with --tls-key-file)")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key-file", "", "the private key of --tls-cert-file")
	f.StringVar(&cfg.AdminCredentialFile, "admin-credential-file", "", "write the bootstrap admin credential here (outside the data folder) when it is created")
	addClusterFlags(cmd, &cfg.Cluster)
	addSnapshotFlags(cmd, &cfg.Snapshots, &cfg.Metrics)
	return cmd
}

// resolveConfig is the server's configuration: the config file's when one is given, with the
// flags set explicitly on top, else the flags' (over the defaults); validated either way.
func resolveConfig(cmd *cobra.Command, configFile string, cfg config.Config) (config.Config, error) {
	if configFile != "" {
		file := config.Default()
		f, err := os.Open(configFile)
		if err != nil {
			return config.Config{}, fmt.Errorf("opening config: %w", err)
		}
		err = file.Parse(f)
		f.Close()
		if err != nil {
			return config.Config{}, err
		}
		overlay(cmd, &file, &cfg)
		cfg = file
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// overlay copies every flag the user set explicitly onto the file configuration.
func overlay(cmd *cobra.Command, file, flags *config.Config) {
	overlayFlags(cmd, file, flags)
	overlayClusterFlags(cmd, &file.Cluster, &flags.Cluster)
	overlaySnapshotFlags(cmd, file, flags)
}

// overlayFlags copies the flags the user set explicitly onto the file configuration.
func overlayFlags(cmd *cobra.Command, file, flags *config.Config) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("data-dir", func() { file.DataDir = flags.DataDir })
	set("listen", func() { file.Listen = flags.Listen })
	set("dns-suffix", func() { file.DNSSuffix = flags.DNSSuffix })
	set("public-url", func() { file.PublicURL = flags.PublicURL })
	set("vault-requests-per-10s", func() { file.VaultRequestsPer10s = flags.VaultRequestsPer10s })
	set("purge-interval", func() { file.PurgeInterval = flags.PurgeInterval })
	set("log-level", func() { file.LogLevel = flags.LogLevel })
	set("admin-credential-file", func() { file.AdminCredentialFile = flags.AdminCredentialFile })
	set("tls-cert-file", func() { file.TLS.CertFile = flags.TLS.CertFile })
	set("tls-key-file", func() { file.TLS.KeyFile = flags.TLS.KeyFile })
}
