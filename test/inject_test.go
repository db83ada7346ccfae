package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// TestRun_InjectsThroughManagedIdentity: `strongroom run --identity` resolves kv:// references
// with the host's managed identity (through the identity agent) and execs the program with them
// in its environment: the program has the CLI's PID, sees the value, and the value is in no
// process's argv and no file of the test's folders (the server's data folder included), while
// it runs. A missing or disabled secret starts nothing and names the variable.
func TestRun_InjectsThroughManagedIdentity(t *testing.T) {
	recordClient(t, "strongroom run", "inject via managed identity (--identity)")
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.createVault(t, "run-rg", "run-kv", nil)
	rnd := make([]byte, 16)
	_, _ = rand.Read(rnd)
	value := "inj-" + hex.EncodeToString(rnd)
	if _, err := admin.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr(value)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetSecret(ctx, "off", azsecrets.SetSecretParameters{Value: to.Ptr("disabled-value"),
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, registration := e.hostIdentity(t, "run-rg", "run-kv", "run-host")
	ca := filepath.Join(e.srv.DataDir, "tls", "ca.pem")
	vars := runAgent(t, e.srv.URL, ca, registration)

	work := t.TempDir()
	configDir := filepath.Join(work, "config")
	base := []string{"run", "--identity", "--server", e.srv.URL, "--ca-file", ca}
	env := append(os.Environ(), "IDENTITY_ENDPOINT="+vars["IDENTITY_ENDPOINT"], "IDENTITY_HEADER="+vars["IDENTITY_HEADER"],
		"STRONGROOM_CONFIG_DIR="+configDir)

	// The program writes the value's digest (never the value) and waits to be looked at.
	digest, ready := filepath.Join(work, "digest"), filepath.Join(work, "ready")
	script := `printf %s "$DB_PASSWORD" | sha256sum > "$OUT"; echo $$ > "$READY"; exec sleep 30`
	cmd := exec.Command(testenv.Binary(t), append(base, "--env", "DB_PASSWORD=kv://run-kv/db-password", "--", "/bin/sh", "-c", script)...)
	cmd.Env = append(env, "OUT="+digest, "READY="+ready)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	var pidLine []byte
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ready); err == nil && len(bytes.TrimSpace(b)) > 0 {
			pidLine = b
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pidLine == nil {
		t.Fatalf("the program did not start: %s", stderr.String())
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(pidLine))); pid != cmd.Process.Pid {
		t.Fatalf("the program runs as PID %d, the CLI was %d: it should have replaced the CLI", pid, cmd.Process.Pid)
	}
	sum := sha256.Sum256([]byte(value))
	if got, _ := os.ReadFile(digest); !strings.HasPrefix(string(got), hex.EncodeToString(sum[:])) {
		t.Fatalf("the program saw a different value (digest %q)", got)
	}
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ")
	if err != nil || !bytes.Contains(environ, []byte("DB_PASSWORD="+value+"\x00")) {
		t.Fatalf("the program's environment lacks the value: %v", err)
	}
	// No argv anywhere holds it.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(value)) {
			t.Fatalf("%s holds the value", p)
		}
	}
	// No file under the test's folders does either.
	for _, root := range []string{work, vars["DATA_DIR"], e.srv.DataDir, filepath.Dir(work)} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > 64<<20 {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(value)) {
				t.Errorf("%s holds the value", path)
			}
			return nil
		})
	}
	_ = cmd.Process.Kill()

	// Failures start nothing and name the variable.
	marker := filepath.Join(work, "started")
	tests := []struct {
		name, ref, want string
	}{
		{"missing secret", "kv://run-kv/no-such-secret", "SecretNotFound"},
		{"disabled secret", "kv://run-kv/off", "Forbidden"},
		{"unknown version", "kv://run-kv/db-password/0123456789abcdef0123456789abcdef", "SecretNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exec.Command(testenv.Binary(t), append(base, "--env", "GOOD=kv://run-kv/db-password", "--env", "BAD="+tt.ref,
				"--", "/bin/sh", "-c", `touch "$MARK"`)...)
			c.Env = append(env, "MARK="+marker)
			out, err := c.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "BAD: resolving "+tt.ref) || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %v, output %s; want a failure naming BAD and %s", err, out, tt.want)
			}
			if strings.Contains(string(out), value) || strings.Contains(string(out), "disabled-value") {
				t.Fatalf("the error output holds a secret value: %s", out)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the program was started despite the failure")
			}
		})
	}
}

// TestRun_ProfileAndEnvFile: with a logged-in profile (a service principal), references in an
// env file (a pinned version, a plain value) reach the program, and its exit status is its own.
func TestRun_ProfileAndEnvFile(t *testing.T) {
	recordClient(t, "strongroom run", "inject via login profile, --env-file, pinned version")
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.createVault(t, "run2-rg", "run2-kv", nil)
	v1, err := admin.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("first-version")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("second-version")}, nil); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	env := append(os.Environ(), "STRONGROOM_CONFIG_DIR="+filepath.Join(work, "config"))
	login := exec.Command(testenv.Binary(t), "login", "--server", e.srv.URL, "--ca-file", filepath.Join(e.srv.DataDir, "tls", "ca.pem"),
		"--service-principal", "-u", e.srv.Admin.ClientID, "-p", e.srv.Admin.ClientSecret, "--tenant", e.srv.Admin.TenantID)
	login.Env = env
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("login: %v %s", err, out)
	}
	refs := filepath.Join(work, "refs.env")
	// A secret id at the server's own vault host (upper case, as a person may write it) is a reference too.
	file := "# the app's secrets\nAPI_KEY=kv://run2-kv/api-key\nOLD_KEY=\"kv://run2-kv/api-key/" + v1.ID.Version() + "\"\nMODE=production\n" +
		"BY_ID=" + strings.Replace(string(*v1.ID), "run2-kv.vault.localhost", "RUN2-KV.Vault.LocalHost", 1) + "\n"
	if err := os.WriteFile(refs, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t), "run", "--env-file", refs, "--", "/bin/sh", "-c",
		`[ "$API_KEY" = second-version ] && [ "$OLD_KEY" = first-version ] && [ "$MODE" = production ] && [ "$BY_ID" = first-version ] && exit 7; exit 1`)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("the program's exit: %v %s (7 means it saw the four values)", err, out)
	}

	// A secret id of another host (here the server's own origin, not a vault host) is refused
	// before any request, naming the variable and not the value; nothing starts.
	_, port, _ := strings.Cut(strings.TrimPrefix(e.srv.URL, "https://"), ":")
	for _, bad := range []string{"https://localhost:" + port + "/secrets/api-key", "https://run2-kv.vault.localhost:1" + port + "/secrets/api-key",
		"https://run2-kv.vault.example.test:" + port + "/secrets/api-key"} {
		if err := os.WriteFile(refs, []byte("API_KEY=kv://run2-kv/api-key\nELSEWHERE="+bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(testenv.Binary(t), "run", "--env-file", refs, "--", "/bin/sh", "-c", "exit 7")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if !errors.As(err, &ee) || ee.ExitCode() == 7 || !strings.Contains(string(out), "ELSEWHERE: a secret id must name a vault of the server") ||
			strings.Contains(string(out), bad) {
			t.Fatalf("%s: %v %s", bad, err, out)
		}
	}
}
