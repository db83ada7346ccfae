package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/seal/sealtest"
	"github.com/strongroom/strongroom/internal/testenv"
)

func TestSeal_PKCS11_SoftHSM(t *testing.T) {
	conf, tokenDir := sealtest.NewToken(t, "strongroom-test", "1234")
	cfg := writeConfig(t, "seal:\n  type: pkcs11\n  pkcs11:\n    module: "+sealtest.SoftHSMModule+"\n    token_label: strongroom-test\n    pin_env: TEST_HSM_PIN\n")
	env := []string{"SOFTHSM2_CONF=" + conf, "TEST_HSM_PIN=1234"}
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", cfg}, Env: env})
	ctx := context.Background()
	kv := e.createVault(t, "rg", "kv-hsm", nil)
	if _, err := kv.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("hsm-value")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.srv.DataDir, "seal.key")); err == nil {
		t.Fatal("the pkcs11 seal wrote a key file")
	}
	// The bootstrap credential was printed once (testenv took it from there), never written.
	if _, err := os.Stat(filepath.Join(e.srv.DataDir, "admin.json")); err == nil {
		t.Fatal("the pkcs11 seal wrote admin.json into the data folder")
	}
	if !strings.Contains(e.srv.Stdout.String(), "written nowhere") {
		t.Fatalf("the first start did not say the credential is kept nowhere:\n%s", e.srv.Stdout.String())
	}

	// A restart unseals itself through the HSM.
	e.srv.Restart()
	e2 := envFor(t, e.srv)
	kv = e2.srv.Secrets("kv-hsm", e2.cred, e2.hc)
	if got, err := kv.GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "hsm-value" {
		t.Fatalf("after restart: %v", err)
	}

	// Rekey: a new HSM key wraps a new root key; the server still unseals itself after it.
	cfgDir := t.TempDir()
	if _, errOut, err := cli(t, cfgDir, "login", "--server", e.srv.URL, "--ca-file", filepath.Join(e.srv.DataDir, "tls", "ca.pem"), "--service-principal",
		"--username", e.srv.Admin.ClientID, "--password", e.srv.Admin.ClientSecret, "--tenant", e.srv.Admin.TenantID); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut)
	}
	if out, errOut, err := cli(t, cfgDir, "operator", "rekey"); err != nil || !strings.Contains(out, "strongroom-root-wrap-") {
		t.Fatalf("operator rekey: %v\n%s%s", err, out, errOut)
	}
	e.srv.Restart()
	e3 := envFor(t, e.srv)
	if got, err := e3.srv.Secrets("kv-hsm", e3.cred, e3.hc).GetSecret(ctx, "s", "", nil); err != nil || *got.Value != "hsm-value" {
		t.Fatalf("after rekey and restart: %v", err)
	}

	// With the token gone the server comes up sealed and says why.
	e.srv.Stop()
	moved := tokenDir + ".away"
	if err := os.Rename(tokenDir, moved); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(tokenDir, 0o700)
	e.srv.Sealed = true
	e.srv.StartAgain()
	hc := e.srv.HTTPClient()
	if st := sealStatus(t, e.srv, hc); st["sealed"] != true || st["type"] != "pkcs11" {
		t.Fatalf("status without the token: %v", st)
	}
	if code, body := apiStatus(t, e.srv, hc); code != 503 || !strings.Contains(body, "sealed") {
		t.Fatalf("API without the token: %d %s", code, body)
	}
	if !strings.Contains(e.srv.Stderr.String(), `no token labelled \"strongroom-test\"`) {
		t.Fatalf("the log does not say the token is missing:\n%s", e.srv.Stderr.String())
	}
	// `operator unseal` without the token answers a fixed message; the log has the detail.
	code, m := unseal(t, e.srv, hc, "")
	if msg := fmt.Sprint(m); code != 503 || !strings.Contains(msg, "could not release the root key") ||
		strings.Contains(msg, "strongroom-test") || strings.Contains(msg, sealtest.SoftHSMModule) || strings.Contains(msg, "pkcs11 seal:") {
		t.Fatalf("unseal without the token: %d %v", code, m)
	}
	// The token comes back: `operator unseal` retries the HSM.
	os.RemoveAll(tokenDir)
	if err := os.Rename(moved, tokenDir); err != nil {
		t.Fatal(err)
	}
	if code, st := unseal(t, e.srv, hc, ""); code != 200 || st["sealed"] != false {
		t.Fatalf("unseal after the token returned: %d %v", code, st)
	}
	e.srv.WaitHealthy()
}

// TestSeal_AdminCredentialFile: admin_credential_file must lie outside the data folder; there
// the pkcs11 seal writes the credential (mode 0600) instead of printing it.
func TestSeal_AdminCredentialFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(testenv.Binary(t), "server", "--data-dir", data, "--listen", "127.0.0.1:0", "--admin-credential-file", filepath.Join(data, "admin-elsewhere.json"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "admin_credential_file") || !strings.Contains(string(out), "inside the data folder") {
		t.Fatalf("start with the credential file inside the data folder: %v\n%s", err, out)
	}

	conf, _ := sealtest.NewToken(t, "strongroom-cred", "1234")
	cfg := writeConfig(t, "seal:\n  type: pkcs11\n  pkcs11:\n    module: "+sealtest.SoftHSMModule+"\n    token_label: strongroom-cred\n    pin_env: TEST_HSM_PIN\n")
	credFile := filepath.Join(t.TempDir(), "admin.json")
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", cfg, "--admin-credential-file", credFile}, Env: []string{"SOFTHSM2_CONF=" + conf, "TEST_HSM_PIN=1234"}})
	fi, err := os.Stat(credFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", fi, err)
	}
	if strings.Contains(e.srv.Stdout.String(), e.srv.Admin.ClientSecret) {
		t.Fatal("the client secret was printed although a credential file was given")
	}
	if _, err := os.Stat(filepath.Join(e.srv.DataDir, "admin.json")); err == nil {
		t.Fatal("admin.json written into the data folder")
	}
	e.createVault(t, "rg", "kv-cred", nil) // the credential from the file works
}
