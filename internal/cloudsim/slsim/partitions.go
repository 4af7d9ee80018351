package slsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// The simulated backplane's own reader of partition tables, written from
// the format descriptions and sharing no code with the module's disk
// package:
//
//   - MBR: the classic PC layout, four 16-byte entries at byte 446 of
//     sector 0 (boot flag, CHS start, type, CHS end, little-endian 32-bit
//     first LBA and sector count) and the signature 0x55 0xAA at byte 510;
//     an extended partition (type 0x05, 0x0F or 0x85) holds a chain of
//     extended boot records, each with a logical partition (relative to
//     the record) and a link to the next record (relative to the extended
//     partition);
//   - GPT: UEFI Specification 2.10, section 5.3 "GUID Partition Table
//     (GPT) Disk Layout": a protective MBR entry of type 0xEE, the header
//     at LBA 1 ("EFI PART", header size, CRC32 of the header with its CRC
//     field zeroed, its own LBA, the backup header's LBA, the entry array's
//     LBA, count, entry size and CRC32) and 128-byte (or larger) entries of
//     type GUID, unique GUID, first and last LBA, attributes and a UTF-16LE
//     name; a backup header in the disk's last sector.

// errNoPartitionTable: neither a valid MBR nor a valid GPT.
var errNoPartitionTable = errors.New("no partition table")

// partition is one partition of the guest disk.
type partition struct {
	number int    // 1-based, as Linux numbers them (logical MBR partitions from 5)
	start  int64  // byte offset on the disk
	size   int64  // bytes
	kind   string // "MBR type 0x83", "GPT type 0fc63daf-…"
	name   string // GPT partition name, if any
}

func (p partition) String() string {
	return fmt.Sprintf("partition %d", p.number)
}

const (
	mbrProtective = 0xEE
	// maxLogical bounds an extended partition's chain of boot records.
	maxLogical = 64
	// maxGPTEntries and maxGPTEntryArray bound a GPT's entry array; the
	// specification's minimum array is 16 KiB (128 entries of 128 bytes).
	maxGPTEntries    = 4096
	maxGPTEntryArray = 1 << 20
)

// readPartitions reads the partition table of a disk of size bytes.
func readPartitions(r io.ReaderAt, size int64) ([]partition, error) {
	if size < 2*vhdSectorSize {
		return nil, fmt.Errorf("%w: the disk is %d bytes", errNoPartitionTable, size)
	}
	head := make([]byte, 2*vhdSectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, err
	}
	mbr, lba1 := head[:vhdSectorSize], head[vhdSectorSize:]
	hasMBR := mbr[510] == 0x55 && mbr[511] == 0xAA
	protective := false
	if hasMBR {
		for i := range 4 {
			if mbr[446+16*i+4] == mbrProtective {
				protective = true
			}
		}
	}
	if protective || string(lba1[:8]) == "EFI PART" {
		parts, gptErr := readGPT(r, size)
		if gptErr == nil {
			return parts, nil
		}
		var rerr *partitionReadError
		if errors.As(gptErr, &rerr) {
			return nil, rerr.err
		}
		if protective || !hasMBR {
			return nil, fmt.Errorf("%w: %v", errNoPartitionTable, gptErr)
		}
		// A stray "EFI PART" next to a valid MBR without a protective
		// entry: the MBR is the table.
	}
	if !hasMBR {
		return nil, fmt.Errorf("%w: neither an MBR signature at LBA 0 nor a GPT header at LBA 1", errNoPartitionTable)
	}
	return readMBR(r, mbr, size)
}

// partitionReadError carries a failure to read the disk (not a format
// error) out of the table parsers.
type partitionReadError struct{ err error }

func (e *partitionReadError) Error() string { return e.err.Error() }

func readAt(r io.ReaderAt, p []byte, off int64) error {
	if _, err := r.ReadAt(p, off); err != nil {
		return &partitionReadError{err: err}
	}
	return nil
}

// readMBR reads the four primary entries and the logical partitions of an
// extended one.
func readMBR(r io.ReaderAt, mbr []byte, size int64) ([]partition, error) {
	sectors := size / vhdSectorSize
	var parts []partition
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start, count := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		if typ == 0 || count == 0 {
			continue
		}
		if start == 0 || start >= sectors {
			continue // an entry that points nowhere on this disk
		}
		if typ == 0x05 || typ == 0x0F || typ == 0x85 {
			logical, err := readEBRChain(r, start, min(count, sectors-start), sectors)
			if err != nil {
				var rerr *partitionReadError
				if errors.As(err, &rerr) {
					return nil, rerr.err
				}
				// A broken chain loses the logical partitions, as it
				// does for Linux; the primary ones stand.
				continue
			}
			parts = append(parts, logical...)
			continue
		}
		parts = append(parts, partition{
			number: i + 1, start: start * vhdSectorSize, size: min(count, sectors-start) * vhdSectorSize,
			kind: fmt.Sprintf("MBR type %#02x", typ),
		})
	}
	return parts, nil
}

