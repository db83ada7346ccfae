package audit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/httpapi"
	"github.com/strongroom/strongroom/internal/identity"
	"github.com/strongroom/strongroom/internal/issuer"
	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/rbac"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// faultServer is the API edge over a real store and a real audit log, with one secret set.
type faultServer struct {
	h     http.Handler
	log   *audit.Log
	path  string
	token string
}

func newFaultServer(t *testing.T) *faultServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := bolt.OpenWithWAL(filepath.Join(dir, "data.db"), bolt.WALOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, bytes.Repeat([]byte{5}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const public = "https://localhost:9"
	ids, err := identity.New(ctx, st, kr, identity.Options{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	boot, _, err := ids.EnsureBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, st, kr, service.Options{SubscriptionID: ids.SubscriptionID(), TenantID: ids.TenantID(),
		VaultURI: func(n string) string { return "https://" + n + ".vault.localhost:9" }, Authorizer: rbac.BootstrapDecider(ids.AdminObjectID())})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	al, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	h := httpapi.New(httpapi.Config{PublicURL: public, DNSSuffix: "vault.localhost", TenantID: ids.TenantID(), SubscriptionID: ids.SubscriptionID()},
		svc, ids, issuer.New(ids, public), al, slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := service.WithCaller(ctx, service.Caller{ObjectID: ids.AdminObjectID()})
	if _, _, err := svc.PutResourceGroup(admin, "rg", "eastus", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutVault(admin, "rg", "kv-fault", service.VaultInput{Location: "eastus", Properties: service.VaultProperties{TenantID: ids.TenantID(), Sku: &service.Sku{Family: "A", Name: "standard"}}}); err != nil {
		t.Fatal(err)
	}
	tok, err := ids.ClientCredentials(ctx, ids.TenantID(), boot.ClientID, boot.ClientSecret, "https://vault.azure.net/.default")
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultServer{h: h, log: al, path: path, token: tok.AccessToken}
	if code, _ := fs.call("PUT", "/secrets/s?api-version=7.4", `{"value":"canary-fault-value"}`); code != 200 {
		t.Fatalf("setting the secret: %d", code)
	}
	return fs
}

func (f *faultServer) call(method, path, body string) (int, string) {
	req := httptest.NewRequest(method, "https://kv-fault.vault.localhost:9"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestFault_SinkFailures: with an audit sink that errors, one that hangs and one whose disk is
// full, no secret is returned without its record, no request waits longer than the sink's
// deadline plus one second, and the service resumes without a restart once the sink recovers.
func TestFault_SinkFailures(t *testing.T) {
	const deadline = 400 * time.Millisecond
	for _, c := range []struct {
		name string
		// fault swaps in a failing file and returns what undoes it (the disk recovering).
		fault func(t *testing.T, l *audit.Log) (recover func())
	}{
		{"errors", func(t *testing.T, l *audit.Log) func() {
			bad, err := os.Open(os.DevNull) // read-only: every write fails
			if err != nil {
				t.Fatal(err)
			}
			good := l.SwapFile(bad, deadline)
			return func() { l.SwapFile(good, 5*time.Second); bad.Close() }
		}},
		{"hangs", func(t *testing.T, l *audit.Log) func() {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			audit.FillPipe(t, w)
			good := l.SwapFile(w, deadline)
			return func() { // the disk returns: the hung write lands in the file
				drained := make(chan []byte)
				go func() { b, _ := io.ReadAll(r); drained <- b }()
				time.Sleep(100 * time.Millisecond)
				l.SwapFile(good, 5*time.Second)
				w.Close()
				good.Write(bytes.TrimLeft(<-drained, "\x00"))
				r.Close()
			}
		}},
		{"disk full", func(t *testing.T, l *audit.Log) func() {
			full := audit.OpenDevFull(t)
			good := l.SwapFile(full, deadline)
			return func() { l.SwapFile(good, 5*time.Second); full.Close() }
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newFaultServer(t)
			recover := c.fault(t, s.log)
			for i := range 3 {
				start := time.Now()
				code, body := s.call("GET", "/secrets/s?api-version=7.4", "")
				if took := time.Since(start); took > deadline+time.Second {
					t.Errorf("request %d waited %v, more than the sink deadline plus 1 s", i, took)
				}
				if code < 500 || strings.Contains(body, "canary-fault-value") {
					t.Fatalf("request %d with a failing sink: %d %s", i, code, body)
				}
			}
			if code, _ := s.call("PUT", "/secrets/during?api-version=7.4", `{"value":"v"}`); code < 500 {
				t.Fatalf("a write with a failing sink: %d", code)
			}
			recover()
			deadlineAt := time.Now().Add(5 * time.Second)
			for {
				code, body := s.call("GET", "/secrets/s?api-version=7.4", "")
				if code == 200 && strings.Contains(body, "canary-fault-value") {
					break
				}
				if time.Now().After(deadlineAt) {
					t.Fatalf("the service did not resume after the sink recovered: %d %s", code, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if code, _ := s.call("GET", "/secrets/during?api-version=7.4", ""); code != 404 {
				t.Fatalf("the write refused while the sink failed was applied: %d", code)
			}
			s.log.Close()
			if _, err := audit.Verify(s.path); err != nil {
				t.Fatalf("the audit chain does not verify after the fault: %v", err)
			}
		})
	}
}
