package s3sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/e2eimage/e2eimage/internal/flock"
)

// TempDirPattern is the name pattern (os.MkdirTemp) of the data directory
// New makes when Config.Dir is empty.
const TempDirPattern = "cloudsim-s3-*"

// ownerFile is the file in a temporary data directory that its simulator
// holds locked while it runs. The kernel drops the lock when the process
// ends in any way, SIGKILL included, so a directory whose ownerFile can be
// locked belongs to no running simulator.
const ownerFile = "owner.lock"

// makeTempDir makes a data directory in os.TempDir, takes its owner lock,
// and removes the directories that simulators killed before their Close
// left behind. The returned release drops the lock (call it after removing
// the directory).
func makeTempDir() (dir string, release func(), err error) {
	dir, err = os.MkdirTemp("", TempDirPattern)
	if err != nil {
		return "", nil, fmt.Errorf("s3sim: creating a data directory: %w", err)
	}
	release, err = lockOwner(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("s3sim: locking the data directory: %w", err)
	}
	sweepAbandoned(filepath.Dir(dir), dir)
	return dir, release, nil
}

// lockOwner creates dir's owner file already locked: the lock is taken on a
// file of another name, which is then renamed, so that no other process
// ever sees an unlocked owner file of a live simulator.
func lockOwner(dir string) (func(), error) {
	tmp := filepath.Join(dir, ownerFile+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	ok, err := flock.Try(f)
	switch {
	case errors.Is(err, flock.ErrUnsupported):
		err = nil // this simulator's directory cannot be swept if it is killed
	case err == nil && !ok:
		err = errors.New("a new file is locked by someone else")
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ownerFile))
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

// sweepAbandoned removes the data directories in parent, other than
// keep, whose owner file nobody holds locked. A directory without an owner
// file (being made right now, or made by an older version) is left alone,
// and so is everything where locks are not supported.
func sweepAbandoned(parent, keep string) {
	dirs, err := filepath.Glob(filepath.Join(parent, TempDirPattern))
	if err != nil {
		return
	}
	for _, d := range dirs {
		if d == keep {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d, ownerFile), os.O_RDWR, 0)
		if err != nil {
			continue // no owner file, or not ours to open
		}
		if ok, err := flock.Try(f); err == nil && ok {
			// Whatever cannot be removed (another user's files) stays.
			_ = os.RemoveAll(d)
		}
		_ = f.Close()
	}
}
