package vhdcrypt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/vhdcrypt"
	"github.com/e2eimage/e2eimage/xts"
)

// TestMalformedInputs: each misuse at the e2e level gets its own typed error
// (format-level malformations are vhd's, tested there; a few are checked
// here to be passed through).
func TestMalformedInputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain := testenv.RefFile(t, "plain.raw")
	enc := testenv.RefFile(t, "enc-qemu-k64.vhd")
	srcVHD := testenv.RefFile(t, "src-qemu.vhd")
	k64 := refKey(t, "key64.bin")
	k32 := refKey(t, "key32.bin")
	weak, err := vhdcrypt.DEKFromBytes(bytes.Repeat([]byte{7}, 64))
	require.NoError(t, err)
	var fixed bytes.Buffer
	require.NoError(t, vhd.WriteFixed(&fixed, bytes.NewReader(plain), int64(len(plain))))
	truncated := srcVHD[:len(srcVHD)-100000]
	damagedHeader := bytes.Clone(srcVHD)
	damagedHeader[0x200+8] ^= 0xFF // dynamic header's data offset: checksum fails

	encryptErr := func(src io.Reader, dek *vhdcrypt.DEK, opts ...vhdcrypt.Option) error {
		return vhdcrypt.EncryptImage(ctx, io.Discard, src, dek, opts...)
	}
	decryptErr := func(src io.Reader, dek *vhdcrypt.DEK) error {
		return vhdcrypt.DecryptImage(ctx, io.Discard, src, dek)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want error
	}{
		{"encrypt an encrypted VHD", func() error { return encryptErr(bytes.NewReader(enc), k64) }, vhdcrypt.ErrAlreadyEncrypted},
		{"encrypt an encrypted VHD stream", func() error { return encryptErr(streamOf(enc), k64) }, vhdcrypt.ErrAlreadyEncrypted},
		{"encrypt with no key", func() error { return encryptErr(bytes.NewReader(plain), nil) }, vhdcrypt.ErrKeySize},
		{"encrypt with a zeroed key", func() error {
			d, _ := vhdcrypt.DEKFromBytes(make([]byte, 32))
			d.Zero()
			return encryptErr(bytes.NewReader(plain), d)
		}, vhdcrypt.ErrKeySize},
		{"key of 48 bytes", func() error { _, err := vhdcrypt.DEKFromBytes(make([]byte, 48)); return err }, vhdcrypt.ErrKeySize},
		{"new key of 16 bytes", func() error { _, err := vhdcrypt.NewDEK(16); return err }, vhdcrypt.ErrKeySize},
		{"weak XTS key (equal halves)", func() error { return encryptErr(bytes.NewReader(plain), weak) }, xts.ErrWeakKey},
		{"raw stream without size", func() error { return encryptErr(streamOf(plain), k64, noTable) }, vhdcrypt.ErrNeedSize},
		{"raw stream shorter than its size", func() error { return encryptErr(streamOf(plain), k64, vhdcrypt.WithSize(9<<20), noTable) }, vhdcrypt.ErrStreamSize},
		{"raw stream longer than its size", func() error { return encryptErr(streamOf(plain), k64, vhdcrypt.WithSize(7<<20), noTable) }, vhdcrypt.ErrStreamSize},
		{"fixed VHD stream declared by length", func() error {
			return encryptErr(streamOf(fixed.Bytes()), k64, vhdcrypt.WithSize(int64(fixed.Len())), noTable)
		}, vhdcrypt.ErrFixedVHDStream},
		{"stream larger than a VHD can be", func() error { return encryptErr(streamOf(plain), k64, vhdcrypt.WithSize(vhd.MaxSize+512), noTable) }, vhdcrypt.ErrTooLarge},
		{"empty input", func() error { return encryptErr(bytes.NewReader(nil), k64) }, vhdcrypt.ErrEmpty},
		{"empty stream", func() error { return encryptErr(streamOf(nil), k64) }, vhdcrypt.ErrEmpty},
		{"truncated VHD", func() error { return encryptErr(bytes.NewReader(truncated), k64) }, vhd.ErrTruncated},
		{"damaged VHD header", func() error {
			var fe *vhd.FormatError
			err := encryptErr(bytes.NewReader(damagedHeader), k64)
			if errors.As(err, &fe) {
				return fe
			}
			return err
		}, errFormat},
		{"decrypt with the wrong key", func() error { return decryptErr(bytes.NewReader(enc), k32) }, vhdcrypt.ErrWrongKey},
		{"decrypt a stream with the wrong key", func() error { return decryptErr(streamOf(enc), k32) }, vhdcrypt.ErrWrongKey},
		{"verify the wrong key", func() error { return vhdcrypt.VerifyKey(ctx, bytes.NewReader(enc), k32) }, vhdcrypt.ErrWrongKey},
		{"verify image with the wrong key", func() error { _, err := vhdcrypt.VerifyImage(ctx, bytes.NewReader(enc), k32); return err }, vhdcrypt.ErrWrongKey},
		{"decrypt a plain VHD", func() error { return decryptErr(bytes.NewReader(srcVHD), k64) }, vhdcrypt.ErrNotEncrypted},
		{"decrypt a raw image", func() error { return decryptErr(bytes.NewReader(plain), k64) }, vhdcrypt.ErrNotEncrypted},
		{"decrypt a raw stream", func() error { return decryptErr(streamOf(plain), k64) }, vhdcrypt.ErrNotEncrypted},
		{"verify key of a plain VHD", func() error { return vhdcrypt.VerifyKey(ctx, bytes.NewReader(srcVHD), k64) }, vhdcrypt.ErrNotEncrypted},
		{"check a raw image", func() error { _, err := vhdcrypt.Check(ctx, bytes.NewReader(plain)); return err }, vhd.ErrNotVHD},
		{"cancelled context", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return vhdcrypt.EncryptImage(c, io.Discard, bytes.NewReader(plain), k64, noTable)
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if tc.want == errFormat {
				var fe *vhd.FormatError
				require.ErrorAs(t, err, &fe)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), string(k64.Bytes()[:8]))
		})
	}
}

