package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
)

var (
	exitText  = regexp.MustCompile(`(?i)\bexit( codes?| status)?:? *[0-9]`)
	goRunCmd  = regexp.MustCompile(`go run \./examples/([a-z0-9]+)`)
	installed = regexp.MustCompile(`go (install|build -o [^ ]+) ((?:\./examples/[a-z0-9.]+ ?)+)`)
)

// `go run` reports any non-zero exit of the program as "exit status N" and
// exits 1 itself, so README.md documents exit codes only next to the
// installed or built commands: no line pairs a `go run ./examples/...`
// command with an exit code, and a section (## or ###) that tells exit
// codes shows how its commands are built and runs none of them with
// `go run`.
func TestREADMEDocumentsExitCodesOfBuiltCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := regexp.MustCompile(`(?m)^###? `).Split(string(b), -1)
	for _, sec := range sections {
		title, _, _ := strings.Cut(sec, "\n")
		for _, line := range strings.Split(sec, "\n") {
			if goRunCmd.MatchString(line) && exitText.MatchString(line) {
				t.Errorf("section %q: an exit code next to go run, which turns it into 1: %s", title, line)
			}
		}
		if !exitText.MatchString(sec) {
			continue
		}
		built := map[string]bool{}
		for _, m := range installed.FindAllStringSubmatch(sec, -1) {
			for _, p := range strings.Fields(m[2]) {
				built[filepath.Base(p)] = true
			}
			if strings.Contains(m[2], "./examples/...") {
				built["..."] = true
			}
		}
		if len(built) == 0 {
			t.Errorf("section %q tells exit codes but does not show how its commands are installed or built", title)
		}
		for _, m := range goRunCmd.FindAllStringSubmatch(sec, -1) {
			if built[m[1]] || built["..."] {
				t.Errorf("section %q tells exit codes and still runs %s with go run", title, m[1])
			}
		}
	}
}
