package vhd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/stretchr/testify/require"
)

// qemu runs qemu-img with args and returns its standard output.
func qemu(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.QemuImg(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "qemu-img %v: %s", args, stderr.String())
	return out
}

// qemuSize returns the virtual size qemu-img reports for a vpc file.
func qemuSize(t *testing.T, path string) int64 {
	t.Helper()
	var info struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	require.NoError(t, json.Unmarshal(qemu(t, "info", "-f", "vpc", "--output=json", path), &info))
	require.Equal(t, "vpc", info.Format)
	return info.VirtualSize
}

// qemuToRaw converts a vpc file to raw with qemu-img and returns the bytes.
func qemuToRaw(t *testing.T, path string) []byte {
	t.Helper()
	out := path + ".raw"
	qemu(t, "convert", "-f", "vpc", "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

var roundTripSizes = []int64{
	0,
	SectorSize,
	5<<20 + 3*SectorSize,
	8 << 20,
	2<<20 - SectorSize,
}

// TestQemuReadsOurImages: qemu-img accepts every unencrypted VHD we write,
// dynamic (NewWriter, partial bitmaps included) and fixed (WriteFixed), and
// converts it back to exactly the source bytes at exactly our size.
func TestQemuReadsOurImages(t *testing.T) {
	t.Parallel()
	testenv.QemuImg(t)
	dir := t.TempDir()
	for k, size := range roundTripSizes {
		raw := sparseRaw(uint64(k), size)
		t.Run(fmt.Sprintf("dynamic/%d", size), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("dyn%d.vhd", k))
			require.NoError(t, os.WriteFile(path, writeRaw(t, raw), 0o600))
			require.Equal(t, size, qemuSize(t, path))
			require.True(t, bytes.Equal(raw, qemuToRaw(t, path)), "qemu reads different bytes")
		})
		t.Run(fmt.Sprintf("fixed/%d", size), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("fix%d.vhd", k))
			var out bytes.Buffer
			if size == 0 {
				// qemu-img cannot open a footer-only file, not even its own.
				require.ErrorContains(t, WriteFixed(&out, bytes.NewReader(raw), size), "must be a multiple of 512 in 512..")
				return
			}
			require.NoError(t, WriteFixed(&out, bytes.NewReader(raw), size))
			require.Equal(t, size+FooterSize, int64(out.Len()))
			require.NoError(t, os.WriteFile(path, out.Bytes(), 0o600))
			require.Equal(t, size, qemuSize(t, path))
			require.True(t, bytes.Equal(raw, qemuToRaw(t, path)), "qemu reads different bytes")
			img, err := Open(bytes.NewReader(out.Bytes()), int64(out.Len()))
			require.NoError(t, err)
			requireReads(t, img, raw)
		})
	}
}

// TestWeReadQemuImages: Open reads every VHD qemu-img writes (dynamic and
// fixed, with and without force_size, sizes on and off the 2 MiB grid) as
// the source bytes, at the size qemu-img reports; StreamReader agrees on the
// dynamic ones.
func TestWeReadQemuImages(t *testing.T) {
	t.Parallel()
	testenv.QemuImg(t)
	dir := t.TempDir()
	for k, size := range []int64{4 << 20, 5<<20 + 3*SectorSize, 3 * SectorSize} {
		raw := sparseRaw(uint64(100+k), size)
		in := filepath.Join(dir, fmt.Sprintf("in%d.raw", k))
		require.NoError(t, os.WriteFile(in, raw, 0o600))
		for _, sub := range []string{"dynamic", "fixed"} {
			for _, force := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/force=%v/%d", sub, force, size), func(t *testing.T) {
					out := filepath.Join(dir, fmt.Sprintf("q%d-%s-%v.vhd", k, sub, force))
					opts := "subformat=" + sub
					if force {
						opts += ",force_size=on"
					}
					qemu(t, "convert", "-f", "raw", "-O", "vpc", "-o", opts, in, out)
					b, err := os.ReadFile(out)
					require.NoError(t, err)
					img, err := Open(bytes.NewReader(b), int64(len(b)))
					require.NoError(t, err)
					require.Contains(t, []string{"qemu", "qem2"}, img.Creator())
					require.Equal(t, qemuSize(t, out), img.Size())
					if force {
						require.Equal(t, size, img.Size())
					} else {
						require.GreaterOrEqual(t, img.Size(), size, "qemu rounds up to a CHS geometry")
					}
					want := make([]byte, img.Size())
					copy(want, raw)
					requireReads(t, img, want)
					rep, err := img.Check(t.Context())
					require.NoError(t, err)
					require.True(t, rep.OK(), rep.String())
					if sub == "dynamic" {
						requireStreamMatches(t, b)
					}
				})
			}
		}
	}
}

// TestOtherBlockSizes: dynamic VHDs with native blocks of 512 KiB (smaller
// than BlockSize) and 32 MiB (Hyper-V's, larger) read as the source, in
// 2 MiB blocks, by Open, StreamReader and qemu-img alike.
func TestOtherBlockSizes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bs := range []int{4096, 512 << 10, 2 << 20, 32 << 20} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			raw := sparseRaw(uint64(bs), 9<<20+5*SectorSize)
			b := buildVHD(t, raw, bs, "win ", nil)
			img, err := Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err)
			require.Equal(t, int64(bs), img.NativeBlockSize())
			require.Equal(t, 5, img.NumBlocks())
			requireReads(t, img, raw)
			requireStreamMatches(t, b)
			for blk, err := range img.Blocks() {
				require.NoError(t, err)
				if bs > BlockSize || bs == BlockSize {
					require.NotEqual(t, int64(-1), blk.DataOffset)
				}
			}
			if bs >= 512<<10 { // keep qemu's part quick
				path := filepath.Join(dir, fmt.Sprintf("bs%d.vhd", bs))
				require.NoError(t, os.WriteFile(path, b, 0o600))
				require.True(t, bytes.Equal(raw, qemuToRaw(t, path)), "qemu disagrees with the test writer")
			}
		})
	}
}

// requireReads checks ReadAt over the whole disk, ReadBlock of every block
// and a few unaligned ranges against want.
func requireReads(t *testing.T, img *Image, want []byte) {
	t.Helper()
	require.Equal(t, int64(len(want)), img.Size())
	got := make([]byte, len(want))
	n, err := img.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, len(want), n)
	require.True(t, bytes.Equal(want, got), "ReadAt differs from the source")
	buf := make([]byte, BlockSize)
	for i := range img.NumBlocks() {
		require.NoError(t, img.ReadBlock(i, buf))
		exp := blockOf(want, i)
		require.True(t, bytes.Equal(exp, buf), "block %d differs", i)
	}
	size := len(want)
	for _, r := range [][2]int{{1, 1000}, {size / 3, 4097}, {size - 700, 700}, {BlockSize - 1, 2}} {
		if r[0] < 0 || r[0]+r[1] > size {
			continue
		}
		p := make([]byte, r[1])
		_, err := img.ReadAt(p, int64(r[0]))
		require.NoError(t, err)
		require.Equal(t, want[r[0]:r[0]+r[1]], p, "range %v", r)
	}
	if size > 0 { // reading across the end returns the tail and io.EOF
		p := make([]byte, 1024)
		n, err := img.ReadAt(p, int64(size-10))
		require.Error(t, err)
		require.Equal(t, 10, n)
	}
}
