package e2e

import (
	"errors"
	"io"

	"github.com/e2eimage/e2eimage/vhd"
)

// blockStream is what the image verbs use of vhd.StreamReader: a dynamic
// VHD read front to back.
type blockStream interface {
	Size() int64
	Footer() vhd.Footer
	KeyHash() (vhd.KeyHash, bool)
	// Allocated reports whether the BAT allocates block i.
	Allocated(i int) bool
	// Next reads the next allocated block's stored bytes into dst; io.EOF
	// after the last.
	Next(dst []byte) (vhd.BlockInfo, error)
}

func newBlockStream(r io.Reader) (blockStream, error) {
	return nil, errors.New("TODO: vhd.NewStreamReader not landed yet")
}
