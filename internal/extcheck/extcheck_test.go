package extcheck

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated files of testdata/extmod from their sources")

const (
	root       = "../.."
	extmod     = "testdata/extmod"
	modulePath = "github.com/e2eimage/e2eimage"
	extPath    = "example.com/extmod"
	// runner is the part of internal/exampletest that extmod shares.
	runner = "internal/exampletest/runner.go"
	// cloudRunner is the test file of a package that runs its cloud
	// examples against the simulator (with internal/exampletest).
	cloudRunner = "example_cloud_test.go"
)

// handWritten are the files of testdata/extmod that are not copies.
var handWritten = []string{
	"README.md",
	"go.mod",
	"go.sum",
	"fake/fake_test.go",
	"internal/exampletest/process.go",
	"readme/readme_test.go",
}

// skipDirs are the top-level directories that hold no public package.
var skipDirs = map[string]bool{"internal": true, "examples": true, "test": true, "bench": true, "testdata": true}

// genFile is a file of testdata/extmod and what it must hold.
type genFile struct {
	src, dst string // relative to the repository root and to extmod
	want     []byte
}

// publicPackages lists the top-level directories holding a public, non-main
// package.
func publicPackages(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, e := range entries {
		if !e.IsDir() || skipDirs[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, e.Name(), "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if pf.Name.Name != "main" {
				pkgs = append(pkgs, e.Name())
				break
			}
		}
	}
	return pkgs
}

// isExampleFile reports whether name is a file of godoc examples.
func isExampleFile(name string) bool {
	return name == "example_test.go" || strings.HasSuffix(name, "_example_test.go")
}

// internalImports returns the imports of src that another module may not
// make.
func internalImports(t *testing.T, name string, src []byte) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p == modulePath+"/internal" || strings.HasPrefix(p, modulePath+"/internal/") {
			bad = append(bad, p)
		}
	}
	return bad
}

// generatedFiles computes every generated file of testdata/extmod: the
// example files of each public package verbatim, each package's cloud
// runner with internal/exampletest's import path changed to extmod's copy,
// and that copy (runner.go) verbatim.
func generatedFiles(t *testing.T) []genFile {
	t.Helper()
	var out []genFile
	for _, pkg := range publicPackages(t) {
		entries, err := os.ReadDir(filepath.Join(root, pkg))
		if err != nil {
			t.Fatal(err)
		}
		examples := 0
		for _, e := range entries {
			name := e.Name()
			if !isExampleFile(name) && name != cloudRunner {
				continue
			}
			src := filepath.Join(pkg, name)
			b, err := os.ReadFile(filepath.Join(root, src))
			if err != nil {
				t.Fatal(err)
			}
			if name == cloudRunner {
				b = bytes.ReplaceAll(b, []byte(strconv.Quote(modulePath+"/internal/exampletest")),
					[]byte(strconv.Quote(extPath+"/internal/exampletest")))
				if b, err = format.Source(b); err != nil {
					t.Fatalf("%s: %v", src, err)
				}
			} else {
				examples++
			}
			if bad := internalImports(t, src, b); len(bad) > 0 {
				t.Errorf("%s imports %v: another module cannot; examples must use public API only", src, bad)
			}
			out = append(out, genFile{src: src, dst: filepath.ToSlash(src), want: b})
		}
		if examples == 0 {
			t.Errorf("package %s has no example_test.go (or *_example_test.go): every public package shows its use", pkg)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, runner))
	if err != nil {
		t.Fatal(err)
	}
	if bad := internalImports(t, runner, b); len(bad) > 0 {
		t.Errorf("%s imports %v; extmod's copy could not", runner, bad)
	}
	return append(out, genFile{src: runner, dst: runner, want: b})
}

