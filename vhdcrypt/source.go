package vhdcrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/vhd"
)

// Input kinds and how each is read.
//
// An input is read with random access when it is an io.ReaderAt of known
// size: an *os.File that is a regular file or a block device (read from
// offset 0, whatever its current position), or any value with
// ReadAt(p, off) and Size() int64 (*io.SectionReader, *bytes.Reader). Every
// other io.Reader is a stream, read once, front to back.
//
// What the input holds is told by package disk, from its content: a raw
// disk, a fixed or dynamic VHD, or (random access only) a qcow2 image.
// Every other format is refused before any output, with disk's typed error.
type inputKind int

const (
	kindRaw     inputKind = iota // no VHD footer: the bytes are the disk
	kindFixed                    // fixed VHD: the disk followed by a footer
	kindDynamic                  // dynamic VHD (sparse, possibly encrypted)
	kindQCOW2                    // qcow2 (random access only)
)

func (k inputKind) String() string {
	switch k {
	case kindFixed:
		return "fixed VHD"
	case kindDynamic:
		return "dynamic VHD"
	case kindQCOW2:
		return "qcow2"
	}
	return "raw"
}

// input is an opened image, random-access or stream.
type input struct {
	kind inputKind
	size int64 // virtual size in bytes, a multiple of 512

	// Random access (ra != nil).
	ra     io.ReaderAt
	raSize int64      // bytes readable through ra (the file size)
	d      *disk.Disk // the virtual disk, whatever the container
	img    *vhd.Image // fixed or dynamic VHD

	// Stream (ra == nil).
	stream    io.Reader         // raw or fixed VHD stream
	sr        *vhd.StreamReader // dynamic VHD stream
	rawLength int64             // raw stream: bytes of disk data to read (the declared size)
}

// sizer is an io.ReaderAt that knows its size, like *io.SectionReader.
type sizer interface {
	io.ReaderAt
	Size() int64
}

// RandomAccess returns src as an io.ReaderAt with its size when the verbs
// would read it with random access (see "Inputs" in the package doc), and
// ok false when they would read it as a stream. An error means src is a
// file that could not be examined.
func RandomAccess(src io.Reader) (io.ReaderAt, int64, bool, error) {
	switch s := src.(type) {
	case *os.File:
		fi, err := s.Stat()
		if err != nil {
			return nil, 0, false, fmt.Errorf("vhdcrypt: inspecting the input: %w", err)
		}
		switch m := fi.Mode(); {
		case m.IsRegular():
			return s, fi.Size(), true, nil
		case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
			// A block device: Stat reports 0 bytes; its end does not lie.
			n, err := s.Seek(0, io.SeekEnd)
			if err != nil {
				return nil, 0, false, fmt.Errorf("vhdcrypt: finding the size of block device %s: %w", s.Name(), err)
			}
			return s, n, true, nil
		}
		return nil, 0, false, nil // pipe, terminal, character device
	case sizer:
		return s, s.Size(), true, nil
	}
	return nil, 0, false, nil
}

// openInput detects what src holds. size is the declared size of a raw
// stream (WithSize), or -1; dopts are disk's options (a raw disk without a
// partition table is refused without disk.AllowNoPartitionTable).
func openInput(src io.Reader, size int64, dopts []disk.Option) (*input, error) {
	if src == nil {
		return nil, errors.New("vhdcrypt: no input")
	}
	ra, n, ok, err := RandomAccess(src)
	if err != nil {
		return nil, err
	}
	if ok {
		return openRandomAccess(ra, n, dopts)
	}
	return openStream(src, size, dopts)
}

// allowTable is what the verbs that read VHDs only, or describe any image
// (decrypt, verify, check, inspect), give openInput: a missing partition
// table is the encryptor's concern, not theirs.
var allowTable = []disk.Option{disk.AllowNoPartitionTable()}

func openRandomAccess(ra io.ReaderAt, n int64, dopts []disk.Option) (*input, error) {
	d, err := disk.Open(ra, n, dopts...)
	if err != nil {
		return nil, diskError(err)
	}
	in := &input{ra: ra, raSize: n, d: d, size: d.Size()}
	switch d.Format() {
	case disk.Raw:
		in.kind = kindRaw
	case disk.VHDFixed:
		in.kind, in.img = kindFixed, vhdOf(d)
	case disk.VHDDynamic:
		in.kind, in.img = kindDynamic, vhdOf(d)
	case disk.QCOW2:
		in.kind = kindQCOW2
	default:
		return nil, fmt.Errorf("vhdcrypt: opening the input: %w", &disk.UnsupportedFormatError{Format: d.Format()})
	}
	return in, checkSize(in.size)
}

func vhdOf(d *disk.Disk) *vhd.Image {
	img, _ := d.VHD()
	return img
}

