package vhd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// seedTime is the footer timestamp of every generated seed, so that the
// generator makes the same bytes every time.
var seedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fuzzSeeds returns small valid images of every kind the reader handles
// (the fuzzer works best on inputs of a few KiB) and hostile mutations of
// them. The same call always returns the same bytes.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	kh := ComputeKeyHash([32]byte{1, 2, 3}, []byte("0123456789abcdef0123456789abcdef"))
	l := &Layout{Size: 3 * BlockSize, Allocated: make([]Bitmap, 3), KeyHash: &kh, UniqueID: [16]byte{1}, Timestamp: seedTime}
	seeds["tap-encrypted-empty"] = writeImage(t, l, nil)
	seeds["tap-zero-size"] = writeImage(t, &Layout{Size: 0, UniqueID: [16]byte{2}, Timestamp: seedTime}, nil)
	raw := sparseRaw(7, 24<<10)
	seeds["win-4k-blocks"] = buildVHD(t, raw, 4096, "win ", nil)
	seeds["qem2-512-blocks"] = buildVHD(t, raw[:8<<10], 512, "qem2", nil)
	seeds["tap-4k-blocks-reversed"] = buildVHD(t, raw, 4096, "tap\x00", []int{5, 4, 3, 2, 1, 0})
	var fixed bytes.Buffer
	require.NoError(t, WriteFixed(&fixed, bytes.NewReader(raw[:8<<10]), 8<<10))
	editFooter(t, fixed.Bytes(), func(f *Footer) { f.Timestamp, f.UniqueID = vhdTimestamp(seedTime), [16]byte{3} })
	seeds["fixed-8k"] = fixed.Bytes()
	base := seeds["tap-encrypted-empty"]
	for _, c := range malformedCases() {
		func() {
			defer func() { _ = recover() }() // some mutations only fit the big base
			b := c.mutate(t, bytes.Clone(base))
			if len(b) <= 64<<10 {
				seeds["bad-"+c.name] = b
			}
		}()
	}
	return seeds
}

// seedDirs are the fuzz targets whose seed-* files fuzzSeeds generates.
var seedDirs = []string{"FuzzOpen", "FuzzFooter", "FuzzHeader"}

// seedFiles returns the seed files fuzzSeeds generates, by path under
// testdata/fuzz, with their content in the fuzzing engine's format.
func seedFiles(t testing.TB) map[string][]byte {
	files := map[string][]byte{}
	add := func(target, name string, b []byte) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		files[filepath.Join("testdata", "fuzz", target, "seed-"+sanitize(name))] = []byte(body)
	}
	for name, b := range fuzzSeeds(t) {
		add("FuzzOpen", name, b)
		if len(b) >= FooterSize {
			add("FuzzFooter", name, b[len(b)-FooterSize:])
		}
		if len(b) >= tapHeaderOffset+HeaderSize && !bytes.HasPrefix([]byte(name), []byte("fixed")) {
			add("FuzzHeader", name, b[tapHeaderOffset:tapHeaderOffset+HeaderSize])
		}
	}
	return files
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/Fuzz*/seed-* when
// VHD_WRITE_FUZZ_SEEDS=1 (after a format change); otherwise it checks that
// the committed seed files are exactly what the generator makes: the same
// names, the same bytes, and no seed file the generator no longer makes.
// It also checks that the valid images among the seeds open.
func TestWriteFuzzSeeds(t *testing.T) {
	t.Parallel()
	for name, b := range fuzzSeeds(t) {
		if len(b) > 0 && !bytes.HasPrefix([]byte(name), []byte("bad-")) {
			_, err := Open(bytes.NewReader(b), int64(len(b)))
			require.NoError(t, err, name)
		}
	}
	want := seedFiles(t)
	if os.Getenv("VHD_WRITE_FUZZ_SEEDS") == "1" {
		for path, body := range want {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, body, 0o644))
		}
		return
	}
	committed := map[string]bool{}
	for _, dir := range seedDirs {
		names, err := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "seed-*"))
		require.NoError(t, err)
		for _, n := range names {
			committed[n] = true
		}
	}
	matched := 0
	for path, body := range want {
		got, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			t.Errorf("%s: the generator makes this seed, but it is not committed (VHD_WRITE_FUZZ_SEEDS=1 writes it)", path)
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(got, body):
			t.Errorf("%s: the committed seed differs from what the generator makes (VHD_WRITE_FUZZ_SEEDS=1 rewrites it)", path)
		default:
			matched++
		}
		delete(committed, path)
	}
	for path := range committed {
		t.Errorf("%s: committed, but the generator no longer makes it", path)
	}
	if matched == 0 {
		t.Fatal("no committed seed was compared")
	}
	t.Logf("%d committed seed files match the generator", matched)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// FuzzFooter: ParseFooter never panics, and what it accepts re-encodes to a
