package vhdcrypt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// refKey reads a reference key file.
func refKey(t *testing.T, name string) *vhdcrypt.DEK {
	t.Helper()
	dek, err := vhdcrypt.ReadKeyFile(filepath.Join(testenv.RefDir(t), name))
	require.NoError(t, err)
	t.Cleanup(dek.Zero)
	return dek
}

// streamOf hides every interface but io.Reader, so the input is read as a
// stream.
func streamOf(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }

// fixedOpts make the output reproducible byte for byte.
func fixedOpts(extra ...vhdcrypt.Option) []vhdcrypt.Option {
	var nonce [32]byte
	for i := range nonce {
		nonce[i] = byte(0xA0 + i)
	}
	opts := []vhdcrypt.Option{
		vhdcrypt.WithNonce(nonce),
		vhdcrypt.WithUniqueID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}),
		vhdcrypt.WithTimestamp(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)),
	}
	return append(opts, extra...)
}

func encrypt(t *testing.T, src io.Reader, dek *vhdcrypt.DEK, opts ...vhdcrypt.Option) []byte {
	t.Helper()
	var out bytes.Buffer
	e, err := vhdcrypt.NewEncryptor(context.Background(), src, dek, opts...)
	require.NoError(t, err)
	n, err := e.WriteTo(&out)
	require.NoError(t, err)
	require.Equal(t, e.Size(), n, "WriteTo's count")
	require.Equal(t, e.Size(), int64(out.Len()), "Size must announce the exact output size")
	return out.Bytes()
}

func decrypt(t *testing.T, src io.Reader, dek *vhdcrypt.DEK, opts ...vhdcrypt.Option) []byte {
	t.Helper()
	var out bytes.Buffer
	d, err := vhdcrypt.NewDecryptor(context.Background(), src, dek, opts...)
	require.NoError(t, err)
	_, err = d.WriteTo(&out)
	require.NoError(t, err)
	require.Equal(t, d.Size(), int64(out.Len()))
	return out.Bytes()
}

func openVHD(t *testing.T, b []byte) *vhd.Image {
	t.Helper()
	img, err := vhd.Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	return img
}

// TestDecryptReferences: every reference image encrypted by vhd-util copy or
// tapdisk decrypts to plain.raw, read as a file and as a stream, to raw and
// to a VHD.
func TestDecryptReferences(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	for _, tc := range []struct{ file, key string }{
		{"enc-qemu-k32.vhd", "key32.bin"},
		{"enc-qemu-k64.vhd", "key64.bin"},
		{"enc-tap-sparse-k64.vhd", "key64.bin"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			enc := testenv.RefFile(t, tc.file)
			dek := refKey(t, tc.key)
			require.Equal(t, plain, decrypt(t, bytes.NewReader(enc), dek), "file input")
			require.Equal(t, plain, decrypt(t, streamOf(enc), dek), "stream input")
			require.NoError(t, vhdcrypt.VerifyKey(context.Background(), bytes.NewReader(enc), dek))

			asVHD := decrypt(t, bytes.NewReader(enc), dek, vhdcrypt.WithFormat(vhdcrypt.FormatVHD))
			img := openVHD(t, asVHD)
			_, encrypted := img.KeyHash()
			require.False(t, encrypted)
			got := make([]byte, img.Size())
			_, err := img.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, plain, got, "VHD output")
			require.Equal(t, plain, readVHD(t, decrypt(t, streamOf(enc), dek, vhdcrypt.WithFormat(vhdcrypt.FormatVHD))), "VHD output from a stream")
		})
	}
}

func readVHD(t *testing.T, b []byte) []byte {
	t.Helper()
	img := openVHD(t, b)
	got := make([]byte, img.Size())
	_, err := img.ReadAt(got, 0)
	require.NoError(t, err)
	return got
}

