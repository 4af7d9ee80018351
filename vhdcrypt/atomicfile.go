package vhdcrypt

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/e2eimage/e2eimage/internal/flock"
)

// outputFile is where a file-producing verb writes: a temporary file beside
// the destination (same directory, so the final rename is atomic), mode 0600,
// renamed over the destination only after everything was written and synced.
// Until then the destination is untouched, and on any error or cancellation
// the temporary file is removed, so a failed run never leaves a partial image
// behind (vhd-util copy does, and it then blocks a retry). A run killed
// before it could remove it leaves it; the next run for the same
// destination removes it (removeStalePartials).
//
// When the destination exists and is not a regular file (a device such as
// /dev/null, a named pipe), it is opened and written directly: there is
// nothing to rename over and nothing partial to clean up.
type outputFile struct {
	*os.File
	dst     string
	tmp     string // "" when writing dst directly
	settled bool
}

// errSameFile is returned when the destination is the source itself.
var errSameFile = errors.New("vhdcrypt: the output file is the input file")

// createOutput prepares the output for dst. src, when not "", is the input's
// path: writing onto it would destroy the input, so that is refused.
func createOutput(dst, src string) (*outputFile, error) {
	fi, err := os.Stat(dst)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		if fi.IsDir() {
			return nil, fmt.Errorf("vhdcrypt: output %s is a directory", dst)
		}
		f, err := os.OpenFile(dst, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("vhdcrypt: opening output: %w", err)
		}
		return &outputFile{File: f, dst: dst}, nil
	case err == nil && src != "":
		if si, serr := os.Stat(src); serr == nil && os.SameFile(fi, si) {
			return nil, fmt.Errorf("%w (%s)", errSameFile, dst)
		}
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("vhdcrypt: checking output: %w", err)
	}
	removeStalePartials(dst)
	f, err := os.CreateTemp(filepath.Dir(dst), partialPattern(dst))
	if err != nil {
		// The temporary file's name means nothing to the caller: name the
		// output and its directory.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("vhdcrypt: creating output %s in directory %s: %w", dst, filepath.Dir(dst), err)
	}
	_, _ = flock.Try(f) // held until closed: not stale to another run
	o := &outputFile{File: f, dst: dst, tmp: f.Name()}
	if err := f.Chmod(0o600); err != nil {
		o.abort()
		return nil, fmt.Errorf("vhdcrypt: creating output: %w", err)
	}
	return o, nil
}

// commit syncs the data and moves it into place. After commit, abort does
// nothing.
func (o *outputFile) commit() error {
	if o.settled {
		return errors.New("vhdcrypt: output already closed")
	}
	if o.tmp == "" {
		o.settled = true
		if err := o.Close(); err != nil {
			return fmt.Errorf("vhdcrypt: closing output: %w", err)
		}
		return nil
	}
	if err := o.Sync(); err != nil {
		o.abort()
		return fmt.Errorf("vhdcrypt: syncing output: %w", err)
	}
	if err := o.Close(); err != nil {
		o.abort()
		return fmt.Errorf("vhdcrypt: closing output: %w", err)
	}
	if err := os.Rename(o.tmp, o.dst); err != nil {
		o.abort()
		return fmt.Errorf("vhdcrypt: moving output into place: %w", err)
	}
	o.settled = true
	syncDir(filepath.Dir(o.dst))
	return nil
}

// abort closes and removes the temporary file. It is safe to call after
// commit (it then does nothing) and more than once.
func (o *outputFile) abort() {
	if o.settled {
		return
	}
	o.settled = true
	_ = o.Close()
	if o.tmp != "" {
		_ = os.Remove(o.tmp)
	}
}

// syncDir makes a rename or a new file in dir durable. Failures are ignored:
// some file systems cannot sync a directory, and the data itself is synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// writeOutput runs write into an atomic output file at dstPath.
func writeOutput(dstPath, srcPath string, write func(io.Writer) (int64, error)) error {
	out, err := createOutput(dstPath, srcPath)
	if err != nil {
		return err
	}
	var w io.Writer = out.File
	if out.tmp != "" {
		// A new regular file: zero ranges can be left as holes.
		w = &holeWriter{f: out.File}
	}
	if _, err := write(w); err != nil {
		out.abort()
		return err
	}
	return out.commit()
}

// WriteFile writes what src produces (an Encryptor, a Decryptor) to the file
// at path, all or nothing: into a temporary file beside path (mode 0600),
// synced and renamed over path only when src has finished without error. On
// failure or cancellation path is untouched and nothing is left behind. A
// path that exists and is not a regular file (a device such as /dev/null, a
// named pipe) is written directly.
func WriteFile(path string, src io.WriterTo) error {
	return writeOutput(path, "", src.WriteTo)
}

// skipper is an output that can advance past n zero bytes without writing
// them (a hole in a sparse file). finish fixes the size when the output ends
// with a hole.
type skipper interface {
	skip(n int64) error
	finish() error
}

// holeWriter writes a new file sequentially, starts the writeback of what
// it wrote as it goes, and leaves skipped ranges as holes, so a decrypted
// raw image takes no disk space for its unallocated blocks.
type holeWriter struct {
	f       *os.File
	off     int64
	flushed int64 // writeback has been started up to here
}

// writebackChunk is how much written data accumulates before its writeback
// to disk is started (see startWriteback).
const writebackChunk = 32 << 20

func (h *holeWriter) Write(p []byte) (int, error) {
	n, err := h.f.Write(p)
	h.off += int64(n)
	if h.off-h.flushed >= writebackChunk {
		startWriteback(h.f, h.flushed, h.off-h.flushed)
		h.flushed = h.off
	}
	return n, err
}

func (h *holeWriter) skip(n int64) error {
	if _, err := h.f.Seek(n, io.SeekCurrent); err != nil {
		return err
	}
	h.off += n
	return nil
}

func (h *holeWriter) finish() error { return h.f.Truncate(h.off) }
