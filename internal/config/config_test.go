package config_test

import (
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/config"
)

func TestConfig_ParseValidate(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr, wantPublic string
	}{
		{"defaults", "", "", "https://localhost:8443"},
		{"listen port flows into public url", "listen: 127.0.0.1:9443", "", "https://localhost:9443"},
		{"explicit public url", "public_url: https://vault.example.test:8443/", "", "https://vault.example.test:8443"},
		{"bad listen", "listen: nope", "listen:", ""},
		{"http public url", "public_url: http://localhost:8443", "public_url:", ""},
		{"bad dns suffix", "dns_suffix: 'a/b'", "dns_suffix:", ""},
		{"bad seal", "seal: {type: vaultish}", "seal.type:", ""},
		{"shamir seal", "seal: {type: shamir}", "", "https://localhost:8443"},
		{"pkcs11 needs module", "seal: {type: pkcs11}", "seal.pkcs11.module:", ""},
		{"pkcs11 needs one pin source", "seal: {type: pkcs11, pkcs11: {module: /x.so, token_label: t}}", "pin_env and pin_file", ""},
		{"unknown field", "listn: x", "field listn not found", ""},
		{"negative throttle", "vault_requests_per_10s: -1", "vault_requests_per_10s:", ""},
		{"small checkpoints", "wal_checkpoint_bytes: 65536", "", "https://localhost:8443"},
		{"tiny checkpoints", "wal_checkpoint_bytes: 100", "wal_checkpoint_bytes:", ""},
		{"huge checkpoints", "wal_checkpoint_bytes: 1073741824", "wal_checkpoint_bytes:", ""},
		{"trusted proxies", "trusted_proxies: [10.0.0.0/8, 192.168.1.1, 'fd00::/8']", "", "https://localhost:8443"},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]", `trusted_proxies[1]: "10.0.0.0/33"`, ""},
		{"trusted proxy hostname", "trusted_proxies: [proxy.local]", "trusted_proxies[0]:", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			err := cfg.Parse(strings.NewReader(c.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || cfg.PublicURL != c.wantPublic {
				t.Fatalf("PublicURL = %q, err = %v; want %q", cfg.PublicURL, err, c.wantPublic)
			}
		})
	}
}

// dns_suffix is checked label by label and kept in one spelling (lower case, no final dot), so
// the certificate, vault URIs and Host matching agree.
func TestConfig_DNSSuffix(t *testing.T) {
	cases := []struct{ in, want string }{
		{"vault.localhost", "vault.localhost"},
		{"Vault.Example.Test.", "vault.example.test"},
		{"kv-1.corp.internal", "kv-1.corp.internal"},
		{"localhost", "localhost"},
		{"", ""},
		{".vault.localhost", ""},
		{"vault..localhost", ""},
		{"*.vault.localhost", ""},
		{"-kv.localhost", ""},
		{"kv_1.localhost", ""},
		{"vault.localhost:8443", ""},
		{strings.Repeat("a", 64) + ".test", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			cfg := config.Default()
			cfg.DNSSuffix = c.in
			err := cfg.Validate()
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), "dns_suffix:") {
					t.Fatalf("err = %v, want a dns_suffix error", err)
				}
				return
			}
			if err != nil || cfg.DNSSuffix != c.want {
				t.Fatalf("DNSSuffix = %q, err = %v; want %q", cfg.DNSSuffix, err, c.want)
			}
		})
	}
}
