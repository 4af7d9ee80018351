package xts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// SectorSize is the size in bytes of one sector, the XTS data unit: tapdisk
// encrypts each 512-byte VHD sector on its own.
const SectorSize = 512

const (
	blockSize       = aes.BlockSize          // 16, the AES block size
	blocksPerSector = SectorSize / blockSize // 32
	// Key sizes in bytes: two AES-128 keys or two AES-256 keys (../docs/FORMAT.md,
	// "Encryption").
	keySize128 = 2 * 16
	keySize256 = 2 * 32
)

// Errors returned by NewCipher, EncryptSectors and DecryptSectors. Callers
// can test for them with errors.Is.
var (
	// ErrKeySize means the key is neither 32 bytes (AES-128-XTS) nor 64
	// bytes (AES-256-XTS).
	ErrKeySize = errors.New("xts: key must be 32 bytes (AES-128-XTS) or 64 bytes (AES-256-XTS)")
	// ErrWeakKey means the two halves of the key are equal, which IEEE
	// 1619-2018 (section 5.1) and FIPS 140-3 (IG C.I) forbid for XTS.
	ErrWeakKey = errors.New("xts: the data key and the tweak key (the two halves of the key) are equal")
	// ErrLength means the source is not a whole number of 512-byte sectors.
	ErrLength = errors.New("xts: input is not a whole number of 512-byte sectors")
	// ErrShortBuffer means the destination is shorter than the source.
	ErrShortBuffer = errors.New("xts: destination is shorter than source")
	// ErrOverlap means the destination and the source share memory without
	// starting at the same address. Exactly overlapping buffers (in-place
	// operation) are allowed.
	ErrOverlap = errors.New("xts: destination and source overlap without being the same buffer")
)

// Errors of a Cipher that cannot encrypt.
var (
	// ErrUninitialised is returned by the methods of a Cipher that was not
	// made by NewCipher (a nil pointer or a zero value).
	ErrUninitialised = errors.New("xts: Cipher was not created by NewCipher")
	// ErrWiped is returned by the methods of a Cipher after Wipe: its key
	// schedules are gone.
	ErrWiped = errors.New("xts: Cipher was wiped")
)

// Cipher is AES-XTS with one key. It is safe for concurrent use: nothing in
// it changes after NewCipher returns, until Wipe.
type Cipher struct {
	// data and tweak are the AES ciphers of the first (data) and second
	// (tweak) halves of the key, for the portable implementation. They
	// hold the expanded key schedules only, and are made only when that
	// implementation is in use (crypto/aes's copies cannot be wiped).
	data, tweak cipher.Block
	// sched holds the same keys expanded for the assembly kernels (nil
	// where there are none). It is a pointer so that printing a Cipher
	// value with %p, which bypasses Format, shows an address only.
	sched *schedule
	// impl is the implementation that runs this Cipher, fixed when it is
	// made: the fastest this processor has (defaultImpl), or in the
	// package's tests the one a test asks for.
	impl implementation
	// calls counts the kernel calls by implementation and direction. It
	// is nil except in the package's tests, which report from it which
	// kernels ran.
	calls   *kernelCalls
	keyBits int  // 128 or 256: the size of each half
	wiped   bool // Wipe has run
}

// NewCipher returns a Cipher for a 32-byte (AES-128-XTS) or 64-byte
// (AES-256-XTS) key: data key first, tweak key second. It returns an error
// wrapping ErrKeySize for any other length and ErrWeakKey when the two
// halves are equal. The Cipher does not retain key; it holds the expanded
// key schedules until Wipe (or until it is garbage collected).
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != keySize128 && len(key) != keySize256 {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrKeySize, len(key))
	}
	half := len(key) / 2
	if subtle.ConstantTimeCompare(key[:half], key[half:]) == 1 {
		return nil, ErrWeakKey
	}
	return newCipher(key, defaultImpl)
}

// newCipher expands key for impl, without the weak-key check so that tests
// can run IEEE 1619 vector 1, whose two keys are both zero. The assembly
// schedules are expanded wherever there is assembly; the crypto/aes
// ciphers of the portable implementation only when impl is implGeneric
// (or there is no assembly), so a portable Cipher in a test can also run
// every kernel. An impl this processor cannot run is refused.
func newCipher(key []byte, impl implementation) (*Cipher, error) {
	if len(key) != keySize128 && len(key) != keySize256 {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrKeySize, len(key))
	}
	if !available(impl) {
		return nil, fmt.Errorf("xts: implementation %d does not run on this processor", impl)
	}
	half := len(key) / 2
	c := &Cipher{sched: newSchedule(key[:half], key[half:]), keyBits: half * 8, impl: impl}
	if impl == implGeneric || c.sched == nil {
		c.impl = implGeneric
		var err error
		if c.data, err = aes.NewCipher(key[:half]); err != nil {
			return nil, fmt.Errorf("xts: expanding the data key: %w", err)
		}
		if c.tweak, err = aes.NewCipher(key[half:]); err != nil {
			return nil, fmt.Errorf("xts: expanding the tweak key: %w", err)
		}
	}
	c.sched.wipeWhenUnreachable(c)
	return c, nil
}

