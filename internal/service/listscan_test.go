package service_test

import (
	"fmt"
	"testing"

	"github.com/strongroom/strongroom/internal/service"
)

// A list page is one store scan in either layout (plus one per name with many versions under
// the co-located one), and under the co-located layout it reads each head's tip in that scan.
func TestService_ListPageIsOneScan(t *testing.T) {
	cases := []struct {
		layout   int
		maxGets  int // tips read apart from the scan
		manyScan int // scans of a page holding a name with 40 versions
	}{
		{service.LayoutSplit, 26, 1},
		{service.LayoutColocated, 0, 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint("layout", c.layout), func(t *testing.T) {
			e := newDueEnv(t)
			mkVault(t, e.svc, e.ctx, "kv-list", 7, false)
			if err := e.svc.SetVaultLayout(e.ctx, "kv-list", c.layout); err != nil {
				t.Fatal(err)
			}
			set := func(name string, versions int) {
				for i := range versions {
					val := fmt.Sprintf("%s-%d", name, i)
					if _, err := e.svc.SetSecret(e.ctx, "kv-list", name, service.SecretInput{Value: &val}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := range 30 {
				set(fmt.Sprintf("s-%02d", i), 3)
			}
			page := func(skip string, want int) string {
				t.Helper()
				e.st.reset()
				p, err := e.svc.ListSecrets(e.ctx, "kv-list", 25, skip)
				if err != nil || len(p.Items) != want {
					t.Fatalf("page after %q: %d items, %v; want %d", skip, len(p.Items), err, want)
				}
				return p.Next
			}
			next := page("", 25)
			if gets, scans, _ := e.st.counts(); scans != 1 || gets > c.maxGets {
				t.Fatalf("first page: %d scans, %d point reads; want 1, <= %d", scans, gets, c.maxGets)
			}
			if page(next, 5) != "" {
				t.Fatal("second page has a next link")
			}
			if gets, scans, _ := e.st.counts(); scans != 1 || gets > c.maxGets {
				t.Fatalf("second page: %d scans, %d point reads; want 1, <= %d", scans, gets, c.maxGets)
			}
			set("many", 40)
			page("", 25)
			if gets, scans, _ := e.st.counts(); scans != c.manyScan || gets > c.maxGets+1 {
				t.Fatalf("page with a 40-version name: %d scans, %d point reads; want %d, <= %d", scans, gets, c.manyScan, c.maxGets+1)
			}
		})
	}
}
