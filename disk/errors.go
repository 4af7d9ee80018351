package disk

import (
	"errors"
	"fmt"
)

// Sentinel errors; the typed errors below match them with errors.Is.
var (
	// ErrEmpty is returned for a 0-byte image.
	ErrEmpty = errors.New("disk: the image is empty")
	// ErrUnsupportedFormat matches *UnsupportedFormatError.
	ErrUnsupportedFormat = errors.New("disk: unsupported image format")
	// ErrNoPartitionTable matches *NoPartitionTableError.
	ErrNoPartitionTable = errors.New("disk: no partition table (neither MBR nor GPT)")
	// ErrBackingFile matches *BackingFileError.
	ErrBackingFile = errors.New("disk: the image needs a backing file")
	// ErrEncrypted matches a *FeatureError for an image its format
	// encrypts (qcow2 AES or LUKS).
	ErrEncrypted = errors.New("disk: the image is encrypted by its format")
	// ErrUnsupportedFeature matches a *FeatureError for a format feature
	// this package does not read.
	ErrUnsupportedFeature = errors.New("disk: unsupported image feature")
	// ErrNeedRandomAccess matches *NeedRandomAccessError.
	ErrNeedRandomAccess = errors.New("disk: the format needs random access, not a stream")
	// ErrMalformed matches *MalformedError.
	ErrMalformed = errors.New("disk: malformed image")
	// ErrTooLarge is returned for a virtual size above MaxSize.
	ErrTooLarge = errors.New("disk: the virtual disk is larger than a VHD can hold")
)

// convertHint is the command that turns an image of format f into a dynamic
// VHD; qemu-img reads every format Detect knows.
func convertHint(f Format) string {
	if n := f.qemuName(); n != "" {
		return "qemu-img convert -f " + n + " -O vpc -o subformat=dynamic IN OUT.vhd"
	}
	return "qemu-img convert -O vpc -o subformat=dynamic IN OUT.vhd"
}

// UnsupportedFormatError is returned for an image in a format Open does not
// read. Its message names the format and how to convert it.
type UnsupportedFormatError struct {
	Format Format
}

func (e *UnsupportedFormatError) Error() string {
	switch e.Format {
	case ISO9660:
		return "disk: the image is an ISO 9660 optical disc image (installation media), not a disk: " +
			"install the operating system from it onto a virtual disk, then use that disk"
	case VHDDifferencing:
		return "disk: the image is a differencing VHD, which needs its parent; merge them into one disk with " +
			"qemu-img convert -f vpc -O vpc -o subformat=dynamic CHILD.vhd OUT.vhd (qemu-img reads the parent it names)"
	case VMDKDescriptor:
		return "disk: the image is a VMDK descriptor, a text file naming separate extent files; convert the whole disk with " +
			"qemu-img convert -f vmdk -O vpc -o subformat=dynamic IN.vmdk OUT.vhd (next to its extents)"
	}
	return fmt.Sprintf("disk: %s images are not supported; convert it to a VHD first: %s", e.Format, convertHint(e.Format))
}

// Is matches ErrUnsupportedFormat.
func (e *UnsupportedFormatError) Is(target error) bool { return target == ErrUnsupportedFormat }

// NoPartitionTableError is returned for a raw or qcow2 disk that starts with
// neither an MBR nor a GPT, unless AllowNoPartitionTable was given.
type NoPartitionTableError struct {
	Format Format
	// Found describes what the first sectors hold instead, when known:
	// "an ext2/3/4 file system", "an LVM physical volume", "zeros"...
	Found string
}

func (e *NoPartitionTableError) Error() string {
	msg := fmt.Sprintf("disk: the %s image has no partition table (neither MBR nor GPT)", e.Format)
	if e.Found != "" {
		msg += "; it starts with " + e.Found
		if e.Found != "zeros" {
			msg += ", so it looks like a partition or volume image rather than a whole disk"
		}
	}
	return msg + ": give the whole disk (with its partition table and boot loader), or pass AllowNoPartitionTable if this is deliberate"
}

// Is matches ErrNoPartitionTable.
func (e *NoPartitionTableError) Is(target error) bool { return target == ErrNoPartitionTable }

// BackingFileError is returned for an image that only stores its changes
// against a backing file.
type BackingFileError struct {
	Format Format
	// Name is the backing file as the image names it.
	Name string
}

func (e *BackingFileError) Error() string {
	return fmt.Sprintf("disk: the %s image stores only changes against the backing file %q; "+
		"flatten it into one disk first: qemu-img convert -f %s -O vpc -o subformat=dynamic IN OUT.vhd "+
		"(qemu-img reads the backing file)", e.Format, e.Name, e.Format.qemuName())
}

// Is matches ErrBackingFile.
func (e *BackingFileError) Is(target error) bool { return target == ErrBackingFile }

// FeatureError is returned for an image that uses a feature of its format
// this package does not read (encryption, an external data file, a dirty or
// corrupt flag...). Unwrap gives ErrEncrypted or ErrUnsupportedFeature.
type FeatureError struct {
	Format  Format
	Feature string // what the image uses, e.g. "AES encryption"
	Fix     string // what to run to get a readable image
	err     error
}

func (e *FeatureError) Error() string {
	msg := fmt.Sprintf("disk: the %s image uses %s, which this reader does not support", e.Format, e.Feature)
	if e.Fix != "" {
		msg += ": " + e.Fix
	}
	return msg
}

// Unwrap returns ErrEncrypted or ErrUnsupportedFeature.
func (e *FeatureError) Unwrap() error { return e.err }

// NeedRandomAccessError is returned by CheckStream for a format that can
// only be read with random access (its tables point anywhere in the file).
type NeedRandomAccessError struct {
	Format Format
}

func (e *NeedRandomAccessError) Error() string {
	return fmt.Sprintf("disk: a %s image cannot be read as a stream (from a pipe or standard input): "+
		"give it as a file, or convert it to a VHD first: %s", e.Format, convertHint(e.Format))
}

// Is matches ErrNeedRandomAccess.
func (e *NeedRandomAccessError) Is(target error) bool { return target == ErrNeedRandomAccess }

// MalformedError is returned for an image whose structures contradict its
// format or the file's size.
type MalformedError struct {
	Format Format
	Offset int64  // file offset of the field, or -1
	Field  string // the field, e.g. "l1_size"
	Reason string
}

func (e *MalformedError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("disk: malformed %s image: %s (offset %d): %s", e.Format, e.Field, e.Offset, e.Reason)
	}
	return fmt.Sprintf("disk: malformed %s image: %s: %s", e.Format, e.Field, e.Reason)
}

// Is matches ErrMalformed.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }
