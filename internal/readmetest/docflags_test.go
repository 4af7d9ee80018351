package readmetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// examples are the example programs, built once for the tests that run
// them, in a directory TestMain removes.
var examples struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if examples.dir != "" {
		os.RemoveAll(examples.dir)
	}
	os.Exit(code)
}

// examplesBin builds ./examples/... once and returns the directory of the
// executables.
func examplesBin(t *testing.T) string {
	t.Helper()
	examples.once.Do(func() {
		if examples.dir, examples.err = os.MkdirTemp("", "readmetest-bin"); examples.err != nil {
			return
		}
		build := exec.Command("go", "build", "-o", examples.dir+string(os.PathSeparator), "./examples/...")
		build.Dir = root
		examples.out, examples.err = build.CombinedOutput()
	})
	if examples.err != nil {
		t.Fatalf("building the examples: %v\n%s", examples.err, examples.out)
	}
	return examples.dir
}

// Every flag that a Markdown document of the repository gives to one of
// the example programs, in a code block or an inline code span, must be a
// flag that program lists in its -help: "bin/NAME -flag" (as built by go
// build -o bin/ ./examples/...), "./examples/NAME -flag" or "go run
// ./examples/NAME -flag". For vhdcrypt, a word before the first flag is its
// subcommand. Prose outside code is not read.

// docProgram finds a use of an example program in a line of code.
var docProgram = regexp.MustCompile(`(?:^|[\s(=])(?:\./)?(?:bin|examples)/([a-z0-9]+)\b`)

// docSpan matches an inline code span.
var docSpan = regexp.MustCompile("`([^`\n]+)`")

// docCode returns the code of a Markdown text: each line of its fenced
// blocks (a line ending in a backslash joined with the next) and each
// inline code span elsewhere, with the line number it starts on.
func docCode(md string) (code []string, lines []int) {
	in := false
	pending, pendingLine := "", 0
	for i, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			for _, m := range docSpan.FindAllStringSubmatch(line, -1) {
				code, lines = append(code, m[1]), append(lines, i+1)
			}
			continue
		}
		if pending == "" {
			pendingLine = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		code, lines = append(code, pending+line), append(lines, pendingLine)
		pending = ""
	}
	return code, lines
}

// docFlagUse is one program with the flags a document gives it.
type docFlagUse struct {
	program, sub string
	flags        []string
}

// docFlagUses returns the uses of example programs in a line of code:
// what follows the program up to the end of the command (a pipe, a
// redirection, a comment, && or ;).
func docFlagUses(code string) []docFlagUse {
	var uses []docFlagUse
	for _, m := range docProgram.FindAllStringSubmatchIndex(code, -1) {
		u := docFlagUse{program: code[m[2]:m[3]]}
		rest := strings.Fields(code[m[1]:])
		for i, w := range rest {
			if w == "|" || w == ">" || w == "<" || w == "&&" || w == ";" || w == "||" || strings.HasPrefix(w, "#") {
				break
			}
			if i == 0 && !strings.HasPrefix(w, "-") && u.program == "vhdcrypt" {
				u.sub = w
				continue
			}
			if len(w) > 1 && w[0] == '-' && (w[1] == '-' || w[1] >= 'a' && w[1] <= 'z' || w[1] >= 'A' && w[1] <= 'Z') {
				name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
				u.flags = append(u.flags, strings.TrimRight(name, ".,)"))
			}
		}
		uses = append(uses, u)
	}
	return uses
}

