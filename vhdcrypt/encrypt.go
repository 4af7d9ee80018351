package vhdcrypt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync/atomic"

	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// Encryptor produces the encrypted VHD of one input image. Its size is known
// before the first byte is written (Size), which is what an uploader needs to
// announce a content length or plan multipart parts.
//
// NewEncryptor does everything that can fail before output starts: it
// detects the input, checks it is not encrypted, and plans the output's
// layout (for a raw or fixed VHD file this reads the whole input once, see
// the package documentation). WriteTo or Reader then produce the output,
// once. The Encryptor keeps no copy of the DEK, only the AES key schedules,
// which it wipes as soon as the output ends (finished, failed or closed).
type Encryptor struct {
	ctx       context.Context
	o         *options
	in        *input
	cipher    *xts.Cipher
	layout    *vhd.Layout
	allocated int // allocated blocks in the output
	size      int64
	used      atomic.Bool
}

// NewEncryptor prepares the encryption of src with dek. src may be a raw
// disk image, a fixed VHD, a dynamic VHD or (with random access only) a
// qcow2 image, read with random access when it can be (see the package
// documentation) and as a stream otherwise. ctx governs the whole life of
// the Encryptor, including WriteTo and Reader: cancelling it stops them.
//
// Errors: ErrAlreadyEncrypted for an encrypted VHD, ErrKeySize (wrapped) for
// a bad DEK, ErrNeedSize for a raw stream without WithSize, disk's typed
// errors for an image it does not read (another format, a raw or qcow2 disk
// without a partition table unless WithoutPartitionTable, a qcow2 stream),
// vhd errors for a malformed VHD.
func NewEncryptor(ctx context.Context, src io.Reader, dek *DEK, opts ...Option) (_ *Encryptor, err error) {
	o := buildOptions(opts)
	if err := checkDEK(dek); err != nil {
		return nil, err
	}
	c, err := xts.NewCipher(dek.Bytes())
	if err != nil {
		return nil, fmt.Errorf("vhdcrypt: using the DEK: %w", err)
	}
	defer func() {
		if err != nil {
			c.Wipe()
		}
	}()
	in, err := openInput(src, o.size, o.diskOptions())
	if err != nil {
		return nil, err
	}
	if in.encrypted() {
		return nil, fmt.Errorf("vhdcrypt: encrypting the input: %w", ErrAlreadyEncrypted)
	}
	e := &Encryptor{ctx: ctx, o: o, in: in, cipher: c}
	alloc, err := planAllocation(ctx, in, o)
	if err != nil {
		return nil, err
	}
	var nonce [32]byte // the default: the zero nonce (see WithNonce)
	switch {
	case o.nonce != nil:
		nonce = *o.nonce
	case o.random:
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, fmt.Errorf("vhdcrypt: making the key hash nonce: %w", err)
		}
	}
	kh := vhd.ComputeKeyHash(nonce, dek.Bytes())
	e.layout = newLayout(in.size, alloc, &kh, o)
	for _, bm := range alloc {
		if bm != nil {
			e.allocated++
		}
	}
	e.size = e.layout.FileSize()
	o.logger.Debug("vhdcrypt: encryption planned", "input", in.kind.String(), "virtual_size", in.size,
		"blocks", len(alloc), "allocated", e.allocated, "output_size", e.size)
	return e, nil
}

// checkDEK checks the key's length; the error never shows the key.
func checkDEK(dek *DEK) error {
	if n := dek.Len(); n != AES128XTS && n != AES256XTS {
		return fmt.Errorf("vhdcrypt: %w (got %d bytes)", ErrKeySize, n)
	}
	return nil
}

func (in *input) encrypted() bool {
	switch {
	case in.img != nil:
		_, ok := in.img.KeyHash()
		return ok
	case in.sr != nil:
		_, ok := in.sr.KeyHash()
		return ok
	}
	return false
}

// newLayout builds the output layout with the reproducibility options.
func newLayout(size int64, alloc []vhd.Bitmap, kh *vhd.KeyHash, o *options) *vhd.Layout {
	l := &vhd.Layout{Size: size, Allocated: alloc, KeyHash: kh, Timestamp: o.timestamp}
	if o.uniqueID != nil {
		l.UniqueID = *o.uniqueID // otherwise zero, which vhd replaces with random bytes
	}
	return l
}

// Size returns the exact size in bytes of the encrypted VHD that WriteTo or
// Reader will produce.
func (e *Encryptor) Size() int64 { return e.size }

