package test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// allocCheck is how a test asserts an allocation count; spelled in two parts so this file
// does not count as one.
const allocCheck = "testing." + "AllocsPerRun("

// TestCI_NonRacePassCoversAllocationChecks: allocation assertions skip under -race (its
// instrumentation allocates), so .ci/run must run every package that has one once more without
// -race, or the check never runs in CI.
func TestCI_NonRacePassCoversAllocationChecks(t *testing.T) {
	want, err := packagesWithAllocChecks("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("found no allocation checks; the scan is broken")
	}
	script, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	got := nonRacePackages(string(script))
	for _, pkg := range want {
		if !got[pkg] {
			t.Errorf(".ci/run has no non-race `go test` of %s, which has an allocation check", pkg)
		}
	}
}

// packagesWithAllocChecks lists, as "./dir/", the directories under root whose test files
// call testing.AllocsPerRun.
func packagesWithAllocChecks(root string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), allocCheck) {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			seen["./"+filepath.ToSlash(rel)+"/"] = true
		}
		return nil
	})
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, err
}

// nonRacePackages returns the package arguments ("./x/" or "./x") of the script's `go test`
// lines that do not use -race, normalised to "./x/".
func nonRacePackages(script string) map[string]bool {
	got := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for len(f) > 0 && strings.Contains(f[0], "=") && !strings.HasPrefix(f[0], "#") {
			f = f[1:] // environment assignments before the command
		}
		if len(f) < 2 || f[0] != "go" || f[1] != "test" {
			continue
		}
		race := false
		var pkgs []string
		for _, a := range f[2:] {
			switch {
			case a == "-race":
				race = true
			case strings.HasPrefix(a, "./"):
				pkgs = append(pkgs, strings.TrimSuffix(a, "/")+"/")
			}
		}
		if !race {
			for _, p := range pkgs {
				got[p] = true
			}
		}
	}
	return got
}

func TestCI_NonRacePackages_Parse(t *testing.T) {
	script := "STRONGROOM_TEST_RACE=1 go test -race -count=1 ./...\n" +
		"go test -count=1 ./internal/a/ ./internal/b\n" +
		"# go test ./internal/c/\n" +
		"go test -race ./internal/d/\n" +
		"GOFLAGS=-mod=mod go test -count=1 ./internal/e/\n"
	got := nonRacePackages(script)
	for p, want := range map[string]bool{"./internal/a/": true, "./internal/b/": true, "./internal/c/": false, "./internal/d/": false, "./internal/e/": true, "./.../": false} {
		if got[p] != want {
			t.Errorf("%s: listed = %v, want %v (parsed %v)", p, got[p], want, got)
		}
	}
}
