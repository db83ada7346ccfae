package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces the dependency directions of docs/architecture.md: storage never sees
// the layers above it, the domain never sees HTTP, and the leaf packages stay leaves.
func TestImportRules(t *testing.T) {
	const mod = "github.com/strongroom/strongroom/"
	cases := []struct {
		pkg       string
		forbidden []string
	}{
		{"internal/store/...", []string{"internal/keyring", "internal/service", "internal/httpapi", "internal/identity", "internal/audit"}},
		{"internal/keyring", []string{"internal/service", "internal/httpapi", "internal/identity"}},
		{"internal/service", []string{"net/http", "internal/httpapi", "internal/identity", "internal/issuer"}},
		{"internal/authz", []string{"internal/", "net/http"}},
		{"internal/azkv", []string{"internal/", "net/http"}},
		{"internal/audit", []string{"internal/", "net/http"}},
		{"internal/identity", []string{"net/http", "internal/service", "internal/httpapi"}},
		{"internal/cli", []string{"internal/service", "internal/store", "internal/keyring", "internal/identity"}},
	}
	for _, c := range cases {
		t.Run(c.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", mod+c.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			self := strings.TrimSuffix(c.pkg, "/...")
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, mod+self) {
					continue
				}
				for _, f := range c.forbidden {
					if dep == f || strings.HasPrefix(dep, mod+f) {
						t.Errorf("%s imports %s", c.pkg, dep)
					}
				}
			}
		})
	}
}
