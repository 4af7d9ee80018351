package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/lima-vm/go-qcow2reader/image/qcow2"

	"github.com/e2eimage/e2eimage/vhd"
)

// qcow2 header layout (QEMU docs/interop/qcow2.txt, "Header"): big-endian
// fields at fixed offsets; version 3 adds fields up to header_length and an
// optional compression type byte at 104.
const (
	q2HeaderV2      = 72
	q2HeaderV3      = 104
	q2HeaderV3Comp  = 112
	q2MinCluster    = 9  // 512-byte clusters
	q2MaxCluster    = 21 // 2 MiB clusters, QEMU's limit
	q2MaxL1Bytes    = 32 << 20
	q2MaxExtensions = 256

	q2IncompatDirty       = 1 << 0
	q2IncompatCorrupt     = 1 << 1
	q2IncompatDataFile    = 1 << 2
	q2IncompatCompression = 1 << 3
	q2IncompatExtendedL2  = 1 << 4

	q2ExtEnd         = 0x00000000
	q2ExtBackingFmt  = 0xe2792aca
	q2ExtFeatureName = 0x6803f857
	q2ExtBitmaps     = 0x23852875
	q2ExtFDE         = 0x0537be77
	q2ExtDataFile    = 0x44415441
)

// q2Header is the part of a qcow2 header this package checks before the
// library sees the file.
type q2Header struct {
	version       uint32
	backingOffset uint64
	backingSize   uint32
	clusterBits   uint32
	size          uint64
	cryptMethod   uint32
	l1Size        uint32
	l1Offset      uint64
	incompatible  uint64
	headerLength  uint32
	compression   byte
}

