package slsim

import (
	"errors"
	"io"

	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// bootSectors is how much of the guest disk the simulated backplane
// decrypts: LBA 0 (the MBR, signature 0x55AA at bytes 510-511) and LBA 1
// (the GPT header, "EFI PART"). The real platform decrypts the whole disk
// when it boots the server; the simulator checks only that the key turns
// the first sectors into a partition table.
const bootSectors = 2

// inspectedImage is an opened image object.
type inspectedImage struct {
	img    *vhd.Image
	kh     vhd.KeyHash
	hasKey bool
}

// inspectImage opens the object as a VHD through ra (ranged reads).
func inspectImage(ra io.ReaderAt, size int64) (*inspectedImage, error) {
	img, err := vhd.Open(ra, size)
	if err != nil {
		var f *importFailure
		var fe *vhd.FormatError
		switch {
		case errors.As(err, &f):
			return nil, f // reading the object failed
		case errors.Is(err, vhd.ErrNotVHD):
			return nil, failf(ReasonNotVHD, "no VHD footer found (a raw, VMDK or qcow2 image must be converted to VHD first)")
		case errors.Is(err, vhd.ErrDifferencing):
			return nil, failf(ReasonBadVHD, "differencing VHDs cannot be imported: %v", err)
		case errors.As(err, &fe):
			return nil, failf(ReasonBadVHD, "%v", err)
		}
		return nil, failf(ReasonBadVHD, "%v", err)
	}
	kh, ok := img.KeyHash()
	return &inspectedImage{img: img, kh: kh, hasKey: ok}, nil
}

func (in *inspectedImage) virtualSize() int64 { return in.img.Size() }

func (in *inspectedImage) encrypted() bool { return in.hasKey }

// verifyBoot checks the DEK against the key hash (encrypted images), then
// that the first sectors of the guest disk, decrypted with dek when it is
// non-nil, hold an MBR or a GPT header.
func (in *inspectedImage) verifyBoot(dek []byte) error {
	buf := make([]byte, bootSectors*vhd.SectorSize)
	defer clear(buf)
	if int64(len(buf)) > in.img.Size() {
		buf = buf[:in.img.Size()]
	}
	n, err := in.img.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		var f *importFailure
		if errors.As(err, &f) {
			return f
		}
		return failf(ReasonBadVHD, "reading the first sectors: %v", err)
	}
	if dek != nil {
		if !in.kh.Matches(dek) {
			return failf(ReasonDEKMismatch, "the unwrapped DEK is not the key the image was encrypted with")
		}
		c, err := xts.NewCipher(dek)
		if err != nil {
			return failf(ReasonBadDEKSize, "%v", err)
		}
		defer c.Wipe()
		blk, err := in.img.Block(0)
		if err != nil {
			return failf(ReasonBadVHD, "reading block 0: %v", err)
		}
		for s := 0; s*vhd.SectorSize < len(buf); s++ {
			sec := buf[s*vhd.SectorSize : (s+1)*vhd.SectorSize]
			// tapdisk decrypts present sectors only; absent ones read as zeros.
			if blk.Bitmap == nil || !blk.Bitmap.Present(s) {
				clear(sec)
				continue
			}
			if err := c.DecryptSectors(sec, sec, uint64(s)); err != nil {
				return failf(ReasonInternal, "decrypting sector %d: %v", s, err)
			}
		}
	}
	if hasPartitionTable(buf) {
		return nil
	}
	if dek != nil {
		return failf(ReasonNoPartitionTable, "neither an MBR signature at LBA 0 nor a GPT header at LBA 1 after decryption")
	}
	return failf(ReasonNoPartitionTable, "neither an MBR signature at LBA 0 nor a GPT header at LBA 1")
}

// hasPartitionTable reports whether b (the first sectors of a disk) holds an
// MBR boot signature or a GPT header.
func hasPartitionTable(b []byte) bool {
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		return true
	}
	return len(b) >= 1024 && string(b[512:520]) == "EFI PART"
}
