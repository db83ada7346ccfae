package bench

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"time"
)

// Workload modes.
const (
	ModeRead  = "read"
	ModeWrite = "write"
	ModeMix   = "mix"
)

// Limits that keep a run bounded and its setup sane.
const (
	maxWorkers   = 4096
	maxValueSize = 25 * 1024 // Key Vault's secret value limit
	maxSecrets   = 1_000_000
)

// Config describes one benchmark run. DefaultConfig gives the values of the design's anchors
// (c=64, 15 s window, 2 s warm-up, 100-byte values over 1,000 names).
type Config struct {
	// Server is the control-plane base URL (token endpoint, ARM), e.g. https://localhost:8443.
	// Its port is also the data-plane port.
	Server string
	// CAFile is a PEM bundle trusted for every TLS connection. Required.
	CAFile string
	// AdminFile holds the credentials and ids of the admin service principal. Required.
	AdminFile string
	// Vault, ResourceGroup and DNSSuffix place the data plane at https://{Vault}.{DNSSuffix}:{port}.
	Vault         string
	ResourceGroup string
	DNSSuffix     string
	// Scope is requested for the data-plane token; APIVersion goes on every data-plane request.
	Scope      string
	APIVersion string

	Workers   int
	Duration  time.Duration
	Warmup    time.Duration
	Mode      string
	MixRead   float64 // share of reads in ModeMix
	ValueSize int     // bytes per secret value
	Secrets   int     // names that reads and writes pick from
	Populate  bool    // write every name once before the run; reads need it
	MaxOps    int64   // cap on measured operations; the window ends early when reached
	ServerPID int     // 0 = do not sample server CPU
	HTTP2     bool
	// Groups and Assignments, when set, build an access-control load before the run (access.go):
	// that many directory groups and role assignments, and a reader granted through nested
	// groups whose token the run uses.
	Groups      int
	Assignments int
	// ReaderFile keeps the reader's credentials across runs: when it exists the load is not
	// built again and the run reads as the reader it names; otherwise it is written.
	ReaderFile string

	// Progress, when set, receives one-line notes about setup phases.
	Progress io.Writer
}

// DefaultConfig returns the defaults used by the command's flags.
func DefaultConfig() Config {
	return Config{
		Server:        "https://localhost:8443",
		Vault:         "benchkv",
		ResourceGroup: "bench",
		DNSSuffix:     "vault.localhost",
		Scope:         "https://vault.azure.net/.default",
		APIVersion:    "7.4",
		Workers:       64,
		Duration:      15 * time.Second,
		Warmup:        2 * time.Second,
		Mode:          ModeRead,
		MixRead:       0.9,
		ValueSize:     100,
		Secrets:       1000,
		Populate:      true,
		MaxOps:        1 << 40,
	}
}

// Key Vault names: 3–24 characters, letters, digits and dashes, starting with a letter.
var vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// Validate reports every invalid field, naming the flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.Server); err != nil || u.Scheme != "https" || u.Hostname() == "" {
		bad("--server: want an https URL with a host, got %q", c.Server)
	}
	if c.CAFile == "" {
		bad("--ca-file is required")
	}
	if c.AdminFile == "" {
		bad("--admin-file is required")
	}
	if !vaultNameRE.MatchString(c.Vault) {
		bad("--vault: %q is not a valid vault name (3-24 letters, digits, dashes)", c.Vault)
	}
	if c.ResourceGroup == "" {
		bad("--resource-group must not be empty")
	}
	if c.DNSSuffix == "" {
		bad("--dns-suffix must not be empty")
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		bad("--workers: want 1..%d, got %d", maxWorkers, c.Workers)
	}
	if c.Duration <= 0 {
		bad("--duration: want > 0, got %s", c.Duration)
	}
	if c.Warmup < 0 {
		bad("--warmup: want >= 0, got %s", c.Warmup)
	}
	switch c.Mode {
	case ModeRead, ModeWrite, ModeMix:
	default:
		bad("--mode: want read, write or mix, got %q", c.Mode)
	}
	if c.MixRead < 0 || c.MixRead > 1 {
		bad("--mix-read: want 0..1, got %g", c.MixRead)
	}
	if c.ValueSize < 1 || c.ValueSize > maxValueSize {
		bad("--value-size: want 1..%d, got %d", maxValueSize, c.ValueSize)
	}
	if c.Secrets < 1 || c.Secrets > maxSecrets {
		bad("--secrets: want 1..%d, got %d", maxSecrets, c.Secrets)
	}
	if c.MaxOps < 1 {
		bad("--max-ops: want >= 1, got %d", c.MaxOps)
	}
	if c.ServerPID < 0 {
		bad("--server-pid: want >= 0, got %d", c.ServerPID)
	}
	return errors.Join(errs...)
}
