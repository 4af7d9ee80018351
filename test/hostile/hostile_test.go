// Package hostile runs the hostile VHD corpus (test/internal/hvhd) through
// every reader: vhd.Open, Blocks, ReadAt, ReadBlock, Check, StreamReader,
// and e2e's Inspect, Check, EncryptImage, DecryptImage, VerifyKey and
// VerifyImage, from a file and from a stream. Each call must end quickly
// with nil or a typed error, never a panic or a hang, with bounded
// allocation, and no goroutine may outlive it.
package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/test/internal/hvhd"
	"github.com/e2eimage/e2eimage/test/internal/leak"
	"github.com/e2eimage/e2eimage/vhd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Bounds. They are far above what a correct reader needs (Open of these
// files allocates a few KiB and takes microseconds) so that they catch
// runaway allocation and hangs, not slowness.
const (
	// openAllocLimit bounds what Open and NewStreamReader may allocate for
	// a small hostile file, whatever its header claims (a 2^31-entry BAT
	// included).
	openAllocLimit = 1 << 20
	// verbAllocLimit bounds one e2e verb with one worker: its block pool
	// (4 x 2 MiB) and output buffers of a 6 MiB disk.
	verbAllocLimit = 96 << 20
)

// stepTimeout is the time one call may take before it counts as a hang.
func stepTimeout() time.Duration {
	if raceEnabled {
		return 30 * time.Second
	}
	return 5 * time.Second
}

type stats struct {
	cases, calls, typed, opened, untyped, panics, hangs, leaks atomic.Int64
	maxOpenAlloc                                               atomic.Uint64
}

func (s *stats) line() string {
	return fmt.Sprintf("HARDEN hostile cases=%d calls=%d typed_errors=%d opened=%d untyped=%d panics=%d hangs=%d secret_leaks=%d max_small_open_alloc=%d",
		s.cases.Load(), s.calls.Load(), s.typed.Load(), s.opened.Load(), s.untyped.Load(), s.panics.Load(), s.hangs.Load(), s.leaks.Load(), s.maxOpenAlloc.Load())
}

func TestHostileCorpus(t *testing.T) {
	cases, err := hvhd.Cases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("only %d hostile cases; the suite covers at least 30 kinds of hostile VHD", len(cases))
	}
	var st stats
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			st.cases.Add(1)
			runCase(t, c, &st)
		})
	}
	t.Log(st.line())
	if st.untyped.Load()+st.panics.Load()+st.hangs.Load()+st.leaks.Load() != 0 {
		t.Errorf("hostile inputs produced untyped errors, panics, hangs or leaks: %s", st.line())
	}
}

// TestSmallNativeBlocks reads valid dynamic VHDs whose native blocks are
// 512, 1024 and 2048 bytes (the specification allows any power of two;
// vhd accepts them from MinNativeBlockSize): each block is one bitmap
// sector followed by its data, and the disk must read as written.
func TestSmallNativeBlocks(t *testing.T) {
	for _, nb := range []int64{512, 1024, 2048, 4096} {
		cs, err := hvhd.NativeCases(nb, "qem2")
		if err != nil {
			t.Fatal(err)
		}
		c := cs[0] // the valid base
		img, err := vhd.Open(c.ReaderAt(), c.Size())
		if err != nil {
			t.Errorf("%d-byte blocks: Open: %v", nb, err)
			continue
		}
		got := make([]byte, img.Size())
		if _, err := img.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Errorf("%d-byte blocks: ReadAt: %v", nb, err)
		}
		if !bytes.Equal(got, c.Guest) {
			t.Errorf("%d-byte blocks: the disk reads wrong from byte %d (the bitmap sector read as data?)", nb, firstDiff(got, c.Guest))
		}
	}
}

// step runs f in a goroutine bounded by stepTimeout, turns a panic into a
// failure and returns f's error and the bytes allocated meanwhile.
func step(t *testing.T, st *stats, name string, f func(ctx context.Context) error) (uint64, error) {
	t.Helper()
	st.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout())
	defer cancel()
	type result struct {
		err   error
		alloc uint64
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		defer func() {
			r.panic = recover()
			runtime.ReadMemStats(&m1)
			r.alloc = m1.TotalAlloc - m0.TotalAlloc
			done <- r
		}()
		r.err = f(ctx)
	}()
	timer := time.NewTimer(stepTimeout() + time.Second)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.panic != nil {
			st.panics.Add(1)
			t.Errorf("%s: panic: %v", name, r.panic)
			return r.alloc, nil
		}
		if r.err != nil && leak.Contains(r.err.Error(), hvhd.DEKBytes()) {
			st.leaks.Add(1)
			t.Errorf("%s: the error contains the DEK: %v", name, r.err)
		}
		return r.alloc, r.err
	case <-timer.C:
		st.hangs.Add(1)
		t.Fatalf("%s: no answer after %v (hang)", name, stepTimeout()+time.Second)
		return 0, nil
	}
}

func typed(err error) bool { return hvhd.Typed(err) }

