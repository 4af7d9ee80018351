package slsim

import (
	"crypto/aes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/crypto/xts"
)

// The image checks of the simulated import backplane.
//
// What IBM documents (cloud.ibm.com/docs/image-templates,
// create-encrypted-image.md and import-image.md): an encrypted image is a
// VHD written by blktap's "vhd-util copy -k KEYFILE", whose key file is the
// raw 32- or 64-byte DEK; the customer checks it with "vhd-util key -C"
// against "vhd-util key -p", which prints the stored nonce (all zeros, as
// vhd-util copy writes it) and the key hash; the disk is at most 100 GB.
//
// What the open-source platform does (xapi-project/blktap,
// drivers/block-crypto.c, check_key and vhd_open_crypto): when tapdisk opens
// an encrypted VHD it computes SHA-256(nonce stored in the image || key) and
// refuses the key unless that equals the stored hash; it decrypts each
// present 512-byte sector with AES-XTS (AES-128 for a 32-byte key, AES-256
// for a 64-byte one; drivers/crypto/xts_aes.c), the tweak being the guest
// sector number ("plain" IV). So this checker uses the nonce the image holds,
// zero or not, as tapdisk does; it does not require IBM's zero nonce.
//
// What is our guess (invented): IBM does not publish what its import
// backplane checks or when. The simulator checks, at import time and in
// this order, that the object is a VHD (fixed or dynamic; differencing is
// refused), that it carries a key hash exactly when the import is
// encrypted, that the unwrapped DEK is 32 or 64 bytes and matches the key
// hash, that sectors 0 and 1 of the guest disk, decrypted, hold an MBR
// boot signature or a GPT header, and then what IBM requires of the
// image's contents (checkGuest: partition table, Linux root, cloud-init;
// the requirements are documented, that the import checks them is not).
// The real platform may instead find a bad key or an unbootable disk only
// when a server is provisioned from the template. The reasons it reports
// are invented too (see Reason*).

// bootSectors is how much of the guest disk verifyBoot, the first check
// after the key hash, decrypts: LBA 0 (the MBR, signature 0x55AA at bytes
// 510-511) and LBA 1 (the GPT header, "EFI PART").
const bootSectors = 2

// inspectedImage is an opened image object.
type inspectedImage struct {
	f *vhdFile
	// guestBytes counts the bytes of the guest disk checkGuest fetched.
	guestBytes int64
}

// inspectImage opens the object as a VHD through ra (ranged reads).
func inspectImage(ra io.ReaderAt, size int64) (*inspectedImage, error) {
	f, err := openVHD(ra, size)
	if err != nil {
		return nil, vhdFailure(err, "")
	}
	return &inspectedImage{f: f}, nil
}

// vhdFailure turns an error of the VHD reader into the import failure it
// stands for; a failure to read the object (an *importFailure) passes
// through.
func vhdFailure(err error, doing string) error {
	var f *importFailure
	var fe *vhdFormatError
	switch {
	case errors.As(err, &f):
		return f
	case errors.Is(err, errNotVHD):
		return failf(ReasonNotVHD, "no VHD footer found (a raw, VMDK or qcow2 image must be converted to VHD first)")
	case errors.Is(err, errVHDDifferencing):
		return failf(ReasonBadVHD, "differencing VHDs cannot be imported: %v", err)
	case errors.As(err, &fe):
		return failf(ReasonBadVHD, "%v", err)
	}
	if doing != "" {
		return failf(ReasonBadVHD, "%s: %v", doing, err)
	}
	return failf(ReasonBadVHD, "%v", err)
}

func (in *inspectedImage) virtualSize() int64 { return in.f.size }

func (in *inspectedImage) encrypted() bool { return in.f.keyHash != nil }

// keyMatches reports whether dek is the key of the image's key hash, with
// the nonce stored in the image.
func (in *inspectedImage) keyMatches(dek []byte) bool {
	kh := in.f.keyHash
	if kh == nil {
		return false
	}
	h := sha256.New()
	h.Write(kh.nonce[:])
	h.Write(dek)
	return subtle.ConstantTimeCompare(h.Sum(nil), kh.hash[:]) == 1
}

// newSectorCipher returns tapdisk's cipher for dek: AES-128-XTS for 32
// bytes, AES-256-XTS for 64 (golang.org/x/crypto/xts splits the key into
// the data half and the tweak half as tapdisk does). x/crypto/xts offers no
// way to wipe its key schedule; the simulator accepts that for its own
// short-lived copies. Its sector number
// argument is written as a 64-bit little-endian tweak, which equals
// tapdisk's 32-bit "plain" IV for every sector of a VHD (at most 2040 GiB,
// fewer than 2^32 sectors).
func newSectorCipher(dek []byte) (*xts.Cipher, error) {
	if len(dek) != 32 && len(dek) != 64 {
		return nil, failf(ReasonBadDEKSize, "got %d bytes", len(dek))
	}
	c, err := xts.NewCipher(aes.NewCipher, dek)
	if err != nil {
		return nil, failf(ReasonInternal, "setting up AES-XTS: %v", err)
	}
	return c, nil
}

