package readmetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

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
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "./examples/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the examples: %v\n%s", err, out)
	}
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