// Wipe zeroes the expanded keys c holds and makes c unusable: later calls
// of EncryptSectors and DecryptSectors return an error. Call it once done
// with the key, typically with defer; it must not run concurrently with
// EncryptSectors or DecryptSectors. Wipe is idempotent, and does nothing on
// a nil Cipher.
//
// With the amd64 assembly (the default on amd64) a Cipher holds no other
// copy of its key, so after Wipe none is left in its memory. The portable
// implementation (other architectures, the purego tag, processors without
// AES-NI) keeps its keys in crypto/aes ciphers, which offer no way to clear
// them: Wipe drops them for the garbage collector. Without Wipe the
// schedules are zeroed once the Cipher is garbage collected.
func (c *Cipher) Wipe() {
	if c == nil {
		return
	}
	c.sched.wipe()
	c.sched, c.data, c.tweak = nil, nil, nil
	c.keyBits = 0
	c.wiped = true
}

// String names the algorithm; it never shows key material. String, GoString
// and Format have value receivers so that a Cipher printed by value is
// redacted too.
func (c Cipher) String() string {
	if c.wiped {
		return "xts.Cipher(wiped)"
	}
	if c.keyBits == 0 {
		return "xts.Cipher(uninitialised)"
	}
	return fmt.Sprintf("xts.Cipher(AES-%d-XTS)", c.keyBits)
}

// GoString is String, so that %#v shows no key material either.
func (c Cipher) GoString() string { return c.String() }

// Format writes String for every verb, so that no fmt verb (%x, %d, %+v...)
// prints the key schedules.
func (c Cipher) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// EncryptSectors encrypts src into dst. src must be a whole number of
// 512-byte sectors, the first of which is guest sector firstSector and the
// others consecutive. dst must be at least as long as src; only its first
// len(src) bytes are written. dst and src may be the same buffer (same
// start) but must not otherwise overlap. The tweak of sector n is uint32(n)
// (see the package documentation).
//
// It returns ErrLength, ErrShortBuffer or ErrOverlap, without writing
// anything, when the buffers do not meet these rules.
func (c *Cipher) EncryptSectors(dst, src []byte, firstSector uint64) error {
	if err := c.check(dst, src); err != nil {
		return err
	}
	c.sectors(dst[:len(src)], src, firstSector, false)
	return nil
}

// DecryptSectors decrypts src into dst. The rules for the buffers and the
// sector numbers are those of EncryptSectors.
func (c *Cipher) DecryptSectors(dst, src []byte, firstSector uint64) error {
	if err := c.check(dst, src); err != nil {
		return err
	}
	c.sectors(dst[:len(src)], src, firstSector, true)
	return nil
}

// implementation names one of the package's implementations.
type implementation int

const (
	implGeneric implementation = iota // portable: crypto/aes, any architecture
	implAESNI                         // amd64 assembly, AES-NI, 128-bit registers
	implVAES                          // amd64 assembly, VAES + VPCLMULQDQ, 256-bit registers
	implAVX512                        // amd64 assembly, AVX-512 + VAES + VPCLMULQDQ, 512-bit registers
	numImpls
)

// defaultImpl is the implementation NewCipher gives every Cipher: the
// fastest one this processor runs, found once at start-up and never
// changed afterwards.
var defaultImpl = bestImpl()

// kernelCalls counts kernel calls per implementation and direction (0
// encryption, 1 decryption).
type kernelCalls [numImpls][2]atomic.Uint64

// add counts one call of impl's kernel; it does nothing on nil.
func (k *kernelCalls) add(impl implementation, decrypt bool) {
	if k == nil {
		return
	}
	d := 0
	if decrypt {
		d = 1
	}
	k[impl][d].Add(1)
}

// sectors dispatches to c's implementation.
func (c *Cipher) sectors(dst, src []byte, firstSector uint64, decrypt bool) {
	if c.impl != implGeneric && c.sched != nil {
		c.fastSectors(c.impl, dst, src, firstSector, decrypt)
		return
	}
	c.calls.add(implGeneric, decrypt)
	c.genericSectors(dst, src, firstSector, decrypt)
}

// unit processes one data unit of any whole number of blocks with any
// 128-bit data unit sequence number hi:lo (for IEEE 1619 vectors).
func (c *Cipher) unit(dst, src []byte, lo, hi uint64, decrypt bool) {
	if c.impl != implGeneric && c.sched != nil {
		c.fastUnit(c.impl, dst, src, lo, hi, decrypt)
		return
	}
	c.calls.add(implGeneric, decrypt)
	c.genericUnit(dst, src, lo, hi, decrypt)
}

// check validates the receiver and the buffers.
func (c *Cipher) check(dst, src []byte) error {
	switch {
	case c != nil && c.wiped:
		return ErrWiped
	case c == nil || c.keyBits == 0:
		return ErrUninitialised
	case len(src)%SectorSize != 0:
		return ErrLength
	case len(dst) < len(src):
		return ErrShortBuffer
	case inexactOverlap(dst[:len(src)], src):
		return ErrOverlap
	}
	return nil
}

// inexactOverlap reports whether x and y share memory without starting at
// the same address.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	x0 := uintptr(unsafe.Pointer(&x[0]))
	y0 := uintptr(unsafe.Pointer(&y[0]))
	return x0 <= y0+uintptr(len(y)-1) && y0 <= x0+uintptr(len(x)-1)
}
