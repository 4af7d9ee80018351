package vhd

import (
	"bytes"
	"context"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/stretchr/testify/require"
)

// openRef opens a reference file from memory.
func openRef(t *testing.T, name string) (*Image, []byte) {
	t.Helper()
	b := testenv.RefFile(t, name)
	img, err := Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err, name)
	return img, b
}

// allocation returns the indexes of the allocated blocks and their bitmaps.
func allocation(t *testing.T, img *Image) ([]int, []Bitmap) {
	t.Helper()
	var idx []int
	var bms []Bitmap
	for b, err := range img.Blocks() {
		require.NoError(t, err)
		idx = append(idx, b.Index)
		bms = append(bms, b.Bitmap)
	}
	return idx, bms
}

// bitmapOf builds a bitmap with the given sector ranges [from, to) present.
func bitmapOf(ranges ...[2]int) Bitmap {
	b := make(Bitmap, BitmapSize)
	for _, r := range ranges {
		for s := r[0]; s < r[1]; s++ {
			b.Set(s)
		}
	}
	return b
}

// Sparse bitmaps of src-tap-sparse.vhd as the reference README describes
// them: block 1 data in its first half; block 3 two sectors at byte 4096
// (sectors 8 and 9) and its last sector.
var (
	tapBlock1 = bitmapOf([2]int{0, SectorsPerBlock / 2})
	tapBlock3 = bitmapOf([2]int{8, 10}, [2]int{SectorsPerBlock - 1, SectorsPerBlock})
)

func TestReferencePlainImagesReadAsPlainRaw(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	for _, name := range []string{"src-qemu.vhd", "src-tap-sparse.vhd"} {
		t.Run(name, func(t *testing.T) {
			img, _ := openRef(t, name)
			require.Equal(t, Dynamic, img.Type())
			require.Equal(t, int64(len(plain)), img.Size())
			require.Equal(t, 4, img.NumBlocks())
			got := make([]byte, img.Size())
			n, err := img.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, len(got), n)
			require.True(t, bytes.Equal(plain, got), "guest bytes differ from plain.raw")
			_, ok := img.KeyHash()
			require.False(t, ok)

			// ReadBlock agrees with ReadAt block by block.
			buf := make([]byte, BlockSize)
			for i := range img.NumBlocks() {
				require.NoError(t, img.ReadBlock(i, buf))
				require.True(t, bytes.Equal(plain[i*BlockSize:(i+1)*BlockSize], buf), "block %d", i)
			}
			// Unaligned reads cross sector and block boundaries.
			for _, r := range [][2]int{{1, 700}, {BlockSize - 3, 10}, {3*BlockSize + 4000, 1200}, {len(plain) - 5, 5}} {
				p := make([]byte, r[1])
				_, err := img.ReadAt(p, int64(r[0]))
				require.NoError(t, err)
				require.Equal(t, plain[r[0]:r[0]+r[1]], p, "range %v", r)
			}
		})
	}
}

func TestReferenceAllocation(t *testing.T) {
	t.Parallel()
	full := FullBitmap()
	cases := []struct {
		name    string
		creator string
		blocks  []int
		bitmaps []Bitmap
	}{
		{"src-qemu.vhd", "qem2", []int{0, 1, 3}, []Bitmap{full, full, full}},
		{"src-tap-sparse.vhd", "tap", []int{0, 1, 3}, []Bitmap{full, tapBlock1, tapBlock3}},
		{"enc-qemu-k32.vhd", "tap", []int{0, 1, 3}, []Bitmap{full, full, full}},
		{"enc-qemu-k64.vhd", "tap", []int{0, 1, 3}, []Bitmap{full, full, full}},
		{"enc-tap-sparse-k64.vhd", "tap", []int{0, 1, 3}, []Bitmap{full, tapBlock1, tapBlock3}},
		{"enc-copybug-k64.vhd", "tap", []int{0, 1, 3}, []Bitmap{full, full, full}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, _ := openRef(t, c.name)
			require.Equal(t, c.creator, img.Creator())
			idx, bms := allocation(t, img)
			require.Equal(t, c.blocks, idx)
			require.Equal(t, c.bitmaps, bms)
			b, err := img.Block(2)
			require.NoError(t, err)
			require.False(t, b.Allocated())
			require.Equal(t, int64(-1), b.DataOffset)
		})
	}
}

func TestReferenceKeyHash(t *testing.T) {
	t.Parallel()
	key32 := testenv.RefFile(t, "key32.bin")
	key64 := testenv.RefFile(t, "key64.bin")
	var tapNonce [32]byte
	for i := range tapNonce {
		tapNonce[i] = byte(0x64 + i)
	}
	cases := []struct {
		name  string
		key   []byte
		other []byte
		nonce [32]byte
	}{
		{"enc-qemu-k32.vhd", key32, key64, [32]byte{}},
		{"enc-qemu-k64.vhd", key64, key32, [32]byte{}},
		{"enc-copybug-k64.vhd", key64, key32, [32]byte{}},
		{"enc-tap-sparse-k64.vhd", key64, key32, tapNonce},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, _ := openRef(t, c.name)
			kh, ok := img.KeyHash()
			require.True(t, ok)
			require.Equal(t, c.nonce, kh.Nonce)
			require.Equal(t, ComputeKeyHash(c.nonce, c.key), kh)
			require.True(t, kh.Matches(c.key))
			require.False(t, kh.Matches(c.other))
		})
	}
}

func TestReferenceCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		zeroBlocks []int
	}{
		{"src-qemu.vhd", nil},
		{"src-tap-sparse.vhd", nil},
		{"enc-qemu-k32.vhd", nil},
		{"enc-qemu-k64.vhd", nil},
		{"enc-tap-sparse-k64.vhd", nil},
		{"enc-copybug-k64.vhd", []int{1, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, file := openRef(t, c.name)
			rep, err := img.Check(context.Background())
			require.NoError(t, err)
			require.Empty(t, rep.Problems)
			sr, err := NewStreamReader(bytes.NewReader(file))
			require.NoError(t, err)
			srep, err := sr.Check(context.Background())
			require.NoError(t, err)
			require.Equal(t, rep, srep, "a stream reports what a file does")
			require.Equal(t, c.zeroBlocks, rep.ZeroPresentBlocks)
			if c.zeroBlocks == nil {
				require.Zero(t, rep.ZeroPresentSectors)
				require.True(t, rep.OK(), rep.String())
			} else {
				// Block 1's second half and block 3 but its 3 written sectors.
				want := int64(SectorsPerBlock/2 + SectorsPerBlock - 3)
				require.Equal(t, want, rep.ZeroPresentSectors)
				require.False(t, rep.OK())
				require.Contains(t, rep.String(), "all-zero")
			}
		})
	}
}
