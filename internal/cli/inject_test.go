package cli

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSecretRef(t *testing.T) {
	tests := []struct {
		in      string
		want    secretRef
		wantErr string
	}{
		{in: "kv://myKeyVault/db-password", want: secretRef{vault: "myKeyVault", name: "db-password"}},
		{in: "kv://myKeyVault/db-password/0123abcd", want: secretRef{vault: "myKeyVault", name: "db-password", version: "0123abcd"}},
		{in: "kv://myKeyVault/db-password/", want: secretRef{vault: "myKeyVault", name: "db-password"}},
		{in: "https://kv1.vault.localhost:8443/secrets/s1/v2", want: secretRef{host: "kv1.vault.localhost:8443", name: "s1", version: "v2"}},
		{in: "https://KV1.Vault.LocalHost:8443/secrets/s1", want: secretRef{host: "kv1.vault.localhost:8443", name: "s1"}},
		{in: "kv://my--vault/x", wantErr: "vault name"},
		{in: "kv://myvault-/x", wantErr: "vault name"},
		{in: "kv://ab/x", wantErr: "vault name"},
		{in: "kv://myKeyVault/", wantErr: "secret name"},
		{in: "kv://myKeyVault/bad_name", wantErr: "secret name"},
		{in: "kv://myKeyVault/a/b/c", wantErr: "secret name"},
		{in: "kv://myKeyVault/a/not-hex!", wantErr: "version"},
		{in: "https://kv1.vault.localhost/keys/k", wantErr: "/secrets/"},
		{in: "https://kv1.vault.localhost/secrets/s?x=1", wantErr: "want kv://"},
		{in: "https://user@kv1.vault.localhost/secrets/s", wantErr: "want kv://"},
		{in: "https://user:hunter2@kv1.vault.localhost/secrets/s", wantErr: "no user"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSecretRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tt.in) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error repeats the reference: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    []envEntry
		wantErr string
	}{
		{name: "references, plain values, comments, quotes, export",
			file: "# refs\n\nDB_PASSWORD=kv://myKeyVault/db-password\nexport API_KEY=\"kv://myKeyVault/api-key/abc1\"\nMODE='production'\nEMPTY=\n",
			want: []envEntry{
				{name: "DB_PASSWORD", value: "kv://myKeyVault/db-password", ref: &secretRef{vault: "myKeyVault", name: "db-password"}},
				{name: "API_KEY", value: "kv://myKeyVault/api-key/abc1", ref: &secretRef{vault: "myKeyVault", name: "api-key", version: "abc1"}},
				{name: "MODE", value: "production"},
				{name: "EMPTY", value: ""},
			}},
		{name: "bad variable name", file: "1X=kv://myKeyVault/a\n", wantErr: ":1:"},
		{name: "no equals sign", file: "OK=1\nJUSTTEXT\n", wantErr: ":2:"},
		{name: "bad reference", file: "A=kv://x/y\n", wantErr: "vault name"},
		{name: "bad variable name, value not shown", file: "OK=1\nDB-PASS=hunter2\n", wantErr: ":2: want NAME=VALUE"},
		{name: "a line without a name, not shown", file: "hunter2\n", wantErr: ":1: want NAME=VALUE"},
		{name: "a secret id with credentials, not shown", file: "# x\nDB_URL=https://admin:hunter2@kv1.vault.localhost/secrets/db\n", wantErr: ":2: DB_URL: want kv://"},
		{name: "a bad reference, not shown", file: "A='kv://x/hunter2'\n", wantErr: ":1: A: the vault name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "refs.env")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := parseEnvFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "admin") {
					t.Fatalf("the error shows the value: %v", err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %+v, %v", got, err)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.name != w.name || g.value != w.value || (g.ref == nil) != (w.ref == nil) || (g.ref != nil && *g.ref != *w.ref) {
					t.Fatalf("entry %d = %+v (ref %+v), want %+v (ref %+v)", i, g, g.ref, w, w.ref)
				}
			}
		})
	}
}

func TestRunCommandRefusals(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"run", "--", "true"}, "nothing to inject"},
		{[]string{"run", "--env", "A=hunter2", "--", "true"}, "--env A: the value is not a kv:// reference"},
		{[]string{"run", "--env", "A-B=hunter2", "--", "true"}, "--env: want NAME=VALUE"},
		{[]string{"run", "--env", "A=kv://myKeyVault/a", "--", "/nonexistent/program"}, "starting /nonexistent/program"},
		{[]string{"run", "--env", "A=kv://myKeyVault/a", "--client-id", "x", "--", "true"}, "--client-id needs --identity"},
		{[]string{"run", "--env", "A=kv://myKeyVault/a", "--identity", "--", "true"}, "--identity needs --server"},
		{[]string{"run", "--env", "A=kv://myKeyVault/a"}, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv(configDirEnv, t.TempDir())
			var stdout, stderr strings.Builder
			a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
			if code := a.run(t.Context(), tt.args); code == 0 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want an error mentioning %q", code, stderr.String(), tt.wantErr)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Fatalf("stderr shows the value: %q", stderr.String())
			}
		})
	}
}

