// Package config is the server's typed configuration: Default, then an optional YAML file
// (Parse), then flags, then Validate, whose errors name the field.
package config

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config holds every server setting.
type Config struct {
	// DataDir holds the store, TLS material, seal key and audit log. Default "./strongroom-data".
	DataDir string `yaml:"data_dir"`
	// Listen is the HTTPS listen address. Default "127.0.0.1:8443".
	Listen string `yaml:"listen"`
	// DNSSuffix: vaults are served at "{vault}.{dns_suffix}". Default "vault.localhost".
	DNSSuffix string `yaml:"dns_suffix"`
	// PublicURL is the origin clients use as authority host and resource manager. Default
	// "https://localhost:<listen port>".
	PublicURL string `yaml:"public_url"`
	// VaultRequestsPer10s is the per-vault request budget; Key Vault's is 4000. 0 disables
	// throttling. Default 4000.
	VaultRequestsPer10s int `yaml:"vault_requests_per_10s"`
	// PurgeInterval is how often expired soft-deleted objects are purged. Default 1m.
	PurgeInterval time.Duration `yaml:"purge_interval"`
	// ShutdownTimeout bounds draining in-flight requests on SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// CompactDelay is how long after a purge the store is compacted, so purged ciphertext leaves
	// the data folder; purges within the delay share one compaction. Default 5s.
	CompactDelay time.Duration `yaml:"compact_delay"`
	// WALCheckpointBytes is how many bytes of writes the single-node store's write-ahead log
	// holds before it is checkpointed into the store file (0: 8 MiB; 4 KiB-16 MiB; the audit
	// intents logged with the writes do not count). Ignored in cluster mode.
	WALCheckpointBytes int64 `yaml:"wal_checkpoint_bytes"`
	// Seal selects how the root key is kept: SealFile (default), SealShamir or SealPKCS11.
	Seal SealConfig `yaml:"seal"`
	// AdminCredentialFile, when set, is where the bootstrap admin's credential is written (mode
	// 0600) when it is created; it must lie outside the data folder. Unset, the file seal writes
	// <data_dir>/admin.json and the other seals write it nowhere (it is shown once).
	AdminCredentialFile string `yaml:"admin_credential_file"`
	// TLS selects the HTTPS certificate: an operator-supplied one, or (unset) one issued by a
	// local CA kept in <data_dir>/tls/.
	TLS TLSConfig `yaml:"tls"`
	// MemoryLimitMiB is the Go runtime's soft memory limit (GOMEMLIMIT) in MiB: the garbage
	// collector, which otherwise lets the heap grow to nine times what is live (GOGC 800, for
	// throughput), works harder as the heap nears it. It bounds peak memory under write bursts;
	// it is not a hard cap. 0 turns it off; the GOMEMLIMIT environment variable overrides it.
	// Default 384.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
	// Mlock locks all of the process's memory (mlockall) so keys never reach swap. It also locks
	// bbolt's memory map, so the store's size counts against RLIMIT_MEMLOCK: enable it only with
	// enough locked-memory allowance (Vault documents the same caveat). Default false.
	Mlock bool `yaml:"mlock"`
	// Cluster configures Raft clustering; empty means a single node.
	Cluster ClusterConfig `yaml:"cluster"`
	// Snapshots schedules encrypted snapshots with retention; empty means none.
	Snapshots SnapshotsConfig `yaml:"snapshots"`
	// Metrics configures GET /metrics (Prometheus).
	Metrics MetricsConfig `yaml:"metrics"`
	// TrustedProxies are the CIDR ranges (or single addresses) of reverse proxies whose
	// X-Forwarded-For header names the client for the vault firewall; empty (default) trusts
	// none, so the client is always the connection's peer (proxies.go).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Audit configures the audit log's rotation, retention, signed checkpoints and extra sinks.
	Audit AuditConfig `yaml:"audit"`
	// Events configures Event Grid-style event delivery (outbound webhooks).
	Events EventsConfig `yaml:"events"`
	// Rotation configures secret rotation.
	Rotation RotationConfig `yaml:"rotation"`
	// Alerts configures the built-in alert rules on unusual access and their webhooks.
	Alerts AlertsConfig `yaml:"alerts"`
	// Portal configures the web portal under /portal/ (portal.go).
	Portal PortalConfig `yaml:"portal"`
}

// TLSConfig names an operator-supplied HTTPS certificate. Both files or neither: with them the
// server creates no local CA and serves this chain as it is (it must cover localhost or the
// public URL's host and "*.<dns_suffix>").
type TLSConfig struct {
	CertFile string `yaml:"cert_file"` // PEM chain, leaf first
	KeyFile  string `yaml:"key_file"`  // PEM private key
	// MinVersion is the lowest TLS version the API listener accepts: "1.2" (the default, as
	// Key Vault) or "1.3". Nothing lower is ever accepted.
	MinVersion string `yaml:"min_version"`
}

// MinTLSVersion is MinVersion as a crypto/tls constant (after validate).
func (c TLSConfig) MinTLSVersion() uint16 {
	if c.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// SealType names a seal; internal/seal implements each one.
type SealType string

// The seal types.
const (
	SealFile   SealType = "file"   // the root key in a key file (development only)
	SealShamir SealType = "shamir" // the root key split into operators' unseal shares
	SealPKCS11 SealType = "pkcs11" // the root key wrapped by a key that never leaves an HSM
)

// DefaultPKCS11KeyLabel labels the HSM key that wraps the root key when key_label is unset.
const DefaultPKCS11KeyLabel = "strongroom-root-wrap"

// SealConfig configures the seal. The type is fixed when the data folder is initialized.
type SealConfig struct {
	// Type is SealFile, SealShamir or SealPKCS11.
	Type SealType `yaml:"type"`
	// KeyFile is the file seal's key path; default "<data_dir>/seal.key". Keep it apart from the
	// data folder for any protection at all.
	KeyFile string `yaml:"key_file"`
	// PKCS11 configures the pkcs11 seal; required when Type is SealPKCS11.
	PKCS11 PKCS11Config `yaml:"pkcs11"`
}

// PKCS11Config locates the HSM key that wraps the root key.
type PKCS11Config struct {
	// Module is the PKCS#11 library path, e.g. /usr/lib/softhsm/libsofthsm2.so. Required.
	Module string `yaml:"module"`
	// TokenLabel selects the token (slot) by label. Required.
	TokenLabel string `yaml:"token_label"`
	// PINEnv names an environment variable holding the user PIN; PINFile a file holding it.
	// Exactly one is required. The PIN never appears in the config file itself.
	PINEnv  string `yaml:"pin_env"`
	PINFile string `yaml:"pin_file"`
	// KeyLabel is the label of the AES key that wraps the root key; it is generated in the
	// token (non-extractable) on first start if absent. Default "strongroom-root-wrap".
	KeyLabel string `yaml:"key_label"`
}

// Default returns the embedded default.
func Default() Config {
	return Config{
		DataDir:             "./strongroom-data",
		Listen:              "127.0.0.1:8443",
		DNSSuffix:           "vault.localhost",
		VaultRequestsPer10s: 4000,
		PurgeInterval:       time.Minute,
		ShutdownTimeout:     30 * time.Second,
		LogLevel:            "info",
		CompactDelay:        5 * time.Second,
		MemoryLimitMiB:      384,
		Seal:                SealConfig{Type: SealFile},
	}
}

// Parse overlays the YAML in r onto c. Unknown fields are errors.
func (c *Config) Parse(r io.Reader) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err != io.EOF {
		return fmt.Errorf("parsing config: %w", err)
	}
	return nil
}

// Validate checks c and fills in derived defaults.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: must not be empty")
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err)
	}
	suffix, ok := normalizeDNSName(c.DNSSuffix)
	if !ok {
		return fmt.Errorf("dns_suffix: %q is not a DNS name (letters, digits and hyphens in dot-separated labels, e.g. vault.example.com)", c.DNSSuffix)
	}
	c.DNSSuffix = suffix // the certificate, vault URIs and Host matching all see one spelling
	if c.PublicURL == "" {
		c.PublicURL = "https://localhost:" + port
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("public_url: %q must be an https origin such as https://localhost:8443", c.PublicURL)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file and key_file must be given together")
	}
	switch c.TLS.MinVersion {
	case "", "1.2", "1.3":
	default:
		return fmt.Errorf("tls.min_version: %q must be 1.2 or 1.3 (nothing lower is accepted)", c.TLS.MinVersion)
	}
	if c.VaultRequestsPer10s < 0 {
		return fmt.Errorf("vault_requests_per_10s: must be 0 (off) or positive")
	}
	if c.PurgeInterval <= 0 {
		return fmt.Errorf("purge_interval: must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.MemoryLimitMiB != 0 && c.MemoryLimitMiB < 64 {
		return fmt.Errorf("memory_limit_mib: %d is below 64 (0 turns the limit off)", c.MemoryLimitMiB)
	}
	if c.CompactDelay < 0 {
		return fmt.Errorf("compact_delay: must not be negative")
	}
	if c.WALCheckpointBytes != 0 && (c.WALCheckpointBytes < 4<<10 || c.WALCheckpointBytes > 16<<20) {
		return fmt.Errorf("wal_checkpoint_bytes: %d is outside 4096-16777216 (0 for the 8 MiB default)", c.WALCheckpointBytes)
	}
	switch c.Seal.Type {
	case SealFile, SealShamir:
	case SealPKCS11:
		if err := c.Seal.PKCS11.Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("seal.type: %q is not one of %s, %s, %s", c.Seal.Type, SealFile, SealShamir, SealPKCS11)
	}
	if err := c.Snapshots.Validate(c.DataDir); err != nil {
		return err
	}
	if err := c.validateTrustedProxies(); err != nil {
		return err
	}
	if err := c.Audit.validate(); err != nil {
		return err
	}
	if err := c.Rotation.validate(); err != nil {
		return err
	}
	if err := c.Events.validate(); err != nil {
		return err
	}
	if err := c.Alerts.validate(); err != nil {
		return err
	}
	if err := c.Portal.validate(); err != nil {
		return err
	}
	return c.Cluster.Validate()
}

// normalizeDNSName lower-cases name and drops a final dot; ok is false unless every label is 1-63
// letters, digits or inner hyphens.
func normalizeDNSName(name string) (string, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || len(name) > 253 {
		return "", false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return "", false
			}
		}
	}
	return name, true
}

// Validate checks the settings the pkcs11 seal needs and fills in the default key label. It is
// also how a server migrating to the pkcs11 seal, or staging a key for it, checks its own.
func (p *PKCS11Config) Validate() error {
	switch {
	case p.Module == "":
		return fmt.Errorf("seal.pkcs11.module: required for the pkcs11 seal")
	case p.TokenLabel == "":
		return fmt.Errorf("seal.pkcs11.token_label: required for the pkcs11 seal")
	case (p.PINEnv == "") == (p.PINFile == ""):
		return fmt.Errorf("seal.pkcs11: set exactly one of pin_env and pin_file")
	}
	if p.KeyLabel == "" {
		p.KeyLabel = DefaultPKCS11KeyLabel
	}
	return nil
}
