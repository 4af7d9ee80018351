package sampleimage

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

var errEOF = io.EOF

// The rest of backend.Storage, so that go-diskfs can write into a sparse
// image: a positioned Read and Seek, a Stat giving the size, and the
// image itself as its writable file.
var _ backend.Storage = (*sparse)(nil)

func (s *sparse) Stat() (iofs.FileInfo, error) { return sparseInfo{s.size}, nil }
func (s *sparse) Close() error                 { return nil }
func (s *sparse) Sys() (*os.File, error)       { return nil, backend.ErrNotSuitable }
func (s *sparse) Path() string                 { return "" }
func (s *sparse) Writable() (backend.WritableFile, error) {
	return s, nil
}

func (s *sparse) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *sparse) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, fmt.Errorf("sampleimage: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("sampleimage: seek to %d", off)
	}
	s.pos = off
	return off, nil
}

type sparseInfo struct{ size int64 }

func (i sparseInfo) Name() string        { return "sample.raw" }
func (i sparseInfo) Size() int64         { return i.size }
func (i sparseInfo) Mode() iofs.FileMode { return 0o644 }
func (i sparseInfo) ModTime() time.Time  { return time.Time{} }
func (i sparseInfo) IsDir() bool         { return false }
func (i sparseInfo) Sys() any            { return nil }