// footer that parses to the same fields.
func FuzzFooter(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := ParseFooter(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := ft.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseFooter(enc)
		if err != nil {
			t.Fatalf("re-encoded footer does not parse: %v", err)
		}
		ft.Checksum, back.Checksum = 0, 0 // reserved bytes are not kept
		if ft != back {
			t.Fatalf("round trip changed the footer:\n%+v\n%+v", ft, back)
		}
	})
}

// FuzzHeader: ParseHeader never panics, round trips, and decodes any parent
// name.
func FuzzHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = h.ParentName()
		enc, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		h.Checksum, back.Checksum = 0, 0
		if h != back {
			t.Fatalf("round trip changed the header")
		}
	})
}

// FuzzOpen opens arbitrary files: every failure is a typed error; every
// success iterates its blocks, reads a few ranges, checks, and streams,
// consistently and within the file.
func FuzzOpen(f *testing.F) {
	f.Fuzz(fuzzOpen)
}

func fuzzOpen(t *testing.T, b []byte) {
	{
		img, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrNotVHD) && !errors.Is(err, ErrDifferencing) {
				t.Fatalf("untyped error %v", err)
			}
			_ = drainStream(b)
			return
		}
		if img.Size() < 0 || img.Size() > MaxSize {
			t.Fatalf("size %d", img.Size())
		}
		var buf []byte
		n := 0
		for blk, err := range img.Blocks() {
			if err != nil {
				t.Fatalf("block %d: %v", blk.Index, err) // Open validated every block
			}
			if len(blk.Bitmap) != BitmapSize {
				t.Fatalf("bitmap of %d bytes", len(blk.Bitmap))
			}
			if n++; n <= 4 {
				if buf == nil {
					buf = make([]byte, BlockSize)
				}
				if err := img.ReadBlock(blk.Index, buf); err != nil {
					t.Fatalf("ReadBlock(%d): %v", blk.Index, err)
				}
			}
		}
		for _, off := range []int64{0, 1, img.Size() / 2, img.Size() - 700, img.Size() - 1} {
			if off < 0 || off >= img.Size() {
				continue
			}
			p := make([]byte, 1500)
			m, err := img.ReadAt(p, off)
			if err != nil && err != io.EOF {
				t.Fatalf("ReadAt(%d): %v", off, err)
			}
			if want := min(int64(len(p)), img.Size()-off); int64(m) != want {
				t.Fatalf("ReadAt(%d) read %d, want %d", off, m, want)
			}
		}
		if _, err := img.Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
		copyOK := true // a stream reads the footer copy at 0, Open the one at the end
		for _, p := range img.problems {
			copyOK = copyOK && p.Field != "footer copy"
		}
		if img.Type() == Dynamic && copyOK {
			err := drainStream(b)
			if err != nil && !errors.Is(err, ErrNotStreamable) {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("stream: untyped error %v", err)
				}
				// The stream sees the same bytes: only a damaged end
				// footer (not read by a stream) or an EOF can differ.
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("Open accepts what the stream rejects: %v", err)
				}
			}
		}
	}
}

func ExampleBitmap() {
	bm := make(Bitmap, BitmapSize)
	bm.Set(0)
	bm.Set(8)
	fmt.Println(bm.Count(), bm.Present(8), bm.Full())
	// Output: 2 true false
}
