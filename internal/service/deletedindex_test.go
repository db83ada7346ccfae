package service_test

import (
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

// Once the indexes are backfilled, a page of deleted secrets reads the deleted-secrets index
// and the heads it names, not the vault's live secrets; a forged entry naming a live secret
// shows nothing, and recover and purge remove their entries.
func TestService_ListDeletedSecrets_ReadsTheIndex(t *testing.T) {
	e := newDueEnv(t)
	mkVault(t, e.svc, e.ctx, "kv-del", 7, false)
	for _, n := range names("alive", 200) {
		v := "value-" + n
		if _, err := e.svc.SetSecret(e.ctx, "kv-del", n, service.SecretInput{Value: &v}); err != nil {
			t.Fatal(err)
		}
	}
	e.setAndDelete("kv-del", names("gone", 5))
	e.purge(0, 0) // writes the marker
	id := e.vaultID("kv-del", "alive-00000")
	e.put("v/"+id+"/d/ALIVE-00007", []byte{1}) // forged: a live secret
	list := func() []string {
		t.Helper()
		var got []string
		skip := ""
		for {
			e.st.reset()
			p, err := e.svc.ListDeletedSecrets(e.ctx, "kv-del", 2, skip)
			if err != nil {
				t.Fatal(err)
			}
			// The marker, then each head read (and its tip) of at most one page and one more.
			if gets, scans, visits := e.st.counts(); scans > 2 || visits > 2*3 || gets > 1+2*4 {
				t.Fatalf("page after %q: %d scans visiting %d keys, %d point reads; want the index, not the vault", skip, scans, visits, gets)
			}
			for _, it := range p.Items {
				if it.Deleted == nil {
					t.Fatalf("%s listed as deleted without a deletion", it.Name)
				}
				got = append(got, it.Name)
			}
			if skip = p.Next; skip == "" {
				return got
			}
		}
	}
	if got := strings.Join(list(), " "); got != strings.Join(names("gone", 5), " ") {
		t.Fatalf("deleted secrets listed: %s", got)
	}
	if _, err := e.svc.RecoverDeletedSecret(e.ctx, "kv-del", "gone-00001"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.PurgeDeletedSecret(e.ctx, "kv-del", "gone-00003"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(list(), " "); got != "gone-00000 gone-00002 gone-00004" {
		t.Fatalf("after a recover and a purge: %s", got)
	}
	var entries []string
	if err := e.st.Store.Scan(e.ctx, "v/"+id+"/d/", "", func(k string, _ []byte) bool {
		entries = append(entries, k[len("v/"+id+"/d/"):])
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(entries, " "); got != "ALIVE-00007 GONE-00000 GONE-00002 GONE-00004" {
		t.Fatalf("index entries: %s", got)
	}
}
