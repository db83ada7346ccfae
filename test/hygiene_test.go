package test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/strongroom/strongroom/internal/testenv"
)

// TestProcess_Hygiene checks the running server: no core dumps, and with mlock on, locked memory.
func TestProcess_Hygiene(t *testing.T) {
	srv := testenv.Start(t, &testenv.Options{Extra: []string{"--config", writeConfig(t, "mlock: true\n")}})
	pid := strconv.Itoa(srv.PID())
	limits, err := os.ReadFile("/proc/" + pid + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	if err := coreDumpsDisabled(string(limits)); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmLck:") {
			if kb, _ := strconv.Atoi(strings.Fields(line)[1]); kb == 0 {
				t.Fatalf("mlock: true but no memory is locked: %q", line)
			}
			return
		}
	}
	t.Fatal("no VmLck line in /proc/<pid>/status")
}

// coreDumpsDisabled checks /proc/<pid>/limits text: the "Max core file size" line must be there
// with soft and hard limits 0. A missing or unreadable line is a failure, not a pass.
func coreDumpsDisabled(limits string) error {
	for _, line := range strings.Split(limits, "\n") {
		if !strings.HasPrefix(line, "Max core file size") {
			continue
		}
		if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
			return fmt.Errorf("core dumps not disabled: %q", line)
		}
		return nil
	}
	return fmt.Errorf("no \"Max core file size\" line in /proc/<pid>/limits:\n%s", limits)
}

func TestCoreDumpsDisabled_Parse(t *testing.T) {
	const header = "Limit                     Soft Limit           Hard Limit           Units     \n"
	cases := []struct {
		name, limits string
		ok           bool
	}{
		{"disabled", header + "Max core file size        0                    0                    bytes     \n", true},
		{"soft only", header + "Max core file size        0                    unlimited            bytes     \n", false},
		{"enabled", header + "Max core file size        unlimited            unlimited            bytes     \n", false},
		{"truncated", header + "Max core file size        0\n", false},
		{"missing", header + "Max open files            1024                 1048576              files     \n", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := coreDumpsDisabled(c.limits); (err == nil) != c.ok {
				t.Fatalf("coreDumpsDisabled = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestSeal_Shamir_AgeEncryptedShares gives each operator a share only their age key opens.
func TestSeal_Shamir_AgeEncryptedShares(t *testing.T) {
	srv := testenv.Start(t, &testenv.Options{Extra: []string{"--config", writeConfig(t, "seal:\n  type: shamir\n")}, Sealed: true})
	hc := srv.HTTPClient()
	var ids []*age.X25519Identity
	var rcpts []string
	for range 3 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		rcpts = append(rcpts, id.Recipient().String())
	}
	caFile := filepath.Join(srv.DataDir, "tls", "ca.pem")
	if _, _, err := cli(t, t.TempDir(), "operator", "init", "--server", srv.URL, "--ca-file", caFile, "--key-shares", "3", "--key-threshold", "2", "--age-recipients", "age1notakey"); err == nil {
		t.Fatal("init accepted a bad age recipient")
	}
	if st := sealStatus(t, srv, hc); st["initialized"] != false {
		t.Fatalf("a failed init left the server initialized: %v", st)
	}
	out, errOut, err := cli(t, t.TempDir(), "operator", "init", "--server", srv.URL, "--ca-file", caFile, "--key-shares", "3", "--key-threshold", "2", "--age-recipients", strings.Join(rcpts, ","))
	if err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	var res struct {
		Keys []string `json:"keys_age"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Keys) != 3 {
		t.Fatalf("init output: %v %q", err, out)
	}
	decrypt := func(i int, id *age.X25519Identity) (string, error) {
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(res.Keys[i])), id)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(r)
		return string(b), err
	}
	if _, err := decrypt(0, ids[1]); err == nil {
		t.Fatal("operator 2's key opened operator 1's share")
	}
	for _, i := range []int{2, 0} {
		share, err := decrypt(i, ids[i])
		if err != nil {
			t.Fatalf("decrypting share %d: %v", i, err)
		}
		unseal(t, srv, hc, share)
	}
	srv.WaitHealthy()
}
