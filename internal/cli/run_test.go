package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs the CLI in process with no profile and returns exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv(configDirEnv, filepath.Join(t.TempDir(), "cfg"))
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	extra := &cobra.Command{Use: "server", RunE: func(*cobra.Command, []string) error { return nil }}
	extra.Flags().String("tags", "", "a flag the CLI must not rewrite")
	code := a.run(t.Context(), args, extra)
	return code, stdout.String(), stderr.String()
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"not logged in", []string{"keyvault", "secret", "show", "--vault-name", "v", "--name", "s"}, exitError, "strongroom: please run 'strongroom login'"},
		{"account without login", []string{"account", "show"}, exitError, "please run 'strongroom login'"},
		{"logout without login", []string{"logout"}, exitError, "there are no active accounts"},
		{"unknown flag", []string{"keyvault", "secret", "show", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"unknown command", []string{"keyvault", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"stray argument", []string{"group", "list", "extra"}, exitUsage, "unrecognized arguments: extra"},
		{"required flag", []string{"group", "show"}, exitUsage, `required flag(s) "name" not set`},
		{"bad output", []string{"group", "list", "-o", "xml"}, exitUsage, `invalid --output value "xml"`},
		{"bad query", []string{"group", "list", "--query", "[?"}, exitUsage, "invalid --query value"},
		{"value and file", []string{"keyvault", "secret", "set", "--vault-name", "v", "-n", "s", "--value", "x", "--file", "f"}, exitUsage, "--value VALUE | --file PATH"},
		{"neither value nor file", []string{"keyvault", "secret", "set", "--vault-name", "v", "-n", "s"}, exitUsage, "--value VALUE | --file PATH"},
		{"encoding without file", []string{"keyvault", "secret", "set", "--vault-name", "v", "-n", "s", "--value", "x", "--encoding", "hex"}, exitUsage, "--encoding applies to --file only"},
		{"bad date", []string{"keyvault", "secret", "set", "--vault-name", "v", "-n", "s", "--value", "x", "--expires", "soon"}, exitUsage, `invalid --expires value "soon"`},
		{"bad tag", []string{"group", "create", "-n", "g", "-l", "eastus", "--tags", "=v"}, exitUsage, `invalid tag "=v"`},
		{"bad sku", []string{"keyvault", "create", "-n", "v", "-g", "g", "--sku", "gold"}, exitUsage, `invalid --sku value "gold"`},
		{"delete needs a tty or --yes", []string{"group", "delete", "-n", "g"}, exitUsage, "use --yes"},
		{"login needs a user name and a password", []string{"login", "-u", "a", "-t", "c"}, exitUsage, "--username and --password are required"},
		{"a service principal login needs a tenant", []string{"login", "--service-principal", "-u", "a", "-p", "b"}, exitUsage, "--tenant is required"},
		{"login with an http server", []string{"login", "--service-principal", "-u", "a", "-p", "b", "-t", "c", "--server", "http://localhost:1"}, exitUsage, "invalid --server value"},
		{"login with a missing ca file", []string{"login", "--service-principal", "-u", "a", "-p", "b", "-t", "c", "--ca-file", "/nonexistent/ca.pem"}, exitError, "reading ca file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, "strongroom: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr = %q, want one line starting with \"strongroom: \"", stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunExtraCommandsKeepTheirArgs(t *testing.T) {
	// "--tags a b" would be rewritten for the CLI's own commands; the server's flags are its own.
	code, _, stderr := runCLI(t, "server", "--tags", "a")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
}

func TestRunHelp(t *testing.T) {
	code, stdout, _ := runCLI(t, "keyvault", "secret")
	if code != 0 || !strings.Contains(stdout, "list-versions") {
		t.Errorf("bare group: exit %d, stdout %q; want help listing the subcommands", code, stdout)
	}
	code, stdout, _ = runCLI(t, "keyvault", "secret", "set", "--help")
	for _, flag := range []string{"--vault-name", "--name", "--value", "--file", "--encoding", "--content-type", "--tags", "--expires", "--not-before", "--disabled", "--output", "--query"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("secret set --help lacks %s (exit %d)", flag, code)
		}
	}
}
