package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/strongroom/strongroom/internal/keyring"
	"github.com/strongroom/strongroom/internal/service"
	"github.com/strongroom/strongroom/internal/store"
)

// A writer of the store file who copies one secret record's ciphertext over another's (another
// version of the same secret, another secret's version or head) gets an error from the
// service, never the copied value: each record's AAD holds its storage key, which names the
// vault, the secret and the version.
func TestService_CopiedCiphertextFailsToOpen(t *testing.T) {
	for _, layout := range []int{service.LayoutSplit, service.LayoutColocated} {
		t.Run(fmt.Sprint("layout", layout), func(t *testing.T) {
			ctx := context.Background()
			st, _, svc, actx := openStoreService(t)
			mkVault(t, svc, actx, "kv-replay", 7, false)
			if err := svc.SetVaultLayout(actx, "kv-replay", layout); err != nil {
				t.Fatal(err)
			}
			set := func(name, value string) string {
				sec, err := svc.SetSecret(actx, "kv-replay", name, service.SecretInput{Value: &value})
				if err != nil {
					t.Fatal(err)
				}
				return sec.Version
			}
			v1 := set("a", "old-value-of-a")
			v2 := set("a", "new-value-of-a")
			vb := set("b", "value-of-b")
			set("a", "latest-value-of-a") // the versions above are read from their own records,
			set("b", "latest-value-of-b") // the latest from the head
			keys := map[string][]byte{}
			if err := st.Scan(ctx, "v/", "", func(k string, raw []byte) bool {
				keys[k] = bytes.Clone(raw)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			find := func(match func(string) bool) string {
				t.Helper()
				for k := range keys {
					if match(k) {
						return k
					}
				}
				t.Fatal("record not found")
				return ""
			}
			versionOf := func(name, ver string) string {
				return find(func(k string) bool {
					return strings.HasSuffix(k, "/"+strings.ToUpper(name)+"!"+ver) || strings.HasSuffix(k, "/x/"+strings.ToUpper(name)+"/"+ver)
				})
			}
			headOf := func(name string) string {
				return find(func(k string) bool {
					return strings.HasSuffix(k, "/n/"+strings.ToUpper(name)+"!~") || strings.HasSuffix(k, "/n/"+strings.ToUpper(name))
				})
			}
			cases := []struct {
				name, from, to, readName, readVersion string
			}{
				{"older version over a newer one", versionOf("a", v1), versionOf("a", v2), "a", v2},
				{"newer version over an older one", versionOf("a", v2), versionOf("a", v1), "a", v1},
				{"another secret's version", versionOf("a", v1), versionOf("b", vb), "b", vb},
				{"another secret's head", headOf("a"), headOf("b"), "b", ""},
			}
			for _, c := range cases {
				if err := st.Apply(ctx, []store.Op{store.Put(c.to, keys[c.from])}); err != nil {
					t.Fatal(err)
				}
				sec, err := svc.GetSecret(actx, "kv-replay", c.readName, c.readVersion)
				if !errors.Is(err, keyring.ErrDecrypt) || sec.Value != "" {
					t.Errorf("%s: got %q, %v; want an authentication error", c.name, sec.Value, err)
				}
				if err != nil && strings.Contains(err.Error(), "value-of") {
					t.Errorf("%s: the error names a value: %v", c.name, err)
				}
				if err := st.Apply(ctx, []store.Op{store.Put(c.to, keys[c.to])}); err != nil { // restore
					t.Fatal(err)
				}
			}
			if sec, err := svc.GetSecret(actx, "kv-replay", "a", v1); err != nil || sec.Value != "old-value-of-a" {
				t.Fatalf("restored records: %q, %v", sec.Value, err)
			}
		})
	}
}
