package service

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// A record deleted anywhere but destroy.go would skip the erasure every destroyed record needs
// (the bytes would stay in free pages and the log). The only other deletes remove records that
// hold no secret and no key: the rewrap cursor (plaintext) and a resource group's entry.
func TestDestroyOnlyHere(t *testing.T) {
	// Deletes outside destroy.go; purgedue.go's drops purge-due index entries, which hold no
	// ciphertext; events_queue.go's drop event records (metadata, never a value or a key);
	// alerts.go's drop an alert rule and an emptied honeytoken set (settings and names);
	// rotation_due.go's drop due-index entries (plaintext markers); policies.go's drop policy
	// definitions, assignments and exemptions (settings).
	allowed := map[string]int{"operator.go": 1, "vaults.go": 1, "purgedue.go": 1, "events_queue.go": 2, "alerts.go": 2, "rotation_due.go": 1, "policies.go": 1}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "destroy.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ast.Inspect(f, func(node ast.Node) bool {
			if sel, ok := node.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "store" && (sel.Sel.Name == "Delete" || sel.Sel.Name == "DeletePrefix" || sel.Sel.Name == "OpDelete" || sel.Sel.Name == "OpDeletePrefix") {
					n++
					if n > allowed[name] {
						t.Errorf("%s: store.%s outside destroy.go: destroy records through Service.destroy so they are erased", fset.Position(sel.Pos()), sel.Sel.Name)
					}
				}
			}
			return true
		})
	}
}
