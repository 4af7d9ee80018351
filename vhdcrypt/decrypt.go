package vhdcrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// Decryptor produces the decrypted form of one encrypted VHD: a raw disk
// image (FormatRaw, the default) or an unencrypted dynamic VHD with the
// same allocation (FormatVHD). Like Encryptor, it checks everything it can
// before output starts, including the key, knows its output size, and
// wipes its key schedules once the output ends.
//
// Sectors are decrypted exactly as tapdisk reads them: every present sector
// is decrypted, absent ones read as zeros. An image damaged by vhd-util
// copy's defect (see Check) therefore decrypts to the same garbage tapdisk
// would show; Check finds such damage.
type Decryptor struct {
	ctx    context.Context
	o      *options
	in     *input
	cipher *xts.Cipher
	alloc  []vhd.Bitmap // the input's allocation (nil: unallocated)
	layout *vhd.Layout  // FormatVHD only
	size   int64
	used   atomic.Bool
}

// NewDecryptor prepares the decryption of the encrypted dynamic VHD src
// (a file or a stream, see the package documentation) with dek. ctx governs
// the Decryptor's whole life.
//
// Errors: ErrNotEncrypted when src is not an encrypted VHD, ErrWrongKey when
// dek does not match its key hash, ErrKeySize (wrapped) for a bad DEK.
func NewDecryptor(ctx context.Context, src io.Reader, dek *DEK, opts ...Option) (*Decryptor, error) {
	o := buildOptions(opts)
	if err := checkDEK(dek); err != nil {
		return nil, err
	}
	if o.format != FormatRaw && o.format != FormatVHD {
		return nil, fmt.Errorf("vhdcrypt: unknown output format %v", o.format)
	}
	in, err := openEncrypted(src)
	if err != nil {
		return nil, err
	}
	if err := in.verifyKey(dek); err != nil {
		return nil, err
	}
	c, err := xts.NewCipher(dek.Bytes())
	if err != nil {
		return nil, fmt.Errorf("vhdcrypt: using the DEK: %w", err)
	}
	alloc, err := planAllocation(ctx, in, o)
	if err != nil {
		c.Wipe()
		return nil, err
	}
	d := &Decryptor{ctx: ctx, o: o, in: in, cipher: c, alloc: alloc}
	switch o.format {
	case FormatRaw:
		d.size = in.size
	case FormatVHD:
		d.layout = newLayout(in.size, alloc, nil, o)
		d.size = d.layout.FileSize()
	}
	return d, nil
}

// openEncrypted opens src and checks that it is an encrypted VHD.
func openEncrypted(src io.Reader) (*input, error) {
	in, err := openInput(src, -1, allowTable)
	if errors.Is(err, ErrNeedSize) {
		// A stream that does not start like a dynamic VHD.
		return nil, fmt.Errorf("vhdcrypt: the input is not a VHD: %w", ErrNotEncrypted)
	}
	if err != nil {
		return nil, err
	}
	if !in.encrypted() {
		return nil, fmt.Errorf("vhdcrypt: the input is a %s without a key hash: %w", in.kind, ErrNotEncrypted)
	}
	return in, nil
}

// keyHash returns an encrypted input's key hash.
func (in *input) keyHash() vhd.KeyHash {
	if in.img != nil {
		kh, _ := in.img.KeyHash()
		return kh
	}
	kh, _ := in.sr.KeyHash()
	return kh
}

func (in *input) verifyKey(dek *DEK) error {
	if err := checkDEK(dek); err != nil {
		return err
	}
	if !in.keyHash().Matches(dek.Bytes()) {
		return ErrWrongKey
	}
	return nil
}

// Size returns the exact size in bytes of the output.
func (d *Decryptor) Size() int64 { return d.size }

// WriteTo writes the decrypted image to w, once (see Encryptor.WriteTo).
func (d *Decryptor) WriteTo(w io.Writer) (int64, error) { return writeOnce(&d.used, d.newReader, w) }

// Reader returns the decrypted image as an io.ReadCloser (see
// Encryptor.Reader for the rules).
func (d *Decryptor) Reader() io.ReadCloser { return readOnce(&d.used, d.newReader) }

