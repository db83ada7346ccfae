package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAzConfig(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		// For a success: the activeDirectory endpoint, the vault suffix and the first command.
		wantAuthority, wantVaultDNS, wantRegister string
	}{
		{name: "default server", args: nil,
			wantAuthority: "https://localhost:8443/adfs", wantVaultDNS: ".vault.localhost:8443",
			wantRegister: `az cloud register --name Strongroom --cloud-config '{"endpoints":{"resourceManager":"https://localhost:8443/","activeDirectory":"https://localhost:8443/adfs","activeDirectoryResourceId":"https://management.core.windows.net/","activeDirectoryGraphResourceId":"https://graph.windows.net/","microsoftGraphResourceId":"https://localhost:8443/"},"suffixes":{"keyvaultDns":".vault.localhost:8443"}}'`},
		{name: "port and trailing slash", args: []string{"--server", "https://LocalHost:45029/"},
			wantAuthority: "https://localhost:45029/adfs", wantVaultDNS: ".vault.localhost:45029"},
		{name: "port 443 is left out of the suffix", args: []string{"--server", "https://strongroom.example", "--dns-suffix", "Vault.Example."},
			wantAuthority: "https://strongroom.example/adfs", wantVaultDNS: ".vault.example"},
		{name: "a name that needs quoting", args: []string{"--server", "https://localhost:9", "--name", "My Cloud's"},
			wantAuthority: "https://localhost:9/adfs", wantVaultDNS: ".vault.localhost:9",
			wantRegister: `az cloud register --name 'My Cloud'\''s' --cloud-config `},
		{name: "http server", args: []string{"--server", "http://localhost:8443"}, wantCode: exitUsage, wantStderr: "invalid --server value"},
		{name: "server with a path", args: []string{"--server", "https://localhost:8443/adfs"}, wantCode: exitUsage, wantStderr: "invalid --server value"},
		{name: "empty name", args: []string{"--name", " "}, wantCode: exitUsage, wantStderr: "--name must not be empty"},
		{name: "suffix with a port", args: []string{"--dns-suffix", "vault.localhost:8443"}, wantCode: exitUsage, wantStderr: "invalid --dns-suffix value"},
		{name: "stray argument", args: []string{"extra"}, wantCode: exitUsage, wantStderr: "unrecognized arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"az-config"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if tt.wantCode != 0 {
				if !strings.Contains(stderr, tt.wantStderr) || stdout != "" {
					t.Fatalf("stdout %q stderr %q, want an error containing %q", stdout, stderr, tt.wantStderr)
				}
				return
			}
			var out azConfigOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			ep := out.CloudConfig.Endpoints
			origin := strings.TrimSuffix(tt.wantAuthority, "/adfs")
			if ep.ActiveDirectory != tt.wantAuthority || ep.ResourceManager != origin+"/" || ep.MicrosoftGraphResourceID != origin+"/" ||
				ep.ActiveDirectoryResourceID != "https://management.core.windows.net/" || ep.ActiveDirectoryGraphResourceID == "" ||
				out.CloudConfig.Suffixes.KeyvaultDNS != tt.wantVaultDNS {
				t.Fatalf("cloud config %+v, want authority %s and vault suffix %s", out.CloudConfig, tt.wantAuthority, tt.wantVaultDNS)
			}
			if len(out.Commands) != 2 || !strings.HasPrefix(out.Commands[0], tt.wantRegister) || !strings.HasPrefix(out.Commands[1], "az cloud set --name ") {
				t.Fatalf("commands %q, want the first to start with %q", out.Commands, tt.wantRegister)
			}
		})
	}
}

// TestAzConfigApply runs --apply against a stand-in az that records its arguments, and answers
// "already registered" to register when told to.
func TestAzConfigApply(t *testing.T) {
	tests := []struct {
		name       string
		registered bool // the stand-in says the cloud exists
		failSet    bool
		wantCalls  []string
		wantErr    string
	}{
		{name: "new cloud", wantCalls: []string{"cloud register --name Strongroom --cloud-config {", "cloud set --name Strongroom"}},
		{name: "registered already", registered: true,
			wantCalls: []string{"cloud register --name Strongroom", "cloud update --name Strongroom --cloud-config {", "cloud set --name Strongroom"}},
		{name: "az cloud set fails", failSet: true, wantErr: "az cloud set --name Strongroom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "calls")
			script := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
			if tt.registered {
				script += "if [ \"$2\" = register ]; then echo \"ERROR: The cloud 'Strongroom' is already registered.\" >&2; exit 1; fi\n"
			}
			if tt.failSet {
				script += "if [ \"$2\" = set ]; then echo 'ERROR: boom' >&2; exit 1; fi\n"
			}
			fake := filepath.Join(dir, "az")
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			saved := azCommand
			azCommand = fake
			t.Cleanup(func() { azCommand = saved })

			code, stdout, stderr := runCLI(t, "az-config", "--server", "https://localhost:8443", "--apply")
			if tt.wantErr != "" {
				if code == 0 || !strings.Contains(stderr, tt.wantErr) || !strings.Contains(stderr, "boom") {
					t.Fatalf("exit %d stderr %q, want an error naming %q and az's message", code, stderr, tt.wantErr)
				}
				return
			}
			if code != 0 || !strings.Contains(stdout, `"keyvaultDns": ".vault.localhost:8443"`) {
				t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
			}
			raw, _ := os.ReadFile(log)
			calls := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(calls) != len(tt.wantCalls) {
				t.Fatalf("az calls %q, want %q", calls, tt.wantCalls)
			}
			for i, want := range tt.wantCalls {
				if !strings.HasPrefix(calls[i], want) {
					t.Errorf("call %d = %q, want prefix %q", i, calls[i], want)
				}
			}
		})
	}
}