// TestCheckFindsCopyBugDamage: the image damaged by vhd-util copy's defect
// is reported with the exact number of affected sectors: the sectors that
// src-tap-sparse.vhd (its source) did not have in its allocated blocks,
// which the defect marked present without encrypting.
func TestCheckFindsCopyBugDamage(t *testing.T) {
	t.Parallel()
	src := openVHD(t, testenv.RefFile(t, "src-tap-sparse.vhd"))
	var want int64
	var wantBlocks []int
	for b, err := range src.Blocks() {
		require.NoError(t, err)
		if absent := vhd.SectorsPerBlock - b.Bitmap.Count(); absent > 0 {
			want += int64(absent)
			wantBlocks = append(wantBlocks, b.Index)
		}
	}
	require.Positive(t, want)

	damaged := testenv.RefFile(t, "enc-copybug-k64.vhd")
	dek := refKey(t, "key64.bin")
	for name, r := range map[string]func() io.Reader{
		"file":   func() io.Reader { return bytes.NewReader(damaged) },
		"stream": func() io.Reader { return streamOf(damaged) },
	} {
		rep, err := vhdcrypt.Check(context.Background(), r())
		require.NoError(t, err, name)
		require.False(t, rep.OK(), name)
		require.Equal(t, want, rep.ZeroPresentSectors, name)
		require.Equal(t, wantBlocks, rep.ZeroPresentBlocks, name)

		rep, err = vhdcrypt.VerifyImage(context.Background(), r(), dek)
		require.NoError(t, err, name)
		require.Equal(t, want, rep.ZeroPresentSectors, name)
	}
	// And it indeed does not decrypt to plain.raw (as tapdisk would read it).
	require.NotEqual(t, testenv.RefFile(t, "plain.raw"), decrypt(t, bytes.NewReader(damaged), dek))

	for _, good := range []string{"enc-qemu-k64.vhd", "enc-tap-sparse-k64.vhd"} {
		rep, err := vhdcrypt.Check(context.Background(), bytes.NewReader(testenv.RefFile(t, good)))
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s: %v", good, rep)
	}
}

// TestCheckStreamReportsAsFile: Check of a dynamic VHD read as a stream
// reports what Check of the same file reports, except the structural
// Problems only a file shows.
func TestCheckStreamReportsAsFile(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"src-qemu.vhd", "src-tap-sparse.vhd", "enc-tap-sparse-k64.vhd", "enc-copybug-k64.vhd"} {
		b := testenv.RefFile(t, name)
		file, err := vhdcrypt.Check(context.Background(), bytes.NewReader(b))
		require.NoError(t, err, name)
		stream, err := vhdcrypt.Check(context.Background(), streamOf(b))
		require.NoError(t, err, name)
		file.Problems = nil
		require.Equal(t, file, stream, name)
	}
}

// TestEncryptMatchesReference: our encryption of each source, with each
// key, decrypts back to plain.raw, is not damaged, and stores exactly the
// reference tools' ciphertext in every sector both images hold.
func TestEncryptMatchesReference(t *testing.T) {
	t.Parallel()
	plain := testenv.RefFile(t, "plain.raw")
	refs := map[string][]string{ // key -> reference encryptions with that key
		"key32.bin": {"enc-qemu-k32.vhd"},
		"key64.bin": {"enc-qemu-k64.vhd", "enc-tap-sparse-k64.vhd"},
	}
	for _, src := range []string{"src-qemu.vhd", "src-tap-sparse.vhd", "plain.raw"} {
		for _, key := range []string{"key32.bin", "key64.bin"} {
			t.Run(src+"/"+key, func(t *testing.T) {
				dek := refKey(t, key)
				in := testenv.RefFile(t, src)
				out := encrypt(t, bytes.NewReader(in), dek, noTable)
				require.Equal(t, plain, decrypt(t, bytes.NewReader(out), dek))

				img := openVHD(t, out)
				require.Equal(t, "tap", img.Creator())
				kh, ok := img.KeyHash()
				require.True(t, ok)
				// IBM's documented check: vhd-util key -C -k KEY computes
				// SHA-256 of a zero nonce and the key; it must equal the
				// stored hash (vhd-util key -p), as in the reference tool's
				// own output with the same key.
				require.Equal(t, [32]byte{}, kh.Nonce, "the default nonce is vhd-util's 32 zero bytes")
				want := sha256.Sum256(append(make([]byte, 32), dek.Bytes()...))
				require.Equal(t, want, kh.Hash, "stored hash != SHA-256(zero nonce || key)")
				zeroRefs := 0
				for _, ref := range refs[key] {
					refKH, ok := openVHD(t, testenv.RefFile(t, ref)).KeyHash()
					require.True(t, ok)
					if refKH.Nonce != ([32]byte{}) {
						continue // made with a nonce of its own, not by vhd-util copy
					}
					zeroRefs++
					require.Equal(t, refKH, kh, "key hash differs from vhd-util's (%s)", ref)
				}
				require.Positive(t, zeroRefs, "no vhd-util (zero nonce) reference to compare the key hash with")
				rep, err := img.Check(context.Background())
				require.NoError(t, err)
				require.True(t, rep.OK(), "%v", rep)

				for _, ref := range refs[key] {
					n := sameCiphertext(t, img, openVHD(t, testenv.RefFile(t, ref)))
					require.Positive(t, n, "no sector in common with %s", ref)
				}
			})
		}
	}
}

