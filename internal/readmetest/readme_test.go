package readmetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/vhd"
)

// The conventions, for README.md's ```sh blocks:
//
//   - Every line that is not blank, a comment or an export is a command.
//     Commands run one after another, as written, by bash (with pipefail) in
//     a temporary directory that holds the files they name (image.raw,
//     image.vhd, disk.raw), after the block's export lines.
//   - "go run ./examples/X" runs examples/X built once from this
//     repository (a bash function named go stands in for the go command);
//     "go install ./examples/X" puts that build on the PATH of the
//     commands that follow.
//   - "go test ..." is only checked: it is this test suite, which cannot
//     run itself; "go test -n" (print the commands, run nothing) must
//     accept its flags and packages.
//   - A block whose first line is a comment starting with "# real cloud"
//     needs an IBM Cloud account: its commands are not run; each must be a
//     "go run ./examples/X ..." whose every flag X defines (X -help lists
//     them).
//
// Anything else fails the test, and so does a block with no command.

const root = "../.."

// realCloud starts the first line of a block that needs IBM Cloud.
const realCloud = "# real cloud"

type command struct {
	line int    // line number in README.md
	text string // as written, continuation lines included
}

type block struct {
	line      int // line number of the opening fence
	realCloud bool
	exports   []command
	commands  []command
}

