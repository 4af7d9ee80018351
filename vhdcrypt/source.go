package vhdcrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/e2eimage/e2eimage/vhd"
)

// Input kinds and how each is read.
//
// An input is read with random access when it is an io.ReaderAt of known
// size: an *os.File that is a regular file or a block device (read from
// offset 0, whatever its current position), or any value with
// ReadAt(p, off) and Size() int64 (*io.SectionReader, *bytes.Reader). Every
// other io.Reader is a stream, read once, front to back.
type inputKind int

const (
	kindRaw     inputKind = iota // no VHD footer: the bytes are the disk
	kindFixed                    // fixed VHD: the disk followed by a footer
	kindDynamic                  // dynamic VHD (sparse, possibly encrypted)
)

func (k inputKind) String() string {
	switch k {
	case kindFixed:
		return "fixed VHD"
	case kindDynamic:
		return "dynamic VHD"
	}
	return "raw"
}

// input is an opened image, random-access or stream.
type input struct {
	kind inputKind
	size int64 // virtual size in bytes, a multiple of 512

	// Random access (ra != nil).
	ra     io.ReaderAt
	raSize int64      // bytes readable through ra (raw: the file size)
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
// stream (WithSize), or -1.
func openInput(src io.Reader, size int64) (*input, error) {
	if src == nil {
		return nil, errors.New("vhdcrypt: no input")
	}
	ra, n, ok, err := RandomAccess(src)
	if err != nil {
		return nil, err
	}
	if ok {
		return openRandomAccess(ra, n)
	}
	return openStream(src, size)
}

func openRandomAccess(ra io.ReaderAt, n int64) (*input, error) {
	img, err := vhd.Open(ra, n)
	switch {
	case err == nil:
		in := &input{ra: ra, raSize: n, img: img, size: img.Size()}
		switch img.Type() {
		case vhd.Fixed:
			in.kind = kindFixed
		case vhd.Dynamic:
			in.kind = kindDynamic
		default:
			return nil, fmt.Errorf("vhdcrypt: opening the input: %s disks are not supported: %w", img.Type(), vhd.ErrUnsupported)
		}
		return in, checkSize(in.size)
	case errors.Is(err, vhd.ErrNotVHD) && !looksLikeVHD(ra, n):
		if n == 0 {
			return nil, ErrEmpty
		}
		size := roundUp(n, vhd.SectorSize)
		return &input{kind: kindRaw, ra: ra, raSize: n, size: size}, checkSize(size)
	default:
		return nil, fmt.Errorf("vhdcrypt: opening the input: %w", err)
	}
}

// looksLikeVHD reports whether a file that vhd.Open rejected as not a VHD
// still starts or ends with a footer cookie: a damaged VHD must be reported,
// not encrypted as if it were a raw disk.
func looksLikeVHD(ra io.ReaderAt, n int64) bool {
	var b [8]byte
	if n >= vhd.FooterSize {
		if _, err := ra.ReadAt(b[:], 0); err == nil && string(b[:]) == "conectix" {
			return true
		}
		if _, err := ra.ReadAt(b[:], n-vhd.FooterSize); err == nil && string(b[:]) == "conectix" {
			return true
		}
	}
	return false
}

// openStream peeks at the first sector: a dynamic VHD starts with a copy of
// its footer; anything else is a raw disk (or a fixed VHD, whose footer only
// comes at the end), which needs its size declared.
func openStream(src io.Reader, size int64) (*input, error) {
	head := make([]byte, vhd.FooterSize)
	n, err := io.ReadFull(src, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("vhdcrypt: reading the input: %w", err)
	}
	head = head[:n]
	rest := io.MultiReader(bytes.NewReader(head), src)
	if n == vhd.FooterSize && bytes.HasPrefix(head, []byte("conectix")) {
		sr, err := vhd.NewStreamReader(rest)
		if err != nil {
			return nil, fmt.Errorf("vhdcrypt: reading the input as a VHD stream: %w", err)
		}
		return &input{kind: kindDynamic, sr: sr, size: sr.Size()}, checkSize(sr.Size())
	}
	if n == 0 {
		return nil, ErrEmpty
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
	if in.img != nil {
		if err := in.img.ReadBlock(i, dst); err != nil {
			return fmt.Errorf("vhdcrypt: reading block %d: %w", i, err)
		}
		return nil
	}
	off := int64(i) * vhd.BlockSize
	want := min(int64(vhd.BlockSize), in.raSize-off)
	if want < 0 {
		want = 0
	}
	got, err := in.ra.ReadAt(dst[:want], off)
	if int64(got) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("vhdcrypt: reading block %d (offset %d): %w", i, off, err)
	}
	clear(dst[want:vhd.BlockSize])
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