// readEBRChain follows the extended boot records of the extended partition
// at sector ext (count sectors long).
func readEBRChain(r io.ReaderAt, ext, count, sectors int64) ([]partition, error) {
	var parts []partition
	seen := map[int64]bool{}
	ebr := make([]byte, vhdSectorSize)
	for rel := int64(0); len(parts) < maxLogical; {
		at := ext + rel
		if seen[at] || rel >= count || at >= sectors {
			break
		}
		seen[at] = true
		if err := readAt(r, ebr, at*vhdSectorSize); err != nil {
			return nil, err
		}
		if ebr[510] != 0x55 || ebr[511] != 0xAA {
			return nil, errors.New("an extended boot record has no signature")
		}
		e := ebr[446:462]
		start, n := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		if e[4] != 0 && n != 0 && at+start < sectors {
			parts = append(parts, partition{
				number: 5 + len(parts), start: (at + start) * vhdSectorSize, size: min(n, sectors-at-start) * vhdSectorSize,
				kind: fmt.Sprintf("MBR type %#02x (logical)", e[4]),
			})
		}
		next := ebr[462:478]
		if next[4] == 0 || binary.LittleEndian.Uint32(next[12:]) == 0 {
			break
		}
		rel = int64(binary.LittleEndian.Uint32(next[8:]))
	}
	return parts, nil
}

// readGPT reads the primary GPT or, when it is damaged, the backup.
func readGPT(r io.ReaderAt, size int64) ([]partition, error) {
	sectors := size / vhdSectorSize
	parts, err := readGPTAt(r, 1, sectors)
	if err == nil {
		return parts, nil
	}
	var rerr *partitionReadError
	if errors.As(err, &rerr) {
		return nil, err
	}
	parts, berr := readGPTAt(r, sectors-1, sectors)
	if berr == nil {
		return parts, nil
	}
	if errors.As(berr, &rerr) {
		return nil, berr
	}
	return nil, fmt.Errorf("primary GPT: %v; backup GPT: %v", err, berr)
}

// readGPTAt reads the GPT header at lba and its entries.
func readGPTAt(r io.ReaderAt, lba, sectors int64) ([]partition, error) {
	h := make([]byte, vhdSectorSize)
	if err := readAt(r, h, lba*vhdSectorSize); err != nil {
		return nil, err
	}
	if string(h[:8]) != "EFI PART" {
		return nil, fmt.Errorf("no \"EFI PART\" signature at LBA %d", lba)
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || hsize > vhdSectorSize {
		return nil, fmt.Errorf("header size %d", hsize)
	}
	stored := binary.LittleEndian.Uint32(h[16:])
	hc := append([]byte(nil), h[:hsize]...)
	clear(hc[16:20])
	if got := crc32.ChecksumIEEE(hc); got != stored {
		return nil, fmt.Errorf("header CRC32 %#08x, computed %#08x", stored, got)
	}
	if my := int64(binary.LittleEndian.Uint64(h[24:])); my != lba {
		return nil, fmt.Errorf("the header at LBA %d says it is at LBA %d", lba, my)
	}
	first, last := binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:])
	entLBA := binary.LittleEndian.Uint64(h[72:])
	n, esize := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	if esize < 128 || esize%8 != 0 || n > maxGPTEntries || uint64(n)*uint64(esize) > maxGPTEntryArray {
		return nil, fmt.Errorf("%d entries of %d bytes", n, esize)
	}
	arr := int64(n) * int64(esize)
	if entLBA >= uint64(sectors) || uint64(sectors)-entLBA < uint64((arr+vhdSectorSize-1)/vhdSectorSize) {
		return nil, fmt.Errorf("the entry array at LBA %d does not fit on the disk", entLBA)
	}
	ents := make([]byte, arr)
	if err := readAt(r, ents, int64(entLBA)*vhdSectorSize); err != nil {
		return nil, err
	}
	if got, want := crc32.ChecksumIEEE(ents), binary.LittleEndian.Uint32(h[88:]); got != want {
		return nil, fmt.Errorf("entry array CRC32 %#08x, computed %#08x", want, got)
	}
	var parts []partition
	for i := range int64(n) {
		e := ents[i*int64(esize) : (i+1)*int64(esize)]
		if allZero(e[:16]) {
			continue
		}
		s, l := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if s > l || s < first || l > last || l >= uint64(sectors) {
			continue // outside the usable area: not a partition Linux would use
		}
		parts = append(parts, partition{
			number: int(i) + 1, start: int64(s) * vhdSectorSize, size: int64(l-s+1) * vhdSectorSize,
			kind: "GPT type " + guidString(e[:16]), name: utf16Name(e[56:128]),
		})
	}
	return parts, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// guidString formats a GUID stored in the GPT's mixed-endian layout.
func guidString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "?")
}