func (d *Decryptor) newReader() *outReader {
	cfg := pipelineConfig[blockJob]{
		workers: d.o.workers,
		depth:   pipelineDepth(d.o.workers),
		bufSize: vhd.BlockSize,
	}
	// Which blocks to emit: every block for a raw output, the allocated
	// ones for a VHD.
	next := 0
	nextBlock := func() (int, bool) {
		if d.o.format == FormatVHD {
			return nextAllocated(d.alloc, &next)
		}
		if next == len(d.alloc) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	switch {
	case d.in.ra != nil:
		cfg.read = func(_ context.Context, j *job[blockJob]) error {
			i, ok := nextBlock()
			if !ok {
				return errNoMoreJobs
			}
			j.v = blockJob{index: i, bitmap: d.alloc[i]}
			return nil
		}
		cfg.process = func(_ context.Context, j *job[blockJob]) error {
			if j.v.bitmap == nil {
				clear(j.buf)
				return nil
			}
			if err := d.in.readBlockAt(j.v.index, j.buf); err != nil {
				return err
			}
			return decryptBlock(d.cipher, j.buf, j.v.index, j.v.bitmap)
		}
	default:
		cfg.read = func(_ context.Context, j *job[blockJob]) error {
			i, ok := nextBlock()
			if !ok {
				if _, err := d.in.sr.Next(j.buf); !errors.Is(err, io.EOF) {
					if err == nil {
						err = errors.New("a block past the last allocated one")
					}
					return fmt.Errorf("vhdcrypt: reading the input stream: %w", err)
				}
				return errNoMoreJobs
			}
			if d.alloc[i] == nil {
				j.v = blockJob{index: i}
				return nil
			}
			b, err := d.in.sr.Next(j.buf)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("vhdcrypt: reading block %d of the input stream: %w", i, err)
			}
			if b.Index != i {
				return fmt.Errorf("vhdcrypt: the input stream holds block %d where block %d was expected", b.Index, i)
			}
			j.v = blockJob{index: i, bitmap: b.Bitmap}
			return nil
		}
		cfg.process = func(_ context.Context, j *job[blockJob]) error {
			if j.v.bitmap == nil {
				clear(j.buf)
				return nil
			}
			return decryptBlock(d.cipher, j.buf, j.v.index, j.v.bitmap)
		}
	}
	var em emitter = rawEmitter{size: d.in.size}
	if d.o.format == FormatVHD {
		em = &vhdEmitter{layout: d.layout}
	}
	return &outReader{ctx: d.ctx, cfg: cfg, em: em, total: d.size, phase: PhaseDecrypt, o: d.o, finish: d.cipher.Wipe}
}

// DecryptImage decrypts the encrypted VHD src with dek and writes the result
// to dst: a raw disk image by default, an unencrypted dynamic VHD with
// WithFormat(FormatVHD). It is NewDecryptor followed by WriteTo.
func DecryptImage(ctx context.Context, dst io.Writer, src io.Reader, dek *DEK, opts ...Option) error {
	d, err := NewDecryptor(ctx, src, dek, opts...)
	if err != nil {
		return err
	}
	_, err = d.WriteTo(dst)
	return err
}

// DecryptFile decrypts the encrypted VHD file at srcPath into dstPath, with
// the same all-or-nothing file handling as EncryptFile.
func DecryptFile(ctx context.Context, dstPath, srcPath string, dek *DEK, opts ...Option) error {
	return convertFile(dstPath, srcPath, func(src *os.File) (io.WriterTo, error) {
		return NewDecryptor(ctx, src, dek, opts...)
	})
}

// VerifyKey checks dek against the key hash of the encrypted VHD src
// without decrypting anything (only the VHD's metadata is read, also from a
// stream). It returns nil when the key matches, ErrWrongKey when it does
// not, and ErrNotEncrypted when src is not an encrypted VHD.
func VerifyKey(ctx context.Context, src io.Reader, dek *DEK) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkDEK(dek); err != nil {
		return err
	}
	in, err := openEncrypted(src)
	if err != nil {
		return err
	}
	return in.verifyKey(dek)
}
