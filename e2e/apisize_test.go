package e2e

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxExported bounds the exported identifiers of package e2e as go doc
// -all lists them: top-level names, methods, exported struct fields, and
// the methods of its interfaces.
// Issue 21 asks for at most 150; moving Connect and the live check to
// e2e/ibmcloud took it from 321 to the figure below (which includes the new
// ErrStateLocked, ErrUnreachable and UnreachableError, and the service
// interfaces ObjectStore, ImageService and AuditSource with their 22
// methods), and the State
// fields (35, kept exported for the tests under test/ that read them) and
// Plan's tunables are what remains to shrink. The bound only goes down.
const maxExported = 263

// TestExportedIdentifiers counts the package's exported identifiers with
// go/doc and fails above maxExported.
func TestExportedIdentifiers(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/e2eimage/e2eimage/e2e")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	values := func(kind string, vs []*doc.Value) {
		for _, v := range vs {
			counts[kind] += len(v.Names)
		}
	}
	values("const", p.Consts)
	values("var", p.Vars)
	counts["func"] += len(p.Funcs)
	for _, typ := range p.Types {
		counts["type"]++
		values("const", typ.Consts)
		values("var", typ.Vars)
		counts["func"] += len(typ.Funcs)
		counts["method"] += len(typ.Methods)
		for _, spec := range typ.Decl.Specs {
			if it, ok := spec.(*ast.TypeSpec).Type.(*ast.InterfaceType); ok {
				counts["interface method"] += len(it.Methods.List)
				continue
			}
			st, ok := spec.(*ast.TypeSpec).Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				if len(f.Names) == 0 {
					counts["field"]++ // embedded
				}
				for _, n := range f.Names {
					if n.IsExported() {
						counts["field"]++
					}
				}
			}
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("exported identifiers of e2e: %d (%v); bound %d, issue 21's target 150", total, counts, maxExported)
	if total > maxExported {
		t.Errorf("e2e exports %d identifiers, more than %d", total, maxExported)
	}
	if total < 20 {
		t.Errorf("counted only %d identifiers: the count is broken", total)
	}
}
