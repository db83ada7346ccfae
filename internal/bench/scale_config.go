package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Cold-cache methods for the cold restart of scale mode.
const (
	ColdCacheFadvise = "fadvise" // posix_fadvise(DONTNEED) on every file of the data folder
	ColdCacheSystem  = "system"  // /proc/sys/vm/drop_caches (root; drops the whole machine's cache)
	ColdCacheOff     = "off"     // no cold restart
)

// Limits of scale mode.
const (
	maxScaleSecrets = 10_000_000
	maxScaleVaults  = 100_000
	maxListSamples  = 10_000
)

// ScaleConfig describes one `bench scale` run: the server it starts and owns, how many secrets
// it writes over how many vaults, and how long each measurement lasts.
type ScaleConfig struct {
	// ServerBinary is the strongroom binary to run as the server ("" = this executable).
	ServerBinary string
	// DataDir is the server's data folder, fresh or existing. Required.
	DataDir string
	// Listen is the server's address: loopback only. Port 0 lets the server pick one, which the
	// restarts then reuse.
	Listen string
	// ServerFlags are passed to `strongroom server` after the benchmark's own flags.
	ServerFlags []string

	Secrets  int // N: secrets written in all
	Vaults   int // V: vaults they are spread over, N/V each
	Baseline int // the small point measured before growing to N (the "1 k" figures)

	Workers     int
	ValueSize   int
	ReadWindow  time.Duration // measured read window at each point
	Warmup      time.Duration // unmeasured reads before each window
	ListSamples int           // list requests timed per page kind and log state
	Idle        time.Duration // how long idle server CPU is sampled after the load
	// MaxDuration bounds the populate phases; secrets not written by then are left out and the
	// result says so (Truncated).
	MaxDuration    time.Duration
	RestartTimeout time.Duration // bound on each stop and each start
	ColdCache      string        // ColdCache* constant

	Vault         string // the vault's name (V = 1) or the vault names' prefix (V > 1)
	ResourceGroup string
	DNSSuffix     string
	Scope         string
	APIVersion    string

	// Progress, when set, receives one-line notes about the phases.
	Progress io.Writer
}

// DefaultScaleConfig returns the defaults used by the scale command's flags: the issue's
// million secrets in one vault, written and read at c=64.
func DefaultScaleConfig() ScaleConfig {
	d := DefaultConfig()
	return ScaleConfig{
		Listen:         "127.0.0.1:18543",
		Secrets:        1_000_000,
		Vaults:         1,
		Baseline:       1000,
		Workers:        d.Workers,
		ValueSize:      d.ValueSize,
		ReadWindow:     d.Duration,
		Warmup:         d.Warmup,
		ListSamples:    50,
		Idle:           20 * time.Second,
		MaxDuration:    time.Hour,
		RestartTimeout: 10 * time.Minute,
		ColdCache:      ColdCacheFadvise,
		Vault:          d.Vault,
		ResourceGroup:  d.ResourceGroup,
		DNSSuffix:      d.DNSSuffix,
		Scope:          d.Scope,
		APIVersion:     d.APIVersion,
	}
}

// Validate reports every invalid field, naming the flag.
func (c ScaleConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		bad("--data-dir is required")
	}
	if err := checkLoopback(c.Listen); err != nil {
		bad("--listen: %v", err)
	}
	if c.Secrets < 1 || c.Secrets > maxScaleSecrets {
		bad("--secrets: want 1..%d, got %d", maxScaleSecrets, c.Secrets)
	}
	if c.Vaults < 1 || c.Vaults > maxScaleVaults {
		bad("--vaults: want 1..%d, got %d", maxScaleVaults, c.Vaults)
	} else if c.Secrets >= 1 && c.Secrets%c.Vaults != 0 {
		bad("--secrets: %d does not divide into %d vaults", c.Secrets, c.Vaults)
	}
	if c.Baseline < 1 || c.Baseline > c.Secrets {
		bad("--baseline: want 1..--secrets (%d), got %d", c.Secrets, c.Baseline)
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		bad("--workers: want 1..%d, got %d", maxWorkers, c.Workers)
	}
	if c.ValueSize < 1 || c.ValueSize > maxValueSize {
		bad("--value-size: want 1..%d, got %d", maxValueSize, c.ValueSize)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
		zero bool // 0 allowed
	}{
		{"--read-window", c.ReadWindow, false}, {"--warmup", c.Warmup, true}, {"--idle", c.Idle, false},
		{"--max-duration", c.MaxDuration, false}, {"--restart-timeout", c.RestartTimeout, false},
	} {
		if d.v < 0 || (d.v == 0 && !d.zero) {
			bad("%s: want > 0, got %s", d.flag, d.v)
		}
	}
	if c.ListSamples < 1 || c.ListSamples > maxListSamples {
		bad("--list-samples: want 1..%d, got %d", maxListSamples, c.ListSamples)
	}
	switch c.ColdCache {
	case ColdCacheFadvise, ColdCacheSystem, ColdCacheOff:
	default:
		bad("--cold-cache: want fadvise, system or off, got %q", c.ColdCache)
	}
	if name := lastVaultName(c); !vaultNameRE.MatchString(name) {
		bad("--vault: %q is not a valid vault name (3-24 letters, digits, dashes)", name)
	}
	for flag, v := range map[string]string{"--resource-group": c.ResourceGroup, "--dns-suffix": c.DNSSuffix} {
		if v == "" {
			bad("%s must not be empty", flag)
		}
	}
	return errors.Join(errs...)
}

// lastVaultName is the longest vault name the run creates, for the name check.
func lastVaultName(c ScaleConfig) string {
	return layout{prefix: c.Vault, vaults: max(c.Vaults, 1)}.vaultName(max(c.Vaults, 1) - 1)
}

// checkLoopback accepts host:port with a loopback IP or "localhost" and a port 0..65535.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (the benchmark's server listens on loopback only)", host)
	}
	return nil
}
