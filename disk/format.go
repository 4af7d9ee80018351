package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/e2eimage/e2eimage/vhd"
)

// Format is an image file format, as told by the file's content.
type Format int

// The formats Detect tells apart. Raw, VHDFixed, VHDDynamic and QCOW2 are
// read by Open; the others are refused with an *UnsupportedFormatError.
const (
	Unknown         Format = iota // not yet detected
	Raw                           // the bytes are the disk (no container)
	VHDFixed                      // fixed VHD: the disk followed by a footer
	VHDDynamic                    // dynamic (sparse) VHD
	VHDDifferencing               // differencing VHD: needs its parent
	QCOW2                         // QEMU copy-on-write, version 2 or 3
	QCOW1                         // QEMU copy-on-write, version 1
	QED                           // QEMU enhanced disk
	VHDX                          // Hyper-V VHDX
	VMDK                          // VMware sparse extent (hosted "KDMV" or ESX "COWD")
	VMDKDescriptor                // VMware text descriptor naming separate extent files
	VDI                           // VirtualBox disk image
	Parallels                     // Parallels disk image
	ISO9660                       // optical disc image (ISO 9660 or UDF)
)

// String names the format as a user would.
func (f Format) String() string {
	switch f {
	case Raw:
		return "raw disk"
	case VHDFixed:
		return "fixed VHD"
	case VHDDynamic:
		return "dynamic VHD"
	case VHDDifferencing:
		return "differencing VHD"
	case QCOW2:
		return "qcow2"
	case QCOW1:
		return "qcow (version 1)"
	case QED:
		return "QED"
	case VHDX:
		return "VHDX"
	case VMDK:
		return "VMDK (sparse extent)"
	case VMDKDescriptor:
		return "VMDK (descriptor file)"
	case VDI:
		return "VDI"
	case Parallels:
		return "Parallels"
	case ISO9660:
		return "ISO 9660 optical disc image"
	}
	return "unknown"
}

// qemuName is the format's name for qemu-img -f.
func (f Format) qemuName() string {
	switch f {
	case Raw:
		return "raw"
	case VHDFixed, VHDDynamic, VHDDifferencing:
		return "vpc"
	case QCOW2:
		return "qcow2"
	case QCOW1:
		return "qcow"
	case QED:
		return "qed"
	case VHDX:
		return "vhdx"
	case VMDK, VMDKDescriptor:
		return "vmdk"
	case VDI:
		return "vdi"
	case Parallels:
		return "parallels"
	}
	return ""
}

// Readable reports whether Open reads images of this format.
func (f Format) Readable() bool {
	switch f {
	case Raw, VHDFixed, VHDDynamic, QCOW2:
		return true
	}
	return false
}

// Magic numbers, each from the format's public specification: qcow2
// (QEMU docs/interop/qcow2.txt), QED (docs/interop/qed_spec.txt), VHDX
// (MS-VHDX 2.2.1 file type identifier), VMDK (VMware "Virtual Disk Format
// 1.1": "KDMV" hosted sparse, "COWD" ESX sparse, "# Disk DescriptorFile"),
// VDI (VirtualBox VDICore.h: signature 0xbeda107f at byte 64), Parallels
// (QEMU docs/interop/parallels.txt), ISO 9660 (ECMA-119 8.1: "CD001" at
// byte 1 of the volume descriptor in sector 16 of 2048 bytes) and UDF
// (ECMA-167 2/9.1: "BEA01" there).
var (
	magicQCOW       = []byte("QFI\xfb")
	magicQED        = []byte("QED\x00")
	magicVHDX       = []byte("vhdxfile")
	magicVMDK       = []byte("KDMV")
	magicCOWD       = []byte("COWD")
	magicVMDKDesc   = []byte("# Disk DescriptorFile")
	magicParallels1 = []byte("WithoutFreeSpace")
	magicParallels2 = []byte("WithouFreSpacExt")
	magicVHD        = []byte("conectix")
)

const (
	vdiSignature  = 0xbeda107f
	isoDescOffset = 16 * 2048
	// PrefixSize is how many leading bytes DetectPrefix, CheckStream and
	// ProbeTable need to recognise everything they know (the ISO 9660
	// volume descriptor starts at 32 KiB, a Btrfs superblock at 64 KiB).
	PrefixSize = 72 << 10
)

// headFormat recognises the formats that announce themselves in their
// first bytes. It returns Unknown when b holds none of them.
func headFormat(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, magicQCOW):
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:]) == 1 {
			return QCOW1
		}
		return QCOW2
	case bytes.HasPrefix(b, magicQED):
		return QED
	case bytes.HasPrefix(b, magicVHDX):
		return VHDX
	case bytes.HasPrefix(b, magicVMDK), bytes.HasPrefix(b, magicCOWD):
		return VMDK
	case bytes.HasPrefix(b, magicVMDKDesc):
		return VMDKDescriptor
	case bytes.HasPrefix(b, magicParallels1), bytes.HasPrefix(b, magicParallels2):
		return Parallels
	case len(b) >= 68 && bytes.HasPrefix(b, []byte("<<< ")) && binary.LittleEndian.Uint32(b[64:]) == vdiSignature:
		return VDI
	case len(b) >= vhd.FooterSize && bytes.HasPrefix(b, magicVHD):
		// The copy of the footer at the start of a dynamic or
		// differencing VHD.
		if f, err := vhd.ParseFooter(b[:vhd.FooterSize]); err == nil && f.DiskType == vhd.Differencing {
			return VHDDifferencing
		}
		return VHDDynamic
	}
	if isISO(b) {
		return ISO9660
	}
	return Unknown
}

