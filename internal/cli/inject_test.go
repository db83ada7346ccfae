package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{in: "https://kv1.vault.localhost:8443/secrets/s1/v2", want: secretRef{url: "https://kv1.vault.localhost:8443/", name: "s1", version: "v2"}},
		{in: "kv://ab/x", wantErr: "vault name"},
		{in: "kv://myKeyVault/", wantErr: "secret name"},
		{in: "kv://myKeyVault/bad_name", wantErr: "secret name"},
		{in: "kv://myKeyVault/a/b/c", wantErr: "secret name"},
		{in: "kv://myKeyVault/a/not-hex!", wantErr: "version"},
		{in: "https://kv1.vault.localhost/keys/k", wantErr: "/secrets/"},
		{in: "https://kv1.vault.localhost/secrets/s?x=1", wantErr: "want kv://"},
		{in: "https://user@kv1.vault.localhost/secrets/s", wantErr: "want kv://"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSecretRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
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
		{[]string{"run", "--env", "A=plain", "--", "true"}, "not a kv:// reference"},
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
		})
	}
}