// sameCiphertext requires every sector present in both images to be stored
// identically, and returns how many there were.
func sameCiphertext(t *testing.T, a, b *vhd.Image) int {
	t.Helper()
	require.Equal(t, a.Size(), b.Size())
	ba, bb := make([]byte, vhd.BlockSize), make([]byte, vhd.BlockSize)
	compared := 0
	for i := range a.NumBlocks() {
		ia, err := a.Block(i)
		require.NoError(t, err)
		ib, err := b.Block(i)
		require.NoError(t, err)
		if !ia.Allocated() || !ib.Allocated() {
			continue
		}
		require.NoError(t, a.ReadBlock(i, ba))
		require.NoError(t, b.ReadBlock(i, bb))
		for s := range vhd.SectorsPerBlock {
			if ia.Bitmap.Present(s) && ib.Bitmap.Present(s) {
				require.Equal(t, bb[s*512:(s+1)*512], ba[s*512:(s+1)*512], "block %d sector %d", i, s)
				compared++
			}
		}
	}
	return compared
}

// TestEncryptLayout: what the output stores for each kind of input.
func TestEncryptLayout(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	blocks := func(b []byte) (alloc []int, full []bool) {
		img := openVHD(t, b)
		for bi, err := range img.Blocks() {
			require.NoError(t, err)
			alloc = append(alloc, bi.Index)
			full = append(full, bi.Full)
		}
		return
	}
	// plain.raw: block 2 is all zero and stays unallocated.
	alloc, full := blocks(encrypt(t, bytes.NewReader(testenv.RefFile(t, "plain.raw")), dek, noTable))
	require.Equal(t, []int{0, 1, 3}, alloc)
	require.Equal(t, []bool{true, true, true}, full)
	// src-tap-sparse.vhd: its partial bitmaps are kept, like tapdisk's own.
	alloc, full = blocks(encrypt(t, bytes.NewReader(testenv.RefFile(t, "src-tap-sparse.vhd")), dek))
	require.Equal(t, []int{0, 1, 3}, alloc)
	require.Equal(t, []bool{true, false, false}, full)
	// The same as a stream: bitmaps come too late to be kept, every
	// allocated block is written full (absent sectors as encrypted zeros).
	out := encrypt(t, streamOf(testenv.RefFile(t, "src-tap-sparse.vhd")), dek)
	alloc, full = blocks(out)
	require.Equal(t, []int{0, 1, 3}, alloc)
	require.Equal(t, []bool{true, true, true}, full)
	require.Equal(t, testenv.RefFile(t, "plain.raw"), decrypt(t, bytes.NewReader(out), dek))
	// A raw stream: every block allocated.
	alloc, _ = blocks(encrypt(t, streamOf(testenv.RefFile(t, "plain.raw")), dek, vhdcrypt.WithSize(8<<20), noTable))
	require.Equal(t, []int{0, 1, 2, 3}, alloc)
}

