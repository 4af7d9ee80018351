package vhdcrypt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/units"

	"github.com/e2eimage/e2eimage/vhd"
)

// ImageInfo is what Inspect finds out about an image from its metadata.
type ImageInfo struct {
	// Format is "raw", "fixed VHD", "dynamic VHD" or "qcow2".
	Format string
	// Creator is the VHD creator application ("tap" for tapdisk and this
	// package, "qem2" for qemu-img, ...); empty for raw.
	Creator string
	// CreatorVersion is the creator's version field, e.g. 0x00010003.
	CreatorVersion uint32
	// Created is the footer's timestamp; zero for raw.
	Created time.Time
	// UniqueID is the footer's unique id; zero for raw.
	UniqueID [16]byte
	// VirtualSize is the guest disk's size in bytes.
	VirtualSize int64
	// FileSize is the image's size in bytes, -1 when it is read from a stream.
	FileSize int64
	// Blocks is the number of 2 MiB blocks of the virtual disk.
	Blocks int
	// AllocatedBlocks is how many blocks the image stores (for qcow2: the
	// blocks with a cluster stored), -1 when not known (a raw image is not
	// scanned by Inspect).
	AllocatedBlocks int
	// FullBlocks is how many allocated blocks have every sector present, -1
	// when not known (a stream).
	FullBlocks int
	// Encrypted reports whether the image carries a key hash.
	Encrypted bool
	// KeyHash is the key check of an encrypted image: SHA-256(nonce || DEK).
	// It identifies the key without revealing it; its length does not tell
	// the key's size.
	KeyHash *vhd.KeyHash
}

// Inspect reads an image's metadata (and its first bytes, which tell its
// format) and describes it. src is read like EncryptImage's input, but a
// disk without a partition table is described, not refused; from a stream
// only the headers are consumed. An image of a format the encryptor does
// not read gets disk's typed error.
func Inspect(ctx context.Context, src io.Reader) (*ImageInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := openInput(src, -1, allowTable)
	if errors.Is(err, ErrNeedSize) {
		// A raw stream: fine here, its size is simply unknown.
		return &ImageInfo{Format: kindRaw.String(), VirtualSize: -1, FileSize: -1, Blocks: -1, AllocatedBlocks: -1, FullBlocks: -1}, nil
	}
	if err != nil {
		return nil, err
	}
	info := &ImageInfo{
		Format:          in.kind.String(),
		VirtualSize:     in.size,
		FileSize:        -1,
		Blocks:          numBlocks(in.size),
		AllocatedBlocks: -1,
		FullBlocks:      -1,
	}
	if in.ra != nil {
		info.FileSize = in.raSize
	}
	var f *vhd.Footer
	switch {
	case in.img != nil:
		ft := in.img.Footer()
		f = &ft
		info.Creator = in.img.Creator()
		if kh, ok := in.img.KeyHash(); ok {
			info.Encrypted, info.KeyHash = true, &kh
		}
		var err error
		if info.AllocatedBlocks, info.FullBlocks, err = countBlocks(ctx, in.img.Blocks(), "block map"); err != nil {
			return nil, err
		}
	case in.kind == kindQCOW2:
		var err error
		if info.AllocatedBlocks, info.FullBlocks, err = countBlocks(ctx, in.d.Blocks(), "cluster map"); err != nil {
			return nil, err
		}
	case in.sr != nil:
		ft := in.sr.Footer()
		f = &ft
		info.Creator = in.sr.Creator()
		if kh, ok := in.sr.KeyHash(); ok {
			info.Encrypted, info.KeyHash = true, &kh
		}
		info.AllocatedBlocks = 0
		for i := range info.Blocks {
			if in.sr.Allocated(i) {
				info.AllocatedBlocks++
			}
		}
	}
	if f != nil {
		info.CreatorVersion = f.CreatorVersion
		info.Created = f.Time()
		info.UniqueID = f.UniqueID
	}
	return info, nil
}

// String is a human summary, one "name: value" line per fact.
func (i *ImageInfo) String() string {
	var b strings.Builder
	line := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%-17s "+format+"\n", append([]any{k + ":"}, args...)...)
	}
	line("format", "%s", i.Format)
	if i.Creator != "" || strings.HasSuffix(i.Format, "VHD") {
		line("creator", "%q version %d.%d", i.Creator, i.CreatorVersion>>16, i.CreatorVersion&0xFFFF)
		line("created", "%s", i.Created.UTC().Format(time.RFC3339))
		line("unique id", "%s", hex.EncodeToString(i.UniqueID[:]))
	}
	if i.VirtualSize >= 0 {
		line("virtual size", "%d bytes (%s)", i.VirtualSize, units.Bytes(i.VirtualSize))
	} else {
		line("virtual size", "unknown (raw stream)")
	}
	if i.FileSize >= 0 {
		line("file size", "%d bytes (%s)", i.FileSize, units.Bytes(i.FileSize))
	}
	if i.Blocks >= 0 {
		switch {
		case i.AllocatedBlocks < 0:
			line("blocks", "%d of 2 MiB (allocation not scanned)", i.Blocks)
		case i.FullBlocks < 0:
			line("blocks", "%d of 2 MiB, %d allocated", i.Blocks, i.AllocatedBlocks)
		default:
			line("blocks", "%d of 2 MiB, %d allocated (%d full, %d partial)", i.Blocks, i.AllocatedBlocks, i.FullBlocks, i.AllocatedBlocks-i.FullBlocks)
		}
	}
	if i.Encrypted {
		line("encrypted", "yes (AES-XTS, tapdisk key hash)")
		line("key hash nonce", "%s", hex.EncodeToString(i.KeyHash.Nonce[:]))
		line("key hash", "%s", hex.EncodeToString(i.KeyHash.Hash[:]))
	} else {
		line("encrypted", "no")
	}
	return b.String()
}

// countBlocks counts the allocated and the full blocks of a block map
// (a VHD's BAT or a qcow2 cluster map, named by what in errors).
func countBlocks(ctx context.Context, blocks iter.Seq2[vhd.BlockInfo, error], what string) (allocated, full int, err error) {
	for b, err := range blocks {
		if err != nil {
			return 0, 0, fmt.Errorf("vhdcrypt: reading the %s: %w", what, err)
		}
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		allocated++
		if b.Full {
			full++
		}
	}
	return allocated, full, nil
}
