package vhdcrypt

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/e2eimage/e2eimage/vhd"
)

// outReader is the writer stage of an image pipeline, usable both ways:
//
//   - push (WriteTo): the stage writes straight into the destination;
//   - pull (Read): each step of the stage writes into a staging area that
//     Read drains. Block data is not copied: the staging area keeps a
//     reference to the pipeline buffer, which is released only once Read
//     has handed all of it out. Only small metadata writes are copied.
//
// So a pull reader needs no io.Pipe and no extra goroutine: the caller's
// goroutine is the writer stage. The reader and the workers run in the
// background between calls; Close (or reaching the end, or an error) stops
// them.
type outReader struct {
	ctx   context.Context
	cfg   pipelineConfig[blockJob]
	em    emitter
	total int64
	phase Phase
	o     *options
	// finish runs once, after the pipeline has stopped for good (end,
	// error or Close): the Encryptor and Decryptor wipe their cipher's keys
	// there.
	finish func()

	p       *pipeline[blockJob]
	sink    switchWriter
	stage   staging
	cur     *job[blockJob] // job whose buffer the staging area references
	state   int
	err     error // sticky: io.EOF after the end
	written int64 // bytes emitted so far
}

const (
	stateNew = iota
	stateBlocks
	stateDone
)

// emitter turns processed blocks into output bytes.
type emitter interface {
	begin(w io.Writer) error                   // before the first block
	block(w io.Writer, j *job[blockJob]) error // each block, in order
	end(w io.Writer) error                     // after the last block
}

// errClosed is the pipeline's cause when a reader is closed early.
var errClosed = errors.New("vhdcrypt: output reader closed")

