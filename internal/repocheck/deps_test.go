package repocheck

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/e2eimage/e2eimage"

// pkgInfo is what go list says about one package.
type pkgInfo struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// graph is the import graph of the module's packages and everything they
// import, by import path.
type graph map[string]*pkgInfo

func loadGraph(t *testing.T) graph {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports,Deps,Module", "./...")
	cmd.Dir = *root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	g := graph{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		g[p.ImportPath] = &p
	}
	return g
}

// own returns the module's packages, relative to the module root ("." for
// the root package), sorted.
func (g graph) own() []string {
	var out []string
	for path := range g {
		if path == module {
			out = append(out, ".")
		} else if rel, ok := strings.CutPrefix(path, module+"/"); ok {
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return out
}

// chain returns an import chain from pkg to dep (both full paths), for the
// failure message.
func (g graph) chain(pkg, dep string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var out []string
			for ; p != ""; p = prev[p] {
				out = append(out, p)
			}
			slices.Reverse(out)
			return out
		}
		if n := g[p]; n != nil {
			for _, imp := range n.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = p
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{pkg, "...", dep}
}

// A rule says what the packages matched by pkgs may not import. A
// pattern is a directory relative to the module root ("vhd"), or one
// ending in "/..." for the directory and everything under it. A deny
// entry is a module-relative pattern like pkgs, or an import path prefix
// of another module ending in "/" ("github.com/IBM/"), or "non-std" for
// any package outside the standard library and this module.
type rule struct {
	why  string
	pkgs []string
	// except are packages the rule leaves out.
	except []string
	// deny is checked against every transitive dependency, or only the
	// direct imports when direct is set.
	deny   []string
	direct bool
	// atMostOne, when set, allows at most one of these module-relative
	// packages among the dependencies.
	atMostOne []string
}

// The layering of ../../docs/DESIGN.md ("Packages" and "Rules between
// packages"). To add a package, add it to the lists below: offline,
// cloudPackages, composers, library exclusions or examplesInternal.
var (
	cloudSDKs = []string{"github.com/IBM/", "github.com/softlayer/"}
	// offline packages link no cloud SDK and no cloud package.
	offline = []string{"vhd", "xts", "secret", "crn", "importspec", "disk", "doctor", "vhdcrypt", "examples/vhdcrypt"}
	// cloudPackages each talk to one IBM service.
	cloudPackages = []string{"kms", "iam", "cos", "classic", "audit"}
	// composers may combine cloud packages: the facade, and the CLIs and
	// programs built on it.
	composers = []string{"e2e", "e2e/ibmcloud", "examples/...", "internal/cli", "bench/...", "test/..."}
	// testSupport is for tests and demos only; cloudsimtest is the public
	// face of the simulator for other modules' tests, as go-containerregistry
	// ships pkg/registry.
	testSupport = []string{"cloudsimtest", "internal/simscript", "internal/cloudsim/...", "internal/testenv", "internal/imagetest", "internal/hostimg", "internal/versitygw",
		"internal/exampletest", "internal/faults", "internal/cli/clitest", "internal/durable/crashfs", "internal/httppolicy/policytest", "testing"}
	// notLibrary are the packages that are not part of the library: the
	// programs, their shared flag handling, the test harnesses and the
	// test support itself.
	notLibrary = append([]string{"examples/...", "internal/cli", "bench/...", "test/...", "internal/repocheck",
		"internal/extcheck", "internal/readmetest"}, testSupport...)
	// examplesInternal are the internal packages the example programs may
	// import; examples/e2e and examples/cloudsim also run the simulator.
	examplesInternal = []string{"internal/cli", "internal/nocore", "internal/progressbar", "internal/sampleimage"}
)

func rules() []rule {
	rs := []rule{
		{why: "offline packages link no cloud SDK and no cloud package", pkgs: offline,
			deny: append(append([]string{}, cloudSDKs...), append(append([]string{}, cloudPackages...), "e2e", "internal/endpoint")...)},
		{why: "leaf packages import only the standard library", pkgs: []string{"crn", "importspec"},
			deny: []string{"non-std"}},
		{why: "the library never imports the simulator or test support", pkgs: []string{"..."}, except: notLibrary,
			deny: testSupport},
		{why: "examples import public packages and only the internal packages meant for them", pkgs: []string{"examples/..."},
			except: []string{"examples/e2e", "examples/cloudsim"}, direct: true, deny: []string{"internal/..."}},
		{why: "examples/e2e and examples/cloudsim may also start the simulator", pkgs: []string{"examples/e2e", "examples/cloudsim"},
			direct: true, deny: []string{"internal/..."}},
		{why: "only the composers combine cloud packages", pkgs: []string{"..."}, except: append(append([]string{}, composers...), notLibrary...),
			atMostOne: cloudPackages},
	}
	// The cloud packages do not import one another (they share only the
	// leaf packages crn and importspec, secret and internal/endpoint), nor
	// the facade.
	for _, p := range cloudPackages {
		var others []string
		for _, q := range cloudPackages {
			if q != p {
				others = append(others, q)
			}
		}
		rs = append(rs, rule{why: "only the facade composes the cloud packages", pkgs: []string{p},
			deny: append(others, "e2e", "e2e/...")})
	}
	return rs
}

// allowedInternal lists, for the direct-import rules of the examples, the
// internal packages that are not violations.
func allowedInternal(pkg string) []string {
	if pkg == "examples/e2e" || pkg == "examples/cloudsim" {
		return append(append([]string{}, examplesInternal...), "internal/cloudsim")
	}
	return examplesInternal
}

func match(pattern, rel string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == pattern
}

func matchAny(patterns []string, rel string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, rel) })
}