// TestOddSizes: raw inputs whose size is not a multiple of 2 MiB, or not even
// of 512 bytes (padded with zeros to a whole sector), as files and streams,
// and fixed VHDs, as files and streams.
func TestOddSizes(t *testing.T) {
	t.Parallel()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	defer dek.Zero()
	for _, size := range []int64{512, 1000, 2<<20 - 512, 2 << 20, 3<<20 + 100, 5<<20 + 4096} {
		raw := make([]byte, size)
		_, _ = rand.Read(raw[:size/3])
		_, _ = rand.Read(raw[size-min(size, 700):]) // data in the last, partial, block
		padded := append(bytes.Clone(raw), make([]byte, (512-size%512)%512)...)

		out := encrypt(t, bytes.NewReader(raw), dek, noTable)
		require.Equal(t, padded, decrypt(t, bytes.NewReader(out), dek), "raw file of %d bytes", size)
		require.Equal(t, int64(len(padded)), openVHD(t, out).Size())
		out = encrypt(t, streamOf(raw), dek, vhdcrypt.WithSize(size), noTable)
		require.Equal(t, padded, decrypt(t, bytes.NewReader(out), dek), "raw stream of %d bytes", size)

		var fixed bytes.Buffer
		require.NoError(t, vhd.WriteFixed(&fixed, bytes.NewReader(padded), int64(len(padded))))
		out = encrypt(t, bytes.NewReader(fixed.Bytes()), dek)
		require.Equal(t, padded, decrypt(t, bytes.NewReader(out), dek), "fixed VHD file of %d bytes", size)
		out = encrypt(t, streamOf(fixed.Bytes()), dek, vhdcrypt.WithSize(int64(len(padded))), noTable)
		require.Equal(t, padded, decrypt(t, bytes.NewReader(out), dek), "fixed VHD stream of %d bytes", size)
	}
}

// TestDeterministic: the output does not depend on the worker count, nor
// on whether the input is a file or a stream (for a dynamic VHD input with
// full blocks; for a raw input, a stream cannot leave zero blocks out, but
// decrypts the same).
func TestDeterministic(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	src := testenv.RefFile(t, "src-qemu.vhd")
	want := encrypt(t, bytes.NewReader(src), dek, fixedOpts(vhdcrypt.WithWorkers(1))...)
	for _, w := range []int{1, 2, 8} {
		require.Equal(t, want, encrypt(t, bytes.NewReader(src), dek, fixedOpts(vhdcrypt.WithWorkers(w))...), "file, %d workers", w)
		require.Equal(t, want, encrypt(t, streamOf(src), dek, fixedOpts(vhdcrypt.WithWorkers(w))...), "stream, %d workers", w)
		pulled, err := io.ReadAll(newEncReader(t, bytes.NewReader(src), dek, fixedOpts(vhdcrypt.WithWorkers(w))...))
		require.NoError(t, err)
		require.Equal(t, want, pulled, "Reader, %d workers", w)
	}
	// Raw: file (sparse) and stream (dense) outputs decrypt the same.
	plain := testenv.RefFile(t, "plain.raw")
	sparse := encrypt(t, bytes.NewReader(plain), dek, fixedOpts(vhdcrypt.WithWorkers(8), noTable)...)
	require.Equal(t, sparse, encrypt(t, bytes.NewReader(plain), dek, fixedOpts(vhdcrypt.WithWorkers(1), noTable)...))
	dense := encrypt(t, streamOf(plain), dek, fixedOpts(vhdcrypt.WithSize(int64(len(plain))), noTable)...)
	require.Equal(t, decrypt(t, bytes.NewReader(sparse), dek), decrypt(t, bytes.NewReader(dense), dek))
	// Decryption too.
	wantPlain := decrypt(t, bytes.NewReader(want), dek, fixedOpts(vhdcrypt.WithWorkers(1), vhdcrypt.WithFormat(vhdcrypt.FormatVHD))...)
	for _, w := range []int{2, 8} {
		require.Equal(t, wantPlain, decrypt(t, bytes.NewReader(want), dek, fixedOpts(vhdcrypt.WithWorkers(w), vhdcrypt.WithFormat(vhdcrypt.FormatVHD))...))
		require.Equal(t, wantPlain, decrypt(t, streamOf(want), dek, fixedOpts(vhdcrypt.WithWorkers(w), vhdcrypt.WithFormat(vhdcrypt.FormatVHD))...))
	}
}