// diskError turns an error of package disk into this package's: an empty
// input is ErrEmpty and a disk too large ErrTooLarge, as they always were;
// everything else (an unsupported format, a missing partition table, a
// backing file, a damaged VHD...) is wrapped unchanged, so that errors.Is
// and errors.As find disk's and vhd's typed errors.
func diskError(err error) error {
	switch {
	case errors.Is(err, disk.ErrEmpty):
		return ErrEmpty
	case errors.Is(err, disk.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, disk.ErrNoPartitionTable):
		return fmt.Errorf("vhdcrypt: opening the input (WithoutPartitionTable accepts such a disk): %w", err)
	}
	return fmt.Errorf("vhdcrypt: opening the input: %w", err)
}

// openStream peeks at the first disk.PrefixSize bytes, which disk checks: a
// dynamic VHD starts with a copy of its footer; a format that cannot be
// streamed (qcow2) or that is not read at all is refused; anything else is
// a raw disk (or a fixed VHD, whose footer only comes at the end), which
// needs its size declared.
func openStream(src io.Reader, size int64, dopts []disk.Option) (*input, error) {
	head := make([]byte, disk.PrefixSize)
	n, err := io.ReadFull(src, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("vhdcrypt: reading the input: %w", err)
	}
	head = head[:n]
	if n == 0 {
		return nil, ErrEmpty
	}
	f, err := disk.CheckStream(head, dopts...)
	if err != nil {
		return nil, diskError(err)
	}
	rest := io.MultiReader(bytes.NewReader(head), src)
	if f == disk.VHDDynamic {
		sr, err := vhd.NewStreamReader(rest)
		if err != nil {
			return nil, fmt.Errorf("vhdcrypt: reading the input as a VHD stream: %w", err)
		}
		return &input{kind: kindDynamic, sr: sr, size: sr.Size()}, checkSize(sr.Size())
	}
	if size < 0 {
		return nil, ErrNeedSize
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: the declared size is 0 but the stream is not empty", ErrStreamSize)
	}
	vsize := roundUp(size, vhd.SectorSize)
	return &input{kind: kindRaw, stream: rest, rawLength: size, size: vsize}, checkSize(vsize)
}

func checkSize(size int64) error {
	if size > vhd.MaxSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// numBlocks is the number of BlockSize blocks of a disk of size bytes.
func numBlocks(size int64) int { return int((size + vhd.BlockSize - 1) / vhd.BlockSize) }

// readBlockAt reads block i of a random-access input into dst (BlockSize
// bytes): the guest bytes as stored, absent sectors and anything past the end
// of the disk zeroed. It is safe for concurrent use.
func (in *input) readBlockAt(i int, dst []byte) error {
	if err := in.d.ReadBlock(i, dst); err != nil {
		return fmt.Errorf("vhdcrypt: reading block %d: %w", i, err)
	}
	return nil
}

// readRawStreamBlock reads the next block of a raw or fixed VHD stream into
// dst. i is the block's index; the last block is padded with zeros.
//
// Before the last block is handed on, what follows the declared size is
// checked: nothing (a raw disk), or exactly one fixed-VHD footer describing a
// disk of the declared size (a fixed VHD). A stream that is itself a fixed
// VHD whose length was declared instead of its disk size ends in a footer
// for a disk 512 bytes smaller, which is ErrFixedVHDStream; any other excess
// or shortfall is ErrStreamSize.
func (in *input) readRawStreamBlock(i int, dst []byte) error {
	off := int64(i) * vhd.BlockSize
	want := min(int64(vhd.BlockSize), in.rawLength-off)
	got, err := io.ReadFull(in.stream, dst[:want])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: it ended after %d of %d bytes", ErrStreamSize, off+int64(got), in.rawLength)
		}
		return fmt.Errorf("vhdcrypt: reading the input at offset %d: %w", off+int64(got), err)
	}
	clear(dst[want:vhd.BlockSize])
	if off+want < in.rawLength {
		return nil
	}
	// Last block: look at what follows.
	var tail [vhd.FooterSize + 1]byte
	n, err := io.ReadFull(in.stream, tail[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("vhdcrypt: reading the input past its declared size: %w", err)
	}
	switch {
	case n == 0:
		if want >= vhd.FooterSize && in.rawLength%vhd.SectorSize == 0 {
			if f, ok := fixedFooter(dst[want-vhd.FooterSize : want]); ok && int64(f.CurrentSize) == in.rawLength-vhd.FooterSize {
				return fmt.Errorf("%w (declared %d bytes, disk size %d)", ErrFixedVHDStream, in.rawLength, f.CurrentSize)
			}
		}
		return nil
	case n == vhd.FooterSize:
		if f, ok := fixedFooter(tail[:n]); ok && int64(f.CurrentSize) == in.rawLength {
			in.kind = kindFixed
			return nil
		}
	}
	return fmt.Errorf("%w: more than the declared %d bytes (and not one fixed-VHD footer)", ErrStreamSize, in.rawLength)
}

// fixedFooter parses b as the footer of a fixed VHD.
func fixedFooter(b []byte) (vhd.Footer, bool) {
	f, err := vhd.ParseFooter(b)
	if err != nil || f.DiskType != vhd.Fixed {
		return f, false
	}
	return f, true
}
