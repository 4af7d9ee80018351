package disk

import (
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/e2eimage/e2eimage/vhd"
)

// Option changes how Open reads an image.
type Option func(*options)

type options struct {
	allowNoTable bool
}

// AllowNoPartitionTable lets Open accept a raw or qcow2 disk that starts
// with neither an MBR nor a GPT (a deliberate file-system-only image, for
// instance). Without it such a disk is refused with *NoPartitionTableError,
// because IBM Cloud boots the disk it imports.
func AllowNoPartitionTable() Option { return func(o *options) { o.allowNoTable = true } }

// Disk is an image opened as a virtual disk: ReadAt reads the guest's bytes
// (decompressed, with unallocated parts as zeros) whatever the container,
// and Block describes each 2 MiB block's allocation as vhd.Image does.
//
// A Disk is safe for concurrent use when the io.ReaderAt it reads is.
type Disk struct {
	format  Format
	size    int64 // virtual size, a multiple of 512
	srcSize int64 // bytes src can give (raw: the file size; others: the virtual size)
	src     io.ReaderAt
	vhd     *vhd.Image
	qcow    guarded
}

// Open detects the format of the image r of size bytes and opens it as a
// virtual disk. It reads raw disks, fixed and dynamic VHDs (through package
// vhd) and qcow2 version 2 and 3 images (through go-qcow2reader). Every
// other format Detect knows gets an *UnsupportedFormatError naming the
// qemu-img command that converts it; a qcow2 image with a backing file gets
// a *BackingFileError, an encrypted one a *FeatureError matching
// ErrEncrypted; a raw or qcow2 disk with no partition table gets a
// *NoPartitionTableError unless AllowNoPartitionTable is given.
//
// A VHD is opened even without a partition table: an encrypted VHD holds
// ciphertext, whose first sector means nothing.
func Open(r io.ReaderAt, size int64, opts ...Option) (*Disk, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if r == nil {
		return nil, errors.New("disk: no image")
	}
	f, err := Detect(r, size)
	if err != nil {
		return nil, err
	}
	var d *Disk
	switch f {
	case Raw:
		d = &Disk{format: Raw, src: r, srcSize: size, size: roundUp(size, vhd.SectorSize)}
	case VHDFixed, VHDDynamic, VHDDifferencing:
		img, err := vhd.Open(r, size)
		switch {
		case errors.Is(err, vhd.ErrDifferencing):
			return nil, &UnsupportedFormatError{Format: VHDDifferencing}
		case err != nil:
			return nil, fmt.Errorf("disk: opening the %s: %w", f, err)
		}
		switch img.Type() {
		case vhd.Fixed:
			f = VHDFixed
		case vhd.Dynamic:
			f = VHDDynamic
		default:
			return nil, &UnsupportedFormatError{Format: VHDDifferencing}
		}
		return &Disk{format: f, src: img, srcSize: img.Size(), size: img.Size(), vhd: img}, nil
	case QCOW2:
		q, err := openQCOW2(r, size)
		if err != nil {
			return nil, err
		}
		vs := q.Size()
		g := guarded{img: q}
		d = &Disk{format: QCOW2, src: g, srcSize: vs, size: roundUp(vs, vhd.SectorSize), qcow: g}
	default:
		return nil, &UnsupportedFormatError{Format: f}
	}
	if d.size > vhd.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, d.size, int64(vhd.MaxSize))
	}
	if !o.allowNoTable {
		b := make([]byte, min(d.size, PrefixSize))
		if _, err := d.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("disk: reading the first sectors of the %s: %w", d.format, err)
		}
		if kind, found := ProbeTable(b); kind == NoTable {
			return nil, &NoPartitionTableError{Format: d.format, Found: found}
		}
	}
	return d, nil
}

// CheckStream checks the first bytes of an image that arrives as a stream
// (at least PrefixSize of them when the stream is that long) and returns
// its format when a stream of it can be read: Raw (which covers a fixed
// VHD) or VHDDynamic. It returns *NeedRandomAccessError for qcow2,
// *UnsupportedFormatError for the formats Open refuses, and, for a raw
// stream, *NoPartitionTableError as Open does.
func CheckStream(prefix []byte, opts ...Option) (Format, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if len(prefix) == 0 {
		return Unknown, ErrEmpty
	}
	f := DetectPrefix(prefix)
	switch f {
	case VHDDynamic:
		return f, nil
	case Raw:
		if !o.allowNoTable {
			if kind, found := ProbeTable(prefix); kind == NoTable {
				return f, &NoPartitionTableError{Format: Raw, Found: found}
			}
		}
		return f, nil
	case QCOW2:
		return f, &NeedRandomAccessError{Format: f}
	}
	return f, &UnsupportedFormatError{Format: f}
}

