package cos

import (
	"context"
	"fmt"
	"sync"
)

// Read-ahead of an Object read front to back.
//
// An encryptor's workers read a remote VHD block by block: a 512-byte
// sector bitmap, then 2 MiB of data, several blocks at once and roughly in
// order. Served one ranged GET per ReadAt, that is two or three requests
// per 2 MiB block, where a plain copy of the object needs one per part.
// When the reads move forward through the object (from the end of the head
// cache when there is one, or the first large read; then reads that start
// near where the previous large ones ended), an
// Object fetches it in windows instead: aligned ranges of WithReadAhead's size, each with
// one GET, the next ones ahead of the readers, and serves every read that
// falls in a window, bitmaps included, from memory. Reads that jump about
// (an image check reading file system metadata) are served as before, one
// GET for what they ask, once they are away from the scan; a window is
// never fetched over the head cache. Like the page and head caches,
// windows hold the version of the object that OpenObject saw (every GET
// carries If-Match), so versions are never mixed.
//
// Memory: at most ahead+2 windows are held (the ones being read and the
// ones fetched ahead); a window is dropped when its last byte has been
// served or, when the limit is reached, the lowest one first. A dropped
// window that is read again is fetched again (counted in Stats). The
// buffers of dropped windows are reused for the next ones once no reader
// copies from them, so a long read allocates a few windows, not one per
// window of the object (which the garbage collector let grow to twice the
// memory).

// Defaults of WithReadAhead: windows of the default part size, so that
// reading an object once costs as many GETs as a copy of it in parts, two
// fetched ahead of the readers (64 MiB in memory at most).
const (
	DefaultReadAheadWindow = DefaultPartSize
	DefaultReadAhead       = 2
)

// WithReadAhead sets the read-ahead of an Object read front to back: the
// window fetched with one GET (at least 1 MiB; 0 turns read-ahead off) and
// how many windows are fetched ahead of the readers (at least 1). Memory:
// (ahead + 2) × window. Default DefaultReadAheadWindow and
// DefaultReadAhead.
func WithReadAhead(window int64, ahead int) ObjectOption {
	return func(ob *Object) {
		ob.raWindow, ob.raAhead = window, ahead
		if window > 0 {
			ob.raWindow = max(window, 1<<20)
			ob.raAhead = max(ahead, 1)
		}
	}
}

// window is one aligned range of the object, fetched with one GET.
type window struct {
	idx    int64
	start  int64 // object offset of data[0]: the window's, or the end of the head cache
	data   []byte
	ready  chan struct{} // closed once data or err is set
	err    error
	served int64 // bytes served from it (under Object.raMu), to drop it once all are
	users  int   // readers between taking it and their last copy (under raMu)
	gone   bool  // no longer held (under raMu)
	done   bool  // its GET has returned (under raMu)
}

// raState is the read-ahead's state, under raMu.
type raState struct {
	raMu    sync.Mutex
	windows map[int64]*window
	seqEnd  int64    // where the forward-moving large reads have got to; -1: none yet
	free    [][]byte // buffers of windows done with, for the next ones
}

// sequential reports whether a read of n bytes at off continues the
// forward scan, and records it. Caller holds raMu.
func (ob *Object) sequential(off int64, n int) bool {
	w := ob.raWindow
	near := ob.ra.seqEnd >= 0 && off >= ob.ra.seqEnd-2*w && off <= ob.ra.seqEnd+w
	if n <= smallRead {
		return near
	}
	// A large read starts the scan, or continues it.
	if near || ob.ra.seqEnd < 0 {
		ob.ra.seqEnd = max(ob.ra.seqEnd, off+int64(n))
		return true
	}
	return false
}

// readAhead serves p at off from windows when read-ahead applies, and
// reports whether it did. Small reads use windows already fetched or on
// their way, or start them when they continue the forward scan; large
// reads that continue it fetch their windows and the ones ahead.
func (ob *Object) readAhead(ctx context.Context, p []byte, off int64) (bool, error) {
	if ob.raWindow <= 0 || len(p) == 0 {
		return false, nil
	}
	w := ob.raWindow
	if int64(len(p)) > 2*w {
		return false, nil // a read this large is one GET of its own
	}
	first, last := off/w, (off+int64(len(p))-1)/w
	ob.ra.raMu.Lock()
	if ob.ra.windows == nil {
		ob.ra.windows = make(map[int64]*window)
		// A head cache says the object will be read from its start: the
		// scan starts where the head ends, small reads included.
		ob.ra.seqEnd = -1
		if ob.headSize > 0 {
			ob.ra.seqEnd = ob.headSize
		}
	}
	covered := true
	for i := first; i <= last; i++ {
		if ob.ra.windows[i] == nil {
			covered = false
			break
		}
	}
	seq := ob.sequential(off, len(p))
	if !covered && !seq {
		ob.ra.raMu.Unlock()
		return false, nil
	}
	wins := make([]*window, 0, last-first+1)
	for i := first; i <= last; i++ {
		win := ob.startWindow(ctx, i, first)
		win.users++
		wins = append(wins, win)
	}
	for i := last + 1; i <= last+int64(ob.raAhead) && i*w < ob.info.Size; i++ {
		if ob.startWindow(ctx, i, -1) == nil {
			break
		}
	}
	ob.ra.raMu.Unlock()

	var err error
	for _, win := range wins {
		if err == nil {
			err = ob.copyWindow(ctx, win, p, off)
		}
		ob.ra.raMu.Lock()
		win.users--
		ob.recycle(win)
		ob.ra.raMu.Unlock()
	}
	if err != nil {
		return true, err
	}
	ob.hits.Add(1)
	return true, nil
}