func TestDocFlagUses(t *testing.T) {
	code, lines := docCode("Run `bin/cloudsim -sample-image disk.raw` or\n```sh\ngo run ./examples/e2e -sim=false \\\n  -check | tee x # -no\nbin/vhdcrypt encrypt -in a -out - -key-file k\n```\nsee `examples/order` (`-dry-run`)\n")
	if len(code) != 5 || lines[0] != 1 || lines[1] != 3 || lines[2] != 5 || lines[3] != 7 {
		t.Fatalf("docCode: %q %v", code, lines)
	}
	var got []string
	for _, c := range code {
		for _, u := range docFlagUses(c) {
			got = append(got, u.program+"/"+u.sub+":"+strings.Join(u.flags, ","))
		}
	}
	want := []string{"cloudsim/:sample-image", "e2e/:sim,check", "vhdcrypt/encrypt:in,out,key-file", "order/:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestDocFlags builds the example programs and checks every flag the
// repository's Markdown documents give them against their -help.
func TestDocFlags(t *testing.T) {
	var docs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vhd-reference" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			docs = append(docs, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	binDir := examplesBin(t)
	helps := map[string]map[string]bool{}
	checked, uses := 0, 0
	for _, doc := range docs {
		md, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		code, lines := docCode(string(md))
		for i, c := range code {
			for _, u := range docFlagUses(c) {
				bin := filepath.Join(binDir, u.program)
				if _, err := os.Stat(bin); err != nil {
					t.Errorf("%s:%d: %s names examples/%s, which is not a program of examples/", rel, lines[i], c, u.program)
					continue
				}
				uses++
				key := u.program + " " + u.sub
				if len(u.flags) > 0 && helps[key] == nil {
					var sub []string
					if u.sub != "" {
						sub = []string{u.sub}
					}
					helps[key] = definedFlags(t, bin, sub)
				}
				for _, f := range u.flags {
					checked++
					if !helps[key][f] {
						t.Errorf("%s:%d: %s: %s -help has no -%s", rel, lines[i], c, strings.TrimSpace(key), f)
					}
				}
			}
		}
	}
	t.Logf("%d Markdown documents: %d uses of example programs, %d flags checked against their -help", len(docs), uses, checked)
	if checked == 0 {
		t.Fatal("no flag found to check")
	}
}

// sampleLine turns a line of a README sample output into a pattern: "..."
// stands for any text, a run of spaces for any run of spaces.
func sampleLine(line string) *regexp.Regexp {
	var b strings.Builder
	for i, part := range strings.Split(line, "...") {
		if i > 0 {
			b.WriteString(".*")
		}
		for j, w := range strings.Fields(part) {
			if j > 0 || strings.HasPrefix(part, " ") && (i > 0 || j > 0) {
				b.WriteString(`\s+`)
			}
			b.WriteString(regexp.QuoteMeta(w))
		}
		if strings.HasSuffix(part, " ") && strings.TrimSpace(part) != "" {
			b.WriteString(`\s+`)
		}
	}
	return regexp.MustCompile("^" + b.String() + "$")
}

// matchSample reports the first line of sample (a README sample output)
// that output does not hold, in order; a line "..." skips any number of
// lines. It returns "" when every line is found.
func matchSample(sample, output []string) string {
	k := 0
	for _, line := range sample {
		if strings.TrimSpace(line) == "..." {
			continue
		}
		re := sampleLine(line)
		for k < len(output) && !re.MatchString(output[k]) {
			k++
		}
		if k == len(output) {
			return line
		}
		k++
	}
	return ""
}

func TestMatchSample(t *testing.T) {
	out := []string{"e2e: mode (x y)", "noise", "[2] preflight     done        67ms  10 checks passed", "tail"}
	if l := matchSample([]string{"e2e: mode (...)", "...", "[2] preflight     done   ...  10 checks passed"}, out); l != "" {
		t.Fatalf("did not match: %q", l)
	}
	if l := matchSample([]string{"[2] preflight done ... 9 checks passed"}, out); l == "" {
		t.Fatal("9 checks matched 10")
	}
	if l := matchSample([]string{"[2] preflight     done   ...  10 checks passed", "e2e: mode (...)"}, out); l == "" {
		t.Fatal("lines out of order matched")
	}
}

// TestReadmeSampleOutput runs examples/e2e as the README's first command
// does (no arguments: the simulator) and checks that the sample output
// the README shows (the block whose first line starts with "e2e: ") is
// what the program prints, line by line in order, "..." aside.
func TestReadmeSampleOutput(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var sample []string
	for _, block := range strings.Split(string(md), "\n```\n")[1:] {
		if strings.HasPrefix(block, "e2e: ") {
			sample = strings.Split(strings.TrimRight(block, "\n"), "\n")
			break
		}
	}
	if len(sample) < 5 {
		t.Fatalf("README.md has no sample output block starting with \"e2e: \" (found %d lines)", len(sample))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(examplesBin(t), "e2e"))
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IBMCLOUD_API_KEY=") { // the README's reader has none set
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("e2e: %v\n%s", err, out)
	}
	if l := matchSample(sample, strings.Split(string(out), "\n")); l != "" {
		t.Fatalf("README.md's sample output line %q is not in the output of a run (in order):\n%s", l, out)
	}
	t.Logf("README.md's %d sample output lines match a run of examples/e2e", len(sample))
}
