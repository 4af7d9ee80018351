package cos

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestObjectReadAhead reads an object as vhdcrypt's workers read a remote
// dynamic VHD (a 512-byte bitmap, then the block's data, four workers
// taking blocks in turn) and checks, with the GETs the server received,
// that read-ahead fetches it in windows: at most 1.2 times the GETs of a
// copy in parts of the window's size, every byte fetched once, and the
// bytes right. Reads that jump about are still fetched one GET each, for
// what they ask.
func TestObjectReadAhead(t *testing.T) {
	for _, b := range []*backend{newFake(t), newVersity(t, nil)} {
		t.Run(b.name, func(t *testing.T) {
			c := b.client
			bucket := mkBucket(t, c)
			const (
				block  = 1 << 20
				blocks = 40
				head   = 64 << 10
				win    = 4 << 20
			)
			size := int64(head + blocks*(512+block) + 512) // a footer at the end
			data := prngBytes(t, 7, size)
			_, err := c.Upload(t.Context(), bucket, "img", bytes.NewReader(data), size)
			require.NoError(t, err)

			b.reqs.reset()
			ob, err := c.OpenObject(t.Context(), bucket, "img", WithHeadCache(head), WithReadAhead(win, 2))
			require.NoError(t, err)
			got := make([]byte, size)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < blocks; i += 4 {
						off := int64(head + i*(512+block))
						for _, n := range []int64{512, block} {
							if _, err := ob.ReadAt(got[off:off+n], off); err != nil && err != io.EOF {
								t.Error(err)
								return
							}
							off += n
						}
					}
				})
			}
			wg.Wait()
			if _, err = ob.ReadAt(got[size-512:], size-512); err != nil {
				require.ErrorIs(t, err, io.EOF)
			}
			_, err = ob.ReadAt(got[:head], 0)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "the bytes read differ from the object's")

			st := ob.Stats()
			gets := b.reqs.count("GetObject")
			copyGets := (size + win - 1) / win
			t.Logf("read ahead: %d GETs at the server (%d counted by the Object), %d bytes; a copy in %d-byte parts: %d GETs", gets, st.Requests, st.Bytes, win, copyGets)
			require.Equal(t, int64(gets), st.Requests, "the Object's count and the server's")
			require.LessOrEqual(t, float64(gets), 1.2*float64(copyGets), "GETs against a copy in parts")
			require.Equal(t, size, st.Bytes, "every byte fetched once")

			// Reads away from the scan are fetched as asked: a page each.
			b.reqs.reset()
			ob2, err := c.OpenObject(t.Context(), bucket, "img")
			require.NoError(t, err)
			p := make([]byte, 4096)
			for _, off := range []int64{30 << 20, 3 << 20, 20 << 20} {
				_, err := ob2.ReadAt(p, off)
				require.NoError(t, err)
				require.Equal(t, data[off:off+4096], p)
			}
			require.Equal(t, 3, b.reqs.count("GetObject"))
			require.Equal(t, int64(3*4096), ob2.Stats().Bytes, "small scattered reads fetch their pages only")
		})
	}
}