// errFormat stands for "any *vhd.FormatError" in the table.
var errFormat = errors.New("a *vhd.FormatError")

// TestLargeSparseLayout plans a 2040 GiB disk with a few allocated blocks
// without reading or writing terabytes: Size is known up front and small.
func TestLargeSparseLayout(t *testing.T) {
	t.Parallel()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	require.NoError(t, err)
	// A raw stream of the maximum size is dense: check Size arithmetic only.
	e, err := vhdcrypt.NewEncryptor(context.Background(), streamOf([]byte{1}), dek, vhdcrypt.WithSize(vhd.MaxSize), noTable)
	require.NoError(t, err)
	alloc, total := e.AllocatedBlocks()
	require.Equal(t, vhd.MaxSize/vhd.BlockSize, total)
	require.Equal(t, total, alloc)
	require.Greater(t, e.Size(), int64(vhd.MaxSize))

	// A sparse 2 GiB file with data in two blocks.
	f := &sparseFile{size: 2 << 30, data: map[int64][]byte{}}
	blk := make([]byte, 4096)
	_, _ = rand.Read(blk)
	f.data[0] = blk
	f.data[(1<<30)+(3<<20)] = blk
	e, err = vhdcrypt.NewEncryptor(context.Background(), io.NewSectionReader(f, 0, f.size), dek, noTable)
	require.NoError(t, err)
	alloc, total = e.AllocatedBlocks()
	require.Equal(t, 2, alloc)
	require.Equal(t, 1024, total)
}

// sparseFile is an io.ReaderAt of a large, mostly zero disk held in memory
// as a few 4 KiB pieces at 4 KiB-aligned offsets.
type sparseFile struct {
	size int64
	data map[int64][]byte
}

func (s *sparseFile) Size() int64 { return s.size }

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	clear(p[:n])
	for at, b := range s.data {
		if at+int64(len(b)) > off && at < off+int64(n) {
			lo := max(at, off)
			hi := min(at+int64(len(b)), off+int64(n))
			copy(p[lo-off:hi-off], b[lo-at:hi-at])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