// shBlocks parses the ```sh blocks of a Markdown text.
func shBlocks(md string) ([]block, error) {
	var blocks []block
	var cur *block
	var pending []string
	pendingLine := 0
	for i, line := range strings.Split(md, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if trimmed == "```sh" || trimmed == "```bash" || trimmed == "```shell" {
				cur = &block{line: n}
			}
			continue
		}
		if trimmed == "```" {
			if len(pending) > 0 {
				return nil, fmt.Errorf("README.md:%d: a command ends with a backslash at the end of its block", pendingLine)
			}
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		if len(pending) == 0 {
			pendingLine = n
		}
		pending = append(pending, line)
		if strings.HasSuffix(line, `\`) {
			continue
		}
		text := strings.Join(pending, "\n")
		first := strings.TrimSpace(pending[0])
		pending = nil
		switch {
		case first == "":
		case strings.HasPrefix(first, "#"):
			if len(cur.commands) == 0 && len(cur.exports) == 0 && strings.HasPrefix(first, realCloud) {
				cur.realCloud = true
			}
		case strings.HasPrefix(first, "export "):
			cur.exports = append(cur.exports, command{pendingLine, text})
		default:
			cur.commands = append(cur.commands, command{pendingLine, text})
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md:%d: block not closed", cur.line)
	}
	return blocks, nil
}

// words splits a command into words as the shell would for the simple
// commands of the README: backslash-newlines dropped, a comment removed,
// white space separating.
func words(text string) []string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	if i := strings.Index(text, " #"); i >= 0 {
		text = text[:i]
	}
	return strings.Fields(text)
}

var exampleCommand = regexp.MustCompile(`(?:\bgo (?:run|install) \./examples/|(?m)^bin/)([a-z0-9]+)\b`)

// shim is put before every command: the go function runs the prebuilt
// example programs and checks go test commands without running them.
const shim = `set -o pipefail
go() {
	case "$1 $2" in
	"run ./examples/"*)
		local p=${2#./examples/}
		shift 2
		"$README_BIN/$p" "$@"
		return;;
	"install ./examples/"*)
		ln -sf "$README_BIN/${2#./examples/}" "$README_GOBIN/"
		return;;
	"test "*)
		shift
		(cd "$README_ROOT" && command go test -n "$@" >/dev/null)
		return;;
	esac
	echo "README test: the go command can only run, install or test ./examples/...: go $*" >&2
	return 97
}
`

// sampleDisk is the sample Linux disk (internal/sampleimage, 8 MiB: an MBR
// and an ext4 root with cloud-init recorded), which the simulated import
// checks after decryption.
func sampleDisk(t *testing.T) []byte {
	t.Helper()
	d, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeInputs creates the files the README's commands read.
func writeInputs(t *testing.T, dir string) {
	t.Helper()
	disk := sampleDisk(t)
	for _, name := range []string{"image.raw", "disk.raw"} {
		if err := os.WriteFile(filepath.Join(dir, name), disk, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var fixed bytes.Buffer
	if err := vhd.WriteFixed(&fixed, bytes.NewReader(disk), int64(len(disk))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "image.vhd"), fixed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// touchSources reads every Go file of the module, so that go test's cache,
// which keys on the files a test opens, runs this test again when a
// program the README runs changes.
func touchSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// definedFlags returns the flags that program (with an optional
// subcommand) lists in its -help output.
func definedFlags(t *testing.T, bin string, sub []string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, append(sub, "-help")...).CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][A-Za-z0-9_.-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("%s %v -help lists no flags:\n%s", filepath.Base(bin), sub, out)
	}
	return flags
}

// dropOutput removes an "-o DIR" pair from go build arguments.
func dropOutput(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-o" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// checkFlags checks a real-cloud command: go run ./examples/X [sub]
// flags... (or bin/X, as built by go build -o bin/ ./examples/...), whose
// every flag X must define; go build and go test lines are checked with -n.
func checkFlags(t *testing.T, binDir string, c command) bool {
	t.Helper()
	w := words(c.text)
	switch {
	case len(w) >= 2 && w[0] == "go" && (w[1] == "build" || w[1] == "test"):
		// Checked by the go command itself without running anything:
		// -n prints what it would do.
		args := append([]string{w[1], "-n"}, w[2:]...)
		if w[1] == "build" {
			args = append([]string{"build", "-n", "-o", t.TempDir() + "/"}, dropOutput(w[2:])...)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README.md:%d: go %v: %v\n%s", c.line, args, err, out)
			return false
		}
		return true
	case len(w) >= 2 && strings.HasPrefix(w[0], "bin/"):
		// A program built by "go build -o bin/ ./examples/...".
		w = append([]string{"go", "run", "./examples/" + strings.TrimPrefix(w[0], "bin/")}, w[1:]...)
	}
	if len(w) < 3 || w[0] != "go" || w[1] != "run" || !strings.HasPrefix(w[2], "./examples/") {
		t.Errorf("README.md:%d: a real-cloud command must be go run ./examples/X, bin/X, go build or go test: %s", c.line, c.text)
		return false
	}
	bin := filepath.Join(binDir, strings.TrimPrefix(w[2], "./examples/"))
	args := w[3:]
	var sub []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub = args[:1]
	}
	defined := definedFlags(t, bin, sub)
	ok := true
	used := 0
	for _, a := range args {
		if a == "|" || a == ">" || a == "<" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		used++
		if !defined[name] {
			t.Errorf("README.md:%d: %s does not define -%s", c.line, w[2], name)
			ok = false
		}
	}
	if used == 0 {
		t.Errorf("README.md:%d: no flag to check in %s", c.line, c.text)
		return false
	}
	return ok
}

// TestReadmeCommands runs (or, for the real cloud, checks) every command of
// README.md's sh blocks and reports how many of each.
func TestReadmeCommands(t *testing.T) {
	bash := testenv.Tool(t, "bash", "apt-get install bash")
	touchSources(t)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := shBlocks(string(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no sh block")
	}

	// Build each example program the README names, once.
	var programs []string
	for _, m := range exampleCommand.FindAllStringSubmatch(string(md), -1) {
		if !slices.Contains(programs, "./examples/"+m[1]) {
			programs = append(programs, "./examples/"+m[1])
		}
	}
	tmp := t.TempDir()
	binDir, gobin, work := filepath.Join(tmp, "bin"), filepath.Join(tmp, "gobin"), filepath.Join(tmp, "work")
	for _, d := range []string{binDir, gobin, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if len(programs) > 0 {
		build := exec.Command("go", append([]string{"build", "-o", binDir + string(os.PathSeparator)}, programs...)...)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %v: %v\n%s", programs, err, out)
		}
	}
	writeInputs(t, work)
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}

	ran, checked, dry, exports := 0, 0, 0, 0
	for _, b := range blocks {
		before := ran + checked
		if b.realCloud {
			exports += len(b.exports)
			for _, c := range b.commands {
				if checkFlags(t, binDir, c) {
					checked++
				}
			}
		} else {
			var env strings.Builder
			for _, e := range b.exports {
				env.WriteString(e.text + "\n")
				exports++
			}
			for _, c := range b.commands {
				isTest := strings.HasPrefix(strings.TrimSpace(c.text), "go test ")
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				cmd := exec.CommandContext(ctx, bash, "-c", shim+env.String()+c.text)
				cmd.Dir = work
				cmd.Env = append(os.Environ(),
					"README_BIN="+binDir, "README_GOBIN="+gobin, "README_ROOT="+absRoot,
					"PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"))
				start := time.Now()
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Errorf("README.md:%d: %s\n%v after %v; output:\n%s", c.line, c.text, err, time.Since(start).Round(time.Millisecond), out)
					continue
				}
				if isTest {
					dry++
					checked++
				} else {
					ran++
				}
			}
		}
		if ran+checked == before {
			t.Errorf("README.md:%d: a sh block of which no command ran or was checked", b.line)
		}
	}
	total := 0
	for _, b := range blocks {
		total += len(b.commands)
	}
	summary := fmt.Sprintf("README.md: %d sh blocks, %d commands: %d ran, %d flag-checked only (%d of them go test -n), %d export lines",
		len(blocks), total, ran, checked, dry, exports)
	t.Log(summary)
	if ran+checked != total {
		t.Errorf("%s: %d commands neither ran nor passed their check", summary, total-ran-checked)
	}
	if ran == 0 {
		t.Errorf("%s: no command ran", summary)
	}
}

func TestShBlocksParsing(t *testing.T) {
	md := "x\n```sh\n# a comment\ngo run ./examples/a -x 1 \\\n    -y 2   # note\n\nexport A=1\nls | wc -l\n```\n" +
		"```go\nnot sh\n```\n```sh\n# real cloud: an account\nexport K=...\ngo run ./examples/b -z\n```\n"
	blocks, err := shBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("%d blocks", len(blocks))
	}
	a, b := blocks[0], blocks[1]
	if a.realCloud || !b.realCloud {
		t.Fatalf("real cloud: %v %v", a.realCloud, b.realCloud)
	}
	if len(a.commands) != 2 || a.commands[0].line != 4 || len(a.exports) != 1 {
		t.Fatalf("block 1: %+v", a)
	}
	if got := words(a.commands[0].text); fmt.Sprint(got) != "[go run ./examples/a -x 1 -y 2]" {
		t.Fatalf("words: %q", got)
	}
	if len(b.commands) != 1 || len(b.exports) != 1 {
		t.Fatalf("block 2: %+v", b)
	}
	// A comment that is not the first line does not make a block real-cloud.
	blocks, err = shBlocks("```sh\nls\n# real cloud\n```\n")
	if err != nil || blocks[0].realCloud {
		t.Fatalf("%v %+v", err, blocks)
	}
	for _, bad := range []string{"```sh\nls \\\n```\n", "```sh\nls\n"} {
		if _, err := shBlocks(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
