package vhd

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// onlyReader hides every method but Read, as a pipe would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// requireStreamMatches reads file with a StreamReader and requires the same
// blocks, bitmaps and bytes as Open gives.
func requireStreamMatches(t *testing.T, file []byte) {
	t.Helper()
	img, err := Open(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	sr, err := NewStreamReader(onlyReader{bytes.NewReader(file)})
	require.NoError(t, err)
	require.Equal(t, img.Size(), sr.Size())
	require.Equal(t, img.NumBlocks(), sr.NumBlocks())
	kh1, ok1 := img.KeyHash()
	kh2, ok2 := sr.KeyHash()
	require.Equal(t, ok1, ok2)
	require.Equal(t, kh1, kh2)
	want := make([]byte, BlockSize)
	got := make([]byte, BlockSize)
	for b, err := range img.Blocks() {
		require.NoError(t, err)
		require.True(t, sr.Allocated(b.Index))
		require.NoError(t, img.ReadBlock(b.Index, want))
		info, err := sr.Next(got)
		require.NoError(t, err)
		require.Equal(t, b, info)
		require.True(t, bytes.Equal(want, got), "block %d bytes differ", b.Index)
	}
	_, err = sr.Next(got)
	require.ErrorIs(t, err, io.EOF)
	_, err = sr.Next(got)
	require.ErrorIs(t, err, io.EOF, "EOF is sticky")
}

func TestStreamReaderReference(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"src-qemu.vhd", "src-tap-sparse.vhd", "enc-qemu-k32.vhd", "enc-qemu-k64.vhd", "enc-tap-sparse-k64.vhd", "enc-copybug-k64.vhd"} {
		t.Run(name, func(t *testing.T) {
			_, b := openRef(t, name)
			requireStreamMatches(t, b)
		})
	}
}

func TestStreamReaderOutOfOrder(t *testing.T) {
	t.Parallel()
	_, ref := openRef(t, "enc-qemu-k64.vhd")
	b := bytes.Clone(ref)
	// Swap the BAT entries of blocks 0 and 1 (both full): still a valid
	// file, but block 1 now comes first.
	e0 := bytes.Clone(b[0x600:0x604])
	copy(b[0x600:0x604], b[0x604:0x608])
	copy(b[0x604:0x608], e0)
	_, err := Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	_, err = NewStreamReader(onlyReader{bytes.NewReader(b)})
	require.ErrorIs(t, err, ErrNotStreamable)
	require.ErrorContains(t, err, "block 1 is stored at 0xe00, before block 0 at 0x201e00")
	require.ErrorContains(t, err, "use Open")
}

func TestStreamReaderNotVHD(t *testing.T) {
	t.Parallel()
	_, err := NewStreamReader(bytes.NewReader(nil))
	require.ErrorIs(t, err, ErrNotVHD)
	_, err = NewStreamReader(bytes.NewReader(make([]byte, 4096)))
	require.ErrorIs(t, err, ErrNotVHD)

	// A truncated stream: the data of the last block is cut short.
	_, ref := openRef(t, "src-tap-sparse.vhd")
	sr, err := NewStreamReader(bytes.NewReader(ref[:len(ref)-BlockSize]))
	require.NoError(t, err)
	buf := make([]byte, BlockSize)
	var last error
	for range 4 {
		if _, last = sr.Next(buf); last != nil {
			break
		}
	}
	require.ErrorIs(t, last, ErrTruncated)
	var fe *FormatError
	require.True(t, errors.As(last, &fe))
	require.Equal(t, "block 3 data", fe.Field)
}
