package auditquery_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom/strongroom/internal/audit"
	"github.com/strongroom/strongroom/internal/auditquery"
)

const (
	sub     = "/subscriptions/00000000-0000-0000-0000-000000000001"
	alphaID = sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/alpha"
	betaID  = sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/Beta"
)

var day = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// fixture is the folder's files, oldest first, each with its records (request ids r1...).
var fixture = []struct {
	name   string
	events []audit.Event
}{
	{"audit-20261201T100000Z.log", []audit.Event{
		{RequestID: "r1", Time: at(9, 0), Operation: "SecretGet", ResourceID: alphaID, Status: 200, URI: "https://alpha.vault.localhost:8443/secrets/db-pass/v1?api-version=7.4",
			ObjectID: "https://alpha.vault.localhost:8443/secrets/db-pass/v1", Caller: &audit.Claims{ObjectID: "oid-1", AppID: "app-1"}},
		{RequestID: "r2", Time: at(9, 30), Operation: "SecretSet", ResourceID: betaID, Status: 403, URI: "https://beta.vault.localhost:8443/secrets/api-key?api-version=7.4",
			Caller: &audit.Claims{ObjectID: "oid-2", AppID: "app-2"}},
	}},
	// Rotated later in the same second as the file before it: the suffix orders it after.
	{"audit-20261201T100000Z-1.log", []audit.Event{
		{RequestID: "r3", Time: at(9, 59), Operation: "Authentication", Status: 401, URI: "https://localhost:8443/tenant/oauth2/v2.0/token", Caller: &audit.Claims{AppID: "app-3"}, Description: "invalid_client"},
	}},
	{"audit-20261201T110000Z.log", []audit.Event{
		{RequestID: "r4", Time: at(10, 15), Operation: "VaultPut", ResourceID: betaID, Status: 201, URI: "https://localhost:8443" + betaID + "?api-version=2023-07-01",
			Caller: &audit.Claims{ObjectID: "oid-1", AppID: "app-1"}},
		{RequestID: "r5", Time: at(10, 45), Operation: "SecretGet", Status: 404, URI: "https://ghost.vault.localhost:8443/secrets/db-pass?api-version=7.4",
			Caller: &audit.Claims{ObjectID: "oid-2"}},
	}},
	{"audit.log", []audit.Event{
		{RequestID: "r6", Time: at(11, 5), Operation: "SecretGet", ResourceID: alphaID, Status: 200, URI: "https://alpha.vault.localhost:8443/secrets/DB-PASS?api-version=7.4",
			Caller: &audit.Claims{ObjectID: "oid-2"}},
		{RequestID: "r7", Time: at(11, 10), Operation: "SecretList", ResourceID: alphaID, Status: 429, URI: "https://alpha.vault.localhost:8443/secrets?api-version=7.4",
			Caller: &audit.Claims{ObjectID: "oid-1"}},
		{RequestID: "r8", Time: at(11, 20), Operation: "SecretDelete", ResourceID: alphaID, Status: 200, URI: "https://alpha.vault.localhost:8443/secrets/db-pass?api-version=7.4",
			Caller: &audit.Claims{ObjectID: "oid-1"}},
	}},
}

