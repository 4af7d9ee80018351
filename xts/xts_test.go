package xts

import (
	"bytes"
	"crypto/aes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	xcxts "golang.org/x/crypto/xts"
)

// implNames names the implementations for subtests and benchmarks.
var implNames = map[implementation]string{implGeneric: "generic", implAESNI: "aesni", implVAES: "vaes", implAVX512: "avx512"}

// implementations lists the implementations this processor runs: the
// portable one always, the assembly ones where the CPU supports them.
func implementations() []implementation {
	var list []implementation
	for _, impl := range []implementation{implGeneric, implAESNI, implVAES, implAVX512} {
		if available(impl) {
			list = append(list, impl)
		}
	}
	return list
}

// suiteCalls counts the kernel calls of every Cipher the tests make with
// testCipher, for the summary TestMain prints.
var suiteCalls kernelCalls

// testCipher returns a Cipher for key that runs impl (without the weak-key
// check), counting its kernel calls in suiteCalls.
func testCipher(tb testing.TB, key []byte, impl implementation) *Cipher {
	tb.Helper()
	c, err := newCipher(key, impl)
	if err != nil {
		tb.Fatal(err)
	}
	c.calls = &suiteCalls
	return c
}

// forEachImpl runs body once per implementation, as parallel subtests, so
// CI exercises the portable code even on machines with AES-NI. The
// implementation belongs to each Cipher (testCipher), so the subtests
// share nothing.
func forEachImpl(t *testing.T, body func(t *testing.T, impl implementation)) {
	t.Helper()
	for _, impl := range implementations() {
		t.Run(implNames[impl], func(t *testing.T) {
			t.Parallel()
			body(t, impl)
		})
	}
}

func randomKey(r *rand.Rand, size int) []byte {
	k := make([]byte, size)
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

func randomBytes(r *rand.Rand, n int) []byte { return randomKey(r, n) }

// reference encrypts or decrypts with golang.org/x/crypto/xts, one call per
// sector, with the tweak mapped as in ../docs/FORMAT.md: x/crypto writes the sector
// number as 64-bit little endian, tapdisk as 32-bit, so pass uint32(n).
func reference(t testing.TB, key, src []byte, first uint64, decrypt bool) []byte {
	t.Helper()
	c, err := xcxts.NewCipher(aes.NewCipher, key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(src))
	for i := 0; i < len(src); i += SectorSize {
		n := uint64(uint32(first + uint64(i/SectorSize)))
		if decrypt {
			c.Decrypt(out[i:i+SectorSize], src[i:i+SectorSize], n)
		} else {
			c.Encrypt(out[i:i+SectorSize], src[i:i+SectorSize], n)
		}
	}
	return out
}

// xcase is one differential test case: a key, a first sector, a plaintext
// and x/crypto/xts's ciphertext for them.
type xcase struct {
	key       []byte
	first     uint64
	src, want []byte
}

// xcryptoCases draws random keys (both sizes), lengths (0 to 40 sectors,
// and two whole 2 MiB VHD blocks) and first sectors (random, below 2^32,
// and around 2^32 where the tweak wraps), with x/crypto/xts's answers.
func xcryptoCases(t *testing.T) []xcase {
	starts := []uint64{0, 1, 4095, 1<<32 - 1, 1<<32 - 3, 1 << 32, 1<<32 + 7, 0xFF000000 - 1, 1<<64 - 1, 1<<64 - 2}
	r := rand.New(rand.NewPCG(1, 2))
	var cases []xcase
	for iter := 0; iter < 80; iter++ {
		keySize := keySize128
		if iter%2 == 1 {
			keySize = keySize256
		}
		n := r.IntN(41)
		if iter == 10 || iter == 11 {
			n = 4096
		}
		first := r.Uint64()
		switch iter % 3 {
		case 0:
			first = starts[r.IntN(len(starts))]
		case 1:
			first >>= 32 // below 2^32
		}
		key := randomKey(r, keySize)
		src := randomBytes(r, n*SectorSize)
		cases = append(cases, xcase{key, first, src, reference(t, key, src, first, false)})
	}
	return cases
}

// TestAgainstXCrypto compares every implementation with
// golang.org/x/crypto/xts, in both directions, in place and not, with a
// destination longer than the source (whose tail must stay untouched).
func TestAgainstXCrypto(t *testing.T) {
	t.Parallel()
	cases := xcryptoCases(t)
	forEachImpl(t, func(t *testing.T, impl implementation) {
		for i, tc := range cases {
			c := testCipher(t, tc.key, impl)
			got := make([]byte, len(tc.src)+SectorSize)
			if err := c.EncryptSectors(got, tc.src, tc.first); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:len(tc.src)], tc.want) {
				t.Fatalf("case %d (%d-byte key, %d sectors from %d): encrypt differs from x/crypto/xts",
					i, len(tc.key), len(tc.src)/SectorSize, tc.first)
			}
			back := make([]byte, len(tc.src)+SectorSize)
			if err := c.DecryptSectors(back, tc.want, tc.first); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back[:len(tc.src)], tc.src) {
				t.Fatalf("case %d: decrypt did not restore the plaintext", i)
			}
			zero := make([]byte, SectorSize)
			if !bytes.Equal(got[len(tc.src):], zero) || !bytes.Equal(back[len(tc.src):], zero) {
				t.Fatalf("case %d: wrote past len(src)", i)
			}
			buf := bytes.Clone(tc.src)
			if err := c.EncryptSectors(buf, buf, tc.first); err != nil || !bytes.Equal(buf, tc.want) {
				t.Fatalf("case %d: in-place encrypt differs (err %v)", i, err)
			}
			if err := c.DecryptSectors(buf, buf, tc.first); err != nil || !bytes.Equal(buf, tc.src) {
				t.Fatalf("case %d: in-place decrypt differs (err %v)", i, err)
			}
		}
	})
}

