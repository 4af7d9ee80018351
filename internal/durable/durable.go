// Package durable writes small files (state files, key files, secret files)
// so that a crash or a power cut at any moment leaves either the old
// content or the whole new content at the path, never a torn or empty file,
// and so that the new content survives a power cut once the call returns.
//
// Both writers follow the same protocol: write a temporary file in the
// destination's directory (mode 0600), fsync it, move it into place with one
// directory operation (rename, or link for Create, which must not replace
// an existing file), then fsync the directory. The file's data is durable
// before its name points at it, and the name is durable before the call
// returns.
//
// Every file system operation goes through an FS, the operating system's by
// default; tests install a model that loses whatever was not synced (see
// test/powercut).
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// File is the part of *os.File the writers use.
type File interface {
	Name() string
	Write(p []byte) (int, error)
	Chmod(mode os.FileMode) error
	Sync() error
	Close() error
}

// FS is the set of file system operations the writers use. Its methods
// behave as the os functions of the same names; SyncDir fsyncs a directory.
type FS interface {
	CreateTemp(dir, pattern string) (File, error)
	// CreateExcl creates path with mode 0600, failing with an error that
	// wraps fs.ErrExist when it exists (O_CREATE|O_EXCL).
	CreateExcl(path string) (File, error)
	Rename(oldpath, newpath string) error
	Link(oldpath, newpath string) error
	Remove(name string) error
	SyncDir(dir string) error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }

func (osFS) CreateExcl(path string) (File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
func (osFS) Link(oldpath, newpath string) error { return os.Link(oldpath, newpath) }
func (osFS) Remove(name string) error           { return os.Remove(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// current is the FS the writers use.
var current FS = osFS{}

// Use makes the writers use fsys until the returned function is called,
// which restores the previous FS. It is for tests, and must not be called
// while a writer runs.
func Use(fsys FS) (restore func()) {
	prev := current
	current = fsys
	return func() { current = prev }
}

// Replace writes data to path, replacing any file there, atomically and
// durably (see the package documentation). The file has mode 0600.
// tempPattern is the os.CreateTemp pattern of the temporary file, so that
// its owner can recognise and remove the ones a crash left behind; ""
// means ".<name>.tmp*".
func Replace(path string, data []byte, tempPattern string) error {
	if tempPattern == "" {
		tempPattern = "." + filepath.Base(path) + ".tmp*"
	}
	tmp, err := writeTemp(path, data, tempPattern)
	if err != nil {
		return err
	}
	if err := current.Rename(tmp, path); err != nil {
		_ = current.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Create writes data to a new file at path, atomically and durably (see the
// package documentation), and never replaces an existing file: if path
// exists its error wraps fs.ErrExist. The file has mode 0600. A crash leaves
// either no file at path or the whole of data; at worst a temporary file
// ".<name>.new*" beside it, which the next Create of the same path removes.
//
// On a file system without hard links (FAT, some network file systems)
// Create writes path in place instead: still never replacing a file and
// durable once it returns, but a crash may then leave a partial file.
func Create(path string, data []byte) error {
	// Checked first so that data (a key) is not written anywhere when the
	// answer is known; the link below still settles a race.
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	pattern := "." + filepath.Base(path) + ".new*"
	RemoveTemps(path, pattern)
	tmp, err := writeTemp(path, data, pattern)
	if err != nil {
		return err
	}
	// link fails if path exists, which rename would not; the temporary
	// name goes once the new one points at the data.
	lerr := current.Link(tmp, path)
	_ = current.Remove(tmp)
	switch {
	case lerr == nil:
		return syncDir(filepath.Dir(path))
	case errors.Is(lerr, fs.ErrExist):
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	case errors.Is(lerr, syscall.EPERM) || errors.Is(lerr, errors.ErrUnsupported):
		return createInPlace(path, data)
	}
	return lerr
}

// createInPlace is Create for file systems without hard links.
func createInPlace(path string, data []byte) (err error) {
	f, err := current.CreateExcl(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = current.Remove(path)
		}
	}()
	if err := fill(f, data); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file beside path, synced and
// closed, and returns its name. On error it removes the file.
func writeTemp(path string, data []byte, pattern string) (name string, err error) {
	f, err := current.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return "", err
	}
	name = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = current.Remove(name)
		}
	}()
	if err := fill(f, data); err != nil {
		return "", err
	}
	return name, nil
}

// fill writes data to a new file, mode 0600, synced and closed.
func fill(f File, data []byte) error {
	// The file was created 0600; the umask cannot widen that, but say so.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// syncDir makes a directory operation in dir durable. A file system that
// cannot sync a directory (EINVAL, ENOTSUP) is not an error: there is
// nothing more to do there. Any other failure is: the new name may not
// survive a power cut, and the caller must not be told it will.
func syncDir(dir string) error {
	err := current.SyncDir(dir)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// RemoveTemps removes the temporary files that an interrupted writer left
// beside path: regular files whose names match pattern (an os.CreateTemp
// pattern with one "*") with only decimal digits in place of the "*", which
// is what os.CreateTemp puts there.
func RemoveTemps(path, pattern string) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() && IsTemp(e.Name(), pattern) {
			_ = current.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// IsTemp reports whether name (a base name) is a temporary file os.CreateTemp
// made with pattern.
func IsTemp(name, pattern string) bool {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, suffix)
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

// Current returns the FS the writers use now.
func Current() FS { return current }
