package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestHostsLines(t *testing.T) {
	tests := []struct {
		name, addr, suffix string
		names              []string
		want, wantErr      string
	}{
		{"one vault", "127.0.0.1", "vault.localhost", []string{"myKeyVault"}, "127.0.0.1 mykeyvault.vault.localhost\n", ""},
		{"order kept, duplicates once", "10.0.0.5", "kv.example.test", []string{"b-kv", "a-kv", "B-KV"}, "10.0.0.5 b-kv.kv.example.test\n10.0.0.5 a-kv.kv.example.test\n", ""},
		{"suffix spelling normalized", "::1", "Vault.Localhost.", []string{"kv1"}, "::1 kv1.vault.localhost\n", ""},
		{"no vaults", "127.0.0.1", "vault.localhost", nil, "", ""},
		{"a name that would inject a line", "127.0.0.1", "vault.localhost", []string{"kv\n1.2.3.4 login.microsoftonline.com"}, "", "invalid vault name"},
		{"a name with a space", "127.0.0.1", "vault.localhost", []string{"kv other"}, "", "invalid vault name"},
		{"too short", "127.0.0.1", "vault.localhost", []string{"kv"}, "", "invalid vault name"},
		{"starts with a digit", "127.0.0.1", "vault.localhost", []string{"1kv"}, "", "invalid vault name"},
		{"suffix with a port", "127.0.0.1", "vault.localhost:8443", []string{"kv1"}, "", "invalid --dns-suffix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hostsLines(tt.addr, tt.suffix, tt.names)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestServerAddress(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "sr.example.test":
			return []string{"2001:db8::7", "192.0.2.7"}, nil
		case "v6.example.test":
			return []string{"2001:db8::8"}, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct{ server, want, wantErr string }{
		{"https://localhost:8443", "127.0.0.1", ""},
		{"https://sso.localhost", "127.0.0.1", ""},
		{"https://192.0.2.9:8443", "192.0.2.9", ""},
		{"https://[2001:db8::9]:8443", "2001:db8::9", ""},
		{"https://sr.example.test:8443/", "192.0.2.7", ""},
		{"https://v6.example.test", "2001:db8::8", ""},
		{"https://nowhere.example.test", "", "resolving the server host nowhere.example.test"},
		{"http://localhost:8443", "", "expected an https URL"},
		{"localhost:8443", "", "expected an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			got, err := serverAddress(t.Context(), lookup, tt.server)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestProfileSuffix(t *testing.T) {
	p := &Profile{Server: "https://localhost:9443", KeyVaultDNS: "kv.localhost:9443"}
	tests := []struct {
		name         string
		p            *Profile
		server, want string
	}{
		{"not logged in", nil, "https://localhost:8443", "vault.localhost"},
		{"the logged-in server", p, "https://localhost:9443/", "kv.localhost"},
		{"another server", p, "https://localhost:8443", "vault.localhost"},
		{"no port in the suffix", &Profile{Server: "https://sr.example.test", KeyVaultDNS: ".vault.example.test"}, "https://sr.example.test", "vault.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := profileSuffix(tt.p, tt.server); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The command without a profile: named vaults need no login; listing them does.
func TestKeyvaultHostsCommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"named vaults", []string{"keyvault", "hosts", "--vault-name", "myKeyVault", "-n", "kv2,kv3", "--server", "https://localhost:8443"}, 0,
			"127.0.0.1 mykeyvault.vault.localhost\n127.0.0.1 kv2.vault.localhost\n127.0.0.1 kv3.vault.localhost\n", ""},
		{"another suffix", []string{"keyvault", "hosts", "-n", "kv1", "--server", "https://127.0.0.1:8443", "--dns-suffix", "kv.example.test"}, 0,
			"127.0.0.1 kv1.kv.example.test\n", ""},
		{"json output is still hosts lines", []string{"keyvault", "hosts", "-n", "kv1", "--server", "https://localhost:8443", "-o", "json"}, 0,
			"127.0.0.1 kv1.vault.localhost\n", ""},
		{"no server and no login", []string{"keyvault", "hosts", "-n", "kv1"}, exitUsage, "", "--server is required when not logged in"},
		{"listing needs a login", []string{"keyvault", "hosts", "--server", "https://localhost:8443"}, exitError, "", "please run 'strongroom login'"},
		{"bad name", []string{"keyvault", "hosts", "-n", "a b", "--server", "https://localhost:8443"}, exitUsage, "", "invalid vault name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode || stdout != tt.wantStdout || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
