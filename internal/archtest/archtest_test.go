// Package archtest enforces the package graph of STYLE.md section 1: it
// lists every package's imports with `go list` and fails on any edge between
// project packages that the table below does not allow, and on third-party
// imports from packages that must stay lean.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "github.com/demandflow/demandflow"

// allowed maps a package (relative to the module, by prefix) to the project
// packages it may import (also by prefix). internal/* helpers are allowed
// to anyone except the leaves' own constraints below.
var allowed = map[string][]string{
	"cmd/demandflow": {"node", "bench", "client", "internal/"},
	"node":           {"cluster", "stream", "forecast", "tracking", "client", "internal/"},
	"cluster":        {"stream", "tracking", "forecast", "cluster/", "internal/"},
	"stream":         {"stream/"},
	"tracking":       {"tracking/"},
	"forecast":       {"forecast/"},
	"client":         {},
	"bench":          {"client"},
	"internal/":      {"stream", "internal/"},
}

// thirdParty restricts non-stdlib imports of the leaf packages.
var thirdParty = map[string][]string{
	"client":   {},
	"forecast": {"github.com/apache/arrow-go/", "golang.org/x/sync/"},
	"tracking": {"github.com/cockroachdb/pebble/"},
	"stream":   {"github.com/apache/arrow-go/", "github.com/cespare/xxhash/"},
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, mod), "/") }

func rule(table map[string][]string, pkg string) ([]string, bool) {
	best, found := "", false
	for k := range table {
		if (pkg == strings.TrimSuffix(k, "/") || strings.HasPrefix(pkg, k) || strings.HasPrefix(pkg, k+"/")) && len(k) > len(best) {
			best, found = k, true
		}
	}
	return table[best], found
}

func okPrefix(list []string, imp string) bool {
	for _, a := range list {
		if imp == strings.TrimSuffix(a, "/") || strings.HasPrefix(imp, a) || strings.HasPrefix(imp, a+"/") {
			return true
		}
	}
	return false
}

func TestPackageGraph(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	checked := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := rel(f[0])
		if strings.HasPrefix(pkg, "internal/archtest") {
			continue
		}
		checked++
		allow, ok := rule(allowed, pkg)
		tp, restrictTP := rule(thirdParty, pkg)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				r := rel(imp)
				if strings.HasPrefix(r, pkg+"/") { // own sub-packages
					continue
				}
				if !ok || !okPrefix(allow, r) {
					t.Errorf("%s imports %s: not allowed by STYLE.md section 1", pkg, r)
				}
				continue
			}
			first := strings.SplitN(imp, "/", 2)[0]
			if restrictTP && strings.Contains(first, ".") && !okPrefix(tp, imp) {
				t.Errorf("%s imports third-party %s: this package may only use %v", pkg, imp, tp)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d packages, want the whole module", checked)
	}
}
