// Package exampletest runs the godoc examples that need a cloud against a
// fresh account of the local cloud simulator.
//
// Such an example uses public API only and reads its account and endpoints
// from environment variables (Env lists them), so it shows what a program
// would do against IBM Cloud. It has no "// Output:" line, so go test only
// compiles it; instead its body ends with a comment that starts with the
// line Marker and goes on with what the example prints on a fresh simulated
// account. Run starts a simulator for each example, sets the variables,
// runs the example with its standard output captured and compares.
//
// This file is copied verbatim into testdata/extmod (a module of its own,
// which must not import this module's internal packages), where the same
// examples run against a simulator process; it may import only the standard
// library. How the simulator starts is the other file's job: in this module
// in the test's process, in testdata/extmod as a separate process.
package exampletest

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Marker is the comment line that introduces, in an example's body, what
// the example prints when run against a fresh simulated account.
const Marker = "On a fresh simulated account, this prints:"

// Env maps the environment variables that the examples read to the fields
// of the simulator's description (the JSON object that examples/cloudsim
// prints first). Against IBM Cloud, the *_URL variables stay unset (the
// public endpoints) and the others name a real account's resources.
var Env = map[string]string{
	"IBMCLOUD_API_KEY":     "api_key",
	"ROOT_KEY_CRN":         "root_key_crn",
	"HPCS_ROOT_KEY_CRN":    "hpcs_root_key_crn",
	"COS_INSTANCE_ID":      "cos_instance_id",
	"COS_INSTANCE_CRN":     "cos_instance_crn",
	"COS_BUCKET":           "bucket",
	"IAM_URL":              "iam",
	"IAM_IDENTITY_URL":     "iam_identity",
	"IAM_POLICY_URL":       "iam_policy",
	"KMS_URL":              "kms",
	"HPCS_URL":             "hpcs",
	"S3_URL":               "s3",
	"SOFTLAYER_URL":        "softlayer",
	"ACTIVITY_TRACKER_URL": "activity_tracker",
}

// Sim says how to start the simulator of each example.
type Sim struct {
	// Seed derives the account's identifiers (examples/cloudsim -seed).
	Seed int64
	// ClockSpeed is simulated seconds per real second (-clock-speed);
	// 0 means 1.
	ClockSpeed float64
	// SeedAuthorizations pre-creates the server-protect authorizations
	// (-seed-authorizations).
	SeedAuthorizations bool
}

// Example is one example function to run.
type Example struct {
	// F is the example function.
	F func()
	// Prepare, when set, makes what the example expects to find in the
	// account (an uploaded image, an image template) once the simulator
	// runs. env holds the variables of Env; Prepare adds its own.
	Prepare func(tb testing.TB, env map[string]string)
}

// Run runs examples, in the order of file, each against a simulator of its
// own. The examples of file whose body holds Marker and the keys of
// examples must be the same set, and not empty. It returns how many ran.
func Run(t *testing.T, file string, sim Sim, examples map[string]Example) int {
	t.Helper()
	want, order, err := ExpectedOutputs(file)
	if err != nil {
		t.Fatal(err)
	}
	var missing, unmarked []string
	for _, name := range order {
		if _, ok := examples[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range examples {
		if _, ok := want[name]; !ok {
			unmarked = append(unmarked, name)
		}
	}
	sort.Strings(unmarked)
	if len(missing) > 0 || len(unmarked) > 0 || len(order) == 0 {
		t.Fatalf("%s: examples with the line %q but not given to Run: %v; given but without that line: %v",
			file, Marker, missing, unmarked)
	}
	ran := 0
	for _, name := range order {
		ex := examples[name]
		t.Run(name, func(t *testing.T) {
			info := StartSimulator(t, sim)
			env := make(map[string]string, len(Env))
			for k, field := range Env {
				v, ok := info[field]
				if !ok {
					t.Fatalf("the simulator's description has no %q (for %s)", field, k)
				}
				env[k] = v
			}
			if ex.Prepare != nil {
				ex.Prepare(t, env)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			got, err := captureStdout(ex.F)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := normalize(got), normalize(want[name]); g != w {
				t.Fatalf("%s printed:\n%s\nwant (from its comment in %s):\n%s", name, g, file, w)
			}
			ran++
		})
	}
	t.Logf("%d of %d examples of %s ran against the simulator and printed what their comment says", ran, len(order), file)
	return ran
}

// ExpectedOutputs parses file and returns, for each Example function whose
// body has a comment holding the line Marker, the lines that follow it, and
// those examples' names in the order of the file.
func ExpectedOutputs(file string) (map[string]string, []string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		return nil, nil, err
	}
	want := map[string]string{}
	var order []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Body == nil || !strings.HasPrefix(fn.Name.Name, "Example") {
			continue
		}
		for _, cg := range f.Comments {
			if cg.Pos() < fn.Body.Lbrace || cg.End() > fn.Body.Rbrace {
				continue
			}
			lines := strings.Split(cg.Text(), "\n")
			i := slices.Index(lines, Marker)
			if i < 0 {
				continue
			}
			if _, dup := want[fn.Name.Name]; dup {
				return nil, nil, fmt.Errorf("%s: %s has the line %q twice", file, fn.Name.Name, Marker)
			}
			want[fn.Name.Name] = strings.Join(lines[i+1:], "\n")
			order = append(order, fn.Name.Name)
		}
	}
	return want, order, nil
}

// normalize is what go test does to an example's output before comparing:
// line endings unified, surrounding space trimmed.
func normalize(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// captureStdout runs f with os.Stdout redirected to a pipe and returns what
// it wrote.
func captureStdout(f func()) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	out := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		_ = r.Close()
		out <- b.String()
	}()
	saved := os.Stdout
	os.Stdout = w
	func() {
		defer func() {
			os.Stdout = saved
			_ = w.Close()
		}()
		f()
	}()
	return <-out, nil
}
