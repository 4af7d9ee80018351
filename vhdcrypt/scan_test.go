package vhdcrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/vhd"
)

// TestZeroScanReadsLess: the zero scan of a raw disk reads a block only up
// to its first non-zero 64 KiB: whole zero blocks, the first 64 KiB of
// blocks with data there, and more of a block whose data starts later,
// which must still be found non-zero (scanBytes counts what it read).
func TestZeroScanReadsLess(t *testing.T) {
	const blocks = 7
	size := blocks*vhd.BlockSize - 3*512 // the last block ends early
	b := make([]byte, size)
	_, _ = rand.Read(b)
	for _, i := range []int{1, 4} {
		clear(b[i*vhd.BlockSize : (i+1)*vhd.BlockSize])
	}
	clear(b[2*vhd.BlockSize : 2*vhd.BlockSize+scanFirst+4096]) // block 2: data only after the first 64 KiB
	in, err := openRandomAccess(bytes.NewReader(b), int64(size), allowTable)
	require.NoError(t, err)
	before := scanBytes.Load()
	nonZero, err := scanZeroBlocks(context.Background(), in, buildOptions([]Option{WithWorkers(3)}))
	require.NoError(t, err)
	read := scanBytes.Load() - before
	require.Equal(t, []bool{true, false, true, true, false, true, true}, nonZero)
	want := int64(2*vhd.BlockSize + // blocks 1 and 4, zero: read whole
		vhd.BlockSize + // block 2: its first 64 KiB zero, so the rest read too
		4*scanFirst) // blocks 0, 3, 5, 6: their first 64 KiB only
	require.Equal(t, want, read, "bytes the scan read")
	t.Logf("the scan read %d of the disk's %d bytes", read, size)
}