// VirtualSize returns the size in bytes of the virtual disk being
// encrypted.
func (e *Encryptor) VirtualSize() int64 { return e.in.size }

// AllocatedBlocks returns how many 2 MiB blocks the output stores, and the
// virtual disk's total number of blocks.
func (e *Encryptor) AllocatedBlocks() (allocated, total int) {
	return e.allocated, len(e.layout.Allocated)
}

// planAllocation decides the output's allocation, block by block (nil:
// unallocated), as the package documentation's table says:
//
//   - Dynamic VHD, random access: the source's own allocation and sector
//     bitmaps, from its BAT and bitmaps, without reading any data. Partial
//     bitmaps are kept, and only present sectors are encrypted, as tapdisk
//     itself writes. A block allocated with no sector present is dropped.
//   - Dynamic VHD, random access, WithoutZeroScan: the source's BAT alone,
//     as for a stream (below): no bitmap is read before the output starts.
//   - Dynamic VHD stream: the source's BAT; the sector bitmaps only arrive
//     with each block, after the header has been written, so every
//     allocated block is written full, its absent sectors as encrypted
//     zeros (which decrypt to the zeros they were).
//   - qcow2 (random access only): the clusters the image stores, plain or
//     compressed, as sector bitmaps (disk.Disk.Block), without reading any
//     data; unallocated clusters and clusters marked zero are absent, and a
//     block with none stored is unallocated. As for a dynamic VHD, stored
//     clusters are kept even when their data happens to be zero.
//   - Raw or fixed VHD, random access: one parallel pass finds the all-zero
//     blocks, which stay unallocated; the other blocks are full.
//   - Raw or fixed VHD stream: every block is allocated and full, since no
//     block can be known to be zero before the stream has been read.
func planAllocation(ctx context.Context, in *input, o *options) ([]vhd.Bitmap, error) {
	n := numBlocks(in.size)
	alloc := make([]vhd.Bitmap, n)
	full := vhd.FullBitmap() // shared by every full block: memory stays O(blocks) words
	switch {
	case in.kind == kindDynamic && in.img != nil && o.noScan:
		// WithoutZeroScan: the block table alone, as for a stream, so that
		// a remote input is read front to back once (each block's bitmap
		// with its data) instead of every bitmap first.
		for i := range n {
			if in.img.Allocated(i) {
				alloc[i] = full
			}
		}
	case in.kind == kindDynamic && in.img != nil:
		if err := planBlocks(ctx, in.img.Blocks(), alloc, "block map"); err != nil {
			return nil, err
		}
	case in.kind == kindDynamic:
		for i := range n {
			if in.sr.Allocated(i) {
				alloc[i] = full
			}
		}
	case in.kind == kindQCOW2:
		if err := planBlocks(ctx, in.d.Blocks(), alloc, "cluster map"); err != nil {
			return nil, err
		}
	case in.ra != nil && o.noScan:
		o.logger.Debug("vhdcrypt: no zero scan asked for: every block of the raw or fixed input is allocated", "virtual_size", in.size)
		for i := range alloc {
			alloc[i] = full
		}
	case in.ra != nil:
		nonZero, err := scanZeroBlocks(ctx, in, o)
		if err != nil {
			return nil, err
		}
		for i := range n {
			if nonZero[i] {
				alloc[i] = full
			}
		}
	default:
		o.logger.Warn("vhdcrypt: a raw image read from a stream is encrypted with every block allocated; give a file, or a dynamic VHD, for sparse output",
			"virtual_size", in.size)
		for i := range alloc {
			alloc[i] = full
		}
	}
	return alloc, nil
}

