// Package lockedmem allocates small buffers for key material that the
// operating system keeps out of swap (mlock) and out of core dumps
// (MADV_DONTDUMP), where it can.
//
// Each buffer has a page of the Go heap to itself, so that locking and
// advising that page affects no other object, and the memory stays under
// the garbage collector: a slice of it that outlives the buffer is never a
// dangling pointer, as memory mapped outside the heap would be. The cost is
// two pages per buffer, fine for the few keys a program holds.
//
// Both protections are best effort: where the system refuses (a small
// RLIMIT_MEMLOCK, another operating system) the buffer is ordinary memory,
// and Protection says what was obtained.
package lockedmem

import (
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// Protection is what the system granted for one buffer.
type Protection struct {
	Locked        bool // mlock: never written to swap
	NotInCoreDump bool // MADV_DONTDUMP: left out of core dumps
}

// Buffer is a buffer from Alloc.
type Buffer struct {
	page    []byte // the whole page the buffer sits in
	n       int
	prot    Protection
	state   *releaseState // shared with the cleanup that runs when b is collected
	cleanup runtime.Cleanup
}

// releaseState is what releasing a page needs; it must not point back to
// its Buffer, or the Buffer would never become unreachable.
type releaseState struct {
	page []byte
	once sync.Once
	done chan struct{} // closed once the page is zeroed and unlocked
}

// release zeroes the page and undoes protect, once.
func (r *releaseState) release() {
	r.once.Do(func() {
		clear(r.page)
		unprotect(r.page)
		close(r.done)
	})
}

// pageSize is the largest buffer Alloc makes, and what it locks.
var pageSize = os.Getpagesize()

// Alloc returns a zeroed buffer of n bytes (at most one page, 4 KiB on
// most systems; more panics, as a programming error). Call Release when the
// buffer is no longer needed; a buffer never released is released when it
// is garbage collected.
func Alloc(n int) *Buffer {
	if n < 0 || n > pageSize {
		panic("lockedmem: buffer larger than a page")
	}
	raw := make([]byte, 2*pageSize)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & uintptr(pageSize-1))
	b := &Buffer{page: raw[off : off+pageSize : off+pageSize], n: n}
	b.prot = protect(b.page)
	b.state = &releaseState{page: b.page, done: make(chan struct{})}
	b.cleanup = runtime.AddCleanup(b, (*releaseState).release, b.state)
	return b
}

// Bytes returns the buffer's n bytes (not a copy).
func (b *Buffer) Bytes() []byte {
	if b == nil || b.page == nil {
		return nil
	}
	return b.page[:b.n:b.n]
}

// Protection reports what the system granted for the buffer.
func (b *Buffer) Protection() Protection {
	if b == nil {
		return Protection{}
	}
	return b.prot
}

// Release zeroes the buffer and unlocks its page. After Release, Bytes
// returns nil. It is idempotent.
func (b *Buffer) Release() {
	if b == nil || b.page == nil {
		return
	}
	b.page, b.n, b.prot = nil, 0, Protection{}
	b.cleanup.Stop()
	b.state.release()
}

// Released returns a channel that is closed once the buffer's page has
// been zeroed and unlocked, by Release or, for a buffer never released,
// after the garbage collector found it unreachable. Tests wait on it
// instead of polling the memory.
func (b *Buffer) Released() <-chan struct{} {
	if b == nil || b.state == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return b.state.done
}
