package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// logRecords reads every record of the log at path.
func logRecords(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func journalBytes(t *testing.T, logPath string) int64 {
	t.Helper()
	var n int64
	for i := range 2 {
		st, err := os.Stat(intentPath(logPath, i))
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestIntents_RecoveredOnlyWhenTheOutcomeIsMissing: after a stop, an intent whose outcome record
// is in the log leaves nothing behind, and one without becomes exactly one "Unknown" record; the
// journals are then empty and a second restart records nothing more.
func TestIntents_RecoveredOnlyWhenTheOutcomeIsMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	answered := Event{Operation: "SecretSet", RequestID: "req-answered", Status: 200}
	lost := Event{Operation: "SecretDelete", RequestID: "req-lost", ResourceID: "/vaults/kv"}
	tok, err := l.Intend(ctx, answered)
	if err != nil || !tok.Valid() {
		t.Fatalf("Intend: %v %v", tok, err)
	}
	if err := l.Record(ctx, answered); err != nil {
		t.Fatal(err)
	}
	l.Resolve(tok)
	if _, err := l.Intend(ctx, lost); err != nil { // the server "crashes" before answering
		t.Fatal(err)
	}
	if journalBytes(t, path) == 0 {
		t.Fatal("the intents were not written to the journal")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	for restart := range 2 {
		l, err = Open(path)
		if err != nil {
			t.Fatalf("restart %d: %v", restart, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		recs := logRecords(t, path)
		var unknown, answeredN int
		for _, r := range recs {
			switch r.RequestID {
			case "req-lost":
				unknown++
				if r.ResultType != "Unknown" || r.OperationName != "SecretDelete" || r.ResourceID != "/VAULTS/KV" || r.Properties.HTTPStatusCode != 0 {
					t.Fatalf("recovered record %+v", r)
				}
			case "req-answered":
				answeredN++
			}
		}
		if unknown != 1 || answeredN != 1 || len(recs) != 2 {
			t.Fatalf("restart %d: %d records (%d unknown, %d answered), want 2 (1, 1)", restart, len(recs), unknown, answeredN)
		}
		if n := journalBytes(t, path); n != 0 {
			t.Fatalf("restart %d: journals hold %d bytes after recovery", restart, n)
		}
	}
	if _, err := Verify(path); err != nil {
		t.Fatalf("the recovered record broke the chain: %v", err)
	}
}

// TestIntents_JournalEmptiesOnceResolvedAndSynced: resolved intents leave the journal within
// two sync ticks of the log; an unresolved one keeps its file.
func TestIntents_JournalEmptiesOnceResolvedAndSynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	resolveAll := func(n int) {
		for i := range n {
			e := Event{Operation: "SecretSet", RequestID: "r" + string(rune('a'+i))}
			tok, err := l.Intend(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
			l.Resolve(tok)
		}
	}
	resolveAll(3)
	open, err := l.Intend(ctx, Event{Operation: "SecretSet", RequestID: "open"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		l.syncTick()
	}
	if journalBytes(t, path) == 0 {
		t.Fatal("an unresolved intent was dropped from the journal")
	}
	l.Resolve(open)
	for range 3 {
		l.syncTick()
	}
	if n := journalBytes(t, path); n != 0 {
		t.Fatalf("journals hold %d bytes after every intent resolved and two syncs", n)
	}
}

// TestIntents_TornLineIgnored: a journal line cut by a crash mid-write (never synced, so never
// acknowledged) is skipped, not fatal.
func TestIntents_TornLineIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(intentPath(path, 0), []byte("0 {\"time\":\"2026-12-02T00:00:00Z\",\"requestId\":\"torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatalf("Open with a torn journal line: %v", err)
	}
	l.Close()
	if recs := logRecords(t, path); len(recs) != 0 {
		t.Fatalf("a torn intent was recorded: %+v", recs)
	}
}

// TestIntents_HungJournalFailsClosedInBoundedTime: an intent whose journal write hangs (a dead
// disk; here a full pipe) is refused within the deadline, and the log then refuses everything.
func TestIntents_HungJournalFailsClosedInBoundedTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fillPipe(t, w) // the next write blocks
	j := l.intents
	j.mu.Lock()
	good := j.files[j.active]
	j.files[j.active], j.deadline = w, 300*time.Millisecond
	j.mu.Unlock()
	start := time.Now()
	_, err = l.Intend(context.Background(), Event{Operation: "SecretSet", RequestID: "hung"})
	took := time.Since(start)
	if err == nil || took > time.Second+300*time.Millisecond {
		t.Fatalf("Intend on a hung journal: err %v after %v, want an error within the deadline plus 1 s", err, took)
	}
	if l.Healthy() {
		t.Fatal("the log still claims to be healthy after a hung intent")
	}
	go func() { // unblock the hung write so the flusher can stop
		buf := make([]byte, 1<<20)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	// Let the flusher finish its write and sync on the pipe before the pipe is closed under it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		j.mu.Lock()
		idle := j.inflight == nil
		j.mu.Unlock()
		if idle || time.Now().After(deadline) {
			break
		}
	}
	j.mu.Lock()
	for i, f := range j.files {
		if f == w {
			j.files[i] = good
		}
	}
	j.mu.Unlock()
	w.Close()
}

// TestNotes_PersistedBeforeCheckpointAndRecovered: a noted intent lives in the store's log; when
// the store is about to recycle that log, PersistNotes moves the still-open ones to the journal
// (a resolved one stays out), and after a crash both routes record a lost outcome once.
func TestNotes_PersistedBeforeCheckpointAndRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	done := Event{Operation: "SecretSet", RequestID: "note-done", Status: 200}
	tokDone, _, err := l.IntentNote(done)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, done); err != nil {
		t.Fatal(err)
	}
	l.Resolve(tokDone)
	_, openLine, err := l.IntentNote(Event{Operation: "SecretSet", RequestID: "note-open"})
	if err != nil {
		t.Fatal(err)
	}
	_, loggedLine, err := l.IntentNote(Event{Operation: "SecretDelete", RequestID: "note-logged"})
	if err != nil {
		t.Fatal(err)
	}
	if journalBytes(t, path) != 0 {
		t.Fatal("a noted intent was journaled before any checkpoint")
	}
	if err := l.PersistNotes(); err != nil { // the store checkpoints the segment holding note-open
		t.Fatal(err)
	}
	if n := journalBytes(t, path); n == 0 {
		t.Fatal("PersistNotes left the open notes only in the store's log")
	}
	l.Close()
	// Restart: the journal brings back note-open and note-logged (both were open when the store
	// checkpointed), and the store's log hands back note-logged and note-open again.
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RecoverNotes([][]byte{loggedLine, openLine, []byte("damaged")}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	count := map[string]int{}
	for _, r := range logRecords(t, path) {
		count[r.RequestID]++
		if r.RequestID != "note-done" && r.ResultType != "Unknown" {
			t.Fatalf("recovered %s as %s", r.RequestID, r.ResultType)
		}
	}
	if count["note-done"] != 1 || count["note-open"] != 1 || count["note-logged"] != 1 {
		t.Fatalf("records per request %v, want exactly one each", count)
	}
}