// verifyBoot checks the DEK against the key hash (encrypted images), then
// that the first sectors of the guest disk, decrypted with dek when it is
// non-nil, hold an MBR or a GPT header.
func (in *inspectedImage) verifyBoot(dek []byte) error {
	n := min(int64(bootSectors), (in.f.size+vhdSectorSize-1)/vhdSectorSize)
	if n == 0 {
		return failf(ReasonNoPartitionTable, "the virtual disk is empty")
	}
	buf := make([]byte, n*vhdSectorSize)
	defer clear(buf)
	present, err := in.f.readSectors(buf, 0)
	if err != nil {
		return vhdFailure(err, "reading the first sectors")
	}
	if dek != nil {
		c, err := newSectorCipher(dek) // refuses a DEK of the wrong size
		if err != nil {
			return err
		}
		if !in.keyMatches(dek) {
			return failf(ReasonDEKMismatch, "the unwrapped DEK is not the key the image was encrypted with")
		}
		for s := range present {
			// tapdisk decrypts present sectors only; absent ones read as
			// zeros (readSectors already cleared them).
			if present[s] {
				sec := buf[s*vhdSectorSize : (s+1)*vhdSectorSize]
				c.Decrypt(sec, sec, uint64(s))
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

// guestCheck says which of the guest checks apply to an import.
type guestCheck struct {
	// windows: the import's operating system is Windows, whose
	// cloudbase-init the simulator does not look for.
	windows bool
	// cloudInit: the import is cloud-init enabled (always for an
	// encrypted import, see validateImport).
	cloudInit bool
}

// maxProbedPartitions bounds how many partitions the checks look at.
const maxProbedPartitions = 16

// checkGuest reads the guest disk, decrypted with dek when it is non-nil,
// and checks what IBM requires of an image's contents: a partition table,
// a Linux root file system and cloud-init (see cloudinit.go). It returns a
// summary that starts with "checked: " or, where the simulator cannot read
// what it would check, "not checked: " (the import goes on: the simulator
// does not invent a failure for what it cannot see). verifyBoot must have
// accepted dek.
func (in *inspectedImage) checkGuest(dek []byte, o guestCheck) (string, error) {
	var c *xts.Cipher
	if dek != nil {
		var err error
		if c, err = newSectorCipher(dek); err != nil {
			return "", err
		}
	}
	g := newGuestDisk(in.f, c)
	defer g.release()
	summary, err := checkGuestDisk(g, o, dek != nil)
	in.guestBytes = g.fetched
	if g.err != nil {
		return "", g.err // reading the object failed: that is the import's failure
	}
	return summary, err
}

// checkGuestDisk is checkGuest on the decrypted disk.
func checkGuestDisk(g *guestDisk, o guestCheck, decrypted bool) (string, error) {
	parts, err := readPartitions(g, g.Size())
	if errors.Is(err, errNoPartitionTable) {
		if decrypted {
			return "", failf(ReasonNoPartitionTable, "after decryption: %v", err)
		}
		return "", failf(ReasonNoPartitionTable, "%v", err)
	}
	if err != nil {
		return notChecked("reading the partition table", err)
	}
	if o.windows {
		return "not checked: a Windows image (the simulator does not look for cloudbase-init)", nil
	}
	if len(parts) == 0 {
		return "", failf(ReasonNoRootFS, "the partition table lists no partition")
	}
	var root *extFS
	var rootPart partition
	var seen, opaque []string
probe:
	for i, p := range parts {
		if i == maxProbedPartitions {
			opaque = append(opaque, fmt.Sprintf("%d more partitions the simulator does not look at", len(parts)-i))
			break
		}
		sec := io.NewSectionReader(g, p.start, p.size)
		kind, err := probeFS(sec)
		if err != nil {
			return notChecked("reading "+p.String(), err)
		}
		switch {
		case kind == fsExt:
			x, err := openExt(sec)
			if err == nil {
				var ents []fs.DirEntry
				if ents, err = x.ReadDir("."); err == nil {
					if hasDir(ents, "etc") {
						root, rootPart = x, p
						break probe
					}
					seen = append(seen, p.String()+": ext4 without /etc")
					continue probe
				}
			}
			if g.err != nil || errors.Is(err, errReadBudget) {
				return notChecked("reading "+p.String(), err)
			}
			opaque = append(opaque, fmt.Sprintf("%s (ext4 the simulator cannot read: %v)", p, err))
		case kind.opaque():
			opaque = append(opaque, fmt.Sprintf("%s (%s)", p, kind))
		case kind == fsNone:
			seen = append(seen, p.String()+": no file system the simulator recognises")
		default:
			seen = append(seen, fmt.Sprintf("%s: %s", p, kind))
		}
	}
	if root == nil {
		if len(opaque) > 0 {
			return "not checked: no ext4 root file system; the root may be on " + strings.Join(opaque, ", ") +
				", which the simulator does not read", nil
		}
		return "", failf(ReasonNoRootFS, "%s", strings.Join(seen, "; "))
	}
	where := fmt.Sprintf("Linux root on %s (ext4)", rootPart)
	if !o.cloudInit {
		return "not checked: the import is not cloud-init enabled (" + where + ")", nil
	}
	s, checked, err := checkCloudInit(root)
	var f *importFailure
	switch {
	case errors.As(err, &f):
		return "", f
	case err != nil:
		return notChecked("cloud-init on "+rootPart.String(), err)
	case !checked:
		return "not checked: " + where + "; " + s, nil
	}
	return "checked: " + where + "; " + s, nil
}

// notChecked is the summary of a check that could not read what it needed.
func notChecked(doing string, err error) (string, error) {
	return fmt.Sprintf("not checked: %s: %v", doing, err), nil
}

func hasDir(ents []fs.DirEntry, name string) bool {
	for _, e := range ents {
		if e.Name() == name && e.IsDir() && !isSymlink(e) {
			return true
		}
	}
	return false
}
