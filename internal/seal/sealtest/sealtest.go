// Package sealtest is test support for the seals: a SoftHSM2 token of its own for each test that
// exercises the PKCS#11 seal, in the seal package's tests, the server's and the end-to-end ones.
package sealtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 package installs the PKCS#11 module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// RequireSoftHSM returns the softhsm2-util path. When SoftHSM2 is missing it fails the test under
// STRONGROOM_REQUIRE_ALL=1 (CI installs Debian's softhsm2) and skips it elsewhere.
func RequireSoftHSM(t testing.TB) string {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err == nil {
		if _, err = os.Stat(SoftHSMModule); err == nil {
			return util
		}
	}
	if os.Getenv("STRONGROOM_REQUIRE_ALL") == "1" {
		t.Fatalf("SoftHSM2 is required (STRONGROOM_REQUIRE_ALL=1) but missing: %v; install Debian's softhsm2", err)
	}
	t.Skipf("SoftHSM2 not installed (%v); set STRONGROOM_REQUIRE_ALL=1 to make this a failure", err)
	return ""
}

// NewToken creates a SoftHSM2 token labelled label, with user PIN pin, in a folder of its own
// (RequireSoftHSM first) and returns the SOFTHSM2_CONF file naming it and the token folder. The
// caller's environment is left as it is: set SOFTHSM2_CONF where the module is loaded.
func NewToken(t testing.TB, label, pin string) (conf, tokenDir string) {
	t.Helper()
	util := RequireSoftHSM(t)
	dir := t.TempDir()
	tokenDir = filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "87654321")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creating SoftHSM2 token: %v\n%s", err, out)
	}
	return conf, tokenDir
}
