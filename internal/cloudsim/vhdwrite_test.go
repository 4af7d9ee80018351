package cloudsim_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/vhd"
)

// TestDynamicVHDReadsBack reads DynamicVHD's output with the module's own
// VHD reader (an independent implementation): the same disk, zero blocks
// left out of the file, and a footer the reader accepts.
func TestDynamicVHDReadsBack(t *testing.T) {
	for _, size := range []int{512, 2 << 20, 5<<20 + 512} {
		raw := make([]byte, size)
		copy(raw, "first sector")
		copy(raw[size-512:], "last sector")
		out, err := cloudsim.DynamicVHD(raw)
		require.NoError(t, err)
		img, err := vhd.Open(bytes.NewReader(out), int64(len(out)))
		require.NoError(t, err, "size %d", size)
		require.Equal(t, vhd.Dynamic, img.Type())
		require.Equal(t, int64(size), img.Size())
		require.Equal(t, "slsm", img.Creator())
		got := make([]byte, size)
		_, err = img.ReadAt(got, 0)
		if err != io.EOF {
			require.NoError(t, err)
		}
		require.Equal(t, raw, got, "size %d", size)
	}

	// A block of zeros takes no room in the file.
	raw := make([]byte, 8<<20)
	raw[0], raw[6<<20] = 1, 1
	out, err := cloudsim.DynamicVHD(raw)
	require.NoError(t, err)
	require.Less(t, len(out), 5<<20, "two of four blocks are zero")

	_, err = cloudsim.DynamicVHD(make([]byte, 100))
	require.Error(t, err)
}
