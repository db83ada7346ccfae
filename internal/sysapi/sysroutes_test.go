package sysapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/config"
	"github.com/strongroom/strongroom/internal/seal"
	"github.com/strongroom/strongroom/internal/store"
	"github.com/strongroom/strongroom/internal/store/bolt"
)

// testCore is a started core over a fresh single-node store, without a listener. prepare runs
// on the store before start (to record a seal configuration).
func testCore(t *testing.T, seal config.SealConfig, prepare func(*bolt.DB)) (*Core, string) {
	t.Helper()
	return testCoreIn(t, t.TempDir(), seal, prepare)
}

// testCoreIn is testCore on data folder dir.
func testCoreIn(t *testing.T, dir string, seal config.SealConfig, prepare func(*bolt.DB)) (*Core, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.Seal = dir, seal
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "strongroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if prepare != nil {
		prepare(st)
	}
	auditPath := filepath.Join(cfg.DataDir, "audit.log")
	al, err := audit.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st, Audit: al, Stdout: io.Discard, Build: testServing})
	t.Cleanup(func() {
		if c.audit.Healthy() { // tests close it to make it fail
			c.audit.(*audit.Log).Close()
		}
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Seal)
	return c, auditPath
}

// testServing is a serving state that answers 204 to everything: these tests are about the seal
// routes in front of it.
func testServing(context.Context, Unsealed) (*Serving, error) {
	return &Serving{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }), Close: func() {}}, nil
}

func call(c *Core, method, path, body string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	var doc map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &doc)
	return rec.Code, doc
}

type auditLine struct {
	OperationName string `json:"operationName"`
	ResultType    string `json:"resultType"`
	Properties    struct {
		Status int `json:"httpStatusCode"`
	} `json:"properties"`
}

func auditLines(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// A malformed body on /sys/init or /sys/unseal is refused and audited as a failure.
func TestSys_MalformedBodiesAudited(t *testing.T) {
	c, auditPath := testCore(t, config.SealConfig{Type: "shamir"}, nil)
	for _, tc := range []struct{ path, op string }{{"/sys/init", "Init"}, {"/sys/unseal", "Unseal"}} {
		code, doc := call(c, "POST", tc.path, `{"secret_shares": `)
		if code != 400 || doc["error"] == nil {
			t.Fatalf("%s with a malformed body: %d %v", tc.path, code, doc)
		}
		c.audit.(*audit.Log).Close() // flushes; reopen for the next call
		found := false
		for _, l := range auditLines(t, auditPath) {
			found = found || (l.OperationName == tc.op && l.ResultType == "Failure" && l.Properties.Status == 400)
		}
		if !found {
			t.Fatalf("no failure record for %s's malformed body", tc.path)
		}
		al, err := audit.Open(auditPath)
		if err != nil {
			t.Fatal(err)
		}
		c.audit = al
	}
}

// /sys/init refuses (503) and initializes nothing when its record cannot be written: the shares
// are never handed out unaudited.
func TestSys_InitAuditedBeforeAnswer(t *testing.T) {
	c, _ := testCore(t, config.SealConfig{Type: "shamir"}, nil)
	c.audit.(*audit.Log).Close() // the sink has failed
	code, doc := call(c, "POST", "/sys/init", `{"secret_shares": 3, "secret_threshold": 2}`)
	if code != 503 || doc["keys_base64"] != nil || doc["admin"] != nil {
		t.Fatalf("init without audit: %d %v", code, doc)
	}
	if _, err := seal.LoadConfig(context.Background(), c.st); err != seal.ErrNoConfig {
		t.Fatalf("init without audit initialized the store: %v", err)
	}
	if code, _ := call(c, "POST", "/sys/unseal", `{"key": "x"}`); code != 503 {
		t.Fatalf("unseal without audit: %d", code)
	}
}

// An auto-unseal failure answers a fixed message; the seal's own error (module path, PKCS#11
// text) stays in the server log.
func TestSys_UnsealErrorIsFixed(t *testing.T) {
	module := filepath.Join(t.TempDir(), "no-such-pkcs11-module.so")
	c, _ := testCore(t, config.SealConfig{Type: "pkcs11", PKCS11: config.PKCS11Config{Module: module, TokenLabel: "tok", PINEnv: "STRONGROOM_TEST_NO_PIN"}}, func(st *bolt.DB) {
		if err := st.Apply(context.Background(), []store.Op{seal.SaveOp(seal.Config{Type: "pkcs11", KeyLabel: "k", WrappedRootKey: make([]byte, 60)})}); err != nil {
			t.Fatal(err)
		}
	})
	t.Setenv("STRONGROOM_TEST_NO_PIN", "1234")
	code, doc := call(c, "POST", "/sys/unseal", "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("unseal: %d %v", code, doc)
	}
	e, _ := doc["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if e["code"] != "ServiceUnavailable" || msg == "" || strings.Contains(msg, module) || strings.Contains(msg, "pkcs11 seal:") || strings.Contains(msg, "environment variable") {
		t.Fatalf("unseal error message %q leaks the seal's error", msg)
	}
}

// A seal route's record redacts query values whatever the Host header holds, and names the
// caller's address without its port.
func TestSys_RecordRedactsWhateverTheHost(t *testing.T) {
	c, auditPath := testCore(t, config.SealConfig{Type: "shamir"}, nil)
	req := httptest.NewRequest("POST", "/sys/unseal?key=SEKRIT-QUERY", strings.NewReader(`{}`))
	req.Host = "localhost?api-version="
	req.RemoteAddr = "192.0.2.5:41234"
	c.ServeHTTP(httptest.NewRecorder(), req)
	c.audit.(*audit.Log).Close()
	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "SEKRIT-QUERY") {
		t.Fatalf("a query value reached the audit log: %s", raw)
	}
	if !strings.Contains(string(raw), `"callerIpAddress":"192.0.2.5"`) {
		t.Fatalf("the caller's address is not recorded without its port: %s", raw)
	}
}