// writeFolder writes the fixture with the server's own writer, renaming each finished file to
// its rotated name as rotation does.
func writeFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range fixture {
		writeFile(t, dir, f.name, f.events)
	}
	// Files the reader must leave alone.
	for _, name := range []string{"audit.log.checkpoint", "audit-notatime.log", "audit-20261201T100000Z-x.log", "other.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a record\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, dir, name string, events []audit.Event) {
	t.Helper()
	// Written alone in a folder of its own: next to rotated files the writer would start the file
	// with a record linking it to them.
	tmp := filepath.Join(t.TempDir(), "writing.log")
	l, err := audit.Open(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(tmp + ".checkpoint")
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func ids(t *testing.T, recs []json.RawMessage) []string {
	t.Helper()
	out := []string{}
	for _, r := range recs {
		var v struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.RequestID)
	}
	return out
}

func TestRun_Filters(t *testing.T) {
	dir := writeFolder(t)
	cases := []struct {
		name string
		f    auditquery.Filter
		want []string
	}{
		{"All", auditquery.Filter{}, []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"}},
		{"VaultByResourceID", auditquery.Filter{Vault: "ALPHA"}, []string{"r1", "r6", "r7", "r8"}},
		{"VaultMixedCase", auditquery.Filter{Vault: "beta"}, []string{"r2", "r4"}},
		{"VaultByHostNeedsSuffix", auditquery.Filter{Vault: "ghost"}, []string{}},
		{"VaultByHost", auditquery.Filter{Vault: "ghost", VaultDNSSuffix: "vault.localhost"}, []string{"r5"}},
		{"VaultByHostSuffixWithPort", auditquery.Filter{Vault: "ghost", VaultDNSSuffix: ".vault.localhost:8443"}, []string{"r5"}},
		{"VaultInGroup", auditquery.Filter{Vault: "beta", ResourceGroup: "RG"}, []string{"r2", "r4"}},
		{"VaultInOtherGroup", auditquery.Filter{Vault: "beta", ResourceGroup: "rg-old"}, []string{}},
		{"GroupKeepsRecordsNamingNone", auditquery.Filter{Vault: "ghost", ResourceGroup: "rg-old", VaultDNSSuffix: "vault.localhost"}, []string{"r5"}},
		{"Secret", auditquery.Filter{Secret: "db-pass"}, []string{"r1", "r5", "r6", "r8"}},
		{"SecretInVault", auditquery.Filter{Secret: "db-pass", Vault: "alpha"}, []string{"r1", "r6", "r8"}},
		{"SecretOther", auditquery.Filter{Secret: "api-key"}, []string{"r2"}},
		{"Operation", auditquery.Filter{Operations: []string{"secretget"}}, []string{"r1", "r5", "r6"}},
		{"Operations", auditquery.Filter{Operations: []string{"VaultPut", "Authentication"}}, []string{"r3", "r4"}},
		{"CallerOID", auditquery.Filter{Caller: "OID-2"}, []string{"r2", "r5", "r6"}},
		{"CallerAppID", auditquery.Filter{Caller: "app-1"}, []string{"r1", "r4"}},
		{"CallerUnknown", auditquery.Filter{Caller: "nobody"}, []string{}},
		{"ResultFailure", auditquery.Filter{Result: "failure"}, []string{"r2", "r3", "r5", "r7"}},
		{"ResultSuccess", auditquery.Filter{Result: "Success"}, []string{"r1", "r4", "r6", "r8"}},
		{"ResultStatus", auditquery.Filter{Result: "403"}, []string{"r2"}},
		{"ResultSignature", auditquery.Filter{Result: "TooManyRequests"}, []string{"r7"}},
		{"Since", auditquery.Filter{Since: at(10, 45)}, []string{"r5", "r6", "r7", "r8"}},
		{"Until", auditquery.Filter{Until: at(10, 15)}, []string{"r1", "r2", "r3"}},
		{"Window", auditquery.Filter{Since: at(9, 30), Until: at(11, 10)}, []string{"r2", "r3", "r4", "r5", "r6"}},
		{"Combined", auditquery.Filter{Caller: "oid-1", Result: "success", Since: at(10, 0)}, []string{"r4", "r8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: c.f})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(t, p.Records); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if p.Next != "" {
				t.Errorf("Next = %q after the whole log", p.Next)
			}
		})
	}
}

// TestRun_SkipsFilesOutsideTheWindow: files whose names (rotation times) put them before Since,
// or whose predecessor's rotation puts them after Until, are not read at all.
func TestRun_SkipsFilesOutsideTheWindow(t *testing.T) {
	dir := writeFolder(t)
	cases := []struct {
		name    string
		f       auditquery.Filter
		scanned int
	}{
		{"NoBounds", auditquery.Filter{}, 8},
		{"SinceSkipsTwoFiles", auditquery.Filter{Since: at(10, 30)}, 5},                              // files 3 and 4
		{"SinceSkipsAllRotated", auditquery.Filter{Since: at(11, 1)}, 3},                             // the active file
		{"UntilStopsAfterFirst", auditquery.Filter{Until: at(9, 40)}, 2},                             // 10:00 - skew is past until
		{"UntilReadsFirstLineOfThird", auditquery.Filter{Until: at(9, 59).Add(30 * time.Second)}, 4}, // r4 is far past until
		{"UntilStopsAtFirstLine", auditquery.Filter{Until: at(8, 0)}, 1},                             // the first record is far past until
		{"UntilBeforeActiveFile", auditquery.Filter{Until: at(10, 50)}, 5},                           // 11:00 - skew is past until
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: c.f})
			if err != nil {
				t.Fatal(err)
			}
			if p.Scanned != c.scanned {
				t.Errorf("scanned %d lines, want %d (records %v)", p.Scanned, c.scanned, ids(t, p.Records))
			}
		})
	}
}

// pages runs q to the end, following continuation tokens.
func pages(t *testing.T, dir string, q auditquery.Query) (all []string, n int) {
	t.Helper()
	for {
		p, err := auditquery.Run(context.Background(), dir, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(t, p.Records)...)
		n++
		if p.Next == "" {
			return all, n
		}
		if n > 50 {
			t.Fatal("no end of pages")
		}
		q.Token = p.Next
	}
}

