package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/testenv"
)

// operatorCmd runs `strongroom operator ARGS... --data-dir DIR` against a running server's
// operator socket.
func operatorCmd(t *testing.T, dataDir string, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), append(append([]string{"operator"}, args...), "--data-dir", dataDir)...)
	var eb strings.Builder
	cmd.Stderr = &eb
	out, err := cmd.Output()
	return out, eb.String(), err
}

// startWithSealKey starts a fresh single-node server whose file seal uses keyFile's root key.
func startWithSealKey(t *testing.T, keyFile string, extra ...string) *testenv.Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "seal.key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return testenv.Start(t, &testenv.Options{DataDir: dir, Extra: extra})
}

// snapshotLoad keeps writers busy on kv until stop is closed; acked holds every acknowledged
// write (name -> value).
type snapshotLoad struct {
	mu    sync.Mutex
	acked map[string]string
	n     atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startSnapshotLoad(kv *azsecrets.Client, writers int) *snapshotLoad {
	l := &snapshotLoad{acked: map[string]string{}, stop: make(chan struct{})}
	for w := range writers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				name, val := fmt.Sprintf("load-%d-%d", w, i), fmt.Sprintf("load-value-%d-%d", w, i)
				if _, err := kv.SetSecret(context.Background(), name, azsecrets.SetSecretParameters{Value: to.Ptr(val)}, nil); err == nil {
					l.mu.Lock()
					l.acked[name] = val
					l.mu.Unlock()
					l.n.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *snapshotLoad) snapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

func (l *snapshotLoad) waitAcked(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); l.n.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d load writes acknowledged", l.n.Load())
		}
	}
}

func (l *snapshotLoad) finish() map[string]string {
	close(l.stop)
	l.wg.Wait()
	return l.snapshot()
}

