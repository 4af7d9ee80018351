package vhdcrypt

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
// that vhd-util copy does to partially allocated blocks (../docs/FORMAT.md).
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
		in, err = openInput(src, -1, allowTable)
	}
	if errors.Is(err, ErrNeedSize) {
		return nil, fmt.Errorf("vhdcrypt: checking: the input stream is not a dynamic VHD: %w", vhd.ErrNotVHD)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case in.img != nil:
		r, err := in.img.Check(ctx)
		if err != nil {
			return nil, fmt.Errorf("vhdcrypt: checking: %w", err)
		}
		return r, nil
	case in.sr != nil:
		r, err := in.sr.Check(ctx)
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("vhdcrypt: checking: reading the input stream: %w", err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("vhdcrypt: checking: the input is a %s image: %w", in.kind, vhd.ErrNotVHD)
}
