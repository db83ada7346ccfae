package test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// cli runs the strongroom binary with its own profile folder and returns stdout and stderr.
func cli(t *testing.T, cfgDir string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = append(os.Environ(), "STRONGROOM_CONFIG_DIR="+cfgDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strongroom.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sealStatus(t *testing.T, srv *testenv.Server, hc *http.Client) map[string]any {
	t.Helper()
	resp, err := hc.Get(srv.URL + "/sys/seal-status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func unseal(t *testing.T, srv *testenv.Server, hc *http.Client, share string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": share})
	resp, err := hc.Post(srv.URL+"/sys/unseal", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// apiStatus is the status of an ARM call while the server may be sealed.
func apiStatus(t *testing.T, srv *testenv.Server, hc *http.Client) (int, string) {
	t.Helper()
	resp, err := hc.Get(srv.URL + "/subscriptions?api-version=2022-12-01")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSeal_Shamir(t *testing.T) {
	conf := writeConfig(t, "seal:\n  type: shamir\n")
	srv := testenv.Start(t, &testenv.Options{Extra: []string{"--config", conf}, Sealed: true})
	hc := srv.HTTPClient()
	cfgDir := t.TempDir()
	caFile := filepath.Join(srv.DataDir, "tls", "ca.pem")

	if st := sealStatus(t, srv, hc); st["initialized"] != false || st["sealed"] != true {
		t.Fatalf("new shamir server status = %v", st)
	}
	if code, body := apiStatus(t, srv, hc); code != 503 || !strings.Contains(body, "ServiceUnavailable") || !strings.Contains(body, "not initialized") {
		t.Fatalf("API on an uninitialized server: %d %s", code, body)
	}
	out, errOut, err := cli(t, cfgDir, "operator", "init", "--server", srv.URL, "--ca-file", caFile, "--key-shares", "5", "--key-threshold", "3")
	if err != nil {
		t.Fatalf("operator init: %v\n%s", err, errOut)
	}
	var initRes struct {
		Keys  []string          `json:"keys_base64"`
		Admin testenv.Admin     `json:"admin"`
		Extra map[string]string `json:"-"`
	}
	if err := json.Unmarshal([]byte(out), &initRes); err != nil || len(initRes.Keys) != 5 || initRes.Admin.ClientSecret == "" {
		t.Fatalf("init output: %v %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, "admin.json")); err == nil {
		t.Fatal("the shamir seal wrote the admin credential to disk")
	}
	if _, _, err := cli(t, cfgDir, "operator", "init", "--server", srv.URL, "--ca-file", caFile); err == nil {
		t.Fatal("a second init succeeded")
	}
	srv.Admin = initRes.Admin

	// Fewer than the threshold: still sealed.
	for i, k := range initRes.Keys[:2] {
		if code, st := unseal(t, srv, hc, k); code != 200 || st["progress"] != float64(i+1) || st["sealed"] != true {
			t.Fatalf("share %d: %d %v", i, code, st)
		}
	}
	if code, _ := apiStatus(t, srv, hc); code != 503 {
		t.Fatalf("API with 2 of 3 shares: %d", code)
	}
	if code, m := unseal(t, srv, hc, initRes.Keys[1]); code != 400 || !strings.Contains(fmt.Sprint(m), "already entered") {
		t.Fatalf("repeated share: %d %v", code, m)
	}
	if code, m := unseal(t, srv, hc, "not-a-share"); code != 400 || !strings.Contains(fmt.Sprint(m), "malformed") {
		t.Fatalf("malformed share: %d %v", code, m)
	}
	// A wrong share (from another deployment's split) makes a wrong key: refused, progress reset.
	other := testenv.Start(t, &testenv.Options{Extra: []string{"--config", conf}, Sealed: true})
	otherOut, _, err := cli(t, t.TempDir(), "operator", "init", "--server", other.URL, "--ca-file", filepath.Join(other.DataDir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var otherRes struct {
		Keys []string `json:"keys_base64"`
	}
	json.Unmarshal([]byte(otherOut), &otherRes)
	code, m := unseal(t, srv, hc, otherRes.Keys[0])
	if code != 400 || !strings.Contains(fmt.Sprint(m), "do not combine") {
		t.Fatalf("wrong share: %d %v", code, m)
	}
	if st := sealStatus(t, srv, hc); st["sealed"] != true || st["progress"] != float64(0) {
		t.Fatalf("after a wrong share: %v", st)
	}
	// Any 3 in any order unseal; the CLI reads a share from stdin too.
	for _, i := range []int{4, 1} {
		if code, st := unseal(t, srv, hc, initRes.Keys[i]); code != 200 {
			t.Fatalf("share %d: %d %v", i, code, st)
		}
	}
	cmd := exec.Command(testenv.Binary(t), "operator", "unseal", "--server", srv.URL, "--ca-file", caFile)
	cmd.Env = append(os.Environ(), "STRONGROOM_CONFIG_DIR="+cfgDir)
	cmd.Stdin = strings.NewReader(initRes.Keys[2] + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"sealed": false`) {
		t.Fatalf("operator unseal from stdin: %v\n%s", err, out)
	}
	srv.WaitHealthy()

	e := envFor(t, srv)
	kv := e.createVault(t, "rg", "kv-shamir", nil)
	ctx := context.Background()
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("sealed-value")}, nil); err != nil {
		t.Fatal(err)
	}

	// A restart comes back sealed; three other shares open it and the data is there.
	srv.Stop()
	srv.StartAgain()
	if st := sealStatus(t, srv, hc); st["sealed"] != true || st["initialized"] != true {
		t.Fatalf("after restart: %v", st)
	}
	for _, i := range []int{3, 0, 2} {
		unseal(t, srv, hc, initRes.Keys[i])
	}
	srv.WaitHealthy()
	e = envFor(t, srv)
	kv = srv.Secrets("kv-shamir", e.cred, e.hc)
	if got, err := kv.GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "sealed-value" {
		t.Fatalf("after restart and unseal: %v", err)
	}

	// operator seal (an authorized call) seals it again.
	if _, errOut, err := cli(t, cfgDir, "login", "--server", srv.URL, "--ca-file", caFile, "--service-principal",
		"--username", srv.Admin.ClientID, "--password", srv.Admin.ClientSecret, "--tenant", srv.Admin.TenantID); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut)
	}
	// Rekey: new shares replace the old ones.
	out, errOut, err = cli(t, cfgDir, "operator", "rekey", "--key-shares", "3", "--key-threshold", "2")
	if err != nil {
		t.Fatalf("operator rekey: %v\n%s", err, errOut)
	}
	var rekeyed struct {
		Keys []string `json:"keys_base64"`
	}
	if err := json.Unmarshal([]byte(out), &rekeyed); err != nil || len(rekeyed.Keys) != 3 {
		t.Fatalf("rekey output: %v %q", err, out)
	}
	if _, errOut, err := cli(t, cfgDir, "operator", "seal"); err != nil {
		t.Fatalf("operator seal: %v\n%s", err, errOut)
	}
	for i := 0; i < 100 && sealStatus(t, srv, hc)["sealed"] != true; i++ {
		srv.Sleep()
	}
	if code, _ := apiStatus(t, srv, hc); code != 503 {
		t.Fatalf("API after operator seal: %d", code)
	}
	// The old shares no longer open it; two of the new ones do.
	for _, k := range initRes.Keys[:2] {
		code, m = unseal(t, srv, hc, k)
	}
	if code != 400 || !strings.Contains(fmt.Sprint(m), "do not combine") {
		t.Fatalf("old shares after rekey: %d %v", code, m)
	}
	for _, k := range rekeyed.Keys[1:] {
		unseal(t, srv, hc, k)
	}
	srv.WaitHealthy()
	if got, err := srv.Secrets("kv-shamir", e.cred, e.hc).GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "sealed-value" {
		t.Fatalf("after rekey and unseal: %v", err)
	}
}

// TestSeal_FileSeal_NoKeyMaterialInFiles scans the data file, the audit log and the server's
// output for the root key, in raw and hex form.
func TestSeal_FileSeal_NoKeyMaterialInFiles(t *testing.T) {
	e := newEnv(t, nil)
	kv := e.createVault(t, "rg", "kv-keys", nil)
	if _, err := kv.SetSecret(context.Background(), "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	e.srv.Stop()
	hexKey, err := os.ReadFile(filepath.Join(e.srv.DataDir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(hexKey)))
	if err != nil || len(raw) != 32 {
		t.Fatalf("seal.key: %v", err)
	}
	needles := [][]byte{raw, bytes.TrimSpace(hexKey), []byte(strings.ToUpper(strings.TrimSpace(string(hexKey))))}
	segments, _ := filepath.Glob(filepath.Join(e.srv.DataDir, "strongroom.db.wal", "*.log"))
	if len(segments) == 0 {
		t.Fatal("no write-ahead log segments in the data folder")
	}
	files := []string{"strongroom.db", "audit/audit.log", "admin.json"}
	for _, seg := range segments {
		files = append(files, strings.TrimPrefix(seg, e.srv.DataDir+"/"))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(e.srv.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("root key material in %s", f)
			}
		}
	}
	for _, out := range []string{e.srv.Stdout.String(), e.srv.Stderr.String()} {
		for _, n := range needles {
			if bytes.Contains([]byte(out), n) {
				t.Error("root key material in the server's output")
			}
		}
	}
}

// TestSeal_MigrateFileToShamir migrates a running file-seal server to Shamir; the data survives,
// the key file is gone, and the next start needs the new seal type and shares.
func TestSeal_MigrateFileToShamir(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	kv := e.createVault(t, "rg", "kv-migrate", nil)
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("migrated")}, nil); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	if _, errOut, err := cli(t, cfgDir, "login", "--server", e.srv.URL, "--ca-file", filepath.Join(e.srv.DataDir, "tls", "ca.pem"), "--service-principal",
		"--username", e.srv.Admin.ClientID, "--password", e.srv.Admin.ClientSecret, "--tenant", e.srv.Admin.TenantID); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut)
	}
	out, errOut, err := cli(t, cfgDir, "operator", "seal", "migrate", "--to", "shamir", "--key-shares", "3", "--key-threshold", "2")
	if err != nil {
		t.Fatalf("seal migrate: %v\n%s", err, errOut)
	}
	var res struct {
		Keys []string `json:"keys_base64"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Keys) != 3 {
		t.Fatalf("migrate output: %v %q", err, out)
	}
	// Still serving after the migration.
	if got, err := kv.GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "migrated" {
		t.Fatalf("after migrate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.srv.DataDir, "seal.key")); err == nil {
		t.Fatal("the old key file is still there")
	}
	// A start with the old seal type refuses with a clear message.
	e.srv.Stop()
	cmd := exec.Command(testenv.Binary(t), "server", "--data-dir", e.srv.DataDir, "--listen", "127.0.0.1:0")
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), `uses the \"shamir\" seal`) && !strings.Contains(string(outb), `uses the "shamir" seal`) {
		t.Fatalf("start with the old seal type: %v\n%s", err, outb)
	}
	// With the config updated it comes up sealed and two new shares open it.
	e.srv.Extra = append(e.srv.Extra, "--config", writeConfig(t, "seal:\n  type: shamir\n"))
	e.srv.Sealed = true
	e.srv.StartAgain()
	hc := e.srv.HTTPClient()
	for _, k := range res.Keys[1:] {
		unseal(t, e.srv, hc, k)
	}
	e.srv.WaitHealthy()
	e2 := envFor(t, e.srv)
	if got, err := e2.srv.Secrets("kv-migrate", e2.cred, e2.hc).GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "migrated" {
		t.Fatalf("after restart under shamir: %v", err)
	}
}
