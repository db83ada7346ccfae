package test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/testenv"
)

// TestAuditSinks_CopiesReachSyslogAndHTTP: a server with both extra sinks in its config file
// copies every record to a syslog listener and an HTTP collector started by the test, and the
// copies carry no secret value.
func TestAuditSinks_CopiesReachSyslogAndHTTP(t *testing.T) {
	var mu sync.Mutex
	var posted []audit.Record
	collector := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []audit.Record
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		posted = append(posted, batch...)
		mu.Unlock()
	})}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go collector.Serve(hl)
	defer collector.Close()
	sl, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	var syslogLines []string
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := sl.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			syslogLines = append(syslogLines, string(buf[:n]))
			mu.Unlock()
		}
	}()
	cfg := "audit:\n  sinks:\n    syslog:\n      - {network: udp, address: " + sl.LocalAddr().String() + "}\n" +
		"    http:\n      - {url: http://" + hl.Addr().String() + "/ingest, insecure_http: true, flush_interval: 100ms}\n"
	e := newEnv(t, &testenv.Options{Extra: []string{"--config", writeConfig(t, cfg)}})
	kv := e.createVault(t, "rg", "kv-sinks", nil)
	const canary = "canary-sink-value-5d1f"
	ctx := context.Background()
	if _, err := kv.SetSecret(ctx, "s1", azsecrets.SetSecretParameters{Value: to.Ptr(canary)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.GetSecret(ctx, "s1", "", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var httpGet, syslogGet bool
		for _, r := range posted {
			httpGet = httpGet || r.OperationName == "SecretGet"
		}
		for _, l := range syslogLines {
			syslogGet = syslogGet || strings.Contains(l, "SecretGet")
			if !strings.HasPrefix(l, "<") || strings.Contains(l, canary) {
				mu.Unlock()
				t.Fatalf("syslog message not RFC 5424 or holding the value: %.200s", l)
			}
		}
		n := len(posted)
		mu.Unlock()
		if httpGet && syslogGet {
			t.Logf("%d records posted, %d syslog messages", n, len(syslogLines))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies did not arrive: http SecretGet %v, syslog SecretGet %v", httpGet, syslogGet)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range posted {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), canary) {
			t.Fatalf("a copied record holds the secret value: %s", b)
		}
	}
}
