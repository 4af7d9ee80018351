package vhdcrypt

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/e2eimage/e2eimage/internal/flock"
)

// partialPattern is the os.CreateTemp pattern of the partial output of dst:
// ".<name>.partial-" then the digits os.CreateTemp makes.
func partialPattern(dst string) string { return "." + filepath.Base(dst) + ".partial-*" }

// isPartialOf reports whether name (a base name) is a partial output of
// dst's naming: exactly the pattern, with decimal digits only where the
// pattern has its star.
func isPartialOf(name, dst string) bool {
	prefix, _, _ := strings.Cut(partialPattern(dst), "*")
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// removeStalePartials removes the partial outputs that a killed run
// (SIGKILL, power loss) left for dst: regular files of dst's partial
// naming in its directory that no live run holds. A run holds its own
// partial output with an exclusive flock(2) while it writes it
// (holdPartial), so one that another run is writing is left alone; the
// kernel drops a dead run's lock. Other files are never touched, and
// where the system has no flock(2) nothing is removed. Best effort: a file
// that cannot be removed is only clutter.
func removeStalePartials(dst string) {
	dir := filepath.Dir(dst)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isPartialOf(e.Name(), dst) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		if held, err := flock.Try(f); err == nil && held {
			_ = os.Remove(path)
		}
		f.Close()
	}
}
