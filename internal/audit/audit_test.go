package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strongroom/strongroom/internal/audit"
)

// write records one event; it reports the error rather than failing the test, so that goroutines
// can call it (t.Fatal must run on the test's own goroutine).
func write(l *audit.Log, op string) error {
	return l.Write(context.Background(), &audit.Record{OperationName: op, Category: "AuditEvent", ResultType: "Success"})
}

func TestLog_ChainSurvivesRestartAndDetectsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- write(l, "SecretGet") }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}
	l.Close()
	l, err = audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(l, "SecretSet"); err != nil {
		t.Fatalf("write after reopen: %v", err)
	}
	l.Close()
	res, err := audit.Verify(path)
	if err != nil || res.Records != 51 {
		t.Fatalf("Verify = %+v, %v; want 51 records", res, err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	cases := map[string][]string{
		"edited":  replace(lines, 10, strings.Replace(lines[10], "SecretGet", "SecretSet", 1)),
		"deleted": append(append([]string{}, lines[:5]...), lines[6:]...),
		"swapped": swap(lines, 3, 4),
	}
	for name, ls := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.log")
			if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.Verify(p); err == nil || !strings.Contains(err.Error(), "chain broken") {
				t.Fatalf("Verify of %s log err = %v, want chain broken", name, err)
			}
		})
	}
}

func TestLog_FailClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // the file is closed under the writer: the next write must fail, not vanish
	err = l.Write(context.Background(), &audit.Record{OperationName: "SecretGet"})
	if err == nil {
		t.Fatal("Write on a failed sink succeeded")
	}
}

func replace(l []string, i int, s string) []string {
	c := append([]string{}, l...)
	c[i] = s
	return c
}

func swap(l []string, i, j int) []string {
	c := append([]string{}, l...)
	c[i], c[j] = c[j], c[i]
	return c
}