// writeSecrets sets n secrets with versions versions each and returns name -> version -> value.
func writeSecrets(t *testing.T, kv *azsecrets.Client, n, versions int) map[string]map[string]string {
	t.Helper()
	want := map[string]map[string]string{}
	for i := range n {
		name := fmt.Sprintf("sec-%02d", i)
		want[name] = map[string]string{}
		for v := range versions {
			val := fmt.Sprintf("value-%d-%d", i, v)
			r, err := kv.SetSecret(context.Background(), name, azsecrets.SetSecretParameters{Value: to.Ptr(val)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want[name][r.ID.Version()] = val
		}
	}
	return want
}

// verifySecrets checks every version's value and each secret's version count.
func verifySecrets(t *testing.T, kv *azsecrets.Client, want map[string]map[string]string) int {
	t.Helper()
	ctx := context.Background()
	versions := 0
	for name, vers := range want {
		for ver, val := range vers {
			g, err := kv.GetSecret(ctx, name, ver, nil)
			if err != nil || *g.Value != val {
				t.Fatalf("restored %s/%s: %v", name, ver, err)
			}
			versions++
		}
		pager := kv.NewListSecretPropertiesVersionsPager(name, nil)
		n := 0
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != len(vers) {
			t.Fatalf("restored %s has %d versions, want %d", name, n, len(vers))
		}
	}
	return versions
}

// damagedSnapshots are the ways a snapshot file must be refused.
var damagedSnapshots = []struct {
	name  string
	bytes func([]byte) []byte
}{
	{"one byte flipped in the data", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
	{"one byte flipped in the header", func(b []byte) []byte { b[20] ^= 1; return b }},
	{"truncated", func(b []byte) []byte { return b[:len(b)-100] }},
	{"bytes appended", func(b []byte) []byte { return append(b, 1, 2, 3, 4) }},
	{"not a snapshot", func([]byte) []byte { return []byte("hello") }},
}

// `operator snapshot save` on a single-node server while writes continue, then `restore` into a
// fresh server made with the same root key, running: the restored server serves the snapshot's
// identities and secrets without a restart; damaged files and a file under another root key are
// refused without changing anything.
func TestSnapshot_SingleNode_SaveUnderLoad_RestoreIntoRunningServer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	kv := e.createVault(t, "rg-snap", "kv-snap", nil)
	want := writeSecrets(t, kv, 30, 2)

	load := startSnapshotLoad(kv, 3)
	load.waitAcked(t, 20)
	ackedBefore := load.snapshot()
	file := filepath.Join(t.TempDir(), "node.snap")
	saveStart := time.Now()
	if _, stderr, err := operatorCmd(t, e.srv.DataDir, "snapshot", "save", file); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, stderr)
	}
	saveTook := time.Since(saveStart)
	time.Sleep(200 * time.Millisecond)
	racing := load.finish()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"value-1-1", "load-value-0-1", "kv-snap", e.srv.Admin.ClientSecret} {
		if strings.Contains(string(raw), v) {
			t.Fatalf("snapshot file holds %q in plaintext", v)
		}
	}

	// A server with another root key refuses the file.
	other := startWithSealKey(t, "")
	if _, stderr, err := operatorCmd(t, other.DataDir, "snapshot", "restore", file); err == nil || !strings.Contains(stderr, "snapshot refused") {
		t.Fatalf("snapshot restored under another root key: err=%v stderr=%s", err, stderr)
	}
	other.Stop()

	dst := startWithSealKey(t, filepath.Join(e.srv.DataDir, "seal.key"))
	for _, d := range damagedSnapshots {
		t.Run("refused/"+d.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.snap")
			if err := os.WriteFile(bad, d.bytes(append([]byte(nil), raw...)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := operatorCmd(t, dst.DataDir, "snapshot", "restore", bad)
			if err == nil || !strings.Contains(stderr, "snapshot refused") {
				t.Fatalf("damaged snapshot restored: err=%v stderr=%s", err, stderr)
			}
		})
	}
	de := envFor(t, dst)
	if _, err := de.srv.Secrets("kv-snap", de.cred, de.hc).GetSecret(ctx, "sec-00", "", nil); err == nil {
		t.Fatal("fresh server serves a source secret after refused restores")
	}
	dstAdmin := dst.Admin

	restoreStart := time.Now()
	out, stderr, err := operatorCmd(t, dst.DataDir, "snapshot", "restore", file)
	if err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, stderr)
	}
	restoreTook := time.Since(restoreStart)
	// No restart: the running server serves the snapshot's deployment (its admin, its tenant).
	dst.Admin = e.srv.Admin
	re := envFor(t, dst)
	rkv := re.srv.Secrets("kv-snap", re.cred, re.hc)
	versions := verifySecrets(t, rkv, want)
	present := 0
	for name, val := range racing {
		g, err := rkv.GetSecret(ctx, name, "", nil)
		if err != nil {
			if _, must := ackedBefore[name]; must {
				t.Fatalf("write %s acknowledged before the save is missing: %v", name, err)
			}
			continue
		}
		if *g.Value != val {
			t.Fatalf("restored %s = %q, want %q", name, *g.Value, val)
		}
		present++
	}
	// The fresh server's own admin is gone with its store.
	dst.Admin = dstAdmin
	if _, err := envFor(t, dst).cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}}); err == nil {
		t.Fatal("the replaced deployment's admin still gets tokens")
	}
	dst.Admin = e.srv.Admin
	if _, err := rkv.SetSecret(ctx, "after-restore", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
	// The restored file is the store from now on.
	dst.Restart()
	if g, err := envFor(t, dst).srv.Secrets("kv-snap", re.cred, re.hc).GetSecret(ctx, "after-restore", "", nil); err != nil || *g.Value != "x" {
		t.Fatalf("after restart: %v", err)
	}
	// Operator calls are audited where they run: the save on the source, every restore attempt
	// (refused ones included) on the destination.
	if got := auditOps(t, e.srv.DataDir)["OperatorSnapshotSave Success 200"]; got != 1 {
		t.Fatalf("source audit log: %d successful snapshot saves, want 1", got)
	}
	dstOps := auditOps(t, dst.DataDir)
	if dstOps["OperatorSnapshotRestore Success 200"] != 1 || dstOps["OperatorSnapshotRestore Failure 400"] != len(damagedSnapshots) {
		t.Fatalf("destination audit log: %v, want 1 restore and %d refused", dstOps, len(damagedSnapshots))
	}
	noDataRace(t, e.srv, dst)
	t.Logf("single-node snapshot %d bytes saved in %v under load; restored in %v (%s); verified %d versions of %d secrets; load writes: %d acknowledged before the save (all present), %d in total, %d in the snapshot",
		len(raw), saveTook.Round(time.Millisecond), restoreTook.Round(time.Millisecond), strings.TrimSpace(string(out)), versions, len(want), len(ackedBefore), len(racing), present)
}