// A secret id is accepted only at a vault host of the server: the vault name, a dot and the
// server's keyVaultDns, port included.
func TestBindVaultHost(t *testing.T) {
	tests := []struct {
		suffix, in, vault string
	}{
		{"vault.localhost:8443", "https://kv1.vault.localhost:8443/secrets/s", "kv1"},
		{"vault.localhost:8443", "https://KV1.Vault.LocalHost:8443/secrets/s/abc", "kv1"},
		{"Vault.LocalHost:8443", "https://kv1.vault.localhost:8443/secrets/s", "kv1"},
		{"vault.example.com", "https://kv1.vault.example.com/secrets/s", "kv1"},
		{"vault.example.com", "https://kv1.vault.example.com:443/secrets/s", "kv1"},
		{"vault.localhost:8443", "https://kv1.vault.localhost/secrets/s", ""},
		{"vault.localhost:8443", "https://kv1.vault.localhost:9443/secrets/s", ""},
		{"vault.localhost:8443", "https://evil.example/secrets/s", ""},
		{"vault.localhost:8443", "https://kv1.vault.localhost.evil.example:8443/secrets/s", ""},
		{"vault.localhost:8443", "https://vault.localhost:8443/secrets/s", ""},
		{"vault.localhost:8443", "https://a.kv1.vault.localhost:8443/secrets/s", ""},
		{"vault.localhost:8443", "https://kv.vault.localhost:8443/secrets/s", ""},
		{"vault.localhost:8443", "https://kv--1.vault.localhost:8443/secrets/s", ""},
		{"vault.localhost:8443", "https://127.0.0.1:8443/secrets/s", ""},
		{"", "https://kv1./secrets/s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.suffix+" "+tt.in, func(t *testing.T) {
			r, err := parseSecretRef(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			err = r.bindVaultHost(tt.suffix)
			if tt.vault == "" {
				if err == nil || strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), tt.in) {
					t.Fatalf("bound to vault %q, err %v; want an error that does not repeat the id", r.vault, err)
				}
				return
			}
			if err != nil || r.vault != tt.vault {
				t.Fatalf("vault %q, err %v; want %q", r.vault, err, tt.vault)
			}
		})
	}
	kv := secretRef{vault: "myKeyVault", name: "x"}
	if err := kv.bindVaultHost("vault.localhost:8443"); err != nil || kv.vault != "myKeyVault" {
		t.Fatalf("a kv:// reference: %+v, %v", kv, err)
	}
}

// countingServer is a TLS server that counts the requests it gets.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// `strongroom run --identity` with a secret id naming another host (one the CA trusts, here
// 127.0.0.1) fails naming the variable, and neither that host nor the identity endpoint hears
// of it: no token is asked for, none is sent.
func TestResolveRefsRefusesForeignHost(t *testing.T) {
	server, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metadata/endpoints" {
			fmt.Fprint(w, `{"suffixes":{"keyVaultDns":"vault.localhost:8443"}}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	var stolen atomic.Bool
	foreign, foreignHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			stolen.Store(true)
		}
		// A challenge the SDK's resource check accepts: 127.0.0.1:port ends with .0.0.1:port.
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://localhost:8443/t", resource="https://`+strings.TrimPrefix(r.Host, "127.")+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	identity, tokenHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"access_token":"stolen","expires_on":"%d","resource":"https://vault.azure.net","token_type":"Bearer"}`, time.Now().Add(time.Hour).Unix())
	})
	t.Setenv(configDirEnv, t.TempDir())
	t.Setenv("IDENTITY_ENDPOINT", identity.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "h")
	t.Setenv("MSI_ENDPOINT", "")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := runSession(t.Context(), runOptions{identity: true, server: server.URL, caFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ref := foreign.URL + "/secrets/db-password"
	e, err := parseEnvAssignment("DB_PASSWORD="+ref, "--env")
	if err != nil {
		t.Fatal(err)
	}
	err = resolveRefs(t.Context(), s, []envEntry{{name: "OK", value: "plain"}, e})
	if err == nil || !strings.Contains(err.Error(), "DB_PASSWORD: a secret id must name a vault of the server") || strings.Contains(err.Error(), ref) {
		t.Fatalf("err = %v, want one naming DB_PASSWORD and not the id", err)
	}
	if foreignHits.Load() != 0 || tokenHits.Load() != 0 || stolen.Load() {
		t.Fatalf("the foreign host got %d requests (a token: %v) and the identity endpoint %d", foreignHits.Load(), stolen.Load(), tokenHits.Load())
	}
}