// Format returns the image's format.
func (d *Disk) Format() Format { return d.format }

// Size returns the virtual disk's size in bytes, a multiple of 512 (a raw
// file whose length is not is padded with zeros, as a VHD would be).
func (d *Disk) Size() int64 { return d.size }

// VHD returns the underlying VHD when the image is one, for what only a
// VHD has (its footer, an encrypted disk's key hash).
func (d *Disk) VHD() (*vhd.Image, bool) { return d.vhd, d.vhd != nil }

// NumBlocks returns the number of vhd.BlockSize (2 MiB) blocks of the
// virtual disk, allocated or not.
func (d *Disk) NumBlocks() int { return int((d.size + vhd.BlockSize - 1) / vhd.BlockSize) }

// ReadAt reads the virtual disk: the guest's bytes, zeros where the image
// stores nothing. It returns io.EOF at or past Size.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("disk: ReadAt at negative offset %d", off)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	short := false
	if int64(n) > d.size-off {
		n = int(d.size - off)
		short = true
	}
	if err := d.read(p[:n], off); err != nil {
		return 0, err
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

// read fills p (inside the disk) from src, zero-filling past srcSize.
func (d *Disk) read(p []byte, off int64) error {
	want := len(p)
	if avail := d.srcSize - off; avail < int64(want) {
		want = int(max(avail, 0))
	}
	got, err := d.src.ReadAt(p[:want], off)
	if got < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("disk: reading the %s at %d: %w", d.format, off+int64(got), err)
	}
	clear(p[want:])
	return nil
}

// ReadBlock fills dst[:vhd.BlockSize] with block i of the virtual disk,
// zeros past its end.
func (d *Disk) ReadBlock(i int, dst []byte) error {
	if i < 0 || i >= d.NumBlocks() {
		return fmt.Errorf("disk: block %d out of range (the disk has %d)", i, d.NumBlocks())
	}
	if len(dst) < vhd.BlockSize {
		return fmt.Errorf("disk: ReadBlock needs a buffer of %d bytes, got %d", vhd.BlockSize, len(dst))
	}
	if d.vhd != nil {
		return d.vhd.ReadBlock(i, dst)
	}
	start := int64(i) * vhd.BlockSize
	n := min(vhd.BlockSize, d.size-start)
	if err := d.read(dst[:n], start); err != nil {
		return err
	}
	clear(dst[n:vhd.BlockSize])
	return nil
}

// Block describes block i in the shape vhd.Image gives: Bitmap is nil when
// nothing of the block is stored, else one bit per 512-byte sector, set
// where the image stores data. A raw disk stores every sector (all ones up
// to the end of the disk; its zero blocks are the reader's to find); a
// qcow2 disk stores the sectors of its allocated clusters, compressed ones
// included, and not those of unallocated or zero clusters. DataOffset is
// the block's file offset for raw disks and VHDs whose block is
// contiguous, else -1.
func (d *Disk) Block(i int) (vhd.BlockInfo, error) {
	none := vhd.BlockInfo{Index: i, DataOffset: -1}
	if i < 0 || i >= d.NumBlocks() {
		return none, fmt.Errorf("disk: block %d out of range (the disk has %d)", i, d.NumBlocks())
	}
	start := int64(i) * vhd.BlockSize
	switch {
	case d.vhd != nil:
		return d.vhd.Block(i)
	case d.format == QCOW2:
		bm, err := q2Bitmap(d.qcow, start, d.srcSize)
		if err != nil || bm == nil {
			return none, err
		}
		return vhd.BlockInfo{Index: i, Bitmap: bm, Full: bm.Full(), DataOffset: -1}, nil
	}
	bm := make(vhd.Bitmap, vhd.BitmapSize)
	sectors := int(min(vhd.BlockSize, d.size-start) / vhd.SectorSize)
	for s := range sectors {
		bm.Set(s)
	}
	return vhd.BlockInfo{Index: i, Bitmap: bm, Full: bm.Full(), DataOffset: start}, nil
}

// Allocated reports whether block i stores any data (Block(i).Bitmap is
// not nil).
func (d *Disk) Allocated(i int) (bool, error) {
	b, err := d.Block(i)
	return b.Allocated(), err
}

// Blocks iterates over the allocated blocks in ascending order. After an
// error it yields that error once and stops.
func (d *Disk) Blocks() iter.Seq2[vhd.BlockInfo, error] {
	return func(yield func(vhd.BlockInfo, error) bool) {
		for i := range d.NumBlocks() {
			b, err := d.Block(i)
			if err == nil && !b.Allocated() {
				continue
			}
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
