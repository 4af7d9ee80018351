package cos

import (
	"fmt"

	"github.com/e2eimage/e2eimage/importspec"
)

// Limits of COS multipart uploads and of classic image import. Where a
// source gives "GB" without saying whether it means 10^9 or 2^30 bytes, an
// upper bound uses the smaller reading and a size that must be reachable
// uses the larger, so both are safe.
const (
	// MaxParts is the most parts one multipart upload may have (COS docs,
	// multipart.md: "at most 10,000 parts").
	MaxParts = 10000
	// MinPartSize is the smallest part other than the last (COS and S3:
	// 5 MiB; s3manager.MinUploadPartSize).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part (COS docs: 5 GB; read as 10^9 bytes).
	MaxPartSize = 5_000_000_000
	// MaxObjectSize is the largest object (COS docs: 10 TB; read as 10^12).
	MaxObjectSize = 10_000_000_000_000
	// ImportMaxSize is the largest image classic infrastructure imports:
	// importspec.MaxDiskSize (100 GB, read as 100 GiB so that a stream's
	// part size always reaches it).
	ImportMaxSize = importspec.MaxDiskSize

	// DefaultPartSize is the part size for inputs of unknown length and the
	// smallest part size for inputs of known length. 16 MiB × MaxParts =
	// 156.25 GiB, the most a stream of unknown length can hold with the
	// default: above ImportMaxSize, as it must be. COS recommends 20–100 MB
	// parts for objects under 50 GB; 16 MiB keeps the default memory at
	// (DefaultConcurrency+1) × 16 MiB = 80 MiB.
	DefaultPartSize = 16 << 20
	// DefaultConcurrency is how many parts are in flight at once.
	DefaultConcurrency = 4
	// MaxConcurrency bounds WithConcurrency.
	MaxConcurrency = 64
	// DefaultPartAttempts is how many times the engine sends a part (each
	// attempt itself retried by the SDK, Config.MaxRetries) before the
	// upload fails.
	DefaultPartAttempts = 4
)

// SizeUnknown is the size to pass to Upload when the input's length is not
// known in advance (a pipe, an encrypting stream).
const SizeUnknown int64 = -1

// mib is one mebibyte; known-size part sizes are rounded up to a multiple.
const mib = 1 << 20

// choosePartSize returns the part size for an input of size bytes
// (SizeUnknown allowed). want is the caller's preference (0 for the
// default). A known size gets parts large enough for MaxParts; a stream
// gets want or DefaultPartSize, which caps it at MaxParts × that.
func choosePartSize(size, want int64) (int64, error) {
	if want != 0 && (want < MinPartSize || want > MaxPartSize) {
		return 0, fmt.Errorf("cos: part size %d outside [%d, %d]", want, MinPartSize, MaxPartSize)
	}
	ps := want
	if ps == 0 {
		ps = DefaultPartSize
	}
	if size < 0 {
		return ps, nil
	}
	if size > MaxObjectSize {
		return 0, fmt.Errorf("%w: %d bytes is above COS's %d-byte object limit", ErrTooLarge, size, int64(MaxObjectSize))
	}
	if need := (size + MaxParts - 1) / MaxParts; need > ps {
		ps = (need + mib - 1) / mib * mib
	}
	return ps, nil
}
