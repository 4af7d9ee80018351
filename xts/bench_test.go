package xts

import (
	"crypto/aes"
	"fmt"
	"runtime"
	"testing"

	xcxts "golang.org/x/crypto/xts"
)

// Benchmarks for bench/xts.sh. Each sub-benchmark name is
// <impl>/<AES-128|AES-256>/<unit bytes>, where impl is "ours" (the fastest
// path this machine has), "vaes" and "aesni" (the 256-bit and 128-bit
// kernels, when this CPU runs them and they are not "ours"), "generic"
// (the portable fallback, forced) or "xcrypto" (golang.org/x/crypto/xts, one call per 512-byte sector, the
// baseline). A 512-byte unit is one call per sector; a 65536-byte unit is
// one call per 128 sectors for ours and 128 calls for x/crypto/xts.

var benchUnits = []int{SectorSize, 64 << 10}

// measureCPU runs loop under the benchmark timer and also reports
// cpuMB/s: bytes per second of the thread's user CPU time, the measure
// `openssl speed` uses, which other processes on a shared machine disturb
// less than wall-clock time. bytes is the amount processed per iteration.
func measureCPU(b *testing.B, bytes int, loop func(n int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	start, ok := threadUserTime()
	loop(b.N)
	end, _ := threadUserTime()
	b.StopTimer()
	if cpu := (end - start).Seconds(); ok && cpu > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/cpu/1e6, "cpuMB/s")
	}
}

func benchKey(size int) []byte {
	k := make([]byte, size)
	for i := range k {
		k[i] = byte(i*13 + 1)
	}
	return k
}

func benchOurs(b *testing.B, impl implementation, decrypt bool) {
	for _, keySize := range []int{keySize128, keySize256} {
		for _, unit := range benchUnits {
			b.Run(fmt.Sprintf("AES-%d/%d", keySize*4, unit), func(b *testing.B) {
				c, err := newCipher(benchKey(keySize), impl)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, unit)
				f := c.EncryptSectors
				if decrypt {
					f = c.DecryptSectors
				}
				measureCPU(b, unit, func(n int) {
					for i := 0; i < n; i++ {
						if err := f(buf, buf, uint64(i)); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

func benchXCrypto(b *testing.B, decrypt bool) {
	for _, keySize := range []int{keySize128, keySize256} {
		for _, unit := range benchUnits {
			b.Run(fmt.Sprintf("AES-%d/%d", keySize*4, unit), func(b *testing.B) {
				c, err := xcxts.NewCipher(aes.NewCipher, benchKey(keySize))
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, unit)
				f := c.Encrypt
				if decrypt {
					f = c.Decrypt
				}
				measureCPU(b, unit, func(n int) {
					for i := 0; i < n; i++ {
						for off := 0; off < unit; off += SectorSize {
							f(buf[off:off+SectorSize], buf[off:off+SectorSize], uint64(uint32(i)))
						}
					}
				})
			})
		}
	}
}

func bench(b *testing.B, decrypt bool) {
	b.Run("ours", func(b *testing.B) { benchOurs(b, bestImpl(), decrypt) })
	// The slower assembly kernels this CPU also runs, for comparison.
	for _, impl := range []implementation{implVAES, implAESNI} {
		if impl != bestImpl() && available(impl) {
			b.Run(implNames[impl], func(b *testing.B) { benchOurs(b, impl, decrypt) })
		}
	}
	b.Run("generic", func(b *testing.B) { benchOurs(b, implGeneric, decrypt) })
	b.Run("xcrypto", func(b *testing.B) { benchXCrypto(b, decrypt) })
}

func BenchmarkEncrypt(b *testing.B) { bench(b, false) }

func BenchmarkDecrypt(b *testing.B) { bench(b, true) }
