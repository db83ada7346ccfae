package test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/testenv"
)

// The audit log opens from its checkpoint without re-reading its history, and the history is
// re-hashed right after start: an old record edited while the server was down (same length, so
// the checkpoint still matches the tail) makes the server refuse requests once that check ends.
func TestAudit_EditedHistoryIsRefusedAfterStart(t *testing.T) {
	srv := testenv.Start(t, nil)
	hc := srv.HTTPClient()
	for range 5 { // unauthenticated ARM calls: each is one audited 401
		resp, err := hc.Get(srv.URL + "/subscriptions?api-version=2022-12-01")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	srv.Stop()

	path := filepath.Join(srv.DataDir, "audit", "audit.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.IndexByte(b, '\n')
	i := bytes.Index(b[:first], []byte(`"resultSignature":"`))
	if first < 0 || i < 0 {
		t.Fatalf("unexpected first record: %.200s", b)
	}
	j := i + len(`"resultSignature":"`)
	b[j] ^= 0x20 // flip the case of one letter: same length, still JSON
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	srv.StartUnchecked()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(srv.Stderr.String(), "does not verify") {
		if time.Now().After(deadline) {
			t.Fatalf("the edited history was not reported:\n%s", srv.Stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := hc.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/health = %d after the history failed to verify, want 503", resp.StatusCode)
	}
	resp, err = hc.Get(srv.URL + "/subscriptions?api-version=2022-12-01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a request was answered %d after the history failed to verify, want 503", resp.StatusCode)
	}
}