// TestExtmodCopies fails when a generated file of testdata/extmod differs
// from its source, is missing, or when extmod holds a file that is neither
// generated nor known to be hand-written. With -update it rewrites them.
func TestExtmodCopies(t *testing.T) {
	gen := generatedFiles(t)
	dir := filepath.Join(root, extmod)
	expected := map[string]bool{}
	for _, f := range handWritten {
		expected[f] = true
	}
	for _, g := range gen {
		expected[g.dst] = true
		path := filepath.Join(dir, filepath.FromSlash(g.dst))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, g.want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		switch {
		case err != nil:
			t.Errorf("%s: %v (go test ./internal/extcheck -update writes it)", path, err)
		case !bytes.Equal(got, g.want):
			t.Errorf("%s differs from %s (go test ./internal/extcheck -update copies it again)", path, g.src)
		}
	}
	var extra []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !expected[rel] {
			if *update && strings.HasSuffix(rel, ".go") {
				return os.Remove(path) // a copy whose source is gone
			}
			extra = append(extra, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		t.Errorf("%s holds files that are neither copies nor listed as hand-written: %v", extmod, extra)
	}
	for _, f := range handWritten {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("hand-written file missing: %v", err)
		}
	}
	t.Logf("%d files of %s checked against their sources (%d example files)", len(gen), extmod,
		len(slices.DeleteFunc(slices.Clone(gen), func(g genFile) bool { return !isExampleFile(filepath.Base(g.dst)) })))
}

// goBlocks returns the bodies of the ```go fenced blocks of a Markdown text.
func goBlocks(md string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// Markers around a README block in extmod's readme/readme_test.go.
const (
	blockBegin = "// README block begin"
	blockEnd   = "// README block end"
)

// extmodBlocks returns the regions of src between blockBegin and blockEnd
// lines, with the indentation of the begin marker removed from each line.
func extmodBlocks(src string) ([]string, error) {
	var blocks []string
	var cur []string
	indent, in := "", false
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == blockBegin:
			if in {
				return nil, fmt.Errorf("line %d: %q inside a block", i+1, blockBegin)
			}
			in, cur = true, nil
			indent = line[:len(line)-len(strings.TrimLeft(line, "\t"))]
		case trimmed == blockEnd:
			if !in {
				return nil, fmt.Errorf("line %d: %q outside a block", i+1, blockEnd)
			}
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			if line != "" && !strings.HasPrefix(line, indent) {
				return nil, fmt.Errorf("line %d: less indented than its block's marker", i+1)
			}
			cur = append(cur, strings.TrimPrefix(line, indent))
		}
	}
	if in {
		return nil, fmt.Errorf("%q without %q", blockBegin, blockEnd)
	}
	return blocks, nil
}

// TestReadmeGoBlocksRunInExtmod fails unless every ```go block of README.md
// appears verbatim between markers in testdata/extmod/readme/readme_test.go,
// where each is the body of a function that test runs against the
// simulator, and every marked region there is a README block.
func TestReadmeGoBlocksRunInExtmod(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := goBlocks(string(md))
	if len(readme) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	src, err := os.ReadFile(filepath.Join(root, extmod, "readme", "readme_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := extmodBlocks(string(src))
	if err != nil {
		t.Fatalf("readme_test.go: %v", err)
	}
	found := 0
	for i, b := range readme {
		if slices.Contains(ext, b) {
			found++
			continue
		}
		t.Errorf("README.md's Go block %d is not in %s/readme/readme_test.go between %q and %q lines "+
			"(copy it there, indented one tab deeper than it is in README.md):\n%s", i+1, extmod, blockBegin, blockEnd, b)
	}
	for i, b := range ext {
		if !slices.Contains(readme, b) {
			t.Errorf("block %d of readme_test.go is no longer in README.md:\n%s", i+1, b)
		}
	}
	t.Logf("%d of %d Go blocks of README.md found verbatim in extmod (%d marked there)", found, len(readme), len(ext))
}

func TestExtmodBlocksParsing(t *testing.T) {
	src := "func f() {\n\t// README block begin\n\tx := 1\n\n\tif x > 0 {\n\t\ty()\n\t}\n\t// README block end\n}\n"
	got, err := extmodBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	want := "x := 1\n\nif x > 0 {\n\ty()\n}"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{
		"\t// README block begin\n",
		"\t// README block end\n",
		"\t// README block begin\nx\n\t// README block end\n",
		"\t// README block begin\n\t// README block begin\n",
	} {
		if _, err := extmodBlocks(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	md := "text\n```go\na := 1\n```\n```sh\nls\n```\n```go\nb\n\nc\n```\n"
	if b := goBlocks(md); len(b) != 2 || b[0] != "a := 1" || b[1] != "b\n\nc" {
		t.Fatalf("goBlocks: %q", b)
	}
}
