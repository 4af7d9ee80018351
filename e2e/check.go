package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/e2eimage/e2eimage/vhd"
)

// Check examines a VHD for damage and returns package vhd's report. For an
// encrypted VHD it looks at every present sector: one stored as all-zero
// bytes is plaintext that tapdisk will "decrypt" into garbage, the damage
// that vhd-util copy does to partially allocated blocks (FORMAT.md).
// Report.ZeroPresentSectors counts those sectors and Report.ZeroPresentBlocks
// lists their blocks; Report.OK is false when anything was found.
//
// A file (random access) gets vhd's full structural check too. A stream
// (a dynamic VHD only) is read once, front to back, and its report covers
// the allocation and the damage scan; Problems then holds nothing.
//
// The error is for failing to check (I/O, an input that is not a VHD, ctx);
// findings are in the report.
func Check(ctx context.Context, src io.Reader) (*vhd.Report, error) {
	return check(ctx, src, nil)
}

// VerifyImage checks dek against the key hash of the encrypted VHD src and,
// when it matches, examines the image like Check, in one pass (a stream is
// read once). It returns ErrWrongKey (before reading any data) when the key
// does not match and ErrNotEncrypted when src is not an encrypted VHD. A nil
// error with a report whose OK is false means the key is right but the
// image is damaged.
func VerifyImage(ctx context.Context, src io.Reader, dek *DEK) (*vhd.Report, error) {
	if err := checkDEK(dek); err != nil {
		return nil, err
	}
	return check(ctx, src, dek)
}

func check(ctx context.Context, src io.Reader, dek *DEK) (*vhd.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var in *input
	var err error
	if dek != nil {
		in, err = openEncrypted(src)
		if err == nil {
			err = in.verifyKey(dek)
		}
		if err != nil {
			return nil, err
		}
	} else {
		in, err = openInput(src, -1)
	}
	if errors.Is(err, ErrNeedSize) {
		return nil, fmt.Errorf("e2e: checking: the input stream is not a dynamic VHD: %w", vhd.ErrNotVHD)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case in.img != nil:
		r, err := in.img.Check(ctx)
		if err != nil {
			return nil, fmt.Errorf("e2e: checking: %w", err)
		}
		return r, nil
	case in.sr != nil:
		return checkStream(ctx, in)
	}
	return nil, fmt.Errorf("e2e: checking: the input is a raw image: %w", vhd.ErrNotVHD)
}

// checkStream scans a dynamic VHD stream block by block.
func checkStream(ctx context.Context, in *input) (*vhd.Report, error) {
	f := in.sr.Footer()
	r := &vhd.Report{
		Type:            vhd.Dynamic,
		Size:            in.size,
		Creator:         trimCreator(f.Creator),
		NativeBlockSize: vhd.BlockSize,
	}
	_, r.Encrypted = in.sr.KeyHash()
	buf := make([]byte, vhd.BlockSize)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := in.sr.Next(buf)
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return nil, fmt.Errorf("e2e: checking: reading the input stream: %w", err)
		}
		r.AllocatedBlocks++
		if b.Full {
			r.FullBlocks++
		}
		// Only sectors within the virtual size count.
		limit := min(int64(vhd.SectorsPerBlock), (in.size-int64(b.Index)*vhd.BlockSize)/vhd.SectorSize)
		var zero int64
		_ = forEachRun(b.Bitmap, func(s, e int) error {
			e = min(e, int(limit))
			for k := s; k < e; k++ {
				r.PresentSectors++
				if r.Encrypted && isZero(buf[k*vhd.SectorSize:(k+1)*vhd.SectorSize]) {
					zero++
				}
			}
			return nil
		})
		if zero > 0 {
			r.ZeroPresentSectors += zero
			r.ZeroPresentBlocks = append(r.ZeroPresentBlocks, b.Index)
		}
	}
}

func trimCreator(c string) string {
	for len(c) > 0 && (c[len(c)-1] == 0 || c[len(c)-1] == ' ') {
		c = c[:len(c)-1]
	}
	return c
}
