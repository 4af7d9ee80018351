package fuzzall

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/test/internal/hvhd"
	"github.com/e2eimage/e2eimage/vhd"
)

// Limits of FuzzVHDMeta's inputs: a few KiB of metadata the fuzzer
// mutates, placed at the start of a sparse file of at most 16 MiB more.
const (
	maxMeta       = 16 << 10
	extraUnit     = 256 // bytes of sparse data per unit of extra
	metaFixFooter = 1 << iota
	metaFixHeader
	metaFixBatmap
	metaKeyHash
	metaFillOnes
)

// metaFile builds FuzzVHDMeta's file: meta at offset 0, then extra*256
// bytes of fill, then a copy of meta's first 512 bytes as the end footer.
// The flags fix the checksums the fuzzer cannot compute (so mutations reach
// the checks behind them) and, for an encrypted image, store the hash of
// the fuzz DEK so that decryption goes past the key check.
func metaFile(meta []byte, flags uint8, extra uint16) *hvhd.Sparse {
	if len(meta) > maxMeta {
		meta = meta[:maxMeta]
	}
	m := make([]byte, (len(meta)+vhd.SectorSize-1)/vhd.SectorSize*vhd.SectorSize)
	if len(m) < vhd.FooterSize {
		m = make([]byte, vhd.FooterSize)
	}
	copy(m, meta)
	size := int64(len(m)) + int64(extra)*extraUnit + vhd.FooterSize
	f := &hvhd.Sparse{Size: size}
	if flags&metaFillOnes != 0 {
		f.Fill = 0xFF
	}
	ho := int64(binary.BigEndian.Uint64(m[hvhd.FooterDataOffset:]))
	headerIn := ho >= 0 && ho <= int64(len(m))-vhd.HeaderSize
	if flags&metaFixHeader != 0 && headerIn {
		hvhd.FixHeader(m, ho)
	}
	// Where tapdisk looks for the batmap header: after the BAT.
	bh := int64(-1)
	if headerIn {
		to := binary.BigEndian.Uint64(m[ho+hvhd.HeaderTableOffset:])
		n := uint64(binary.BigEndian.Uint32(m[ho+hvhd.HeaderMaxEntries:]))
		if to < uint64(len(m)) {
			if at := to + (n*4+511)/512*512; at+vhd.BatmapHeaderSize <= uint64(len(m)) {
				bh = int64(at)
			}
		}
	}
	if bh >= 0 && flags&metaKeyHash != 0 && m[bh+hvhd.BatmapKeyCookie] == 1 {
		var nonce [32]byte
		copy(nonce[:], m[bh+hvhd.BatmapNonce:])
		kh := vhd.ComputeKeyHash(nonce, hvhd.DEKBytes())
		copy(m[bh+hvhd.BatmapHash:], kh.Hash[:])
	}
	end := make([]byte, vhd.FooterSize)
	copy(end, m[:vhd.FooterSize])
	if flags&metaFixFooter != 0 {
		hvhd.FixFooterAt(m, 0)
		hvhd.FixFooterAt(end, 0)
	}
	f.Parts = []hvhd.Part{{Off: 0, B: m}, {Off: size - vhd.FooterSize, B: end}}
	if bh >= 0 && flags&metaFixBatmap != 0 {
		off := binary.BigEndian.Uint64(m[bh+hvhd.BatmapOffsetField:])
		n := uint64(binary.BigEndian.Uint32(m[bh+hvhd.BatmapSizeField:])) * vhd.SectorSize
		if n <= 2<<20 && off < uint64(size) && n <= uint64(size)-off {
			b := make([]byte, n)
			_, _ = f.ReadAt(b, int64(off))
			var s uint32
			for _, c := range b {
				s += uint32(c)
			}
			hvhd.Put32(m, bh+hvhd.BatmapChecksum, ^s)
		}
	}
	return f
}

// FuzzVHDMeta mutates the metadata of a dynamic VHD (footer, dynamic
// header, BAT, batmap header and batmap, with checksums fixed up on
// request) in front of sparse block data, and runs every reader and e2e
// verb on the result: each ends with nil or a typed error, and what
// opens reads consistently.
func FuzzVHDMeta(f *testing.F) {
	for _, b := range metaSeeds(f) {
		f.Add(b, uint8(0xFF&^metaFillOnes), uint16(len(b)/extraUnit+9000))
	}
	dek, err := vhdcrypt.DEKFromBytes(hvhd.DEKBytes())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(dek.Zero)
	f.Fuzz(func(t *testing.T, meta []byte, flags uint8, extra uint16) {
		file := metaFile(meta, flags, extra)
		ctx := context.Background()
		check := func(what string, err error) {
			t.Helper()
			if err != nil && !hvhd.Typed(err) {
				t.Fatalf("%s: untyped error %T: %v", what, err, err)
			}
		}
		img, err := vhd.Open(file, file.Size)
		check("Open", err)
		if img != nil {
			if img.Size() < 0 || img.Size() > vhd.MaxSize {
				t.Fatalf("virtual size %d", img.Size())
			}
			n := 0
			for b, err := range img.Blocks() {
				check("Blocks", err)
				if err == nil && len(b.Bitmap) != vhd.BitmapSize {
					t.Fatalf("bitmap of %d bytes", len(b.Bitmap))
				}
				if n++; n > 16 {
					break
				}
			}
			p := make([]byte, 1024)
			for _, off := range []int64{0, img.Size() / 3, img.Size() - 600} {
				if off >= 0 && off < img.Size() {
					_, err := img.ReadAt(p, off)
					if err != io.EOF {
						check("ReadAt", err)
					}
				}
			}
			if img.NumBlocks() <= 64 {
				_, err := img.Check(ctx)
				check("Check", err)
			}
		}
		stream := func() io.Reader { return struct{ io.Reader }{io.NewSectionReader(file, 0, file.Size)} }
		s, err := vhd.NewStreamReader(stream())
		check("NewStreamReader", err)
		if s != nil {
			buf := make([]byte, vhd.BlockSize)
			for range 16 {
				if _, err := s.Next(buf); err != nil {
					if err != io.EOF {
						check("Next", err)
					}
					break
				}
			}
		}
		if img == nil || img.NumBlocks() > 64 {
			return // the verbs would treat a non-VHD as a raw disk, or walk a huge map
		}
		file1 := func() io.Reader { return io.NewSectionReader(file, 0, file.Size) }
		_, err = vhdcrypt.Inspect(ctx, file1())
		check("Inspect", err)
		_, err = vhdcrypt.VerifyImage(ctx, file1(), dek)
		check("VerifyImage", err)
		var cw countWriter
		err = vhdcrypt.DecryptImage(ctx, &cw, file1(), dek, vhdcrypt.WithWorkers(1))
		check("DecryptImage", err)
		if err == nil && cw.n != img.Size() {
			t.Fatalf("decrypted %d bytes of a %d-byte disk", cw.n, img.Size())
		}
		cw.n = 0
		err = vhdcrypt.EncryptImage(ctx, &cw, file1(), dek, vhdcrypt.WithWorkers(1))
		check("EncryptImage", err)
	})
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// metaSeeds are the metadata areas of the base images and of the small
// hostile cases.
func metaSeeds(tb testing.TB) [][]byte {
	cases, err := hvhd.Cases()
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, c := range cases {
		if c.Huge != nil || len(c.Data) < 4096 {
			continue
		}
		out = append(out, c.Data[:4096])
	}
	return out
}