// planBlocks fills alloc from a block map (a dynamic VHD's or a qcow2
// image's): full blocks share one full bitmap, partial ones keep theirs,
// and a block stored with no sector present (a VHD's; qcow2 yields none)
// reads as zeros and is left out.
func planBlocks(ctx context.Context, blocks iter.Seq2[vhd.BlockInfo, error], alloc []vhd.Bitmap, what string) error {
	full := vhd.FullBitmap()
	for b, err := range blocks {
		if err != nil {
			return fmt.Errorf("vhdcrypt: reading the input's %s: %w", what, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case b.Full:
			alloc[b.Index] = full
		case b.Bitmap.Empty():
		default:
			alloc[b.Index] = b.Bitmap
		}
	}
	return nil
}

// WriteTo writes the encrypted VHD to w: exactly Size bytes, with no
// seeking, in large writes. It returns the number of bytes written and the
// first error of any stage. It can be called once (the second call returns
// ErrUsed); Reader and WriteTo are exclusive.
func (e *Encryptor) WriteTo(w io.Writer) (int64, error) { return writeOnce(&e.used, e.newReader, w) }

// Reader returns the encrypted VHD as an io.ReadCloser, for APIs that pull
// (an HTTP request body, an SDK uploader). The work starts at the first
// Read and runs in background goroutines; Close stops them and must be
// called unless Read has returned an error or io.EOF. Reading to the end
// yields exactly Size bytes. The reader implements io.WriterTo, so io.Copy
// uses the same path as WriteTo. Reader and WriteTo are exclusive, and
// Reader can be called once (a second call returns a reader whose Read
// fails with ErrUsed).
func (e *Encryptor) Reader() io.ReadCloser { return readOnce(&e.used, e.newReader) }

// writeOnce is WriteTo of an Encryptor or Decryptor: the first use of used
// writes newReader's output to w, later ones fail with ErrUsed.
func writeOnce(used *atomic.Bool, newReader func() *outReader, w io.Writer) (int64, error) {
	if !used.CompareAndSwap(false, true) {
		return 0, ErrUsed
	}
	r := newReader()
	n, err := r.WriteTo(w)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// readOnce is Reader of an Encryptor or Decryptor (see writeOnce).
func readOnce(used *atomic.Bool, newReader func() *outReader) io.ReadCloser {
	if !used.CompareAndSwap(false, true) {
		return errReader{ErrUsed}
	}
	return newReader()
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
func (r errReader) Close() error             { return nil }

// blockJob is what flows through an encryption or decryption pipeline.
type blockJob struct {
	index  int
	bitmap vhd.Bitmap // sectors to transform; nil: none (a zero block)
}

// newReader sets up the output stream (nothing runs until the first Read or
// WriteTo).
func (e *Encryptor) newReader() *outReader {
	cfg := pipelineConfig[blockJob]{
		workers: e.o.workers,
		depth:   pipelineDepth(e.o.workers),
		bufSize: vhd.BlockSize,
	}
	switch {
	case e.in.ra != nil:
		next := 0
		cfg.read = func(_ context.Context, j *job[blockJob]) error {
			i, ok := nextAllocated(e.layout.Allocated, &next)
			if !ok {
				return errNoMoreJobs
			}
			j.v = blockJob{index: i, bitmap: e.layout.Allocated[i]}
			return nil
		}
		cfg.process = func(_ context.Context, j *job[blockJob]) error {
			if err := e.in.readBlockAt(j.v.index, j.buf); err != nil {
				return err
			}
			return encryptBlock(e.cipher, j.buf, j.v.index, j.v.bitmap)
		}
	case e.in.sr != nil:
		cfg.read = func(_ context.Context, j *job[blockJob]) error {
			b, err := e.in.sr.Next(j.buf)
			if errors.Is(err, io.EOF) {
				return errNoMoreJobs
			}
			if err != nil {
				return fmt.Errorf("vhdcrypt: reading the input stream: %w", err)
			}
			if b.Index < 0 || b.Index >= len(e.layout.Allocated) || e.layout.Allocated[b.Index] == nil {
				return fmt.Errorf("vhdcrypt: the input stream holds block %d, which its BAT does not allocate", b.Index)
			}
			// The output marks every sector present; the absent ones are
			// zeros in buf (Next zeroes them) and get encrypted as such.
			j.v = blockJob{index: b.Index, bitmap: e.layout.Allocated[b.Index]}
			return nil
		}
		cfg.process = func(_ context.Context, j *job[blockJob]) error {
			return encryptBlock(e.cipher, j.buf, j.v.index, j.v.bitmap)
		}
	default:
		next := 0
		cfg.read = func(_ context.Context, j *job[blockJob]) error {
			if next == len(e.layout.Allocated) {
				return errNoMoreJobs
			}
			if err := e.in.readRawStreamBlock(next, j.buf); err != nil {
				return err
			}
			j.v = blockJob{index: next, bitmap: e.layout.Allocated[next]}
			next++
			return nil
		}
		cfg.process = func(_ context.Context, j *job[blockJob]) error {
			return encryptBlock(e.cipher, j.buf, j.v.index, j.v.bitmap)
		}
	}
	return &outReader{
		ctx:    e.ctx,
		cfg:    cfg,
		em:     &vhdEmitter{layout: e.layout},
		total:  e.size,
		phase:  PhaseEncrypt,
		o:      e.o,
		finish: e.cipher.Wipe,
	}
}

// nextAllocated returns the first allocated block at or after *next and
// moves *next past it; ok is false when there is none.
func nextAllocated(alloc []vhd.Bitmap, next *int) (i int, ok bool) {
	for *next < len(alloc) {
		i = *next
		*next++
		if alloc[i] != nil {
			return i, true
		}
	}
	return 0, false
}

// pipelineDepth is the number of block buffers in flight for n workers:
// one being processed by each worker, as many again queued for the writer
// so that a worker never waits for a slow one ahead of it, plus the one the
// reader fills and the one being written. With 2 MiB blocks, 2 workers use
// 12 MiB and 8 workers 36 MiB, whatever the image size.
func pipelineDepth(workers int) int { return 2*workers + 2 }

// encryptBlock encrypts, in place, the sectors of block i that bm marks
// present.
func encryptBlock(c *xts.Cipher, buf []byte, i int, bm vhd.Bitmap) error {
	return forEachRun(bm, func(s, e int) error {
		first := uint64(i)*vhd.SectorsPerBlock + uint64(s)
		if err := c.EncryptSectors(buf[s*vhd.SectorSize:e*vhd.SectorSize], buf[s*vhd.SectorSize:e*vhd.SectorSize], first); err != nil {
			return fmt.Errorf("vhdcrypt: encrypting block %d: %w", i, err)
		}
		return nil
	})
}

// decryptBlock decrypts, in place, the sectors of block i that bm marks
// present.
func decryptBlock(c *xts.Cipher, buf []byte, i int, bm vhd.Bitmap) error {
	return forEachRun(bm, func(s, e int) error {
		first := uint64(i)*vhd.SectorsPerBlock + uint64(s)
		if err := c.DecryptSectors(buf[s*vhd.SectorSize:e*vhd.SectorSize], buf[s*vhd.SectorSize:e*vhd.SectorSize], first); err != nil {
			return fmt.Errorf("vhdcrypt: decrypting block %d: %w", i, err)
		}
		return nil
	})
}

// forEachRun calls fn for each maximal run [s, e) of present sectors of bm,
// in order. A nil bitmap has none.
func forEachRun(bm vhd.Bitmap, fn func(s, e int) error) error {
	n := min(len(bm)*8, vhd.SectorsPerBlock)
	s := 0
	for s < n {
		// Skip absent sectors, a byte at a time where possible.
		for s < n && !bm.Present(s) {
			if s&7 == 0 && bm[s>>3] == 0 {
				s += 8
				continue
			}
			s++
		}
		if s >= n {
			break
		}
		e := s
		for e < n && bm.Present(e) {
			if e&7 == 0 && bm[e>>3] == 0xFF {
				e += 8
				continue
			}
			e++
		}
		if err := fn(s, min(e, n)); err != nil {
			return err
		}
		s = e
	}
	return nil
}

// EncryptImage encrypts the image src with dek and writes the encrypted,
// tapdisk-style dynamic VHD to dst, a plain io.Writer that is never seeked.
// It is NewEncryptor followed by WriteTo; use those to learn the output size
// first or to pull the output through an io.Reader.
func EncryptImage(ctx context.Context, dst io.Writer, src io.Reader, dek *DEK, opts ...Option) error {
	e, err := NewEncryptor(ctx, src, dek, opts...)
	if err != nil {
		return err
	}
	_, err = e.WriteTo(dst)
	return err
}

// EncryptFile encrypts the image file at srcPath into dstPath. The output is
// written to a temporary file beside dstPath (mode 0600) and renamed over it
// only when complete and synced: on any error or cancellation dstPath is
// untouched and nothing partial is left. A dstPath that exists and is not a
// regular file (a device, a pipe) is written directly.
func EncryptFile(ctx context.Context, dstPath, srcPath string, dek *DEK, opts ...Option) error {
	return convertFile(dstPath, srcPath, func(src *os.File) (io.WriterTo, error) {
		return NewEncryptor(ctx, src, dek, opts...)
	})
}

// convertFile opens srcPath, makes the verb's output from it with start and
// writes that to dstPath all or nothing (writeOutput). It is the shared body
// of EncryptFile and DecryptFile.
func convertFile(dstPath, srcPath string, start func(*os.File) (io.WriterTo, error)) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return fmt.Errorf("vhdcrypt: opening the input: %w", err)
	}
	defer src.Close()
	out, err := start(src)
	if err != nil {
		return err
	}
	return writeOutput(dstPath, srcPath, out.WriteTo)
}
