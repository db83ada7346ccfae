package service

import (
	"testing"
	"time"
)

func TestPurgeDueKeys(t *testing.T) {
	if a, b := dueKey(9, "s", "id", "N"), dueKey(10, "s", "id", "N"); a >= b {
		t.Fatalf("%q sorts after %q: the index would not be in due order", a, b)
	}
	if got := dueKey(-5, "s", "id", "N"); got != "sys/purge-due/000000000000/s/id/N" {
		t.Fatalf("negative date: %q", got)
	}
	if got := dueKey(maxDue+100, "s", "id", "N"); got != "sys/purge-due/999999999999/s/id/N" {
		t.Fatalf("date past the width: %q", got)
	}
	v := &Vault{ID: "0123456789abcdef", Name: "KV-A", Deleted: &VaultDeletion{ScheduledPurgeDate: time.Unix(100, 1)}}
	if got := vaultDueKey(v); got != "sys/purge-due/000000000101/v/0123456789abcdef/kv-a" {
		t.Fatalf("vault entry %q: want the date rounded up and the name lower-cased", got)
	}
	if got := secretDueKey(v, "My-Secret", &Deletion{ScheduledPurgeDate: 7}); got != "sys/purge-due/000000000007/s/0123456789abcdef/MY-SECRET" {
		t.Fatalf("secret entry %q", got)
	}
	cases := []struct {
		key  string
		want dueEntry
		ok   bool
	}{
		{"sys/purge-due/000000000007/s/0123456789abcdef/MY-SECRET", dueEntry{kind: "s", id: "0123456789abcdef", name: "MY-SECRET"}, true},
		{"sys/purge-due/000000000101/v/1b4e28ba-2fa1-11d2-883f-0016d3cca427/kv-a", dueEntry{kind: "v", id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", name: "kv-a"}, true},
		{"sys/purge-due/00000000007/s/id/N", dueEntry{}, false},    // 11 digits
		{"sys/purge-due/00000000000x/s/id/N", dueEntry{}, false},   // not a number
		{"sys/purge-due/-00000000001/s/id/N", dueEntry{}, false},   // negative
		{"sys/purge-due/000000000007/x/id/N", dueEntry{}, false},   // unknown kind
		{"sys/purge-due/000000000007/s/id/", dueEntry{}, false},    // no name
		{"sys/purge-due/000000000007/s//N", dueEntry{}, false},     // no id
		{"sys/purge-due/000000000007/s/id", dueEntry{}, false},     // too few parts
		{"sys/purge-other/000000000007/s/id/N", dueEntry{}, false}, // another prefix
	}
	for _, c := range cases {
		got, ok := parseDueKey(c.key)
		if c.ok {
			c.want.key = c.key
		}
		if ok != c.ok || got != c.want {
			t.Errorf("parseDueKey(%q) = %+v, %v; want %+v, %v", c.key, got, ok, c.want, c.ok)
		}
	}
}