func newEncReader(t *testing.T, src io.Reader, dek *vhdcrypt.DEK, opts ...vhdcrypt.Option) io.Reader {
	t.Helper()
	e, err := vhdcrypt.NewEncryptor(context.Background(), src, dek, opts...)
	require.NoError(t, err)
	r := e.Reader()
	t.Cleanup(func() { r.Close() })
	return r
}

// TestReaderSmallReads pulls the output through small, odd-sized reads.
func TestReaderSmallReads(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key32.bin")
	src := testenv.RefFile(t, "src-tap-sparse.vhd")
	want := encrypt(t, bytes.NewReader(src), dek, fixedOpts()...)
	r := newEncReader(t, bytes.NewReader(src), dek, fixedOpts()...)
	var got []byte
	buf := make([]byte, 4093)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	require.Equal(t, want, got)

	// Read some, then finish with io.Copy (which uses WriteTo).
	r = newEncReader(t, bytes.NewReader(src), dek, fixedOpts()...)
	head := make([]byte, 700000)
	_, err := io.ReadFull(r, head)
	require.NoError(t, err)
	var rest bytes.Buffer
	_, err = io.Copy(&rest, r)
	require.NoError(t, err)
	require.Equal(t, want, append(head, rest.Bytes()...))
}

// TestReaderCloseEarly stops the background work (goleak checks in TestMain).
func TestReaderCloseEarly(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	e, err := vhdcrypt.NewEncryptor(context.Background(), bytes.NewReader(testenv.RefFile(t, "plain.raw")), dek, noTable)
	require.NoError(t, err)
	r := e.Reader()
	_, err = io.ReadFull(r, make([]byte, 100000))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	_, err = r.Read(make([]byte, 10))
	require.Error(t, err)
	// The output is produced once.
	_, err = e.WriteTo(io.Discard)
	require.ErrorIs(t, err, vhdcrypt.ErrUsed)
}

// TestProgress: reports are monotonic and end at the total.
func TestProgress(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	var got []vhdcrypt.Progress
	out := encrypt(t, bytes.NewReader(testenv.RefFile(t, "plain.raw")), dek,
		noTable, vhdcrypt.WithProgress(func(p vhdcrypt.Progress) { got = append(got, p) }))
	var scanEnd, encEnd vhdcrypt.Progress
	last := map[vhdcrypt.Phase]int64{}
	for _, p := range got {
		require.GreaterOrEqual(t, p.Done, last[p.Phase], "progress went back")
		last[p.Phase] = p.Done
		switch p.Phase {
		case vhdcrypt.PhaseScan:
			scanEnd = p
		case vhdcrypt.PhaseEncrypt:
			encEnd = p
		}
	}
	require.Equal(t, int64(8<<20), scanEnd.Total)
	require.Equal(t, scanEnd.Total, scanEnd.Done)
	require.Equal(t, int64(len(out)), encEnd.Total)
	require.Equal(t, encEnd.Total, encEnd.Done)
}