// isISO reports whether b reaches and holds an ISO 9660 or UDF volume
// descriptor at sector 16.
func isISO(b []byte) bool {
	if len(b) < isoDescOffset+7 {
		return false
	}
	d := b[isoDescOffset:]
	id := string(d[1:6])
	return (id == "CD001" && d[6] == 1) || id == "BEA01"
}

// DetectPrefix tells the format from the first bytes of an image, as a
// stream offers them; give it at least PrefixSize bytes when there are that
// many. Formats with a header (qcow2, VHDX, VMDK, VDI, ISO 9660, a dynamic
// VHD's leading footer copy...) are recognised; anything else is reported
// as Raw, which includes a fixed VHD (its footer only comes at the end).
func DetectPrefix(b []byte) Format {
	if f := headFormat(b); f != Unknown {
		return f
	}
	return Raw
}

// Detect tells the format of the image r of size bytes from its content
// (never from a file name). It reads the first PrefixSize bytes and the
// last 512. It returns ErrEmpty for a 0-byte image and an error only when
// reading fails; a damaged image is reported as the format it claims to
// be and refused later by Open.
func Detect(r io.ReaderAt, size int64) (Format, error) {
	if size <= 0 {
		return Unknown, ErrEmpty
	}
	head, err := readHead(r, size)
	if err != nil {
		return Unknown, err
	}
	if f := headFormat(head); f != Unknown {
		return f, nil
	}
	if size >= vhd.FooterSize {
		var tail [vhd.FooterSize]byte
		if _, err := r.ReadAt(tail[:], size-vhd.FooterSize); err != nil && !errors.Is(err, io.EOF) {
			return Unknown, fmt.Errorf("disk: reading the last sector: %w", err)
		}
		if bytes.HasPrefix(tail[:], magicVHD) {
			if f, err := vhd.ParseFooter(tail[:]); err == nil {
				switch f.DiskType {
				case vhd.Dynamic:
					return VHDDynamic, nil
				case vhd.Differencing:
					return VHDDifferencing, nil
				}
			}
			return VHDFixed, nil
		}
	}
	return Raw, nil
}

// readHead reads up to PrefixSize bytes from the start of r.
func readHead(r io.ReaderAt, size int64) ([]byte, error) {
	head := make([]byte, min(size, PrefixSize))
	n, err := r.ReadAt(head, 0)
	if n < len(head) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("disk: reading the first %d bytes: %w", len(head), err)
	}
	return head, nil
}

// Partition-table probing on a disk's first sectors.

// TableKind is the partition table found at the start of a disk.
type TableKind int

// Partition table kinds.
const (
	NoTable TableKind = iota // neither an MBR nor a GPT
	MBR                      // a DOS/MBR partition table
	GPT                      // a GUID partition table (with or without a protective MBR)
)

// String names the table kind.
func (k TableKind) String() string {
	switch k {
	case MBR:
		return "MBR"
	case GPT:
		return "GPT"
	}
	return "none"
}

// ProbeTable looks at the first two sectors of a disk (b, at least 1024
// bytes for a GPT to be seen) and tells which partition table it starts
// with. When there is none, found describes what the first sectors hold
// instead (a bare file system, an LVM or LUKS volume, zeros), or is empty.
func ProbeTable(b []byte) (kind TableKind, found string) {
	if len(b) >= 1024 && string(b[512:520]) == "EFI PART" {
		return GPT, ""
	}
	if bare := bareVolume(b); bare != "" {
		return NoTable, bare
	}
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		ok := true
		for i := range 4 {
			if s := b[446+16*i]; s != 0 && s != 0x80 {
				ok = false
			}
		}
		if ok {
			return MBR, ""
		}
		return NoTable, "a boot sector whose partition entries are invalid"
	}
	if len(b) > 0 && allZero(b) {
		return NoTable, "zeros"
	}
	return NoTable, ""
}

// bareVolume recognises a file system or volume that starts at byte 0,
// which a whole disk never holds (a partition image, not a disk).
func bareVolume(b []byte) string {
	has := func(off int, s string) bool {
		return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s
	}
	switch {
	case has(3, "NTFS    "):
		return "an NTFS file system"
	case has(3, "EXFAT   "):
		return "an exFAT file system"
	case has(82, "FAT32   "), has(54, "FAT16   "), has(54, "FAT12   "):
		return "a FAT file system"
	case has(0, "XFSB"):
		return "an XFS file system"
	case has(0, "LUKS\xba\xbe"):
		return "a LUKS encrypted volume"
	case has(512, "LABELONE") && has(536, "LVM2 001"):
		return "an LVM physical volume"
	case len(b) >= 1082 && binary.LittleEndian.Uint16(b[1080:]) == 0xEF53:
		return "an ext2/3/4 file system"
	case has(0x10040, "_BHRfS_M"):
		return "a Btrfs file system"
	}
	return ""
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