// expectTyped records err: nil or typed is fine, anything else fails.
func expectTyped(t *testing.T, st *stats, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if typed(err) {
		st.typed.Add(1)
		return
	}
	st.untyped.Add(1)
	t.Errorf("%s: untyped error %T: %v", name, err, err)
}

func runCase(t *testing.T, c *hvhd.Case, st *stats) {
	var img *vhd.Image
	runtime.GC()
	alloc, err := step(t, st, "Open", func(context.Context) error {
		var err error
		img, err = vhd.Open(c.ReaderAt(), c.Size())
		return err
	})
	limit := uint64(openAllocLimit)
	if c.Name == "huge/maxsize-disk-unallocated" {
		// It is a legal disk of 1,044,480 blocks: its BAT (4 MiB) is
		// read and decoded, so 2 x 4 MiB plus change.
		limit = 10 << 20
	}
	if c.Huge == nil {
		for old := st.maxOpenAlloc.Load(); alloc > old && !st.maxOpenAlloc.CompareAndSwap(old, alloc); old = st.maxOpenAlloc.Load() {
		}
	}
	if alloc > limit {
		t.Errorf("Open allocated %d bytes, limit %d", alloc, limit)
	}
	switch {
	case err == nil:
		st.opened.Add(1)
		if c.Expect == hvhd.Fails {
			t.Errorf("Open accepted a file that must be refused")
		}
	case typed(err):
		st.typed.Add(1)
		if c.Expect == hvhd.Opens {
			t.Errorf("Open refused a readable file: %v", err)
		}
	default:
		st.untyped.Add(1)
		t.Errorf("Open: untyped error %T: %v", err, err)
	}
	if img != nil {
		exerciseImage(t, c, img, st)
		if c.Guest != nil {
			got := make([]byte, img.Size())
			if n, err := img.ReadAt(got, 0); err != nil && err != io.EOF || n != len(c.Guest) || !bytes.Equal(got, c.Guest) {
				t.Errorf("a valid image reads wrong: %d of %d bytes (%v), first difference at %d", n, len(c.Guest), err, firstDiff(got, c.Guest))
			}
		}
	}
	if c.Huge == nil {
		exerciseStream(t, c, st)
	}
	exerciseE2E(t, c, img, st)
}

func exerciseImage(t *testing.T, c *hvhd.Case, img *vhd.Image, st *stats) {
	_, err := step(t, st, "Blocks", func(context.Context) error {
		n := 0
		for b, err := range img.Blocks() {
			if err != nil {
				return err
			}
			if len(b.Bitmap) != vhd.BitmapSize || b.Index < 0 || b.Index >= img.NumBlocks() {
				return fmt.Errorf("block %+v out of shape", b.Index)
			}
			if n++; n > 64 && c.Huge != nil {
				break
			}
		}
		return nil
	})
	expectTyped(t, st, "Blocks", err)
	_, err = step(t, st, "ReadAt", func(context.Context) error {
		p := make([]byte, 1500)
		for _, off := range []int64{0, 511, img.Size() / 2, img.Size() - 700, img.Size() - 1, img.Size(), img.Size() + 1, 1 << 62} {
			if off < 0 {
				continue
			}
			n, err := img.ReadAt(p, off)
			if err != nil && err != io.EOF && !typed(err) {
				return fmt.Errorf("ReadAt(%d): %w", off, err)
			}
			if off >= img.Size() && (n != 0 || err != io.EOF) {
				return fmt.Errorf("ReadAt(%d) past the size gave %d, %v", off, n, err)
			}
		}
		if _, err := img.ReadAt(p, -1); err == nil {
			return errors.New("ReadAt(-1) succeeded")
		}
		return nil
	})
	if err != nil && !typed(err) {
		t.Errorf("ReadAt: %v", err)
	}
	_, err = step(t, st, "ReadBlock", func(context.Context) error {
		buf := make([]byte, vhd.BlockSize)
		for _, i := range []int{-1, img.NumBlocks(), 0, img.NumBlocks() - 1} {
			err := img.ReadBlock(i, buf)
			if (i < 0 || i >= img.NumBlocks()) && err == nil {
				return fmt.Errorf("ReadBlock(%d) of %d blocks succeeded", i, img.NumBlocks())
			}
			if i >= 0 && i < img.NumBlocks() && err != nil && !typed(err) {
				return err
			}
		}
		if err := img.ReadBlock(0, buf[:10]); err == nil {
			return errors.New("ReadBlock into a short buffer succeeded")
		}
		return nil
	})
	if err != nil {
		t.Errorf("ReadBlock: %v", err)
	}
	if c.Huge != nil && img.NumBlocks() > 1<<16 {
		return // Check would walk a terabyte-sized map of unallocated blocks: correct, but not a unit test
	}
	var rep *vhd.Report
	_, err = step(t, st, "Image.Check", func(ctx context.Context) error {
		var err error
		rep, err = img.Check(ctx)
		return err
	})
	expectTyped(t, st, "Image.Check", err)
	if rep != nil {
		if c.CheckFinds && rep.OK() {
			t.Errorf("Check found nothing wrong with %s", c.Name)
		}
		if strings.HasPrefix(c.Name, "base-") && !rep.OK() {
			t.Errorf("Check of a valid base image: %v", rep)
		}
	}
}