// auditOps counts the records of a server's audit log by "<operationName> <resultType> <status>".
func auditOps(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dataDir, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			OperationName string `json:"operationName"`
			ResultType    string `json:"resultType"`
			Properties    struct {
				Status int `json:"httpStatusCode"`
			} `json:"properties"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out[fmt.Sprintf("%s %s %d", rec.OperationName, rec.ResultType, rec.Properties.Status)]++
	}
	return out
}

// scrape reads a server's /metrics; token may be empty. It returns the status and the body.
func scrape(t *testing.T, hc *http.Client, baseURL, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", baseURL+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of the sample whose name and labels are exactly series
// (e.g. `strongroom_raft_role{role="leader"}`), or -1 when absent.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// snapFiles lists the scheduled snapshot files in dir, oldest first.
func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "strongroom-*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// Scheduled snapshots every second with retain 2 on a single node: files appear with sortable
// names, old ones are pruned, no temporary file is left, the counters say so on /metrics
// (unauthenticated here), a scheduled file restores into a fresh server; an unusable snapshot
// folder is counted as failures while the server keeps serving.
func TestSnapshot_Scheduled_RetentionAndRestore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, &testenv.Options{Extra: []string{"--snapshot-schedule", "1s", "--snapshot-retain", "2", "--metrics-unauthenticated"}})
	kv := e.createVault(t, "rg-sched", "kv-sched", nil)
	want := writeSecrets(t, kv, 10, 2)
	dir := filepath.Join(e.srv.DataDir, "snapshots")
	seen := map[string]bool{}
	var firstSeen string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		files := snapFiles(t, dir)
		// A new file is renamed into place before the oldest is pruned, so a listing taken
		// between the two sees retain+1 files; never more.
		if len(files) > 3 {
			t.Fatalf("%d snapshot files kept, retain is 2: %v", len(files), files)
		}
		for _, f := range files {
			if !seen[f] {
				seen[f] = true
				if firstSeen == "" {
					firstSeen = f
				}
			}
		}
		if len(seen) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d scheduled snapshots within 30s: %v\n%s", len(seen), seen, e.srv.Stderr.String())
		}
	}
	// Settled (not between a rename and its prune), the folder holds the 2 newest.
	files := snapFiles(t, dir)
	for deadline := time.Now().Add(5 * time.Second); len(files) != 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		files = snapFiles(t, dir)
	}
	if len(files) != 2 || slices.Contains(files, firstSeen) {
		t.Fatalf("after %d snapshots the folder holds %v, want the 2 newest", len(seen), files)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmps) > 1 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	status, body := scrape(t, e.hc, e.srv.URL, "")
	if status != 200 {
		t.Fatalf("unauthenticated /metrics: HTTP %d", status)
	}
	if ok := metricValue(body, `strongroom_snapshot_scheduled_total{result="success"}`); ok < 4 {
		t.Fatalf("success count %v, want >= 4", ok)
	}
	if f := metricValue(body, `strongroom_snapshot_scheduled_total{result="failure"}`); f != 0 {
		t.Fatalf("failure count %v", f)
	}
	if ts := metricValue(body, "strongroom_snapshot_last_success_timestamp_seconds"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last success timestamp %v", ts)
	}

	newest := files[len(files)-1]
	dst := startWithSealKey(t, filepath.Join(e.srv.DataDir, "seal.key"))
	if _, stderr, err := operatorCmd(t, dst.DataDir, "snapshot", "restore", newest); err != nil {
		t.Fatalf("restoring %s: %v\n%s", newest, err, stderr)
	}
	dst.Admin = e.srv.Admin
	re := envFor(t, dst)
	versions := verifySecrets(t, re.srv.Secrets("kv-sched", re.cred, re.hc), want)

	// A snapshot folder that cannot be created: failures are counted, the server serves on.
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := newEnv(t, &testenv.Options{Extra: []string{"--snapshot-schedule", "1s", "--snapshot-dir", filepath.Join(blocker, "snaps"), "--metrics-unauthenticated"}})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := scrape(t, bad.hc, bad.srv.URL, "")
		if metricValue(body, `strongroom_snapshot_scheduled_total{result="failure"}`) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failures counted:\n%s", body)
		}
	}
	if !bad.srv.Healthy() {
		t.Fatal("server unhealthy after failed snapshots")
	}
	if _, err := bad.createVault(t, "rg-x", "kv-x", nil).SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
	noDataRace(t, e.srv, dst, bad.srv)
	t.Logf("%d scheduled snapshots seen, %d kept; restored %s: %d versions verified", len(seen), len(files), filepath.Base(newest), versions)
}

// noDataRace fails when a server's log reports a data race (servers are built with -race when
// STRONGROOM_TEST_RACE=1).
func noDataRace(t *testing.T, servers ...*testenv.Server) {
	t.Helper()
	for _, s := range servers {
		if strings.Contains(s.Stderr.String(), "DATA RACE") {
			t.Fatalf("%s reported a data race:\n%s", s.URL, s.Stderr.String())
		}
	}
}