// TestUnitsAgainstGeneric runs the data-unit primitive of every
// implementation on units of 1 to 70 blocks (every tail length of the
// 8- and 16-block loops) with random 128-bit sequence numbers, against the
// portable implementation, with guard bytes after the destination.
func TestUnitsAgainstGeneric(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 14))
	type ucase struct {
		key        []byte
		lo, hi     uint64
		src, want  []byte
		wantDecode []byte
	}
	var cases []ucase
	for blocks := 1; blocks <= 70; blocks++ {
		for _, keySize := range []int{keySize128, keySize256} {
			key := randomKey(r, keySize)
			c := testCipher(t, key, implGeneric)
			uc := ucase{key: key, lo: r.Uint64(), hi: r.Uint64(), src: randomBytes(r, 16*blocks)}
			uc.want = make([]byte, len(uc.src))
			c.unit(uc.want, uc.src, uc.lo, uc.hi, false)
			uc.wantDecode = make([]byte, len(uc.src))
			c.unit(uc.wantDecode, uc.src, uc.lo, uc.hi, true)
			cases = append(cases, uc)
		}
	}
	forEachImpl(t, func(t *testing.T, impl implementation) {
		for _, uc := range cases {
			c := testCipher(t, uc.key, impl)
			for _, decrypt := range []bool{false, true} {
				want := uc.want
				if decrypt {
					want = uc.wantDecode
				}
				got := bytes.Repeat([]byte{0xEE}, len(uc.src)+64)
				c.unit(got, uc.src, uc.lo, uc.hi, decrypt)
				if !bytes.Equal(got[:len(uc.src)], want) {
					t.Fatalf("%d blocks, %d-byte key, decrypt=%v: differs from generic", len(uc.src)/16, len(uc.key), decrypt)
				}
				if !bytes.Equal(got[len(uc.src):], bytes.Repeat([]byte{0xEE}, 64)) {
					t.Fatalf("%d blocks: wrote past the end", len(uc.src)/16)
				}
				inPlace := bytes.Clone(uc.src)
				c.unit(inPlace, inPlace, uc.lo, uc.hi, decrypt)
				if !bytes.Equal(inPlace, want) {
					t.Fatalf("%d blocks, decrypt=%v: in place differs", len(uc.src)/16, decrypt)
				}
			}
		}
	})
}