func exerciseStream(t *testing.T, c *hvhd.Case, st *stats) {
	var s *vhd.StreamReader
	runtime.GC()
	alloc, err := step(t, st, "NewStreamReader", func(context.Context) error {
		var err error
		s, err = vhd.NewStreamReader(c.Stream())
		return err
	})
	if alloc > openAllocLimit {
		t.Errorf("NewStreamReader allocated %d bytes, limit %d", alloc, openAllocLimit)
	}
	expectTyped(t, st, "NewStreamReader", err)
	if s == nil {
		return
	}
	_, err = step(t, st, "StreamReader.Next", func(context.Context) error {
		buf := make([]byte, vhd.BlockSize)
		prev := -1
		for {
			b, err := s.Next(buf)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				if _, again := s.Next(buf); again == nil {
					return errors.New("Next succeeded after an error (errors must be sticky)")
				}
				return err
			}
			if b.Index <= prev {
				return fmt.Errorf("block %d after %d", b.Index, prev)
			}
			prev = b.Index
		}
	})
	expectTyped(t, st, "StreamReader.Next", err)
	_, err = step(t, st, "StreamReader.Check", func(ctx context.Context) error {
		s2, err := vhd.NewStreamReader(c.Stream())
		if err != nil {
			return err
		}
		_, err = s2.Check(ctx)
		return err
	})
	expectTyped(t, st, "StreamReader.Check", err)
}

func exerciseE2E(t *testing.T, c *hvhd.Case, img *vhd.Image, st *stats) {
	dek, err := vhdcrypt.DEKFromBytes(hvhd.DEKBytes())
	if err != nil {
		t.Fatal(err)
	}
	defer dek.Zero()
	w1 := vhdcrypt.WithWorkers(1)
	inputs := []struct {
		name string
		open func() io.Reader
	}{{"file", func() io.Reader { return c.File() }}}
	if c.Huge == nil {
		inputs = append(inputs, struct {
			name string
			open func() io.Reader
		}{"stream", c.Stream})
	}
	// A file that is not a VHD is a raw disk to EncryptImage; a huge one
	// would be a terabyte of work, which is not a hostile-input test.
	rawHuge := c.Huge != nil && img == nil
	for _, in := range inputs {
		verb := func(name string, f func(ctx context.Context) error) {
			alloc, err := step(t, st, in.name+"/"+name, f)
			expectTyped(t, st, in.name+"/"+name, err)
			if alloc > verbAllocLimit {
				t.Errorf("%s/%s allocated %d bytes, limit %d", in.name, name, alloc, verbAllocLimit)
			}
		}
		verb("Inspect", func(ctx context.Context) error { _, err := vhdcrypt.Inspect(ctx, in.open()); return err })
		if !rawHuge {
			verb("Check", func(ctx context.Context) error { _, err := vhdcrypt.Check(ctx, in.open()); return err })
			verb("EncryptImage", func(ctx context.Context) error {
				return vhdcrypt.EncryptImage(ctx, io.Discard, in.open(), dek, w1, vhdcrypt.WithSize(c.Size()))
			})
		}
		verb("DecryptImage", func(ctx context.Context) error {
			return vhdcrypt.DecryptImage(ctx, io.Discard, in.open(), dek, w1)
		})
		verb("VerifyKey", func(ctx context.Context) error { return vhdcrypt.VerifyKey(ctx, in.open(), dek) })
		verb("VerifyImage", func(ctx context.Context) error { _, err := vhdcrypt.VerifyImage(ctx, in.open(), dek); return err })
	}
	if img != nil && !c.Encrypted && c.Huge == nil {
		roundTrip(t, c, img, dek, st)
	}
}

// roundTrip checks, for a plain hostile file that opens, that encrypting it
// and decrypting the result gives the guest bytes vhd.Open reads.
func roundTrip(t *testing.T, c *hvhd.Case, img *vhd.Image, dek *vhdcrypt.DEK, st *stats) {
	if _, ok := img.KeyHash(); ok {
		return
	}
	want := make([]byte, img.Size())
	if _, err := img.ReadAt(want, 0); err != nil && err != io.EOF {
		return // the data area is damaged; the verbs above had their say
	}
	var enc, dec bytes.Buffer
	_, err := step(t, st, "roundtrip/encrypt", func(ctx context.Context) error {
		return vhdcrypt.EncryptImage(ctx, &enc, c.File(), dek, vhdcrypt.WithWorkers(1))
	})
	if err != nil {
		expectTyped(t, st, "roundtrip/encrypt", err)
		return
	}
	_, err = step(t, st, "roundtrip/decrypt", func(ctx context.Context) error {
		return vhdcrypt.DecryptImage(ctx, &dec, bytes.NewReader(enc.Bytes()), dek, vhdcrypt.WithWorkers(1))
	})
	if err != nil {
		t.Errorf("decrypting our own output: %v", err)
		return
	}
	if !bytes.Equal(dec.Bytes(), want) {
		t.Errorf("decrypt(encrypt(x)) differs from the guest bytes vhd.Open reads (%d vs %d bytes)", dec.Len(), len(want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
