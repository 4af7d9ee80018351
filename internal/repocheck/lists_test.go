package repocheck

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// pkgWord is a word of doc.go that may name a package: a module path
	// relative to the root, as doc.go writes them.
	pkgWord = regexp.MustCompile(`[a-z0-9][a-z0-9/]*[a-z0-9]`)
	// listItem is a list item of doc.go naming a package: "  - vhd: ...".
	listItem = regexp.MustCompile(`(?m)^\s*- ([a-z0-9/]+):`)
	// designRow is a row of ../../docs/DESIGN.md's package table: "| `vhd` | ... |".
	designRow = regexp.MustCompile("(?m)^\\| `([a-z0-9/]+)` \\|")
)

// docGoPackages returns the packages doc.go's comment names: every word
// that is one of the module's packages, and every list item's name
// (which must be a package).
func docGoPackages(t *testing.T, own []string) (named, items []string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(*root, "doc.go"), nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	text := f.Doc.Text()
	for _, w := range pkgWord.FindAllString(text, -1) {
		if slices.Contains(own, w) {
			named = append(named, w)
		}
	}
	for _, m := range listItem.FindAllStringSubmatch(text, -1) {
		items = append(items, m[1])
	}
	// Words like "internal/foo" that are not packages are reported too.
	items = append(items, regexp.MustCompile(`\b(?:internal|examples|test|bench)/[a-z0-9/]*[a-z0-9]\b`).FindAllString(text, -1)...)
	return named, items
}

// designDoc is the design document in docs/, by name.
const designDoc = "DESIGN"

// TestPackageLists checks that doc.go and ../../docs/DESIGN.md's "Every package"
// table name every package go list ./... reports, and nothing that is not
// one.
func TestPackageLists(t *testing.T) {
	t.Parallel()
	g := loadGraph(t)
	var own []string
	for _, p := range g.own() {
		if p != "." {
			own = append(own, p)
		}
	}
	named, items := docGoPackages(t, own)
	for _, p := range own {
		if !slices.Contains(named, p) {
			t.Errorf("doc.go does not name package %s", p)
		}
	}
	for _, it := range items {
		if !slices.Contains(own, it) && !strings.HasPrefix(it, "testdata") && it != "bench/README" {
			t.Errorf("doc.go lists %s, which is not a package of the module", it)
		}
	}

	b, err := os.ReadFile(filepath.Join(*root, "docs", designDoc+".md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	// Only the "Every package" section's table counts: other tables (the
	// state file's steps) have rows of the same shape.
	section := string(b)
	if i := strings.Index(section, "### Every package"); i >= 0 {
		section = section[i:]
		if j := strings.Index(section[1:], "\n#"); j >= 0 {
			section = section[:j+1]
		}
	}
	for _, m := range designRow.FindAllStringSubmatch(section, -1) {
		rows = append(rows, m[1])
	}
	for _, p := range own {
		if !slices.Contains(rows, p) {
			t.Errorf("%s.md's package table has no row for %s", designDoc, p)
		}
	}
	for _, r := range rows {
		if !slices.Contains(own, r) {
			t.Errorf("%s.md's package table lists %s, which is not a package of the module", designDoc, r)
		}
	}
	t.Logf("%d packages; doc.go names %d distinct, the design document has %d rows", len(own), len(uniq(named)), len(rows))
}

func uniq(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
