package e2e

import (
	"errors"
	"fmt"
	"os"

	"github.com/e2eimage/e2eimage/internal/flock"
)

// ErrStateLocked is matched (errors.Is) by the error of a run whose state
// file another run holds: two runs of one plan at the same time would
// upload, import or order twice, so the second stops before any request.
// The holder's lock goes with its process (flock(2)): a run that was
// killed holds nothing.
var ErrStateLocked = errors.New("e2e: another run holds the state file")

// stateStore is where a run keeps its state: a local file today; an
// object in the bucket is the planned second implementation, so that a
// batch job resumed on another machine continues. lock is taken before
// load and held until the run ends.
type stateStore interface {
	// lock takes the run's exclusive hold, or fails at once with an error
	// matching ErrStateLocked; unlock releases it.
	lock() (unlock func(), err error)
	// load returns the stored state; an error matching fs.ErrNotExist
	// when there is none.
	load() (*State, error)
	// save stores st whole, replacing what was stored.
	save(st *State) error
}

// fileStore keeps the state in a local file, written atomically (State.Save),
// and locks it with flock(2) on a lock file beside it (<path>.lock), never
// on the state file itself, which Save replaces by rename.
type fileStore struct{ path string }

func (f fileStore) load() (*State, error) {
	removeStaleStateTemps(f.path)
	return LoadState(f.path)
}

func (f fileStore) save(st *State) error { return st.Save(f.path) }

func (f fileStore) lock() (func(), error) {
	lockPath := f.path + ".lock"
	// The holder removes the lock file when it ends, so a file opened
	// just before that removal may be locked by a second run after it:
	// a lock counts only while the path still names the locked file.
	for range 10 {
		fd, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("e2e: opening the state's lock file: %w", err)
		}
		held, err := flock.Try(fd)
		if errors.Is(err, flock.ErrUnsupported) {
			// No flock(2) here (Windows, Plan 9, wasm): the run goes
			// ahead unlocked, as the package doc says.
			held, err = true, nil
		}
		if err != nil {
			fd.Close()
			return nil, fmt.Errorf("e2e: locking the state file %s: %w", f.path, err)
		}
		if !held {
			fd.Close()
			return nil, fmt.Errorf("%w: %s is in use by another run (lock %s); wait for it to end, or use another state file", ErrStateLocked, f.path, lockPath)
		}
		if sameFile(fd, lockPath) {
			return func() {
				_ = os.Remove(lockPath) // while still holding it: see above
				fd.Close()
			}, nil
		}
		fd.Close() // removed by its last holder: lock the new one
	}
	return nil, fmt.Errorf("%w: %s: its lock file keeps changing", ErrStateLocked, f.path)
}

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}
