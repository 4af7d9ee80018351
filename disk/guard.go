package disk

import (
	"fmt"
	"io"

	"github.com/lima-vm/go-qcow2reader/image"
)

// guarded wraps the qcow2 library's reads so that a panic on a crafted
// image becomes a *MalformedError instead of ending the program. The
// header checks of checkQCOW2 bound what the library allocates; this is
// the last line for what they cannot foresee (tables pointing anywhere).
type guarded struct{ img image.Image }

func (g guarded) ReadAt(p []byte, off int64) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, &MalformedError{Format: QCOW2, Offset: -1, Field: "cluster data", Reason: fmt.Sprintf("reading at %d failed: %v", off, r)}
		}
	}()
	return g.img.ReadAt(p, off)
}

func (g guarded) Extent(start, length int64) (e image.Extent, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &MalformedError{Format: QCOW2, Offset: -1, Field: "cluster map", Reason: fmt.Sprintf("mapping %d failed: %v", start, r)}
		}
	}()
	return g.img.Extent(start, length)
}

var _ io.ReaderAt = guarded{}
