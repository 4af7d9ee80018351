package vhdcrypt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsZero(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 511, 4096, 4097, 2 << 20} {
		b := make([]byte, n)
		require.True(t, isZero(b), "len %d", n)
		for _, at := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[at] = 1
			require.False(t, isZero(b), "len %d, non-zero at %d", n, at)
			b[at] = 0
		}
	}
}

// BenchmarkIsZero measures the zero-block check on a 2 MiB block (the worst
// case: all zero, so every byte is looked at).
func BenchmarkIsZero(b *testing.B) {
	buf := make([]byte, 2<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if !isZero(buf) {
			b.Fatal("not zero")
		}
	}
}