// copyWindow waits for win and copies what it holds of [off, off+len(p))
// into p.
func (ob *Object) copyWindow(ctx context.Context, win *window, p []byte, off int64) error {
	select {
	case <-win.ready:
	case <-ctx.Done():
		return fmt.Errorf("cos: reading %s/%s: %w", ob.bucket, ob.key, ctx.Err())
	}
	if win.err != nil {
		ob.dropWindow(win)
		return win.err
	}
	start := win.start
	lo, hi := max(off, start), min(off+int64(len(p)), start+int64(len(win.data)))
	copy(p[lo-off:hi-off], win.data[lo-start:hi-start])
	ob.ra.raMu.Lock()
	win.served += hi - lo
	if win.served >= int64(len(win.data)) {
		ob.forget(win)
	}
	ob.ra.raMu.Unlock()
	return nil
}

// recycle keeps win's buffer for a later window once nothing uses it: no
// longer held, its GET returned, no reader copying from it. Caller holds
// raMu.
func (ob *Object) recycle(win *window) {
	if !win.gone || !win.done || win.users > 0 || win.data == nil {
		return
	}
	if len(ob.ra.free) < ob.raAhead+2 {
		ob.ra.free = append(ob.ra.free, win.data[:cap(win.data)])
	}
	win.data = nil
}

// startWindow returns window i, starting its GET if it is not held. A
// read needs it (keep >= 0: the read's first window, and the windows from
// there on are kept): when ahead+2 windows are held, the lowest one below
// keep is dropped. A fetch ahead (keep < 0) drops nothing: it returns nil
// when the limit is reached. Caller holds raMu.
func (ob *Object) startWindow(ctx context.Context, i, keep int64) *window {
	if win := ob.ra.windows[i]; win != nil {
		return win
	}
	for len(ob.ra.windows) >= ob.raAhead+2 {
		low := ob.lowestWindow()
		if keep < 0 || low.idx >= keep {
			if keep < 0 {
				return nil
			}
			break // every window held is needed from here on: one more for now
		}
		ob.forget(low)
	}
	// The head cache (WithHeadCache) already holds the object's first bytes.
	start := max(i*ob.raWindow, ob.headSize)
	n := max(min((i+1)*ob.raWindow, ob.info.Size)-start, 0)
	var buf []byte
	if k := len(ob.ra.free); k > 0 && int64(cap(ob.ra.free[k-1])) >= n {
		buf, ob.ra.free = ob.ra.free[k-1][:n], ob.ra.free[:k-1]
	} else {
		buf = make([]byte, n)
	}
	win := &window{idx: i, start: start, data: buf, ready: make(chan struct{})}
	ob.ra.windows[i] = win
	go func() {
		err := ob.fetch(ctx, buf, start)
		ob.ra.raMu.Lock()
		win.err, win.done = err, true
		close(win.ready)
		ob.recycle(win)
		ob.ra.raMu.Unlock()
	}()
	return win
}

// lowestWindow returns the held window of lowest index. Caller holds raMu.
func (ob *Object) lowestWindow() *window {
	var low *window
	for _, win := range ob.ra.windows {
		if low == nil || win.idx < low.idx {
			low = win
		}
	}
	return low
}

// forget drops win from the held windows (readers that have it finish
// with it). Caller holds raMu.
func (ob *Object) forget(win *window) {
	if ob.ra.windows[win.idx] == win {
		delete(ob.ra.windows, win.idx)
	}
	win.gone = true
	ob.recycle(win)
}

// dropWindow forgets a failed window, so that a later read tries again.
func (ob *Object) dropWindow(win *window) {
	ob.ra.raMu.Lock()
	ob.forget(win)
	ob.ra.raMu.Unlock()
}