// Read implements io.Reader.
func (r *outReader) Read(b []byte) (int, error) {
	for {
		if n := r.stage.read(b); n > 0 || len(b) == 0 {
			r.report()
			return n, nil
		}
		if r.cur != nil {
			r.p.release(r.cur)
			r.cur = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		r.sink.w = &r.stage
		r.err = r.step()
	}
}

// WriteTo implements io.WriterTo: it drains whatever a previous Read left
// staged, then writes the rest straight into w.
func (r *outReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for len(r.stage.segs) > 0 {
		m, err := w.Write(r.stage.segs[0])
		n += int64(m)
		if err != nil {
			return n, r.fail(err)
		}
		r.stage.segs = r.stage.segs[1:]
	}
	r.stage.reset()
	if r.cur != nil {
		r.p.release(r.cur)
		r.cur = nil
	}
	r.sink.w = w
	start := r.sink.n
	for r.err == nil {
		r.err = r.step()
		if r.cur != nil {
			r.p.release(r.cur)
			r.cur = nil
		}
		r.report()
	}
	n += r.sink.n - start
	if errors.Is(r.err, io.EOF) {
		return n, nil
	}
	return n, r.err
}

// step runs the writer stage one step: the header, one block, or the end.
// It returns io.EOF when everything has been emitted.
func (r *outReader) step() error {
	switch r.state {
	case stateNew:
		if err := r.ctx.Err(); err != nil {
			r.state = stateDone
			return context.Cause(r.ctx)
		}
		r.p = startPipeline(r.ctx, r.cfg)
		r.state = stateBlocks
		if err := r.em.begin(&r.sink); err != nil {
			return r.fail(err)
		}
		return nil
	case stateBlocks:
		j, err := r.p.next()
		if errors.Is(err, io.EOF) {
			if err := r.em.end(&r.sink); err != nil {
				return r.fail(err)
			}
			r.state = stateDone
			err := r.p.stop(nil)
			r.finished()
			if err != nil {
				return err
			}
			if r.sink.n != r.total {
				return fmt.Errorf("vhdcrypt: internal error: wrote %d bytes, planned %d", r.sink.n, r.total)
			}
			return nil // the footer may still be staged; EOF comes next step
		}
		if err != nil {
			return r.fail(err)
		}
		r.cur = j
		r.stage.own = j.buf
		if err := r.em.block(&r.sink, j); err != nil {
			return r.fail(err)
		}
		return nil
	}
	return io.EOF
}

// fail stops the pipeline and returns the error to report: the
// pipeline's first error if it had one, else err.
func (r *outReader) fail(err error) error {
	r.state = stateDone
	if r.p != nil {
		if perr := r.p.stop(err); perr != nil {
			err = perr
		}
	}
	r.finished()
	r.err = err
	return err
}

// finished runs the finish hook, once; no worker is running any more.
func (r *outReader) finished() {
	if f := r.finish; f != nil {
		r.finish = nil
		f()
	}
}

// report calls the progress callback with the bytes emitted so far.
func (r *outReader) report() {
	if r.o.progress == nil || r.sink.n == r.written {
		return
	}
	r.written = r.sink.n
	r.o.progress(Progress{Phase: r.phase, Done: r.written - int64(r.stage.pending()), Total: r.total})
}

// Close stops the background work and releases the buffers. Closing before
// the end is not an error; later Reads return an error.
func (r *outReader) Close() error {
	if r.state != stateDone {
		r.fail(errClosed)
	}
	r.cur = nil // its buffer belongs to a stopped pipeline
	r.stage.reset()
	if r.err == nil || errors.Is(r.err, io.EOF) {
		r.err = errClosed
	}
	return nil
}

// switchWriter forwards to w, which the reader switches between the staging
// area and the destination, and counts the bytes.
type switchWriter struct {
	w io.Writer
	n int64
}

// skip advances the output past n zero bytes, leaving a hole, when the
// destination can; otherwise it reports false and the caller writes zeros.
func (s *switchWriter) skip(n int64) (bool, error) {
	sk, ok := s.w.(skipper)
	if !ok {
		return false, nil
	}
	if err := sk.skip(n); err != nil {
		return true, err
	}
	s.n += n
	return true, nil
}

// finish completes a destination that may end with a hole.
func (s *switchWriter) finish() error {
	if sk, ok := s.w.(skipper); ok {
		return sk.finish()
	}
	return nil
}

func (s *switchWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// staging is the pull reader's holding area: a queue of byte slices, either
// references into the current job's buffer (own) or copies in arena.
type staging struct {
	segs  [][]byte
	arena []byte
	own   []byte
}

func (s *staging) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(s.own) >= len(p) && &s.own[0] == &p[0] {
		// The job's own buffer, valid until the job is released.
		s.segs = append(s.segs, p)
		return len(p), nil
	}
	start := len(s.arena)
	s.arena = append(s.arena, p...)
	s.segs = append(s.segs, s.arena[start:len(s.arena):len(s.arena)])
	return len(p), nil
}

func (s *staging) read(b []byte) int {
	n := 0
	for n < len(b) && len(s.segs) > 0 {
		c := copy(b[n:], s.segs[0])
		n += c
		if c == len(s.segs[0]) {
			s.segs = s.segs[1:]
		} else {
			s.segs[0] = s.segs[0][c:]
		}
	}
	if len(s.segs) == 0 {
		s.reset()
	}
	return n
}

func (s *staging) pending() int {
	n := 0
	for _, b := range s.segs {
		n += len(b)
	}
	return n
}

func (s *staging) reset() {
	s.segs = s.segs[:0]
	s.arena = s.arena[:0]
	s.own = nil
}

// vhdEmitter writes a dynamic VHD with package vhd's stream writer.
type vhdEmitter struct {
	layout *vhd.Layout
	w      *vhd.Writer
}

func (v *vhdEmitter) begin(w io.Writer) error {
	vw, err := vhd.NewWriter(w, v.layout)
	if err != nil {
		return fmt.Errorf("vhdcrypt: writing the output: %w", err)
	}
	v.w = vw
	return nil
}

func (v *vhdEmitter) block(_ io.Writer, j *job[blockJob]) error {
	if err := v.w.WriteBlock(j.v.index, j.buf[:vhd.BlockSize]); err != nil {
		return fmt.Errorf("vhdcrypt: writing block %d: %w", j.v.index, err)
	}
	return nil
}

func (v *vhdEmitter) end(io.Writer) error {
	if err := v.w.Close(); err != nil {
		return fmt.Errorf("vhdcrypt: finishing the output: %w", err)
	}
	return nil
}

// rawEmitter writes a raw disk: every block in order, the last one cut at
// the disk size.
type rawEmitter struct{ size int64 }

func (rawEmitter) begin(io.Writer) error { return nil }

func (e rawEmitter) block(w io.Writer, j *job[blockJob]) error {
	off := int64(j.v.index) * vhd.BlockSize
	n := min(int64(vhd.BlockSize), e.size-off)
	if sw, ok := w.(*switchWriter); ok && j.v.bitmap == nil {
		// An unallocated block: a hole where the destination allows it.
		if skipped, err := sw.skip(n); skipped || err != nil {
			if err != nil {
				return fmt.Errorf("vhdcrypt: skipping a zero block at offset %d: %w", off, err)
			}
			return nil
		}
	}
	if _, err := w.Write(j.buf[:n]); err != nil {
		return fmt.Errorf("vhdcrypt: writing the output at offset %d: %w", off, err)
	}
	return nil
}

func (rawEmitter) end(w io.Writer) error {
	if sw, ok := w.(*switchWriter); ok {
		if err := sw.finish(); err != nil {
			return fmt.Errorf("vhdcrypt: finishing the output: %w", err)
		}
	}
	return nil
}
