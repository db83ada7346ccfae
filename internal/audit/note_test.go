package audit

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNoteRoundTrip(t *testing.T) {
	yes, no := true, false
	at := time.Date(2026, 12, 2, 18, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		e    Event
	}{
		{"bare", Event{Operation: "SecretSet", RequestID: "r1"}},
		{"full", Event{Time: at, Start: at.Add(-time.Millisecond), Operation: "SecretSet", APIVersion: "7.4",
			ResourceID: "/SUBSCRIPTIONS/X", ResourceIDUpper: true, ObjectID: "https://kv/secrets/a",
			CallerIP: "10.0.0.1", URI: "https://kv/secrets/a?api-version=7.4", ClientInfo: "ua",
			CorrelationID: "c", RequestID: "r2", TLSVersion: 0x0304, Description: "d \"q\"\n",
			Caller:     &Claims{AppID: "app", IdentityType: "user", ObjectID: "oid", TenantID: "tid", UPN: "u@x"},
			Authorized: &yes, PolicyMatch: &no, AssignmentID: "/providers/a"}},
		{"policy only", Event{RequestID: "r3", PolicyMatch: &yes, Caller: &Claims{}}},
		{"long", Event{RequestID: "r4", URI: strings.Repeat("x", 70000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			note := appendNote(nil, 4242, &tc.e)
			off, got, err := parseNote(note)
			if err != nil || off != 4242 {
				t.Fatalf("parseNote = %d, %v", off, err)
			}
			if !reflect.DeepEqual(got, tc.e) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.e)
			}
			for cut := 1; cut < len(note); cut += max(1, len(note)/50) { // every truncation is refused
				if _, _, err := parseNote(note[:cut]); err == nil {
					t.Fatalf("a note cut at %d of %d parsed", cut, len(note))
				}
			}
			if _, _, err := parseNote(append(note, 0)); err == nil {
				t.Fatal("a note with a trailing byte parsed")
			}
		})
	}
}

// A binary note and a note written before that format (a journal line) both give the intent.
func TestNoteIntentFormats(t *testing.T) {
	e := Event{Time: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Operation: "SecretSet", RequestID: "req-1",
		URI: "https://kv/secrets/a?api-version=7.4&client_secret=s3cr3t"}
	bin := appendNote(nil, 77, &e)
	line, ok := journalLine(bin)
	if !ok {
		t.Fatal("journalLine refused a note")
	}
	if strings.Contains(string(line), "s3cr3t") {
		t.Fatalf("journal line keeps a query value: %s", line)
	}
	for name, note := range map[string][]byte{"binary": bin, "legacy line": line} {
		in, ok := noteIntent(note)
		if !ok || in.offset != 77 || in.rec.RequestID != "req-1" || in.rec.OperationName != "SecretSet" ||
			in.rec.Time != "2026-12-02T00:00:00.0000000Z" {
			t.Fatalf("%s: noteIntent = %+v, %v", name, in, ok)
		}
	}
	if _, ok := noteIntent([]byte{noteBinary, 0xff}); ok {
		t.Fatal("a damaged note gave an intent")
	}
}
