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
		allowed   []string // exceptions to forbidden
	}{
		{"internal/store/...", []string{"internal/keyring", "internal/service", "internal/httpapi", "internal/identity", "internal/audit"}, nil},
		// The keyring knows one root key, not which seal released it.
		{"internal/keyring", []string{"internal/service", "internal/httpapi", "internal/identity", "internal/seal", "internal/config"}, nil},
		// Seals release and replace the root key; they never see requests, the domain or the cluster.
		{"internal/seal", []string{"net/http", "internal/service", "internal/httpapi", "internal/identity", "internal/issuer", "internal/audit", "internal/cluster", "internal/app"}, nil},
		{"internal/config", []string{"internal/", "net/http"}, nil},
		{"internal/service", []string{"net/http", "internal/httpapi", "internal/identity", "internal/issuer"}, nil},
		{"internal/authz", []string{"internal/", "net/http"}, nil},
		// The wire package (Key Vault, ARM and Graph types, and the error envelope writer) knows
		// HTTP but nothing of the domain, storage or authorization.
		{"internal/azkv/...", []string{"internal/"}, []string{"internal/jsonenc"}},
		{"internal/audit", []string{"internal/", "net/http"}, []string{"internal/jsonenc"}},
		{"internal/jsonenc", []string{"internal/", "net/http"}, nil},
		{"internal/pki", []string{"internal/", "net/http"}, nil},
		// The snapshot file format is a leaf both storage modes use; it never sees a store or HTTP.
		{"internal/snapshotfile", []string{"internal/", "net/http"}, nil},
		{"internal/identity", []string{"net/http", "internal/service", "internal/httpapi"}, nil},
		{"internal/cli", []string{"internal/service", "internal/store", "internal/keyring", "internal/identity"}, nil},
	}
	for _, c := range cases {
		t.Run(c.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", mod+c.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			self := strings.TrimSuffix(c.pkg, "/...")
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, mod+self) || allowed(dep, mod, c.allowed) {
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

func allowed(dep, mod string, allow []string) bool {
	for _, a := range allow {
		if dep == mod+a {
			return true
		}
	}
	return false
}