func TestRun_Pages(t *testing.T) {
	dir := writeFolder(t)
	cases := []struct {
		name      string
		q         auditquery.Query
		want      []string
		wantPages int
	}{
		{"LimitOne", auditquery.Query{Limit: 1}, []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"}, 9},
		{"LimitThree", auditquery.Query{Limit: 3}, []string{"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"}, 3},
		{"LimitWithFilter", auditquery.Query{Limit: 2, Filter: auditquery.Filter{Vault: "alpha"}}, []string{"r1", "r6", "r7", "r8"}, 3},
		{"ScanBudget", auditquery.Query{MaxScan: 2, Filter: auditquery.Filter{Caller: "oid-2"}}, []string{"r2", "r5", "r6"}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, n := pages(t, dir, c.q)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if n != c.wantPages {
				t.Errorf("%d pages, want %d", n, c.wantPages)
			}
		})
	}
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Limit: auditquery.MaxLimit + 5})
	if err != nil || len(p.Records) != 8 {
		t.Fatalf("a limit above the maximum: %d records, %v", len(p.Records), err)
	}
}

// TestRun_TokenSurvivesRotation: a token into the active file still continues after the file is
// rotated, and records written meanwhile follow.
func TestRun_TokenSurvivesRotation(t *testing.T) {
	dir := writeFolder(t)
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: auditquery.Filter{Since: at(11, 0)}, Limit: 1})
	if err != nil || p.Next == "" {
		t.Fatalf("first page: %v, next %q", err, p.Next)
	}
	if got := ids(t, p.Records); !slices.Equal(got, []string{"r6"}) {
		t.Fatalf("first page %v", got)
	}
	if err := os.Rename(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit-20261201T113000Z.log")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "audit.log", []audit.Event{{RequestID: "r9", Time: at(11, 40), Operation: "SecretGet", Status: 200, URI: "https://alpha.vault.localhost/secrets/x"}})
	got, _ := pages(t, dir, auditquery.Query{Filter: auditquery.Filter{Since: at(11, 0)}, Token: p.Next})
	if want := []string{"r7", "r8", "r9"}; !slices.Equal(got, want) {
		t.Errorf("after rotation got %v, want %v", got, want)
	}
}

func TestRun_TokenAtEndOfActiveFileSurvivesRotation(t *testing.T) {
	dir := writeFolder(t)
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: auditquery.Filter{Since: at(11, 0)}, Limit: 3})
	if err != nil || p.Next == "" || len(p.Records) != 3 {
		t.Fatalf("first page: %v, %d records, next %q", err, len(p.Records), p.Next)
	}
	os.Rename(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit-20261201T113000Z.log"))
	writeFile(t, dir, "audit.log", []audit.Event{{RequestID: "r9", Time: at(11, 40), Operation: "SecretGet", Status: 200}})
	got, _ := pages(t, dir, auditquery.Query{Token: p.Next})
	if want := []string{"r9"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRun_BadTokens(t *testing.T) {
	dir := writeFolder(t)
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Limit: 1})
	if err != nil || p.Next == "" {
		t.Fatal(err)
	}
	good := p.Next
	forge := func(f string, o int64, h string) string {
		b, _ := json.Marshal(map[string]any{"f": f, "o": o, "h": h})
		return b64(b)
	}
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"NotBase64", "%%%", auditquery.ErrBadToken},
		{"NotJSON", b64([]byte("nope")), auditquery.ErrBadToken},
		{"PathTraversal", forge("../../etc/passwd", 10, hash), auditquery.ErrBadToken},
		{"OtherFile", forge("audit.log.checkpoint", 10, hash), auditquery.ErrBadToken},
		{"ZeroOffset", forge("audit.log", 0, hash), auditquery.ErrBadToken},
		{"WrongHash", forge("audit-20261201T100000Z.log", 100, hash), auditquery.ErrStaleToken},
		{"ActiveRewritten", forge("audit.log", 100, hash), auditquery.ErrStaleToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auditquery.Run(context.Background(), dir, auditquery.Query{Token: c.token})
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
	// A rotated file removed by retention: the query continues with the next file.
	if err := os.Remove(filepath.Join(dir, "audit-20261201T100000Z.log")); err != nil {
		t.Fatal(err)
	}
	got, _ := pages(t, dir, auditquery.Query{Token: good})
	if want := []string{"r3", "r4", "r5", "r6", "r7", "r8"}; !slices.Equal(got, want) {
		t.Errorf("after retention got %v, want %v", got, want)
	}
}

