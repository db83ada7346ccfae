package app_test

import (
	"os/exec"
	"slices"
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
		// The SoftHSM2 token helper the seal, server and end-to-end tests share needs only the OS.
		{"internal/seal/sealtest", []string{"internal/", "net/http"}, nil},
		// The config may parse network rules with the firewall's own parser.
		{"internal/config", []string{"internal/", "net/http"}, []string{"internal/netacl"}},
		// Network rules and client addresses are pure: parsing and matching, no I/O.
		{"internal/netacl", []string{"internal/", "net/http"}, nil},
		// Role assignments are stored and indexed below the domain; the decision is authz's.
		{"internal/rbac", []string{"net/http", "internal/service", "internal/httpapi", "internal/identity", "internal/issuer", "internal/cluster"}, nil},
		{"internal/service", []string{"net/http", "internal/httpapi", "internal/identity", "internal/issuer"}, nil},
		// The portal is a client of the API, never a way around it: no domain, no authorization.
		{"internal/portal", []string{"internal/service", "internal/httpapi", "internal/issuer", "internal/rbac", "internal/authz", "internal/app"}, nil},
		{"internal/authz", []string{"internal/", "net/http"}, nil},
		// The wire package (Key Vault, ARM and Graph types, and the error envelope writer) knows
		// HTTP but nothing of the domain, storage or authorization.
		{"internal/azkv/...", []string{"internal/"}, []string{"internal/jsonenc"}},
		{"internal/audit", []string{"internal/", "net/http"}, []string{"internal/jsonenc"}},
		{"internal/jsonenc", []string{"internal/", "net/http"}, nil},
		// Holding an answer until it is audited needs HTTP and nothing else.
		{"internal/held", []string{"internal/"}, nil},
		{"internal/pki", []string{"internal/", "net/http"}, nil},
		// The snapshot file format is a leaf both storage modes use; it never sees a store or HTTP.
		{"internal/snapshotfile", []string{"internal/", "net/http"}, nil},
		// A cluster node replicates the store and serves snapshots; the domain (service, keyring,
		// identities) reaches it only through the interfaces it declares (StoreHooks, KeysApplier).
		{"internal/cluster", []string{"internal/service", "internal/keyring", "internal/identity", "internal/httpapi", "internal/issuer", "internal/app"}, nil},
		{"internal/identity", []string{"net/http", "internal/service", "internal/httpapi"}, nil},
		// The seal-state machine releases the root key and builds nothing above it: the domain
		// service and the API handler are the serving state its owner builds (sysapi.Options.Build),
		// so the /sys routes stay readable without the data plane.
		{"internal/sysapi", []string{"internal/service", "internal/httpapi", "internal/issuer", "internal/metrics", "internal/snapshots", "internal/app", "internal/servercmd"}, nil},
		// The registry is a leaf every layer may count into.
		{"internal/metrics", []string{"internal/"}, nil},
		// Scrape authorization verifies a token and asks the service; it never sees the seal
		// machinery (it is handed the serving state's checks), the API handler or the cluster.
		{"internal/metrics/scrape", []string{"internal/sysapi", "internal/httpapi", "internal/cluster", "internal/app"}, nil},
		// The Raft gauges read a cluster node and nothing of the domain.
		{"internal/metrics/raftmetrics", []string{"internal/service", "internal/keyring", "internal/identity", "internal/httpapi", "internal/sysapi", "internal/app"}, nil},
		// Snapshot jobs get the root sealer and the reload as functions: they never see the seal
		// machinery, the keyring's contents, the domain or the API.
		{"internal/snapshots", []string{"internal/sysapi", "internal/keyring", "internal/identity", "internal/service", "internal/httpapi", "internal/app"}, nil},
		// The snapshot calls' answer mapping knows the file format and HTTP only, so both storage
		// modes' operator sockets (internal/snapshots and internal/cluster) can share it.
		{"internal/snapshotfile/snaphttp", []string{"internal/"}, []string{"internal/snapshotfile"}},
		// The client commands speak HTTP to a server and share no code with it, but for the
		// pure network-rule parser (so that a rule the CLI accepts is one the server accepts),
		// the audit folder reader (so that `monitor log query --dir` answers as the API does)
		// and the PKI leaf (the agent's cache CA is name-constrained as the server's local CA).
		{"internal/cli", []string{"internal/"}, []string{"internal/netacl", "internal/auditquery", "internal/pki"}},
		// The audit query reads files only: no server state, so the CLI may run it offline.
		{"internal/auditquery", []string{"internal/", "net/http"}, nil},
		// The server is built from a config.Config; parsing flags into one is servercmd's job.
		{"internal/app", []string{"github.com/spf13/cobra", "internal/servercmd"}, nil},
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

// TestImportRules_ServerCommands keeps internal/servercmd a thin layer of commands: it imports
// only what turns flags into a running server or an operator call (app, config, cluster, audit),
// and only the binaries under cmd/ (and the profiling harness that runs the same server command)
// import it.
func TestImportRules_ServerCommands(t *testing.T) {
	const mod = "github.com/strongroom/strongroom/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	mayImport := []string{"internal/app", "internal/config", "internal/cluster", "internal/audit"}
	importers := []string{"cmd/", "internal/bench/profserver"}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], mod), fields[1:]
		for _, dep := range imports {
			if !strings.HasPrefix(dep, mod) {
				continue
			}
			dep = strings.TrimPrefix(dep, mod)
			if pkg == "internal/servercmd" && !slices.Contains(mayImport, dep) {
				t.Errorf("internal/servercmd imports %s", dep)
			}
			if dep == "internal/servercmd" {
				found = true
				if !slices.ContainsFunc(importers, func(p string) bool { return strings.HasPrefix(pkg, p) }) {
					t.Errorf("%s imports internal/servercmd", pkg)
				}
			}
		}
	}
	if !found {
		t.Fatal("no package imports internal/servercmd: the rule checks nothing")
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