// TestTweakWrapsAt2To32 pins the documented behaviour above 2^32 sectors:
// only the low 32 bits of the sector number count, as in tapdisk.
func TestTweakWrapsAt2To32(t *testing.T) {
	t.Parallel()
	forEachImpl(t, func(t *testing.T, impl implementation) {
		r := rand.New(rand.NewPCG(3, 4))
		c := testCipher(t, randomKey(r, keySize256), impl)
		src := randomBytes(r, 3*SectorSize)
		low := make([]byte, len(src))
		high := make([]byte, len(src))
		if err := c.EncryptSectors(low, src, 5); err != nil {
			t.Fatal(err)
		}
		if err := c.EncryptSectors(high, src, 1<<32+5); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(low, high) {
			t.Fatal("sector 2^32+5 should encrypt like sector 5")
		}
		// A call that crosses 2^32: sectors 2^32-1, 0, 1.
		span := make([]byte, len(src))
		if err := c.EncryptSectors(span, src, 1<<32-1); err != nil {
			t.Fatal(err)
		}
		last := make([]byte, SectorSize)
		if err := c.EncryptSectors(last, src[:SectorSize], 0xFFFFFFFF); err != nil {
			t.Fatal(err)
		}
		zeroOne := make([]byte, 2*SectorSize)
		if err := c.EncryptSectors(zeroOne, src[SectorSize:], 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(span, append(last, zeroOne...)) {
			t.Fatal("a call across 2^32 should wrap to sector 0")
		}
		// The largest VHD's last sector is still below 2^32.
		const vhdMaxSectors = 2040 << 30 / SectorSize
		if vhdMaxSectors > 1<<32 {
			t.Fatal("VHD maximum exceeds 2^32 sectors")
		}
	})
}

func TestNewCipherErrors(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 16, 24, 31, 33, 48, 63, 65, 128} {
		c, err := NewCipher(make([]byte, n))
		if !errors.Is(err, ErrKeySize) || c != nil {
			t.Errorf("%d-byte key: got %v, %v; want ErrKeySize", n, c, err)
		}
	}
	if _, err := NewCipher(nil); !errors.Is(err, ErrKeySize) {
		t.Errorf("nil key: %v", err)
	}
	for _, size := range []int{keySize128, keySize256} {
		k := bytes.Repeat([]byte{0x5A}, size)
		if c, err := NewCipher(k); !errors.Is(err, ErrWeakKey) || c != nil {
			t.Errorf("%d-byte key with equal halves: got %v, %v; want ErrWeakKey", size, c, err)
		}
		k[0] ^= 1 // halves now differ in one bit
		if _, err := NewCipher(k); err != nil {
			t.Errorf("%d-byte key with different halves: %v", size, err)
		}
	}
}

func TestBufferErrors(t *testing.T) {
	t.Parallel()
	c, err := NewCipher(randomKey(rand.New(rand.NewPCG(5, 6)), keySize128))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8*SectorSize)
	cases := []struct {
		name     string
		dst, src []byte
		want     error
	}{
		{"src 1 byte", big, big[:1], ErrLength},
		{"src 511 bytes", big, big[:511], ErrLength},
		{"src 513 bytes", big, big[:513], ErrLength},
		{"src 16 bytes", big, big[:16], ErrLength},
		{"dst short", big[:SectorSize], big[SectorSize : 3*SectorSize], ErrShortBuffer},
		{"dst nil", nil, big[:SectorSize], ErrShortBuffer},
		{"dst one byte ahead", big[1:], big[:2*SectorSize], ErrOverlap},
		{"dst one byte behind", big[:2*SectorSize], big[1 : 1+SectorSize], ErrOverlap},
		{"dst a sector behind", big[:4*SectorSize], big[SectorSize : 3*SectorSize], ErrOverlap},
		{"dst starts in src's last block", big[SectorSize-16:], big[:SectorSize], ErrOverlap},
		{"overlap beyond len(src) is fine", big[:SectorSize+1], big[SectorSize : 2*SectorSize], nil},
		{"same buffer", big, big, nil},
		{"same start, dst longer", big, big[:SectorSize], nil},
		{"adjacent", big[:SectorSize], big[SectorSize : 2*SectorSize], nil},
		{"empty src", nil, nil, nil},
		{"empty src, odd dst", big[:3], big[:0], nil},
	}
	for _, tc := range cases {
		for _, dir := range []string{"encrypt", "decrypt"} {
			before := bytes.Clone(big)
			var err error
			if dir == "encrypt" {
				err = c.EncryptSectors(tc.dst, tc.src, 0)
			} else {
				err = c.DecryptSectors(tc.dst, tc.src, 0)
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("%s, %s: got %v, want %v", tc.name, dir, err, tc.want)
			}
			if tc.want != nil && !bytes.Equal(before, big) {
				t.Errorf("%s, %s: wrote to dst despite the error", tc.name, dir)
			}
		}
	}
}

// TestUninitialisedCipher: methods of a nil or zero Cipher return an error
// instead of panicking.
func TestUninitialisedCipher(t *testing.T) {
	t.Parallel()
	buf := make([]byte, SectorSize)
	for name, c := range map[string]*Cipher{"nil": nil, "zero": {}} {
		if err := c.EncryptSectors(buf, buf, 0); err == nil {
			t.Errorf("%s Cipher: EncryptSectors returned nil", name)
		}
		if err := c.DecryptSectors(buf, buf, 0); err == nil {
			t.Errorf("%s Cipher: DecryptSectors returned nil", name)
		}
	}
}

// TestDoesNotRetainKey: changing the caller's key after NewCipher changes
// nothing.
func TestDoesNotRetainKey(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	key := randomKey(r, keySize256)
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	src := randomBytes(r, 2*SectorSize)
	want := make([]byte, len(src))
	if err := c.EncryptSectors(want, src, 9); err != nil {
		t.Fatal(err)
	}
	for i := range key {
		key[i] = 0
	}
	got := make([]byte, len(src))
	if err := c.EncryptSectors(got, src, 9); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("zeroing the caller's key changed the Cipher")
	}
}

