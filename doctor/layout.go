package doctor

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/e2eimage/e2eimage/disk"
)

// Partition is one partition of the examined disk, or the whole disk when
// it has no partition table.
type Partition struct {
	Number int    // 1-based, 0 for a whole disk without a table
	Start  int64  // byte offset on the disk
	Size   int64  // bytes
	Type   string // the table's type: "0x83", or a GPT type GUID
	// TypeName describes Type in words ("Linux", "EFI system"...).
	TypeName string
	// Name is a GPT partition's name.
	Name string
	// PartUUID is the id Linux gives the partition in
	// /dev/disk/by-partuuid (a GPT partition's GUID, or the MBR disk
	// signature and the partition number).
	PartUUID string
	Bootable bool // the MBR active flag
	// FileSystem is what the partition holds, from its content: "ext4",
	// "xfs", "btrfs", "ntfs", "vfat", "swap", "lvm2", "luks", "empty", or
	// "unknown".
	FileSystem string
	UUID       string // the file system's UUID, when FileSystem has one
	Label      string // the file system's label
	// Inspected reports whether the doctor read the file system's files.
	Inspected bool
	// Note says what was found in it, or why it was not inspected.
	Note string
}

// Limits on the partition table, below what any real disk uses; a table
// claiming more is malformed.
const (
	maxGPTEntries   = 1024
	maxGPTEntrySize = 1024
)

// readPartitions reads the disk's partition table with go-diskfs.
func readPartitions(ctx context.Context, d *disk.Disk) (disk.TableKind, []Partition, string, error) {
	b := newBudget(ctx, "the partition table")
	g := &guardedReader{d: d, b: b}
	st := &storage{r: g, size: d.Size()}
	head := make([]byte, min(d.Size(), disk.PrefixSize))
	if _, err := g.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return disk.NoTable, nil, "", fmt.Errorf("doctor: reading the first sectors: %w", err)
	}
	kind, found := disk.ProbeTable(head)
	switch kind {
	case disk.GPT:
		if err := checkGPT(g, d.Size(), head); err != nil {
			return kind, nil, "", err
		}
		t, err := gpt.Read(st, 512, 512)
		if err != nil {
			return kind, nil, "", fmt.Errorf("doctor: reading the GPT: %w", limited(b, err))
		}
		var ps []Partition
		for _, p := range t.Partitions {
			if p == nil || p.Type == gpt.Unused || p.Size == 0 {
				continue
			}
			ps = append(ps, Partition{
				Number: p.Index, Start: int64(p.Start) * 512, Size: int64(p.End-p.Start+1) * 512,
				Type: strings.ToUpper(string(p.Type)), TypeName: gptTypeName(string(p.Type)), Name: p.Name,
				PartUUID: strings.ToLower(p.GUID),
			})
		}
		note := ""
		if t.RecoveredFromBackup {
			note = "the primary GPT is damaged; the backup GPT was read"
		}
		return kind, ps, note, nil
	case disk.MBR:
		t, err := mbr.Read(st, 512, 512)
		if err != nil {
			return kind, nil, "", fmt.Errorf("doctor: reading the MBR: %w", limited(b, err))
		}
		sig := binary.LittleEndian.Uint32(head[440:])
		var ps []Partition
		for i, p := range t.Partitions {
			if p == nil || p.Type == mbr.Empty || p.Size == 0 {
				continue
			}
			ps = append(ps, Partition{
				Number: i + 1, Start: int64(p.Start) * 512, Size: int64(p.Size) * 512,
				Type: fmt.Sprintf("0x%02x", byte(p.Type)), TypeName: mbrTypeName(byte(p.Type)), Bootable: p.Bootable,
				PartUUID: fmt.Sprintf("%08x-%02d", sig, i+1),
			})
		}
		return kind, ps, "", nil
	}
	return kind, nil, found, nil
}

