package vhdcrypt

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/e2eimage/e2eimage/disk"
)

// Option configures EncryptImage, DecryptImage and the other image verbs.
// Options that do not apply to a verb are ignored by it.
type Option func(*options)

type options struct {
	workers   int
	progress  func(Progress)
	logger    *slog.Logger
	nonce     *[32]byte
	random    bool // WithRandomNonce
	uniqueID  *[16]byte
	timestamp time.Time
	size      int64
	format    Format
	noScan    bool // WithoutZeroScan
	noTable   bool // WithoutPartitionTable
}

func buildOptions(opts []Option) *options {
	o := &options{
		workers: runtime.GOMAXPROCS(0),
		logger:  slog.New(slog.DiscardHandler),
		size:    -1,
		format:  FormatRaw,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if o.workers < 1 { // zero means the default here as in every Plan and Config
		o.workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// WithWorkers sets how many goroutines encrypt or decrypt in parallel (and,
// for a file input, read in parallel). The default, and what 0 or a
// negative n means (as e2e.Plan.Workers == 0 does), is runtime.GOMAXPROCS(0).
// The output is the same for every value.
func WithWorkers(n int) Option { return func(o *options) { o.workers = n } }

// WithProgress calls fn as the work advances: after each block and once at
// the end of each phase. fn is called from one goroutine at a time, never
// concurrently, and must return quickly (it runs in the output path).
func WithProgress(fn func(Progress)) Option { return func(o *options) { o.progress = fn } }

// WithLogger sets the logger for debug and warning messages (for instance,
// that a raw stream is encrypted with every block allocated). The default
// discards everything. Nothing logged contains key material.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithNonce sets the key-hash nonce written into an encrypted image. The
// default is 32 zero bytes: what vhd-util copy writes, and what IBM's
// documented check of an encrypted image assumes (vhd-util key -C -k KEY
// computes SHA-256 of a zero nonce and the key, to be compared with the
// hash vhd-util key -p prints). See WithRandomNonce for the alternative.
func WithNonce(nonce [32]byte) Option { return func(o *options) { o.nonce, o.random = &nonce, false } }

// WithRandomNonce writes a random key-hash nonce instead of the zero one.
// Its benefit: two images encrypted with the same DEK no longer carry the
// same key hash, so the hash does not reveal that they share a key. Its
// risk: IBM documents only the zero-nonce procedure (vhd-util copy, checked
// with vhd-util key -C); tapdisk reads the nonce from the image, but IBM's
// import service is not public, so that it accepts another nonce is not
// documented, and the documented check fails on such an image. Use it only
// where that trade is understood. The last of WithNonce and WithRandomNonce
// wins.
func WithRandomNonce() Option { return func(o *options) { o.nonce, o.random = nil, true } }

// WithUniqueID sets the VHD footer's unique id instead of a random one, for
// reproducible output.
func WithUniqueID(id [16]byte) Option { return func(o *options) { o.uniqueID = &id } }

// WithTimestamp sets the VHD footer's timestamp instead of the current time,
// for reproducible output.
func WithTimestamp(t time.Time) Option { return func(o *options) { o.timestamp = t } }

// WithoutZeroScan makes a raw or fixed VHD input read with random access
// allocate every block of the output, as a stream input does, instead of
// reading the whole disk once beforehand to find its all-zero blocks. The
// trade: a remote input (an object read with ranged GETs, such as
// cos.Object) is then transferred once instead of twice, and the output is
// as large as the disk. A dynamic VHD read with random access is then
// planned from its block table alone, as a stream of it is, instead of
// reading every block's sector bitmap first (one small read per block,
// scattered over the whole input): the output is what the stream gives,
// every allocated block full, its absent sectors stored as encrypted zeros
// (which decrypt to the zeros they were). For images with full blocks
// (qemu-img writes them so) that is the same output.
func WithoutZeroScan() Option { return func(o *options) { o.noScan = true } }

// WithSize declares the virtual size in bytes of a raw (or fixed VHD) image
// read from a stream, which cannot be known before the stream ends but is
// needed to write the output's header first. It is ignored for file inputs
// and for dynamic VHD streams, which carry their size in their header. For a
// fixed VHD stream give the disk size, not the stream length (which is 512
// bytes more, the footer). A raw size that is not a multiple of 512 is
// padded with zeros to a whole sector.
func WithSize(n int64) Option { return func(o *options) { o.size = n } }

// WithoutPartitionTable lets the encryptor accept a raw or qcow2 disk that
// starts with neither an MBR nor a GPT: a deliberate file-system-only
// image, or test data. Without it such an input is refused before any
// output with an error matching disk.ErrNoPartitionTable, because IBM
// Cloud boots the disk it imports and a partition or volume image given
// by mistake would not boot (disk.AllowNoPartitionTable). VHD inputs are
// never refused for this: an encrypted VHD's first sector is ciphertext.
func WithoutPartitionTable() Option { return func(o *options) { o.noTable = true } }

// diskOptions are the options of disk.Open and disk.CheckStream that o
// asks for.
func (o *options) diskOptions() []disk.Option {
	if o.noTable {
		return []disk.Option{disk.AllowNoPartitionTable()}
	}
	return nil
}

// Format is the output format of DecryptImage.
type Format int

const (
	// FormatRaw is a raw disk image: the guest's bytes, Size bytes long.
	FormatRaw Format = iota
	// FormatVHD is an unencrypted dynamic VHD with the source's allocation,
	// readable by qemu-img and other VHD tools.
	FormatVHD
)

// String returns "raw" or "vhd".
func (f Format) String() string {
	switch f {
	case FormatRaw:
		return "raw"
	case FormatVHD:
		return "vhd"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "raw" or "vhd".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "raw":
		return FormatRaw, nil
	case "vhd":
		return FormatVHD, nil
	}
	return 0, fmt.Errorf("vhdcrypt: unknown output format %q (want raw or vhd)", s)
}

// WithFormat selects DecryptImage's output format; the default is FormatRaw.
func WithFormat(f Format) Option { return func(o *options) { o.format = f } }

// Phase names what a Progress report is about.
type Phase string

// The phases of the image verbs.
const (
	// PhaseScan reads a raw or fixed image to find its all-zero blocks,
	// which the output leaves unallocated. Done and Total count source bytes.
	PhaseScan Phase = "scan"
	// PhaseEncrypt writes the encrypted image. Done and Total count output
	// bytes (Total is Encryptor.Size).
	PhaseEncrypt Phase = "encrypt"
	// PhaseDecrypt writes the decrypted image. Done and Total count output
	// bytes.
	PhaseDecrypt Phase = "decrypt"
)

// Progress reports how far a phase has got.
type Progress struct {
	Phase Phase
	Done  int64 // bytes done so far
	Total int64 // bytes in the phase
}
