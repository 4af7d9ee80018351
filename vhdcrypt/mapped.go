package vhdcrypt

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// Raw and fixed VHD files through a memory map.
//
// A raw disk (or fixed VHD) given as a file is read twice: the zero scan,
// then the encryption of the blocks that hold data. Read with ReadAt, each
// pass copies the whole disk out of the page cache into the pipeline's
// buffers, and with a warm cache those copies were most of the CPU time.
// Where the system can map the file (mapFile, mapped_linux.go), the scan
// looks at the mapped pages in place and the encryption reads its
// plaintext from them straight into the output buffer: the cipher's read
// is the only one. The output is byte for byte what ReadAt gives; streams,
// VHDs and qcow2 images are read as before.
//
// A mapped file that shrinks while it is read (another program truncating
// it) makes the kernel send SIGBUS on the missing pages. The goroutines
// that touch the map ask the runtime to turn such a fault into a panic
// (debug.SetPanicOnFault) and recover it as an error, so the verb fails
// with a clear error instead of the program dying.

// mappedBlocks counts the blocks read through a map (scan and encryption),
// for tests: the path the test names must be the one taken.
var mappedBlocks atomic.Int64

// inputMap is the lazily made map of a random-access raw or fixed input:
// made by the first worker that needs it, unmapped by release once the
// pipeline has stopped.
type inputMap struct {
	once sync.Once
	file *os.File
	size int64 // bytes to map: the file's
	end  int64 // guest bytes stored in the file (the rest read as zeros)
	b    []byte
	err  error
}

// newInputMap returns nil when in is not a raw or fixed VHD file.
func newInputMap(in *input) *inputMap {
	f, ok := in.ra.(*os.File)
	if !ok || (in.kind != kindRaw && in.kind != kindFixed) || in.raSize <= 0 {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return &inputMap{file: f, size: in.raSize, end: min(in.raSize, in.size)}
}

// get returns the mapped bytes, or nil when the file cannot be mapped
// (the caller then reads with ReadAt).
func (m *inputMap) get() []byte {
	if m == nil {
		return nil
	}
	m.once.Do(func() { m.b, m.err = mapFile(m.file, m.size) })
	return m.b
}

// release unmaps the file; no goroutine may touch the map any more.
func (m *inputMap) release() {
	if m == nil {
		return
	}
	m.once.Do(func() {}) // no map made after this
	if m.b != nil {
		unmapFile(m.b)
		m.b = nil
	}
}

// guarded runs fn, turning a memory fault on the map into an error.
func guarded(fn func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("vhdcrypt: reading the input file through its memory map failed (%v): was the file cut short while it was read?", r)
		}
	}()
	fn()
	return nil
}

// zeroBlock reports whether block i of the mapped input is all zeros.
func (m *inputMap) zeroBlock(b []byte, i int) (zero bool, err error) {
	start := int64(i) * vhd.BlockSize
	end := min(start+vhd.BlockSize, m.end)
	err = guarded(func() { zero = start >= end || isZero(b[start:end]) })
	mappedBlocks.Add(1)
	return zero, err
}

// encryptBlock writes the encryption of block i of the mapped input into
// dst (BlockSize bytes): the plaintext is read from the map by the cipher
// itself. A block that ends past the stored bytes (the last one) is
// copied, zero-padded and encrypted in place, as the ReadAt path does.
func (m *inputMap) encryptBlock(c *xts.Cipher, b, dst []byte, i int, bm vhd.Bitmap) error {
	start := int64(i) * vhd.BlockSize
	end := min(start+vhd.BlockSize, m.end)
	var cerr error
	err := guarded(func() {
		if end-start == vhd.BlockSize && bm.Full() {
			first := uint64(i) * vhd.SectorsPerBlock
			if e := c.EncryptSectors(dst[:vhd.BlockSize], b[start:end], first); e != nil {
				cerr = fmt.Errorf("vhdcrypt: encrypting block %d: %w", i, e)
			}
			return
		}
		n := copy(dst[:vhd.BlockSize], b[start:max(start, end)])
		clear(dst[n:vhd.BlockSize])
		cerr = encryptBlock(c, dst, i, bm)
	})
	mappedBlocks.Add(1)
	if err != nil {
		return err
	}
	return cerr
}
