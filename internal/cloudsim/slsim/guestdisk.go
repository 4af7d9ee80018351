package slsim

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/xts"
)

// guestDisk is the guest's virtual disk as the import backplane sees it
// after decryption: an io.ReaderAt over the imported object that reads the
// VHD's sectors with ranged reads, decrypts each present sector with
// tapdisk's cipher (tweak = sector number) and reads absent sectors as
// zeros, as tapdisk does.
//
// It reads whole chunks and keeps the last few, because the file-system
// reader asks for a few hundred bytes at a time; and it stops with
// errReadBudget once it has fetched budget bytes, so that no image can make
// the simulator read more than the checks need.
type guestDisk struct {
	f      *vhdFile
	c      *xts.Cipher // nil for an unencrypted image
	size   int64
	chunk  int64
	budget int64

	cache map[int64][]byte // chunk index -> plaintext
	order []int64          // cached chunk indexes, oldest first

	fetched int64 // bytes of the disk fetched (and decrypted), the budget's counter
	calls   int64 // ReadAt calls, bounded by guestReadCalls
	err     error // the first failure of the underlying object
}

// errReadBudget: the checks would need more of the disk than the simulator
// reads for them.
var errReadBudget = errors.New("the image checks reached their read budget")

const (
	// guestChunk is how much of the disk one fetch reads (less when the
	// VHD's blocks are smaller): the file-system reader reads 512 bytes at
	// a time, and an image's metadata lies close together.
	guestChunk = 64 << 10
	// guestCacheChunks bounds the plaintext the checks keep (4 MiB).
	guestCacheChunks = 64
	// guestReadBudget bounds what the guest checks read of a disk. A
	// real distribution image needs a few MiB (directories, the dpkg
	// status file, cloud-init's configuration); the bound keeps a crafted
	// image from making the simulator read the whole object.
	guestReadBudget = 64 << 20
	// guestReadCalls bounds the file-system reader's requests, most of
	// which the cache answers: a damaged file system (an extent tree
	// that points back at itself) must end with an error, not with the
	// reader recursing until the process runs out of stack. The checks
	// of the test images make a few hundred; a distribution's larger
	// directories make it a few thousand.
	guestReadCalls = 1 << 16
)

func newGuestDisk(f *vhdFile, c *xts.Cipher) *guestDisk {
	chunk := int64(guestChunk)
	if f.diskType == vhdDiskDynamic && f.blockSize < chunk {
		chunk = f.blockSize // a chunk must not cross a block
	}
	return &guestDisk{f: f, c: c, size: f.size, chunk: chunk, budget: guestReadBudget, cache: map[int64][]byte{}}
}

// Size is the virtual disk's size.
func (g *guestDisk) Size() int64 { return g.size }

// ReadAt reads the decrypted disk. Past the end of the disk it returns
// io.EOF, as an io.ReaderAt does.
func (g *guestDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("guest disk: negative offset %d", off)
	}
	if g.calls++; g.calls > guestReadCalls {
		return 0, errReadBudget
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= g.size {
			return n, io.EOF
		}
		ci := pos / g.chunk
		c, err := g.chunkAt(ci)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], c[pos-ci*g.chunk:])
		if k == 0 {
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

// chunkAt returns chunk ci, fetching it when it is not cached.
func (g *guestDisk) chunkAt(ci int64) ([]byte, error) {
	if c, ok := g.cache[ci]; ok {
		return c, nil
	}
	if g.err != nil {
		return nil, g.err
	}
	start := ci * g.chunk
	end := min(start+g.chunk, roundUp(g.size, vhdSectorSize))
	if g.fetched+(end-start) > g.budget {
		return nil, errReadBudget
	}
	buf := make([]byte, end-start)
	present, err := g.f.readSectors(buf, start/vhdSectorSize)
	if err != nil {
		clear(buf)
		g.err = vhdFailure(err, fmt.Sprintf("reading disk bytes %d-%d", start, end-1))
		return nil, g.err
	}
	g.fetched += end - start
	if g.c != nil {
		for s, ok := range present {
			if ok {
				sec := buf[s*vhdSectorSize : (s+1)*vhdSectorSize]
				g.c.Decrypt(sec, sec, uint64(start/vhdSectorSize)+uint64(s))
			}
		}
	}
	// Bytes past the end of the disk (a last partial sector) read as
	// nothing.
	buf = buf[:min(int64(len(buf)), g.size-start)]
	if len(g.order) >= guestCacheChunks {
		old := g.order[0]
		g.order = g.order[1:]
		clear(g.cache[old])
		delete(g.cache, old)
	}
	g.cache[ci] = buf
	g.order = append(g.order, ci)
	return buf, nil
}

// release wipes the plaintext the disk keeps.
func (g *guestDisk) release() {
	for ci, c := range g.cache {
		clear(c)
		delete(g.cache, ci)
	}
	g.order = nil
}
