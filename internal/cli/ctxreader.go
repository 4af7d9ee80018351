package cli

import (
	"context"
	"io"
)

// ctxChunk is the size of the reads ContextReader makes.
const ctxChunk = 1 << 20

// ContextReader returns a reader of r whose Read returns ctx's error as
// soon as ctx is done, even while a read of r is blocked. It is for
// standard input: a read of a pipe or a terminal cannot be interrupted, so
// an image read from it would keep a cancelled run (SIGINT, SIGTERM)
// waiting for input that may never come. r is read ahead by a goroutine,
// at most two chunks of 1 MiB; a goroutine blocked in r.Read when ctx ends
// stays blocked until that read returns, which for a command about to exit
// does not matter.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	c := &ctxReader{ctx: ctx, chunks: make(chan ctxRead, 1), free: make(chan []byte, 2)}
	c.free <- make([]byte, ctxChunk)
	c.free <- make([]byte, ctxChunk)
	go c.readAhead(r)
	return c
}

type ctxRead struct {
	b   []byte
	err error
}

type ctxReader struct {
	ctx    context.Context
	chunks chan ctxRead
	free   chan []byte // buffers the reader may fill
	cur    []byte      // what is left of the chunk being read
	buf    []byte      // the buffer of cur, to give back
	err    error       // the error after cur
}

func (c *ctxReader) readAhead(r io.Reader) {
	for {
		var b []byte
		select {
		case b = <-c.free:
		case <-c.ctx.Done():
			return
		}
		n, err := r.Read(b)
		select {
		case c.chunks <- ctxRead{b: b[:n], err: err}:
		case <-c.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf != nil {
			c.free <- c.buf[:cap(c.buf)] // never blocks: two buffers exist
			c.buf = nil
		}
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		select {
		case k := <-c.chunks:
			c.buf, c.cur, c.err = k.b, k.b, k.err
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