// checkGPT bounds what go-diskfs allocates from a GPT: the entry array of
// the primary header (LBA 1, in head) and, when go-diskfs would fall back
// to it, of the backup header at the disk's last LBA. go-diskfs reads the
// backup when the primary fails its CRCs, and allocates the entry count
// times the entry size that header claims.
func checkGPT(d io.ReaderAt, size int64, head []byte) error {
	if err := gptBounds("primary", head[512:1024]); err != nil {
		return err
	}
	if gptIntact(d, size, head[512:1024]) {
		return nil // go-diskfs reads the primary and never the backup
	}
	last := size/512 - 1
	if last < 2 {
		return nil
	}
	h := make([]byte, 512)
	if _, err := d.ReadAt(h, last*512); err != nil {
		return fmt.Errorf("doctor: reading the backup GPT header: %w", err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil // go-diskfs refuses it itself
	}
	return gptBounds("backup", h)
}

// gptBounds checks the entry count and size a GPT header (h, one sector)
// claims.
func gptBounds(which string, h []byte) error {
	n, size := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	if n > maxGPTEntries || size < 128 || size > maxGPTEntrySize || size&(size-1) != 0 {
		return fmt.Errorf("doctor: the %s GPT header claims %d entries of %d bytes (at most %d of %d to %d bytes)", which, n, size, maxGPTEntries, 128, maxGPTEntrySize)
	}
	return nil
}

// gptIntact reports whether the primary GPT header (h, bounded by
// gptBounds) and its entry array pass their CRC-32 checks, as go-diskfs
// checks them before it takes the primary.
func gptIntact(d io.ReaderAt, size int64, h []byte) bool {
	le := binary.LittleEndian
	if string(h[:8]) != "EFI PART" {
		return false
	}
	hsize := le.Uint32(h[12:])
	if hsize < 92 || hsize > 512 {
		return false
	}
	hc := slices.Clone(h[:hsize])
	le.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != le.Uint32(h[16:]) {
		return false
	}
	lba := int64(le.Uint64(h[72:]))
	n, esize := int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
	if lba < 0 || lba > size/512 {
		return false
	}
	ents := make([]byte, n*esize)
	if _, err := d.ReadAt(ents, lba*512); err != nil {
		return false
	}
	return crc32.ChecksumIEEE(ents) == le.Uint32(h[88:])
}

func mbrTypeName(t byte) string {
	switch t {
	case 0x83:
		return "Linux"
	case 0x82:
		return "Linux swap"
	case 0x8e:
		return "Linux LVM"
	case 0xfd:
		return "Linux RAID"
	case 0x07:
		return "NTFS/exFAT"
	case 0x0b, 0x0c, 0x0e, 0x06:
		return "FAT"
	case 0xef:
		return "EFI system"
	case 0xee:
		return "GPT protective"
	case 0x05, 0x0f, 0x85:
		return "extended"
	case 0x27:
		return "Windows recovery"
	}
	return "other"
}

// GPT partition type GUIDs (UEFI specification 2.10 table 5.7, and the
// Discoverable Partitions Specification for the Linux ones).
func gptTypeName(guid string) string {
	switch strings.ToUpper(guid) {
	case "C12A7328-F81F-11D2-BA4B-00A0C93EC93B":
		return "EFI system"
	case "21686148-6449-6E6F-744E-656564454649":
		return "BIOS boot"
	case "0FC63DAF-8483-4772-8E79-3D69D8477DE4":
		return "Linux"
	case "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709":
		return "Linux root (x86-64)"
	case "BC13C2FF-59E6-4262-A352-B275FD6F7172":
		return "Linux extended boot"
	case "E6D6D379-F507-44C2-A23C-238F2A3DF928":
		return "Linux LVM"
	case "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F":
		return "Linux swap"
	case "A19D880F-05FC-4D3B-A006-743F0F84911E":
		return "Linux RAID"
	case "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7":
		return "Microsoft basic data"
	case "E3C9E316-0B5C-4DB8-817D-F92DF00215AE":
		return "Microsoft reserved"
	case "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC":
		return "Windows recovery"
	}
	return "other"
}

// fsInfo is what the first bytes of a volume say about it.
type fsInfo struct {
	typ, uuid, label string
}

// probeSize is how much of a volume identify reads (the Btrfs superblock
// is at 64 KiB).
const probeSize = 68 << 10

// identify recognises a volume from its first bytes by the signatures
// blkid uses: ext2/3/4 (superblock at 1024, magic 0xEF53 at 56), XFS
// ("XFSB" at 0), Btrfs ("_BHRfS_M" at 64 KiB + 64), NTFS ("NTFS    " at
// 3), FAT/vfat, Linux swap ("SWAPSPACE2" at 4086), LVM2 physical volume
// ("LABELONE" in one of the first four sectors, "LVM2 001" in it) and
// LUKS.
func identify(b []byte) fsInfo {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	le := binary.LittleEndian
	switch {
	case len(b) >= 2048 && le.Uint16(b[1024+56:]) == 0xEF53:
		sb := b[1024:]
		typ := "ext2"
		if le.Uint32(sb[92:])&0x4 != 0 { // has_journal
			typ = "ext3"
		}
		// As blkid tells them apart: ext4 when a feature outside ext3's
		// sets is on (incompat filetype, recover, meta_bg; ro_compat
		// sparse_super, large_file, btree_dir).
		if le.Uint32(sb[96:])&^0x16 != 0 || le.Uint32(sb[100:])&^0x7 != 0 {
			typ = "ext4"
		}
		return fsInfo{typ: typ, uuid: uuidString(sb[104:120]), label: cString(sb[120:136])}
	case has(0, "XFSB"):
		return fsInfo{typ: "xfs", uuid: uuidString(b[32:48]), label: cString(b[108:120])}
	case has(0x10040, "_BHRfS_M"):
		sb := b[0x10000:]
		return fsInfo{typ: "btrfs", uuid: uuidString(sb[0x20:0x30]), label: cString(sb[0x12b:0x22b])}
	case has(3, "NTFS    "):
		return fsInfo{typ: "ntfs", uuid: strings.ToUpper(fmt.Sprintf("%016x", le.Uint64(b[0x48:])))}
	case has(82, "FAT32   "):
		return fsInfo{typ: "vfat", uuid: fatSerial(b[67:71]), label: strings.TrimSpace(string(b[71:82]))}
	case has(54, "FAT16   "), has(54, "FAT12   "):
		return fsInfo{typ: "vfat", uuid: fatSerial(b[39:43]), label: strings.TrimSpace(string(b[43:54]))}
	case has(4086, "SWAPSPACE2"):
		return fsInfo{typ: "swap", uuid: uuidString(b[1036:1052]), label: cString(b[1052:1068])}
	case has(0, "LUKS\xba\xbe"):
		return fsInfo{typ: "luks", uuid: cString(b[168:208])}
	}
	for s := range 4 {
		if has(s*512, "LABELONE") && has(s*512+24, "LVM2 001") {
			return fsInfo{typ: "lvm2", uuid: cString(b[s*512+32 : s*512+64])}
		}
	}
	if len(b) > 0 && allZero(b) {
		return fsInfo{typ: "empty"}
	}
	return fsInfo{typ: "unknown"}
}

func uuidString(b []byte) string {
	if allZero(b) {
		return ""
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func fatSerial(b []byte) string {
	v := binary.LittleEndian.Uint32(b)
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff)
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
