package vhdcrypt

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScanSkipsHoles: the zero scan of a sparse raw file reads only the
// blocks that hold data, and the result is the same as reading everything.
func TestScanSkipsHoles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sparse.raw")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	const size = 64 << 20
	require.NoError(t, f.Truncate(size))
	data := bytes.Repeat([]byte("data"), 1024)
	for _, off := range []int64{10<<20 + 4096, 32<<20 - 2048, size - 4096} {
		_, err := f.WriteAt(data, off)
		require.NoError(t, err)
	}
	in, err := openInput(f, -1, allowTable)
	require.NoError(t, err)

	var scanned []int64
	o := buildOptions([]Option{WithWorkers(3), WithProgress(func(p Progress) { scanned = append(scanned, p.Done) })})
	nonZero, err := scanZeroBlocks(context.Background(), in, o)
	require.NoError(t, err)
	var got []int
	for i, nz := range nonZero {
		if nz {
			got = append(got, i)
		}
	}
	require.Equal(t, []int{5, 15, 16, 31}, got)

	if d := nextData(f, 0); d >= 0 {
		// The file system reports holes: only the data blocks were read
		// (one progress report each, plus the final one).
		require.Equal(t, int64(10<<20+4096), d)
		require.Len(t, scanned, len(got)+1, "reports: %v", scanned)
	}
	require.Equal(t, int64(size), scanned[len(scanned)-1])

	// Reading every block (no hole information) finds the same.
	in.ra = io.NewSectionReader(f, 0, size)
	again, err := scanZeroBlocks(context.Background(), in, buildOptions(nil))
	require.NoError(t, err)
	require.Equal(t, nonZero, again)
}