// TestEncryptFileCancel: cancelling mid-way leaves no output and no
// temporary file (and no goroutine: TestMain runs goleak).
func TestEncryptFileCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	raw := make([]byte, 40<<20) // more than one writeback chunk
	_, _ = rand.Read(raw)
	require.NoError(t, os.WriteFile(src, raw, 0o600))
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dst := filepath.Join(dir, "out.vhd")
	err = vhdcrypt.EncryptFile(ctx, dst, src, dek, noTable, vhdcrypt.WithProgress(func(p vhdcrypt.Progress) {
		if p.Phase == vhdcrypt.PhaseEncrypt && p.Done > 4<<20 {
			cancel()
		}
	}))
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the source may remain: %v", entries)

	// An existing destination is left untouched by a failed run...
	require.NoError(t, os.WriteFile(dst, []byte("previous"), 0o644))
	ctx2, cancel2 := context.WithCancel(context.Background())
	err = vhdcrypt.EncryptFile(ctx2, dst, src, dek, noTable, vhdcrypt.WithProgress(func(p vhdcrypt.Progress) {
		if p.Phase == vhdcrypt.PhaseEncrypt && p.Done > 0 {
			cancel2()
		}
	}))
	require.ErrorIs(t, err, context.Canceled)
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, "previous", string(got))
	// ...and replaced, mode 0600, by a successful one.
	require.NoError(t, vhdcrypt.EncryptFile(context.Background(), dst, src, dek, noTable))
	fi, err := os.Stat(dst)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	dec := filepath.Join(dir, "dec.raw")
	require.NoError(t, vhdcrypt.DecryptFile(context.Background(), dec, dst, dek))
	got, err = os.ReadFile(dec)
	require.NoError(t, err)
	require.True(t, bytes.Equal(raw, got))
	// Writing onto the input is refused.
	require.Error(t, vhdcrypt.EncryptFile(context.Background(), src, src, dek, noTable))
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3)
}

// TestFailingWriter: a write error stops everything and is returned.
func TestFailingWriter(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	e, err := vhdcrypt.NewEncryptor(context.Background(), bytes.NewReader(testenv.RefFile(t, "plain.raw")), dek, vhdcrypt.WithWorkers(3), noTable)
	require.NoError(t, err)
	errBoom := io.ErrClosedPipe
	_, err = e.WriteTo(&failAfter{n: 3 << 20, err: errBoom})
	require.ErrorIs(t, err, errBoom)
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

// TestInspect describes the reference images.
func TestInspect(t *testing.T) {
	t.Parallel()
	info, err := vhdcrypt.Inspect(context.Background(), bytes.NewReader(testenv.RefFile(t, "enc-tap-sparse-k64.vhd")))
	require.NoError(t, err)
	require.Equal(t, "dynamic VHD", info.Format)
	require.Equal(t, "tap", info.Creator)
	require.True(t, info.Encrypted)
	require.Equal(t, 3, info.AllocatedBlocks)
	require.Equal(t, 1, info.FullBlocks)
	require.Equal(t, byte(0x64), info.KeyHash.Nonce[0])
	s := info.String()
	require.Contains(t, s, "encrypted:        yes")
	require.Contains(t, s, "6465666768") // the nonce, bytes 0x64..

	info, err = vhdcrypt.Inspect(context.Background(), streamOf(testenv.RefFile(t, "src-qemu.vhd")))
	require.NoError(t, err)
	require.Equal(t, "qem2", info.Creator)
	require.False(t, info.Encrypted)
	require.Equal(t, 3, info.AllocatedBlocks)
	require.Equal(t, int64(8<<20), info.VirtualSize)
	require.Contains(t, info.String(), "encrypted:        no")

	info, err = vhdcrypt.Inspect(context.Background(), bytes.NewReader(testenv.RefFile(t, "plain.raw")))
	require.NoError(t, err)
	require.Equal(t, "raw", info.Format)
	require.Equal(t, int64(8<<20), info.VirtualSize)
}

// TestQemuReadsOurVHD: qemu-img, an independent reader, accepts the
// unencrypted VHD that decryption writes and converts it back to the source.
func TestQemuReadsOurVHD(t *testing.T) {
	t.Parallel()
	qemu := testenv.QemuImg(t)
	dek := refKey(t, "key64.bin")
	dir := t.TempDir()
	for _, src := range []string{"enc-tap-sparse-k64.vhd", "enc-qemu-k64.vhd"} {
		out := filepath.Join(dir, src+".plain.vhd")
		require.NoError(t, vhdcrypt.DecryptFile(context.Background(), out, filepath.Join(testenv.RefDir(t), src), dek, vhdcrypt.WithFormat(vhdcrypt.FormatVHD)))
		raw := filepath.Join(dir, src+".raw")
		runCmd(t, qemu, "convert", "-f", "vpc", "-O", "raw", out, raw)
		got, err := os.ReadFile(raw)
		require.NoError(t, err)
		require.Equal(t, testenv.RefFile(t, "plain.raw"), got, src)
	}
}

// TestDecryptFileSparse: a decrypted raw file keeps unallocated blocks as
// holes (no disk space), including a hole at the very end.
func TestDecryptFileSparse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	disk := make([]byte, 64<<20)
	_, _ = rand.Read(disk[3<<20 : 5<<20])
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	require.NoError(t, err)
	enc := filepath.Join(dir, "enc.vhd")
	require.NoError(t, vhdcrypt.WriteFile(enc, mustEncryptor(t, bytes.NewReader(disk), dek, noTable)))
	out := filepath.Join(dir, "plain.raw")
	require.NoError(t, vhdcrypt.DecryptFile(context.Background(), out, enc, dek))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(disk, got))
	used := diskUsage(t, out)
	require.Less(t, used, int64(16<<20), "a 64 MiB image with 2 MiB of data used %d bytes", used)
}

