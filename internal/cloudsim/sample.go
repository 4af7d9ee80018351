package cloudsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// SampleTemplate is the name of the standard (unencrypted) image template
// every fresh simulated account holds: a capture of a server whose export
// (copyToIcos) writes SampleImage as a dynamic VHD, so that the flow from
// an existing template to an encrypted one runs on the simulator.
const SampleTemplate = "e2e-sample"

// SampleTemplateOS is the sample template's operating system reference
// code.
const SampleTemplateOS = "UBUNTU_22_64"

// SampleImage are the options of the sample template's disk
// (internal/sampleimage): sampleimage.Build(SampleImage) is the raw disk
// its export holds.
var SampleImage = sampleimage.Options{Size: 32 << 20, Seed: 20}

// seedSampleTemplate adds SampleTemplate to the account.
func (s *Sim) seedSampleTemplate() error {
	raw, err := sampleimage.Build(SampleImage)
	if err != nil {
		return err
	}
	s.sampleDisk = raw
	export, err := DynamicVHD(raw)
	if err != nil {
		return err
	}
	_, err = s.SoftLayer.SeedTemplate(s.Account.AccountID, slsim.SeedSpec{
		Name: SampleTemplate, Note: "a standard image template seeded by the simulator", OSCode: SampleTemplateOS,
		Disks: []slsim.SeedDisk{{Export: export, VirtualSize: int64(len(raw))}},
	})
	if err != nil {
		return fmt.Errorf("cloudsim: seeding the sample template: %w", err)
	}
	return nil
}

// DynamicVHD returns raw (a multiple of 512 bytes) as a dynamic VHD whose
// all-zero 2 MiB blocks are unallocated: what the simulator's copyToIcos
// exports. It is written here from the VHD specification (footer, dynamic
// header, BAT, then each block's sector bitmap and data, then the footer
// again) and shares no code with package vhd, so that the simulator does
// not check the SDK with the SDK's own format code.
func DynamicVHD(raw []byte) ([]byte, error) {
	const (
		sector    = 512
		blockSize = 2 << 20
		bitmapLen = sector // 4096 sectors per block: 512 bytes of bitmap
	)
	size := int64(len(raw))
	if size == 0 || size%sector != 0 {
		return nil, fmt.Errorf("cloudsim: a disk of %d bytes is not a whole number of sectors", size)
	}
	n := int((size + blockSize - 1) / blockSize)
	batBytes := (n*4 + sector - 1) / sector * sector
	const headerOff, batOff = sector, 3 * sector
	dataOff := int64(batOff + batBytes)

	block := func(i int) []byte {
		end := min(int64(i+1)*blockSize, size)
		return raw[int64(i)*blockSize : end]
	}
	zero := make([]byte, blockSize)
	bat := bytes.Repeat([]byte{0xff}, batBytes)
	var blocks []int
	next := dataOff
	for i := range n {
		if b := block(i); !bytes.Equal(b, zero[:len(b)]) {
			binary.BigEndian.PutUint32(bat[i*4:], uint32(next/sector))
			blocks = append(blocks, i)
			next += bitmapLen + blockSize
		}
	}

	footer := make([]byte, sector)
	copy(footer[0:], "conectix")
	binary.BigEndian.PutUint32(footer[8:], 2)           // features: reserved bit
	binary.BigEndian.PutUint32(footer[12:], 0x00010000) // format version 1.0
	binary.BigEndian.PutUint64(footer[16:], headerOff)  // data offset: the dynamic header
	copy(footer[28:], "csim")                           // creator application
	binary.BigEndian.PutUint32(footer[32:], 0x00010000) // creator version
	copy(footer[36:], "Wi2k")                           // creator host OS
	binary.BigEndian.PutUint64(footer[40:], uint64(size))
	binary.BigEndian.PutUint64(footer[48:], uint64(size))
	c, h, spt := chs(size / sector)
	binary.BigEndian.PutUint16(footer[56:], c)
	footer[58], footer[59] = h, spt
	binary.BigEndian.PutUint32(footer[60:], 3) // disk type: dynamic
	copy(footer[68:84], sum16(raw))            // unique id: derived from the content
	binary.BigEndian.PutUint32(footer[64:], onesComplement(footer))

	header := make([]byte, 2*sector)
	copy(header[0:], "cxsparse")
	binary.BigEndian.PutUint64(header[8:], ^uint64(0)) // data offset: none
	binary.BigEndian.PutUint64(header[16:], batOff)
	binary.BigEndian.PutUint32(header[24:], 0x00010000)
	binary.BigEndian.PutUint32(header[28:], uint32(n))
	binary.BigEndian.PutUint32(header[32:], blockSize)
	binary.BigEndian.PutUint32(header[36:], onesComplement(header))

	var out bytes.Buffer
	out.Grow(int(next) + sector)
	out.Write(footer)
	out.Write(header)
	out.Write(bat)
	bitmap := bytes.Repeat([]byte{0xff}, bitmapLen)
	for _, i := range blocks {
		out.Write(bitmap)
		b := block(i)
		out.Write(b)
		out.Write(zero[:blockSize-len(b)])
	}
	out.Write(footer)
	return out.Bytes(), nil
}

// chs is the VHD specification's geometry of a disk of total sectors.
func chs(total int64) (cyl uint16, heads, spt uint8) {
	total = min(total, 65535*16*255)
	var h, s, cth int64
	switch {
	case total >= 65535*16*63:
		s, h = 255, 16
		cth = total / s
	default:
		s = 17
		cth = total / s
		h = (cth + 1023) / 1024
		if h < 4 {
			h = 4
		}
		if cth >= h*1024 || h > 16 {
			s, h = 31, 16
			cth = total / s
		}
		if cth >= h*1024 {
			s, h = 63, 16
			cth = total / s
		}
	}
	return uint16(cth / h), uint8(h), uint8(s)
}

// onesComplement is the VHD checksum of b, whose checksum field is zero.
func onesComplement(b []byte) uint32 {
	var sum uint32
	for _, x := range b {
		sum += uint32(x)
	}
	return ^sum
}

// sum16 is 16 bytes derived from b.
func sum16(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:16]
}

// SampleTemplateDisk returns the raw disk that SampleTemplate's export
// holds in this simulator (the sample image's file system carries its
// creation time, so another process's sampleimage.Build differs).
func (s *Sim) SampleTemplateDisk() []byte { return s.sampleDisk }
