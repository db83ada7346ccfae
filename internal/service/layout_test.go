package service_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

// Both secret layouts must behave identically, including names that are prefixes of each other
// (under the co-located layout "A"'s versions sit between "A" and "A-B").
func TestService_SecretLayouts(t *testing.T) {
	for _, layout := range []int{service.LayoutSplit, service.LayoutColocated} {
		t.Run(fmt.Sprint("layout", layout), func(t *testing.T) {
			svc, _, ctx := newService(t)
			mkVault(t, svc, ctx, "kv-layout", 7, false)
			if err := svc.SetVaultLayout(ctx, "kv-layout", layout); err != nil {
				t.Fatal(err)
			}
			names := []string{"a", "A-b", "a0", "a-b-c", "b", "zz"}
			versions := map[string][]string{}
			for round := range 3 {
				for _, n := range names {
					val := fmt.Sprintf("%s-%d", n, round)
					sec, err := svc.SetSecret(ctx, "kv-layout", n, service.SecretInput{Value: &val})
					if err != nil {
						t.Fatal(err)
					}
					versions[n] = append(versions[n], sec.Version)
				}
			}
			// Heads, paged two at a time, in name order, without versions mixed in.
			var listed []string
			skip := ""
			for {
				p, err := svc.ListSecrets(ctx, "kv-layout", 2, skip)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range p.Items {
					listed = append(listed, it.Name)
				}
				if skip = p.Next; skip == "" {
					break
				}
			}
			if want := []string{"a", "A-b", "a-b-c", "a0", "b", "zz"}; !slices.Equal(listed, want) {
				t.Fatalf("listed %v, want %v", listed, want)
			}
			for _, n := range names {
				p, err := svc.ListSecretVersions(ctx, "kv-layout", n, 25, "")
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, it := range p.Items {
					got = append(got, it.Version)
				}
				want := slices.Clone(versions[n])
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: versions %v, want %v", n, got, want)
				}
				old, err := svc.GetSecret(ctx, "kv-layout", n, versions[n][0])
				if err != nil || old.Value != n+"-0" {
					t.Fatalf("%s: first version = %q, %v", n, old.Value, err)
				}
			}
			// Deleting and purging "a" leaves "A-b" and "a0" whole.
			if _, err := svc.DeleteSecret(ctx, "kv-layout", "a"); err != nil {
				t.Fatal(err)
			}
			p, err := svc.ListDeletedSecrets(ctx, "kv-layout", 25, "")
			if err != nil || len(p.Items) != 1 || p.Items[0].Name != "a" {
				t.Fatalf("deleted = %+v, %v", p.Items, err)
			}
			if err := svc.PurgeDeletedSecret(ctx, "kv-layout", "a"); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"A-b", "a0"} {
				p, err := svc.ListSecretVersions(ctx, "kv-layout", n, 25, "")
				if err != nil || len(p.Items) != 3 {
					t.Fatalf("%s after purging a: %d versions, %v", n, len(p.Items), err)
				}
			}
			// Backup and restore round-trip under the layout.
			blob, err := svc.BackupSecret(ctx, "kv-layout", "a0")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.DeleteSecret(ctx, "kv-layout", "a0"); err != nil {
				t.Fatal(err)
			}
			if err := svc.PurgeDeletedSecret(ctx, "kv-layout", "a0"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.RestoreSecret(ctx, "kv-layout", blob); err != nil {
				t.Fatal(err)
			}
			if p, err := svc.ListSecretVersions(ctx, "kv-layout", "a0", 25, ""); err != nil || len(p.Items) != 3 {
				t.Fatalf("restored a0: %d versions, %v", len(p.Items), err)
			}
		})
	}
}
