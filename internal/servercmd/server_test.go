package servercmd

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom/strongroom/internal/config"
)

// Every server flag given explicitly overrides the config file: a flag without its overlay line
// would be silently ignored whenever --config is used.
func TestOverlay_EveryFlagOverridesTheFile(t *testing.T) {
	var names []string
	serverCommand(new(config.Config), new(string)).Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	for _, name := range names {
		if name == "config" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			flags := config.Default()
			cmd := serverCommand(&flags, new(string))
			f := cmd.Flags().Lookup(name)
			if err := cmd.Flags().Set(name, nonDefault(f)); err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(flags, config.Default()) {
				t.Fatalf("--%s=%s changed nothing", name, nonDefault(f))
			}
			file := config.Default()
			overlay(cmd, &file, &flags)
			if !reflect.DeepEqual(file, flags) {
				t.Fatalf("--%s did not override the config file", name)
			}
		})
	}
}

// nonDefault is a value of f's type that differs from every default.
func nonDefault(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		return "true"
	case "duration":
		return "7s"
	case "int", "uint64":
		return "7"
	default:
		return "x-" + f.Name
	}
}

// A config file supplies what no flag overrides, and flags left at their defaults do not
// override it.
func TestResolveConfig_FileThenExplicitFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "strongroom.yaml")
	yaml := "data_dir: " + filepath.Join(dir, "from-file") + "\nlisten: 127.0.0.1:1111\nlog_level: warn\nsnapshots:\n  interval: 1h\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := config.Default()
	cmd := serverCommand(&flags, new(string))
	if err := cmd.Flags().Parse([]string{"--listen", "127.0.0.1:2222", "--snapshot-retain", "3"}); err != nil {
		t.Fatal(err)
	}
	got, err := resolveConfig(cmd, file, flags)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != filepath.Join(dir, "from-file") || got.LogLevel != "warn" || got.Snapshots.Interval != time.Hour {
		t.Errorf("the file's settings were lost: data_dir %q, log_level %q, snapshots.interval %v", got.DataDir, got.LogLevel, got.Snapshots.Interval)
	}
	if got.Listen != "127.0.0.1:2222" || got.Snapshots.Retain != 3 {
		t.Errorf("explicit flags did not win: listen %q, snapshot retain %d", got.Listen, got.Snapshots.Retain)
	}
}

// A configuration that does not validate is refused before anything starts.
func TestResolveConfig_Invalid(t *testing.T) {
	flags := config.Default()
	cmd := serverCommand(&flags, new(string))
	if err := cmd.Flags().Parse([]string{"--dns-suffix", "not a name"}); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveConfig(cmd, "", flags); err == nil {
		t.Fatal("an invalid --dns-suffix was accepted")
	}
}