// denied reports whether the import path dep breaks deny.
func denied(g graph, deny []string, dep string) bool {
	rel, own := strings.CutPrefix(dep, module+"/")
	for _, d := range deny {
		switch {
		case d == "non-std":
			if n := g[dep]; !own && n != nil && !n.Standard {
				return true
			}
		case strings.HasSuffix(d, "/") && !own:
			if strings.HasPrefix(dep, d) {
				return true
			}
		case own:
			if match(d, rel) {
				return true
			}
		case d == dep: // a standard library package such as "testing"
			return true
		}
	}
	return false
}

// violations checks every rule against g and returns one line per broken
// rule and package, with an import chain.
func violations(g graph) (bad []string, checked int) {
	for _, r := range rules() {
		for _, rel := range g.own() {
			if !matchAny(r.pkgs, rel) || matchAny(r.except, rel) {
				continue
			}
			full := module + "/" + rel
			if rel == "." {
				full = module
			}
			deps := g[full].Deps
			if r.direct {
				deps = g[full].Imports
			}
			checked++
			if r.atMostOne != nil {
				var uses []string
				for _, dep := range deps {
					if d, ok := strings.CutPrefix(dep, module+"/"); ok && slices.Contains(r.atMostOne, d) {
						uses = append(uses, d)
					}
				}
				if len(uses) > 1 {
					bad = append(bad, rel+" imports "+strings.Join(uses, " and ")+" ("+r.why+")")
				}
				continue
			}
			for _, dep := range deps {
				if !denied(g, r.deny, dep) {
					continue
				}
				if r.direct && slices.Contains(allowedInternal(rel), strings.TrimPrefix(dep, module+"/")) {
					continue
				}
				bad = append(bad, rel+" imports "+dep+" ("+r.why+"): "+strings.Join(g.chain(full, dep), " -> "))
				break
			}
		}
	}
	return bad, checked
}

// TestDependencyRules enforces the layering of ../../docs/DESIGN.md on the
// import graph (go list -deps ./..., test files not included).
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	g := loadGraph(t)
	bad, checked := violations(g)
	for _, b := range bad {
		t.Error(b)
	}
	if checked < len(rules()) {
		t.Fatalf("only %d package checks for %d rules: a rule matches no package", checked, len(rules()))
	}
	t.Logf("%d rules, %d package checks, %d violations", len(rules()), checked, len(bad))
}

// TestDependencyRulesCanFail feeds the checker a graph with one import
// added per rule kind, so that a rule that cannot fail is caught.
func TestDependencyRulesCanFail(t *testing.T) {
	t.Parallel()
	g := loadGraph(t)
	for _, c := range []struct {
		from string
		to   []string
	}{
		{"vhd", []string{"github.com/IBM/keyprotect-go-client"}},
		{"doctor", []string{module + "/classic"}},
		{"crn", []string{"golang.org/x/sys/unix"}},
		{"kms", []string{module + "/iam"}},
		{"classic", []string{module + "/cos"}},
		{"e2e", []string{module + "/internal/cloudsim"}},
		{"examples/order", []string{module + "/internal/endpoint"}},
		{"internal/scrub", []string{module + "/cos", module + "/classic"}},
	} {
		clone := graph{}
		for k, v := range g {
			cp := *v
			clone[k] = &cp
		}
		from := clone[module+"/"+c.from]
		if from == nil {
			t.Fatalf("%s: no such package", c.from)
		}
		from.Imports = append(slices.Clone(from.Imports), c.to...)
		from.Deps = append(slices.Clone(from.Deps), c.to...)
		for _, to := range c.to {
			if _, ok := clone[to]; !ok {
				clone[to] = &pkgInfo{ImportPath: to}
			}
		}
		if bad, _ := violations(clone); len(bad) == 0 {
			t.Errorf("%s importing %v breaks no rule", c.from, c.to)
		}
	}
}
