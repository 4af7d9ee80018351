package vhdcrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/vhd"
)

// mappedDisk writes a raw disk of size bytes to a file: random blocks
// with blocks 1 and 4 zero, and a last block that ends mid-way (size need
// not be a multiple of 512).
func mappedDisk(t *testing.T, size int) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	for _, i := range []int{1, 4} {
		clear(b[i*vhd.BlockSize : (i+1)*vhd.BlockSize])
	}
	p := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p, b
}

func encryptWith(t *testing.T, src io.Reader, dek *DEK) []byte {
	t.Helper()
	var nonce [32]byte
	e, err := NewEncryptor(context.Background(), src, dek, WithoutPartitionTable(), WithNonce(nonce),
		WithUniqueID([16]byte{1}), WithTimestamp(time.Unix(1700000000, 0)), WithWorkers(3))
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = e.WriteTo(&out)
	require.NoError(t, err)
	return out.Bytes()
}

// TestMappedInput encrypts raw disks and a fixed VHD given as files, which
// are read through a memory map on Linux, and checks that the output is
// byte for byte that of the same bytes read with ReadAt (a bytes.Reader),
// for sizes that end inside a block and inside a sector, and that the
// mapped path was the one taken (its block counter).
func TestMappedInput(t *testing.T) {
	dek, err := NewDEK(AES256XTS)
	require.NoError(t, err)
	defer dek.Zero()
	for _, size := range []int{6*vhd.BlockSize + 3*512, 5*vhd.BlockSize + 1000, 6 * vhd.BlockSize} {
		p, plain := mappedDisk(t, size)
		inputs := map[string][]byte{"raw": plain}
		if size%512 == 0 {
			var fixed bytes.Buffer
			require.NoError(t, vhd.WriteFixed(&fixed, bytes.NewReader(plain), int64(len(plain))))
			inputs["fixed"] = fixed.Bytes()
		}
		for name, in := range inputs {
			if name == "fixed" {
				p = filepath.Join(t.TempDir(), "disk.vhd")
				require.NoError(t, os.WriteFile(p, in, 0o600))
			}
			f, err := os.Open(p)
			require.NoError(t, err)
			before := mappedBlocks.Load()
			got := encryptWith(t, f, dek)
			f.Close()
			mapped := mappedBlocks.Load() - before
			want := encryptWith(t, bytes.NewReader(in), dek)
			require.True(t, bytes.Equal(got, want), "%s, %d bytes: the mapped file's encryption differs from ReadAt's", name, size)
			blocks := int64(numBlocks(int64(size)))
			if runtime.GOOS == "linux" {
				// Every block scanned, the non-zero ones encrypted.
				require.Equal(t, blocks+blocks-2, mapped, "%s, %d bytes: blocks read through the map", name, size)
			}
		}
	}
}

// TestMappedInputCut truncates the input file between the zero scan and
// the encryption: the pages the map no longer has fault, and the
// encryption fails with an error instead of the program dying of SIGBUS.
func TestMappedInputCut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the input is mapped on Linux only")
	}
	dek, err := NewDEK(AES256XTS)
	require.NoError(t, err)
	defer dek.Zero()
	p, _ := mappedDisk(t, 8*vhd.BlockSize)
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	e, err := NewEncryptor(context.Background(), f, dek, WithoutPartitionTable())
	require.NoError(t, err)
	require.NoError(t, os.Truncate(p, vhd.BlockSize))
	before := mappedBlocks.Load()
	_, err = e.WriteTo(io.Discard)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "memory map"), "error: %v", err)
	require.Positive(t, mappedBlocks.Load()-before, "the encryption did not read through the map")
}
