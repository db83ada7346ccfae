package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// A follower whose Raft log file was damaged while it was stopped refuses to serve: it exits
// non-zero instead of coming up with wrong data. After each case the follower's files are put
// back and it rejoins, so the cluster keeps its quorum for the next case.
func TestCluster_CorruptedLog_NodeRefusesToServe(t *testing.T) {
	c := testenv.StartCluster(t, nil)
	leader := c.Leader(10 * time.Second)
	le := clusterEnv(t, c, leader)
	kv := le.createVault(t, "rg-corrupt", "kv-corrupt", nil)
	ctx := context.Background()
	const needles = 20
	for i := range needles {
		if _, err := kv.SetSecret(ctx, fmt.Sprintf("needle-%02d", i), azsecrets.SetSecretParameters{Value: to.Ptr(fmt.Sprint("value-", i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	victim := c.Follower()
	waitApplied(t, victim, leader)
	raftDir := filepath.Join(victim.DataDir, "raft")

	cases := []struct {
		name string
		// damage corrupts the stopped node's raft/ folder and returns how many bytes it changed.
		damage func(t *testing.T) int
	}{
		{"log file meta pages zeroed", func(t *testing.T) int {
			return rewrite(t, filepath.Join(raftDir, "raft.db"), func(b []byte) int {
				copy(b[:2*4096], make([]byte, 2*4096))
				return 2 * 4096
			})
		}},
		{"log entries altered, state machine rebuilt from the log", func(t *testing.T) int {
			// Without its state-machine file the node re-applies the whole log from its own disk.
			// A key inside the committed entries changes case: applied as is, the secrets would
			// silently move to other keys. Every entry carries a checksum, so the node stops.
			if err := os.Remove(filepath.Join(raftDir, "fsm.db")); err != nil {
				t.Fatal(err)
			}
			return rewrite(t, filepath.Join(raftDir, "raft.db"), func(b []byte) int {
				n := 0
				for i := 0; ; {
					j := bytes.Index(b[i:], []byte("/n/NEEDLE-"))
					if j < 0 {
						return n
					}
					b[i+j+3] = 'n'
					i, n = i+j+4, n+1
				}
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			victim.Stop()
			backup := t.TempDir()
			copyDir(t, raftDir, backup)
			if n := tc.damage(t); n == 0 {
				t.Fatal("the damage changed nothing")
			}
			victim.StartUnchecked()
			code, exited := victim.WaitExit(30 * time.Second)
			if !exited {
				// Still running: it must not be serving, or serve only right values.
				served := checkNeedles(t, c, victim, needles)
				victim.Stop()
				t.Fatalf("node with a corrupted log still running after 30s (healthy=%v, %d right values served); stderr:\n%s",
					victim.Healthy(), served, tail(victim.Stderr.String()))
			}
			if code == 0 {
				t.Fatalf("node with a corrupted log exited 0")
			}
			t.Logf("refused to start: exit code %d; last words: %s", code, lastLine(victim.Stderr.String()))
			// Put the files back: the node rejoins and serves every value again.
			if err := os.RemoveAll(raftDir); err != nil {
				t.Fatal(err)
			}
			copyDir(t, backup, raftDir)
			victim.StartAgain()
			waitApplied(t, victim, leader)
			if n := checkNeedles(t, c, victim, needles); n != needles {
				t.Fatalf("repaired node serves %d of %d values", n, needles)
			}
		})
	}
}

// checkNeedles reads every needle from node's own copy (stale path) and fails on a wrong value;
// it returns how many it served.
func checkNeedles(t *testing.T, c *testenv.Cluster, node *testenv.Server, n int) int {
	t.Helper()
	e := clusterEnv(t, c, node)
	kv := staleSecrets(t, node, e, "kv-corrupt")
	served := 0
	for i := range n {
		g, err := kv.GetSecret(context.Background(), fmt.Sprintf("needle-%02d", i), "", nil)
		if err != nil {
			continue
		}
		if *g.Value != fmt.Sprint("value-", i) {
			t.Fatalf("needle-%02d served as %q", i, *g.Value)
		}
		served++
	}
	return served
}

// waitApplied waits (up to 30 s) until node has applied everything leader had applied.
func waitApplied(t *testing.T, node, leader *testenv.Server) {
	t.Helper()
	want, _ := leader.Status()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, ok := node.Status(); ok && st.AppliedIndex >= want.AppliedIndex {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not reach applied index %d within 30s", want.AppliedIndex)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rewrite applies change to a file's bytes in place and returns change's count.
func rewrite(t *testing.T, path string, change func([]byte) int) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := change(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// copyDir copies the regular files of a folder tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s: %v", from, err)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic:") || strings.HasPrefix(lines[i], "strongroom:") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}
