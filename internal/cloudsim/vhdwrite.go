package cloudsim

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// DynamicVHD returns raw (a multiple of 512 bytes) as a dynamic VHD whose
// all-zero 2 MiB blocks are unallocated: what the seeded templates' exports
// hold.
//
// The simulator writes it itself, from Microsoft's "Virtual Hard Disk Image
// Format Specification" 1.0 (hard disk footer, dynamic disk header, block
// allocation table, and the CHS geometry algorithm of its appendix), and
// not with the module's vhd package: the simulator checks that package's
// output (slsim's import checks) and must share no code with it. Its
// creator application is "slsm" (this simulator), with no tapdisk batmap.
func DynamicVHD(raw []byte) ([]byte, error) {
	size := int64(len(raw))
	if size <= 0 || size%sectorSize != 0 {
		return nil, fmt.Errorf("cloudsim: a VHD's disk must be a positive multiple of %d bytes, not %d", sectorSize, size)
	}
	blocks := (size + vhdBlockSize - 1) / vhdBlockSize
	batBytes := (blocks*4 + sectorSize - 1) / sectorSize * sectorSize
	const headerOff, batOff = sectorSize, sectorSize + 1024
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("cloudsim: a VHD unique id: %w", err)
	}
	footer := vhdFooter(size, headerOff, id)

	var out bytes.Buffer
	out.Write(footer) // the copy at the start of a dynamic disk
	out.Write(vhdDynamicHeader(batOff, blocks))
	bat := bytes.Repeat([]byte{0xFF}, int(batBytes))
	batAt := out.Len()
	out.Write(bat)
	bitmap := bytes.Repeat([]byte{0xFF}, sectorSize) // every sector of an allocated block present
	zero := make([]byte, vhdBlockSize)
	for i := range blocks {
		b := raw[i*vhdBlockSize : min((i+1)*vhdBlockSize, size)]
		if bytes.Equal(b, zero[:len(b)]) {
			continue
		}
		binary.BigEndian.PutUint32(out.Bytes()[batAt+4*int(i):], uint32(out.Len()/sectorSize))
		out.Write(bitmap)
		out.Write(b)
		out.Write(zero[:vhdBlockSize-len(b)])
	}
	out.Write(footer)
	return out.Bytes(), nil
}

const (
	sectorSize   = 512
	vhdBlockSize = 2 << 20
)

// vhdTimestamp is seconds since 2000-01-01 00:00:00 UTC.
func vhdTimestamp(t time.Time) uint32 {
	return uint32(t.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
}

// vhdChecksum is the ones' complement of the sum of b's bytes, its
// checksum field (4 bytes at field) counted as zero.
func vhdChecksum(b []byte, field int) uint32 {
	var sum uint32
	for i, c := range b {
		if i < field || i >= field+4 {
			sum += uint32(c)
		}
	}
	return ^sum
}

func vhdFooter(size int64, headerOff uint64, id [16]byte) []byte {
	f := make([]byte, sectorSize)
	be := binary.BigEndian
	copy(f[0:], "conectix")
	be.PutUint32(f[8:], 2)           // features: the reserved bit, always set
	be.PutUint32(f[12:], 0x00010000) // file format version 1.0
	be.PutUint64(f[16:], headerOff)
	be.PutUint32(f[24:], vhdTimestamp(time.Now()))
	copy(f[28:], "slsm")
	be.PutUint32(f[32:], 0x00010000)
	be.PutUint64(f[40:], uint64(size)) // original size
	be.PutUint64(f[48:], uint64(size)) // current size
	c, h, s := vhdGeometry(size)
	be.PutUint16(f[56:], c)
	f[58], f[59] = h, s
	be.PutUint32(f[60:], 3) // dynamic
	copy(f[68:84], id[:])
	be.PutUint32(f[64:], vhdChecksum(f, 64))
	return f
}

func vhdDynamicHeader(batOff, blocks int64) []byte {
	h := make([]byte, 1024)
	be := binary.BigEndian
	copy(h[0:], "cxsparse")
	be.PutUint64(h[8:], ^uint64(0)) // data offset: unused
	be.PutUint64(h[16:], uint64(batOff))
	be.PutUint32(h[24:], 0x00010000) // header version 1.0
	be.PutUint32(h[28:], uint32(blocks))
	be.PutUint32(h[32:], vhdBlockSize)
	be.PutUint32(h[36:], vhdChecksum(h, 36))
	return h
}

// vhdGeometry is the specification's CHS geometry for a disk of size
// bytes (its appendix "CHS Calculation").
func vhdGeometry(size int64) (cylinders uint16, heads, sectorsPerTrack uint8) {
	total := min(size/sectorSize, 65535*16*255)
	var spt, hd, cylTimesHeads int64
	if total >= 65535*16*63 {
		spt, hd = 255, 16
		cylTimesHeads = total / spt
	} else {
		spt = 17
		cylTimesHeads = total / spt
		hd = max((cylTimesHeads+1023)/1024, 4)
		if cylTimesHeads >= hd*1024 || hd > 16 {
			spt, hd = 31, 16
			cylTimesHeads = total / spt
		}
		if cylTimesHeads >= hd*1024 {
			spt, hd = 63, 16
			cylTimesHeads = total / spt
		}
	}
	return uint16(cylTimesHeads / hd), uint8(hd), uint8(spt)
}
