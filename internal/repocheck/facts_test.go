package repocheck

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the module's root directory; -repocheck.root points the tests at
// another checkout (for instance an older commit, to see them fail there).
var root = flag.String("repocheck.root", "../..", "module root the repository tests read")

// A fact is one thing IBM documents that the module encodes, with the one
// package allowed to define it and a precise test for a definition.
type fact struct {
	name string
	// home is the directory (relative to the root) of the package that
	// defines the fact.
	home string
	// find reports, for one file, each place that defines the fact.
	find func(f *ast.File) []ast.Node
}

// pending are definitions outside their home that another change is
// removing, by "dir: fact" with the reason. The test fails when a pending
// definition is gone, so the list only shrinks.
var pending = map[string]string{
	"e2e/ibmcloud: check/report types": "the live check's CheckReport/CheckCall still mirror iam.Report/CheckResult with HTTP responses added (issue 21 item 9, open)",
}

var (
	osCodeShape   = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9-]+)*_64$`)
	importRegions = []string{"us-south", "us-east", "eu-gb", "eu-de", "jp-tok", "au-syd"}
	importDCs     = []string{"dal13", "wdc07", "lon02", "fra02"}
	classes       = []string{"standard", "vault", "cold", "smart", "flex", "onerate_active"}
	// exportShape is a string that builds or matches the name of an
	// exported object: "-" and a block device number (a %d verb or a
	// digit class) right before ".vhd" (image-0.vhd).
	exportShape = regexp.MustCompile(`-\(?(%d|\[0-9\][+*]?|\\d[+*]?|\[0-9\]\{[0-9,]+\})\)?\\?\.(\(\?i:)?(?i:vhd)`)
)

var facts = []fact{
	{"OS reference codes", "importspec", func(f *ast.File) []ast.Node {
		// A composite literal holding two or more OS reference codes.
		return litsWhere(f, func(ss []string) bool { return countMatch(ss, osCodeShape.MatchString) >= 2 })
	}},
	{"import regions and data centers", "importspec", func(f *ast.File) []ast.Node {
		// A composite literal naming three import regions, or two import
		// data centers.
		return litsWhere(f, func(ss []string) bool {
			return countIn(ss, importRegions) >= 3 || countIn(ss, importDCs) >= 2
		})
	}},
	{"bucket resiliency", "importspec", func(f *ast.File) []ast.Node {
		// A composite literal of two or more COS storage classes, or of
		// the three cross-region geographies.
		return litsWhere(f, func(ss []string) bool {
			return countIn(ss, classes) >= 2 || countIn(ss, []string{"us", "eu", "ap"}) == 3
		})
	}},
	{"import size limit", "importspec", func(f *ast.File) []ast.Node {
		// The constant 100 GiB, written as 100 << 30 or as its value.
		var out []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			switch e := n.(type) {
			case *ast.BinaryExpr:
				if e.Op == token.SHL && intLit(e.X) == 100 && intLit(e.Y) == 30 {
					out = append(out, e)
				}
			case *ast.BasicLit:
				if intLit(e) == 100<<30 {
					out = append(out, e)
				}
			}
			return true
		})
		return out
	}},
	{"export naming", "importspec", func(f *ast.File) []ast.Node {
		// A string that builds or matches exported object names.
		var out []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := strLit(n); ok && exportShape.MatchString(s) {
				out = append(out, n)
			}
			return true
		})
		return out
	}},
	{"CRN parsing", "crn", func(f *ast.File) []ast.Node {
		// A function that splits or searches a string at ':' and mentions
		// a CRN (in its name, parameters, comments or strings).
		var out []ast.Node
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || !mentionsCRN(f, fn) {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if c, ok := n.(*ast.CallExpr); ok && isStringsCall(c) && hasColonArg(c) {
					out = append(out, c)
				}
				return true
			})
		}
		return out
	}},
	{"check/report types", "iam", func(f *ast.File) []ast.Node {
		// A method Failed() returning a slice: the report of a list of
		// checks.
		var out []ast.Node
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "Failed" || fn.Type.Params.NumFields() != 0 ||
				fn.Type.Results.NumFields() != 1 {
				continue
			}
			if _, ok := fn.Type.Results.List[0].Type.(*ast.ArrayType); ok {
				out = append(out, fn)
			}
		}
		return out
	}},
}

// skipDir lists what the rule does not cover: test data, the test and
// benchmark harnesses, and the simulator, which is deliberately a second,
// independent picture of IBM Cloud (each of its rules cites its own
// source, see internal/cloudsim/README.md): sharing the library's tables
// would make it agree with the library by construction.
func skipDir(rel string) bool {
	for _, p := range []string{"testdata", "test", "bench", "internal/cloudsim", "internal/repocheck"} {
		if rel == p || strings.HasPrefix(rel, p+"/") || strings.HasSuffix(rel, "/testdata") || strings.Contains(rel, "/testdata/") {
			return true
		}
	}
	return strings.HasPrefix(filepath.Base(rel), ".") || strings.HasPrefix(filepath.Base(rel), "_")
}

// TestOneHomePerFact fails when a fact is defined outside its home package
// (test files excluded).
func TestOneHomePerFact(t *testing.T) {
	t.Parallel()
	found := map[string][]string{} // "dir: fact" -> positions
	homesSeen := map[string]int{}
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(*root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(*root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && skipDir(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		files++
		dir := filepath.ToSlash(filepath.Dir(rel))
		for _, fc := range facts {
			for _, n := range fc.find(f) {
				if dir == fc.home {
					homesSeen[fc.name]++
					continue
				}
				k := dir + ": " + fc.name
				found[k] = append(found[k], fset.Position(n.Pos()).String())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range facts {
		if homesSeen[fc.name] == 0 {
			t.Errorf("%s: no definition found in its home %s/: the detector or the home is wrong", fc.name, fc.home)
		}
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if why, ok := pending[k]; ok {
			t.Logf("pending (%s): %s", why, strings.Join(found[k], ", "))
			continue
		}
		t.Errorf("%s is defined outside its home, at %s", k, strings.Join(found[k], ", "))
	}
	for k, why := range pending {
		if _, ok := found[k]; !ok {
			t.Errorf("pending %q is gone (%s): remove it from the pending list", k, why)
		}
	}
	t.Logf("%d files read, %d facts, %d definitions in their homes, %d outside (%d pending)",
		files, len(facts), sum(homesSeen), len(found), len(pending))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// litsWhere returns the composite literals whose string elements (and map
// keys) satisfy pred.
func litsWhere(f *ast.File, pred func([]string) bool) []ast.Node {
	var out []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		var ss []string
		ast.Inspect(cl, func(m ast.Node) bool {
			if s, ok := strLit(m); ok {
				ss = append(ss, s)
			}
			return true
		})
		if pred(ss) {
			out = append(out, cl)
			return false
		}
		return true
	})
	return out
}

func countMatch(ss []string, match func(string) bool) int {
	n := 0
	for _, s := range ss {
		if match(s) {
			n++
		}
	}
	return n
}

func countIn(ss, set []string) int {
	seen := map[string]bool{}
	for _, s := range ss {
		if slices.Contains(set, s) {
			seen[s] = true
		}
	}
	return len(seen)
}

func strLit(n ast.Node) (string, bool) {
	bl, ok := n.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

func intLit(e ast.Expr) int64 {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.INT {
		return -1
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(bl.Value, "_", ""), 0, 64)
	if err != nil {
		return -1
	}
	return v
}

func mentionsCRN(f *ast.File, fn *ast.FuncDecl) bool {
	text := fn.Name.Name
	if fn.Doc != nil {
		text += fn.Doc.Text()
	}
	ast.Inspect(fn, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Ident:
			text += " " + x.Name
		case *ast.BasicLit:
			text += " " + x.Value
		}
		return true
	})
	return strings.Contains(strings.ToLower(text), "crn")
}

func isStringsCall(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && (pkg.Name == "strings" || pkg.Name == "bytes")
}

func hasColonArg(c *ast.CallExpr) bool {
	for _, a := range c.Args[1:] {
		bl, ok := a.(*ast.BasicLit)
		if ok && (bl.Value == `":"` || bl.Value == `':'`) {
			return true
		}
	}
	return false
}

// String makes a fact readable in failure messages.
func (fc fact) String() string { return fmt.Sprintf("%s (home %s)", fc.name, fc.home) }