// TestPrintsNoKeyMaterial formats a Cipher every way fmt can and checks the
// output is the fixed description only.
func TestPrintsNoKeyMaterial(t *testing.T) {
	t.Parallel()
	key := make([]byte, keySize256)
	for i := range key {
		key[i] = byte(0xA0 + i)
	}
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	const want = "xts.Cipher(AES-256-XTS)"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		for _, arg := range []any{c, *c} {
			got := fmt.Sprintf(verb, arg)
			if got != want {
				t.Errorf("Sprintf(%q, %T) = %q, want %q", verb, arg, got, want)
			}
		}
	}
	// fmt handles %p before any method: it prints the pointer, or for a
	// value the fields without calling Format. The fields must then be
	// pointers (printed as addresses), never the key schedules themselves.
	for _, arg := range []any{c, *c} {
		got := fmt.Sprintf("%p", arg)
		if strings.Contains(got, "a0a1a2") || strings.Contains(got, "160 161") || strings.Contains(got, "[") {
			t.Errorf("Sprintf(%%p, %T) = %q shows key material", arg, got)
		}
	}
	if got := fmt.Sprint([]*Cipher{c}); !strings.Contains(got, want) {
		t.Errorf("Sprint(slice) = %q", got)
	}
	var zero Cipher
	if got := fmt.Sprint(zero); got != "xts.Cipher(uninitialised)" {
		t.Errorf("zero Cipher prints %q", got)
	}
	c128, err := NewCipher(key[:keySize128])
	if err != nil {
		t.Fatal(err)
	}
	if got := c128.String(); got != "xts.Cipher(AES-128-XTS)" {
		t.Errorf("128-bit Cipher prints %q", got)
	}
}

// TestZeroAllocs proves EncryptSectors and DecryptSectors allocate nothing,
// for one sector and for a 2 MiB VHD block, in place and not.
//
// It does not run in parallel with other tests: testing.AllocsPerRun counts
// the allocations of the whole process.
func TestZeroAllocs(t *testing.T) {
	for _, impl := range implementations() {
		t.Run(implNames[impl], func(t *testing.T) { zeroAllocs(t, impl) })
	}
}

func zeroAllocs(t *testing.T, impl implementation) {
	{
		r := rand.New(rand.NewPCG(9, 10))
		for _, keySize := range []int{keySize128, keySize256} {
			c := testCipher(t, randomKey(r, keySize), impl)
			for _, n := range []int{1, 4096} {
				src := randomBytes(r, n*SectorSize)
				dst := make([]byte, len(src))
				runs := 100
				if n > 1 {
					runs = 5
				}
				for name, f := range map[string]func(){
					"encrypt":          func() { _ = c.EncryptSectors(dst, src, 77) },
					"decrypt":          func() { _ = c.DecryptSectors(dst, src, 77) },
					"encrypt in place": func() { _ = c.EncryptSectors(dst, dst, 1<<32-1) },
				} {
					if a := testing.AllocsPerRun(runs, f); a != 0 {
						t.Errorf("%d-byte key, %d sectors, %s: %v allocs per call", keySize, n, name, a)
					}
				}
			}
		}
	}
}

// TestConcurrentUse shares one Cipher between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	key := randomKey(r, keySize256)
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	src := randomBytes(r, 64*SectorSize)
	want := reference(t, key, src, 1000, false)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(src))
			for i := 0; i < 20; i++ {
				copy(buf, src)
				if err := c.EncryptSectors(buf, buf, 1000); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, want) {
					errs <- errors.New("concurrent encryption gave a wrong result")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestWipe: after Wipe, every implementation refuses to run, printing says
// so, and Wipe can be called again, or on nil.
func TestWipe(t *testing.T) {
	t.Parallel()
	forEachImpl(t, func(t *testing.T, impl implementation) {
		c := testCipher(t, randomKey(rand.New(rand.NewPCG(13, 14)), keySize256), impl)
		buf := make([]byte, 2*SectorSize)
		if err := c.EncryptSectors(buf, buf, 0); err != nil {
			t.Fatal(err)
		}
		c.Wipe()
		c.Wipe()
		if err := c.EncryptSectors(buf, buf, 0); !errors.Is(err, ErrWiped) {
			t.Errorf("EncryptSectors after Wipe: %v", err)
		}
		if err := c.DecryptSectors(buf, buf, 0); !errors.Is(err, ErrWiped) {
			t.Errorf("DecryptSectors after Wipe: %v", err)
		}
		if c.data != nil || c.tweak != nil || c.sched != nil {
			t.Error("Wipe left key schedules referenced")
		}
		if got := c.String(); got != "xts.Cipher(wiped)" {
			t.Errorf("wiped Cipher prints %q", got)
		}
	})
	var nilCipher *Cipher
	nilCipher.Wipe()
}
