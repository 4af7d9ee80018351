package xts

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// TestMain runs the tests and, with -v, prints which kernels the whole run
// exercised, counted by the Ciphers the tests made with testCipher (when
// any ran).
func TestMain(m *testing.M) {
	code := m.Run()
	if testing.Verbose() && len(ran(&suiteCalls)) > 0 {
		fmt.Printf("xts kernels run by the suite: %s\n", describeCalls(&suiteCalls))
	}
	os.Exit(code)
}

// describeCalls lists, for every implementation, how many kernel calls of
// each direction calls counted, or why the implementation cannot run here.
func describeCalls(calls *kernelCalls) string {
	var parts []string
	for impl := range numImpls {
		enc, dec := calls[impl][0].Load(), calls[impl][1].Load()
		switch {
		case !available(impl):
			parts = append(parts, fmt.Sprintf("%s absent (%s)", implNames[impl], absentReason(impl)))
		default:
			parts = append(parts, fmt.Sprintf("%s encrypt=%d decrypt=%d", implNames[impl], enc, dec))
		}
	}
	return strings.Join(parts, ", ")
}

// ran lists the implementations whose kernels calls counted in both
// directions.
func ran(calls *kernelCalls) []string {
	var names []string
	for impl := range numImpls {
		if calls[impl][0].Load() > 0 && calls[impl][1].Load() > 0 {
			names = append(names, implNames[impl])
		}
	}
	return names
}

// requiredKernels parses XTS_REQUIRE, a comma-separated list of kernel
// names (generic, aesni, vaes, avx512).
func requiredKernels(t *testing.T) []implementation {
	t.Helper()
	var req []implementation
	for _, name := range strings.Split(os.Getenv("XTS_REQUIRE"), ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		found := false
		for impl, n := range implNames {
			if n == name {
				req, found = append(req, impl), true
			}
		}
		if !found {
			t.Fatalf("XTS_REQUIRE names %q; the kernels are generic, aesni, vaes, avx512", name)
		}
	}
	return req
}

// TestKernelsReport runs every kernel this processor supports on sectors
// of both key sizes, checks each against golang.org/x/crypto/xts, and logs
// which kernels ran, counted from the calls that reached them:
//
//	xts kernels run: generic,aesni,vaes (avx512 absent: ...)
//
// With XTS_REQUIRE=vaes,avx512 (any list of generic, aesni, vaes, avx512)
// it fails when a listed kernel is absent from this processor or this
// build, or did not run.
func TestKernelsReport(t *testing.T) {
	t.Parallel()
	req := requiredKernels(t)
	var calls kernelCalls
	r := rand.New(rand.NewPCG(31, 32))
	for _, impl := range implementations() {
		for _, keySize := range []int{keySize128, keySize256} {
			key := randomKey(r, keySize)
			c, err := newCipher(key, impl)
			if err != nil {
				t.Fatal(err)
			}
			c.calls = &calls
			// One sector (the kernel encrypts its tweak), a batch and
			// a tail (the tweak kernel feeds it), across 2^32.
			for _, n := range []int{1, 11} {
				first := uint64(1<<32 - 3)
				src := randomBytes(r, n*SectorSize)
				want := reference(t, key, src, first, false)
				got := make([]byte, len(src))
				if err := c.EncryptSectors(got, src, first); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s, %d-byte key, %d sectors: encryption differs from x/crypto/xts", implNames[impl], keySize, n)
				}
				if err := c.DecryptSectors(got, got, first); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, src) {
					t.Fatalf("%s, %d-byte key, %d sectors: decryption does not restore the plaintext", implNames[impl], keySize, n)
				}
			}
			c.Wipe()
		}
	}
	names := ran(&calls)
	var absent []string
	for impl := range numImpls {
		if !available(impl) {
			absent = append(absent, fmt.Sprintf("%s absent: %s", implNames[impl], absentReason(impl)))
		}
	}
	line := "xts kernels run: " + strings.Join(names, ",")
	if len(absent) > 0 {
		line += " (" + strings.Join(absent, "; ") + ")"
	}
	t.Log(line)
	t.Logf("kernel calls: %s", describeCalls(&calls))
	if len(names) == 0 {
		t.Fatal("no kernel ran")
	}
	for _, impl := range req {
		switch {
		case !available(impl):
			t.Errorf("XTS_REQUIRE: kernel %s is absent: %s", implNames[impl], absentReason(impl))
		case calls[impl][0].Load() == 0 || calls[impl][1].Load() == 0:
			t.Errorf("XTS_REQUIRE: kernel %s is available but did not run in both directions (%d encrypt, %d decrypt calls)",
				implNames[impl], calls[impl][0].Load(), calls[impl][1].Load())
		}
	}
}