// checkQCOW2 validates what go-qcow2reader trusts without checking (sizes it
// allocates from, offsets it reads at, features it would warn about or
// follow outside the file) and refuses, with a typed error, what this
// package does not read: backing files, encryption, external data files,
// extended L2 entries, dirty or corrupt images.
func checkQCOW2(r io.ReaderAt, fileSize int64) (*q2Header, error) {
	bad := func(off int64, field, format string, args ...any) error {
		return &MalformedError{Format: QCOW2, Offset: off, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if fileSize < q2HeaderV2 {
		return nil, bad(0, "header", "the file has %d bytes, fewer than a header", fileSize)
	}
	b := make([]byte, min(fileSize, q2HeaderV3Comp))
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("disk: reading the qcow2 header: %w", err)
	}
	be := binary.BigEndian
	h := &q2Header{
		version:       be.Uint32(b[4:]),
		backingOffset: be.Uint64(b[8:]),
		backingSize:   be.Uint32(b[16:]),
		clusterBits:   be.Uint32(b[20:]),
		size:          be.Uint64(b[24:]),
		cryptMethod:   be.Uint32(b[32:]),
		l1Size:        be.Uint32(b[36:]),
		l1Offset:      be.Uint64(b[40:]),
		headerLength:  q2HeaderV2,
	}
	switch h.version {
	case 2:
	case 3:
		if len(b) < q2HeaderV3 {
			return nil, bad(0, "header", "a version 3 header needs %d bytes, the file has %d", q2HeaderV3, fileSize)
		}
		h.incompatible = be.Uint64(b[72:])
		h.headerLength = be.Uint32(b[100:])
		switch {
		case h.headerLength == q2HeaderV3:
		case h.headerLength == q2HeaderV3Comp && len(b) >= q2HeaderV3Comp:
			h.compression = b[104]
		default:
			return nil, bad(100, "header_length", "%d (this reader knows 104 and 112)", h.headerLength)
		}
	default:
		return nil, bad(4, "version", "%d (2 and 3 are defined)", h.version)
	}
	if h.clusterBits < q2MinCluster || h.clusterBits > q2MaxCluster {
		return nil, bad(20, "cluster_bits", "%d (QEMU allows %d to %d)", h.clusterBits, q2MinCluster, q2MaxCluster)
	}
	cluster := uint64(1) << h.clusterBits

	// Refusals with their own error types come before the size checks, so
	// that the user learns the real reason first.
	if h.backingOffset != 0 {
		name, err := q2BackingName(r, fileSize, h)
		if err != nil {
			return nil, err
		}
		return nil, &BackingFileError{Format: QCOW2, Name: name}
	}
	switch h.cryptMethod {
	case 0:
	case 1:
		return nil, &FeatureError{Format: QCOW2, Feature: "AES encryption (crypt_method 1)", err: ErrEncrypted,
			Fix: "decrypt it first: qemu-img convert --object secret,id=s0,file=KEYFILE --image-opts driver=qcow2,file.filename=IN,encrypt.key-secret=s0 -O vpc -o subformat=dynamic OUT.vhd"}
	case 2:
		return nil, &FeatureError{Format: QCOW2, Feature: "LUKS encryption (crypt_method 2)", err: ErrEncrypted,
			Fix: "decrypt it first: qemu-img convert --object secret,id=s0,file=KEYFILE --image-opts driver=qcow2,file.filename=IN,encrypt.key-secret=s0 -O vpc -o subformat=dynamic OUT.vhd"}
	default:
		return nil, bad(32, "crypt_method", "%d (0, 1 and 2 are defined)", h.cryptMethod)
	}
	if err := q2CheckFeatures(h.incompatible); err != nil {
		return nil, err
	}
	if h.compression > 1 {
		return nil, &FeatureError{Format: QCOW2, Feature: fmt.Sprintf("compression type %d", h.compression), err: ErrUnsupportedFeature,
			Fix: "convert it: " + convertHint(QCOW2)}
	}

	if h.size > vhd.MaxSize {
		return nil, fmt.Errorf("%w: the qcow2 disk holds %d bytes, a VHD at most %d", ErrTooLarge, h.size, int64(vhd.MaxSize))
	}
	if err := q2CheckL1(h, cluster, fileSize, bad); err != nil {
		return nil, err
	}
	if err := q2CheckExtensions(r, fileSize, h, cluster); err != nil {
		return nil, err
	}
	return h, nil
}

// q2CheckFeatures refuses the incompatible features (f, the header's
// bits) this reader does not read, each with what to do about it.
func q2CheckFeatures(f uint64) error {
	if f != 0 {
		switch {
		case f&q2IncompatDataFile != 0:
			return &FeatureError{Format: QCOW2, Feature: "an external data file", err: ErrUnsupportedFeature,
				Fix: "convert it into one self-contained disk: " + convertHint(QCOW2)}
		case f&q2IncompatCorrupt != 0:
			return &FeatureError{Format: QCOW2, Feature: "the corrupt flag (QEMU found its metadata inconsistent)", err: ErrUnsupportedFeature,
				Fix: "check and repair it first: qemu-img check -r all IN"}
		case f&q2IncompatDirty != 0:
			return &FeatureError{Format: QCOW2, Feature: "the dirty flag (it was not closed cleanly)", err: ErrUnsupportedFeature,
				Fix: "repair its reference counts first: qemu-img check -r all IN"}
		case f&q2IncompatExtendedL2 != 0:
			return &FeatureError{Format: QCOW2, Feature: "extended L2 entries (subclusters)", err: ErrUnsupportedFeature,
				Fix: "convert it: " + convertHint(QCOW2)}
		case f&^q2IncompatCompression != 0:
			return &FeatureError{Format: QCOW2, Feature: fmt.Sprintf("incompatible feature bits %#x", f&^q2IncompatCompression), err: ErrUnsupportedFeature,
				Fix: "convert it with the qemu-img that wrote it: " + convertHint(QCOW2)}
		}
	}
	return nil
}

// q2CheckL1 bounds the L1 table the library reads whole: enough entries
// for the disk, at most q2MaxL1Bytes, on a cluster boundary, inside the
// file (without an offset plus size that wraps around 2^64).
func q2CheckL1(h *q2Header, cluster uint64, fileSize int64, bad func(int64, string, string, ...any) error) error {
	// One L1 entry maps cluster/8 clusters.
	perL1 := cluster * (cluster / 8)
	need := (h.size + perL1 - 1) / perL1
	switch {
	case uint64(h.l1Size) < need:
		return bad(36, "l1_size", "%d entries map less than the %d-byte disk (it needs %d)", h.l1Size, h.size, need)
	case uint64(h.l1Size)*8 > q2MaxL1Bytes:
		return bad(36, "l1_size", "%d entries (QEMU allows %d bytes of L1 table)", h.l1Size, q2MaxL1Bytes)
	case h.l1Size > 0 && (h.l1Offset == 0 || h.l1Offset%cluster != 0):
		return bad(40, "l1_table_offset", "%d is not a cluster boundary", h.l1Offset)
	case h.l1Size > 0 && (h.l1Offset > uint64(fileSize) || uint64(h.l1Size)*8 > uint64(fileSize)-h.l1Offset):
		return bad(40, "l1_table_offset", "the L1 table (%d bytes at %d) ends past the end of the %d-byte file", uint64(h.l1Size)*8, h.l1Offset, fileSize)
	}
	return nil
}

// q2BackingName reads the backing file name the header points at.
func q2BackingName(r io.ReaderAt, fileSize int64, h *q2Header) (string, error) {
	if h.backingSize == 0 || h.backingSize > 1023 || h.backingOffset > uint64(fileSize) || uint64(h.backingSize) > uint64(fileSize)-h.backingOffset {
		return "", &MalformedError{Format: QCOW2, Offset: 8, Field: "backing_file_offset",
			Reason: fmt.Sprintf("a %d-byte name at %d does not fit the %d-byte file (QEMU allows 1 to 1023 bytes)", h.backingSize, h.backingOffset, fileSize)}
	}
	name := make([]byte, h.backingSize)
	if _, err := r.ReadAt(name, int64(h.backingOffset)); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("disk: reading the qcow2 backing file name: %w", err)
	}
	return string(name), nil
}

