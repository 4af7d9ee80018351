package cos

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/faults"
)

func TestObjectReadAt(t *testing.T) {
	for _, b := range []*backend{newFake(t), newVersity(t, nil)} {
		t.Run(b.name, func(t *testing.T) {
			c := b.client
			bucket := mkBucket(t, c)
			data := prngBytes(t, 3, 3<<20+123)
			_, err := c.Upload(t.Context(), bucket, "img", bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)

			// The plain path: each ReadAt its own GET (readahead_test.go tests
			// the windows).
			ob, err := c.OpenObject(t.Context(), bucket, "img", WithHeadCache(64<<10), WithReadAhead(0, 0))
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), ob.Size())
			// Random access through io.SectionReader, as vhdcrypt reads.
			var _ io.ReaderAt = ob
			got := make([]byte, len(data))
			var wg sync.WaitGroup
			for off := 0; off < len(data); off += 1 << 20 {
				wg.Go(func() {
					n, err := ob.ReadAt(got[off:min(off+1<<20, len(data))], int64(off))
					if err != nil && err != io.EOF {
						t.Error(err)
					}
					if n != min(1<<20, len(data)-off) {
						t.Errorf("read %d at %d", n, off)
					}
				})
			}
			wg.Wait()
			require.True(t, bytes.Equal(data, got))
			st := ob.Stats()
			require.Equal(t, int64(len(data)), st.Bytes, "every byte fetched once (the head cache fetched the first 64 KiB)")

			// Small reads come from the page cache: a second read of the
			// same sector costs no request.
			before := ob.Stats().Requests
			p := make([]byte, 512)
			_, err = ob.ReadAt(p, 2<<20+100)
			require.NoError(t, err)
			require.Equal(t, data[2<<20+100:2<<20+612], p)
			_, err = ob.ReadAt(p, 2<<20+100)
			require.NoError(t, err)
			require.Equal(t, before+1, ob.Stats().Requests)
			_, err = ob.ReadAt(p[:10], 5)
			require.NoError(t, err)
			require.Equal(t, before+1, ob.Stats().Requests, "the head cache serves the first bytes")

			// The end of the object is io.EOF with the bytes that exist.
			n, err := ob.ReadAt(p, int64(len(data)-10))
			require.Equal(t, 10, n)
			require.ErrorIs(t, err, io.EOF)
			_, err = ob.ReadAt(p, int64(len(data)))
			require.ErrorIs(t, err, io.EOF)

			// A replaced object is detected, not mixed in (gofakes3
			// ignores If-Match; versitygw, like COS, honours it).
			if b.name == "versitygw" {
				_, err = c.Upload(t.Context(), bucket, "img", bytes.NewReader(data[:1<<20]), 1<<20)
				require.NoError(t, err)
				_, err = ob.ReadAt(make([]byte, 100<<10), 200<<10)
				require.ErrorIs(t, err, ErrObjectChanged)
			}

			// List and Delete.
			objs, err := c.List(t.Context(), bucket, "im")
			require.NoError(t, err)
			require.Len(t, objs, 1)
			require.Equal(t, "img", objs[0].Key)
			require.NoError(t, c.Delete(t.Context(), bucket, "img"))
			require.NoError(t, c.Delete(t.Context(), bucket, "img"), "deleting again succeeds")
			_, err = c.OpenObject(t.Context(), bucket, "img")
			require.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func TestObjectReadAtResumesBrokenBody(t *testing.T) {
	inj := faults.New(5)
	b := newVersity(t, inj)
	c := b.client
	bucket := mkBucket(t, c)
	data := prngBytes(t, 4, 2<<20)
	_, err := c.Upload(t.Context(), bucket, "img", bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	ob, err := c.OpenObject(t.Context(), bucket, "img", WithObjectOptions(fastRetries))
	require.NoError(t, err)
	inj.Add(faults.Rule{Service: "s3", Method: "GET", Kind: faults.Reset, AfterBytes: 300 << 10, Count: 1})
	got := make([]byte, len(data))
	_, err = ob.ReadAt(got, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	require.Equal(t, int64(2), ob.Stats().Requests, "one broken GET, one for the rest")

	ctx, cancel := context.WithCancel(t.Context())
	ob2, err := c.OpenObject(ctx, bucket, "img")
	require.NoError(t, err)
	cancel()
	_, err = ob2.ReadAt(got, 0)
	require.ErrorIs(t, err, context.Canceled)
}
