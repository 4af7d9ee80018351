package testenv

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// goVersionParts splits a go line's version ("1.26.0", "1.22", "1.21rc2")
// into numbers; a pre-release counts as the release before its number.
func goVersionParts(v string) [3]int {
	var p [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		num, pre, _ := strings.Cut(f, "rc")
		n, _ := strconv.Atoi(strings.TrimRight(num, "abcdefghijklmnopqrstuvwxyz"))
		if pre != "" {
			n--
		}
		p[i] = n
	}
	return p
}

// compareGo compares two go line versions like strings.Compare.
func compareGo(a, b string) int {
	pa, pb := goVersionParts(a), goVersionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func TestCompareGo(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.26.0", "1.26.4", -1}, {"1.26.4", "1.25", 1}, {"1.22", "1.22.0", 0}, {"1.26.0", "1.26.0", 0}, {"1.9", "1.10", -1}} {
		if got := compareGo(c.a, c.b); got != c.want {
			t.Errorf("compareGo(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestGoDirectiveIsTheLowest fails when go.mod's go line asks for a newer
// Go than the module's dependencies do: every module that imports this one
// must raise its own go line to ours, so ours is the highest go line of
// the dependencies (what "go mod tidy" would otherwise raise it to), and
// the code builds with that language version (go build and go vet in CI).
func TestGoDirectiveIsTheLowest(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-json", "all")
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			t.Fatalf("go list -m all: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -m all: %v", err)
	}
	type mod struct {
		Path      string
		Main      bool
		GoVersion string
	}
	var main mod
	highest, by, n := "", "", 0
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var m mod
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if m.Main {
			main = m
			continue
		}
		n++
		if m.GoVersion != "" && (highest == "" || compareGo(m.GoVersion, highest) > 0) {
			highest, by = m.GoVersion, m.Path
		}
	}
	if main.GoVersion == "" || highest == "" {
		t.Fatalf("go list -m all: main module go %q, highest dependency go %q", main.GoVersion, highest)
	}
	if c := compareGo(main.GoVersion, highest); c != 0 {
		t.Errorf("go.mod says go %s but the dependencies need go %s (%s): set the go line to %s", main.GoVersion, highest, by, highest)
	}
	t.Logf("go.mod: go %s; the highest of %d dependencies' go lines: %s (%s)", main.GoVersion, n, highest, by)
}