func mustEncryptor(t *testing.T, src io.Reader, dek *vhdcrypt.DEK, opts ...vhdcrypt.Option) *vhdcrypt.Encryptor {
	t.Helper()
	e, err := vhdcrypt.NewEncryptor(context.Background(), src, dek, opts...)
	require.NoError(t, err)
	return e
}

// TestOutputsOtherThanFiles: a device is written directly (no temporary
// file beside it), a directory is refused.
func TestOutputsOtherThanFiles(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	src := filepath.Join(testenv.RefDir(t), "src-qemu.vhd")
	require.NoError(t, vhdcrypt.EncryptFile(context.Background(), os.DevNull, src, dek))
	fi, err := os.Stat(os.DevNull)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeDevice, "%s must still be a device", os.DevNull)
	require.Error(t, vhdcrypt.EncryptFile(context.Background(), t.TempDir(), src, dek))
}

// TestDecryptorReader pulls a decryption, and a raw stream logs that its
// output is dense.
func TestDecryptorReader(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	plain := testenv.RefFile(t, "plain.raw")
	enc := encrypt(t, streamOf(plain), dek, vhdcrypt.WithSize(int64(len(plain))), vhdcrypt.WithLogger(logger), noTable)
	require.Contains(t, logs.String(), "every block allocated")
	require.NotContains(t, logs.String(), string(dek.Bytes()[:6]))

	d, err := vhdcrypt.NewDecryptor(context.Background(), bytes.NewReader(enc), dek, vhdcrypt.WithFormat(vhdcrypt.FormatRaw))
	require.NoError(t, err)
	r := d.Reader()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, plain, got)
	_, err = d.Reader().Read(make([]byte, 1))
	require.ErrorIs(t, err, vhdcrypt.ErrUsed)

	f, err := vhdcrypt.ParseFormat("vhd")
	require.NoError(t, err)
	require.Equal(t, "vhd", f.String())
	_, err = vhdcrypt.ParseFormat("qcow2")
	require.Error(t, err)
}

// WithRandomNonce writes a non-zero nonce whose hash still matches the key,
// and two encryptions with the same key then carry different hashes.
func TestRandomNonce(t *testing.T) {
	t.Parallel()
	dek := refKey(t, "key64.bin")
	in := testenv.RefFile(t, "src-qemu.vhd")
	var hashes [][32]byte
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, vhdcrypt.EncryptImage(context.Background(), &out, bytes.NewReader(in), dek, vhdcrypt.WithRandomNonce()))
		kh, ok := openVHD(t, out.Bytes()).KeyHash()
		require.True(t, ok)
		require.NotEqual(t, [32]byte{}, kh.Nonce)
		require.True(t, kh.Matches(dek.Bytes()))
		hashes = append(hashes, kh.Hash)
	}
	require.NotEqual(t, hashes[0], hashes[1])
}