// q2CheckExtensions walks the header extensions, which must end with an end
// marker inside the first cluster, and refuses the ones that make the image
// unreadable on its own.
func q2CheckExtensions(r io.ReaderAt, fileSize int64, h *q2Header, cluster uint64) error {
	off := int64(h.headerLength)
	limit := min(int64(cluster), fileSize)
	var hdr [8]byte
	for range q2MaxExtensions {
		if off+8 > limit {
			return &MalformedError{Format: QCOW2, Offset: off, Field: "header extensions", Reason: "no end marker in the first cluster"}
		}
		if _, err := r.ReadAt(hdr[:], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("disk: reading qcow2 header extensions: %w", err)
		}
		typ := binary.BigEndian.Uint32(hdr[:])
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		switch typ {
		case q2ExtEnd:
			return nil
		case q2ExtFDE:
			return &FeatureError{Format: QCOW2, Feature: "a full disk encryption header", err: ErrEncrypted,
				Fix: "decrypt it first with qemu-img convert and the image's secret"}
		case q2ExtDataFile:
			return &FeatureError{Format: QCOW2, Feature: "an external data file", err: ErrUnsupportedFeature,
				Fix: "convert it into one self-contained disk: " + convertHint(QCOW2)}
		case q2ExtBackingFmt, q2ExtFeatureName, q2ExtBitmaps:
		}
		// The reader skips no extension longer than 4096 bytes correctly;
		// QEMU writes none that long.
		if n > 4096 || off+8+n > limit {
			return &MalformedError{Format: QCOW2, Offset: off, Field: "header extension",
				Reason: fmt.Sprintf("type %#x claims %d bytes", typ, n)}
		}
		off += 8 + (n+7)/8*8
	}
	return &MalformedError{Format: QCOW2, Offset: off, Field: "header extensions", Reason: fmt.Sprintf("more than %d", q2MaxExtensions)}
}

// readerAtOnly hides every method of a reader but ReadAt, so that
// go-qcow2reader can neither name the file (it would open a backing file
// next to it) nor close it. It carries the checked cluster size for the
// decompressors (qcow2inflate.go), which get only a section of it.
type readerAtOnly struct {
	r       io.ReaderAt
	cluster int
}

func (o readerAtOnly) ReadAt(p []byte, off int64) (int, error) { return o.r.ReadAt(p, off) }

// openQCOW2 checks the header and opens the image with go-qcow2reader.
func openQCOW2(r io.ReaderAt, fileSize int64) (*qcow2.Qcow2, error) {
	h, err := checkQCOW2(r, fileSize)
	if err != nil {
		return nil, err
	}
	img, err := qcow2.Open(readerAtOnly{r: r, cluster: 1 << h.clusterBits}, nil)
	if err != nil {
		return nil, &MalformedError{Format: QCOW2, Offset: -1, Field: "header", Reason: err.Error()}
	}
	if err := img.Readable(); err != nil {
		return nil, &MalformedError{Format: QCOW2, Offset: -1, Field: "header", Reason: err.Error()}
	}
	return img, nil
}

// q2Bitmap returns the sector bitmap of the 2 MiB block that starts at
// start: a sector is present when a cluster stored in the file (plain or
// compressed) covers it; unallocated clusters and clusters marked zero are
// absent.
func q2Bitmap(img guarded, start, size int64) (vhd.Bitmap, error) {
	end := min(start+vhd.BlockSize, size)
	var bm vhd.Bitmap
	for off := start; off < end; {
		ext, err := img.Extent(off, end-off)
		if err != nil {
			return nil, fmt.Errorf("disk: reading the qcow2 cluster map at %d: %w", off, err)
		}
		if ext.Length <= 0 {
			return nil, &MalformedError{Format: QCOW2, Offset: -1, Field: "cluster map", Reason: fmt.Sprintf("empty extent at %d", off)}
		}
		if ext.Allocated && !ext.Zero {
			if bm == nil {
				bm = make(vhd.Bitmap, vhd.BitmapSize)
			}
			first := int((off - start) / vhd.SectorSize)
			last := int((min(off+ext.Length, end) - start + vhd.SectorSize - 1) / vhd.SectorSize)
			for s := first; s < last; s++ {
				bm.Set(s)
			}
		}
		off += ext.Length
	}
	return bm, nil
}