// TestRun_IncompleteLine: a line still being written is neither returned nor passed over.
func TestRun_IncompleteLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "audit.log", fixture[3].events)
	path := filepath.Join(dir, "audit.log")
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	half := lines[2][:len(lines[2])/2]
	if err := os.WriteFile(path, []byte(lines[0]+lines[1]+half), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p.Records); !slices.Equal(got, []string{"r6", "r7"}) || p.Next != "" {
		t.Fatalf("got %v next %q", got, p.Next)
	}
	// Read to the end, the reader has nothing to continue from; with a limit it has.
	p, err = auditquery.Run(context.Background(), dir, auditquery.Query{Limit: 2})
	if err != nil || p.Next == "" {
		t.Fatalf("%v, next %q", err, p.Next)
	}
	if err := os.WriteFile(path, []byte(lines[0]+lines[1]+lines[2]), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := pages(t, dir, auditquery.Query{Token: p.Next})
	if !slices.Equal(got, []string{"r8"}) {
		t.Errorf("after the write completed got %v", got)
	}
}

func TestRun_SkipsNonRecords(t *testing.T) {
	dir := t.TempDir()
	ckpt := `{"time":"2026-12-01T00:00:00.5000000Z","operationName":"AuditCheckpoint","resultType":"Success","requestId":"c"}`
	long := `{"time":"2026-12-01T00:00:00.0000000Z","operationName":"SecretGet","x":"` + strings.Repeat("a", auditquery.MaxLineBytes) + `"}`
	content := strings.Join([]string{
		`{"time":"2026-12-01T00:00:00.0000000Z","operationName":"SecretGet","requestId":"a"}`,
		`not json`,
		`{"kind":"checkpoint"}`,
		ckpt,
		long,
		`{"time":"2026-12-01T00:00:01Z","operationName":"SecretSet","requestId":"b"}`,
		`{"time":"2026-12-01T00:00:02Z","operationName":"SecretSet","resultType":"Unknown","resultSignature":"Unknown","requestId":"u"}`,
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p.Records); !slices.Equal(got, []string{"a", "b", "u"}) || p.Skipped != 3 || p.Scanned != 7 {
		t.Errorf("got %v, skipped %d, scanned %d", got, p.Skipped, p.Scanned)
	}
	p, err = auditquery.Run(context.Background(), dir, auditquery.Query{Filter: auditquery.Filter{Result: "UNKNOWN"}})
	if got := ids(t, p.Records); err != nil || !slices.Equal(got, []string{"u"}) {
		t.Errorf("unknown outcomes: %v, %v", got, err)
	}
	// The log's own records show only when asked for by name.
	p, err = auditquery.Run(context.Background(), dir, auditquery.Query{Filter: auditquery.Filter{Operations: []string{"AuditCheckpoint"}}})
	if got := ids(t, p.Records); err != nil || !slices.Equal(got, []string{"c"}) {
		t.Errorf("asked for checkpoints: %v, %v", got, err)
	}
}

func TestRun_Errors(t *testing.T) {
	if _, err := auditquery.Run(context.Background(), filepath.Join(t.TempDir(), "missing"), auditquery.Query{}); err == nil {
		t.Error("a missing folder gave no error")
	}
	if _, err := auditquery.Run(context.Background(), t.TempDir(), auditquery.Query{Filter: auditquery.Filter{Since: at(2, 0), Until: at(1, 0)}}); err == nil {
		t.Error("since after until gave no error")
	}
	p, err := auditquery.Run(context.Background(), t.TempDir(), auditquery.Query{})
	if err != nil || len(p.Records) != 0 {
		t.Errorf("an empty folder: %v, %d records", err, len(p.Records))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := auditquery.Run(ctx, writeFolder(t), auditquery.Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled query: %v", err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"2026-12-01T10:00:00Z", at(10, 0), true},
		{"2026-12-01T10:00:00.5+01:00", at(9, 0).Add(500 * time.Millisecond), true},
		{"2026-12-01", day, true},
		{"15m", now.Add(-15 * time.Minute), true},
		{"2d", now.Add(-48 * time.Hour), true},
		{"-5m", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, c := range cases {
		got, err := auditquery.ParseTime(c.in, now)
		if (err == nil) != c.ok || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	dir := writeFolder(t)
	p, err := auditquery.Run(context.Background(), dir, auditquery.Query{Filter: auditquery.Filter{Operations: []string{"SecretGet"}}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []auditquery.Row
	for _, r := range p.Records {
		row, err := auditquery.Summarize(r, "vault.localhost")
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	want := []auditquery.Row{
		{Time: "2026-12-01T09:00:00.0000000Z", Operation: "SecretGet", Vault: "alpha", Secret: "db-pass", Caller: "oid-1", Result: "Success", Status: 200},
		{Time: "2026-12-01T10:45:00.0000000Z", Operation: "SecretGet", Vault: "ghost", Secret: "db-pass", Caller: "oid-2", Result: "Failure", Status: 404},
		{Time: "2026-12-01T11:05:00.0000000Z", Operation: "SecretGet", Vault: "alpha", Secret: "DB-PASS", Caller: "oid-2", Result: "Success", Status: 200},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows\n%+v\nwant\n%+v", rows, want)
	}
}
