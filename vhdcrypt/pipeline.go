package vhdcrypt

import (
	"context"
	"errors"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"
)

// The pipeline engine behind every verb that moves image data.
//
//	reader (1 goroutine)  ->  workers (N goroutines)  ->  consumer (the caller)
//	fills jobs in order       process jobs in any order    takes jobs back in order
//
// Memory is bounded by a fixed number of buffers (depth), allocated lazily and
// recycled: the reader must acquire a free buffer before it can produce a job,
// and a buffer becomes free again only when the consumer releases the job. So
// at most depth jobs exist at any time, whatever the image size and however
// slow the consumer is.
//
// Ordering: the reader puts each job on two queues, the work queue (taken by
// whichever worker is free) and the order queue (read by the consumer in
// sequence). The consumer waits on the head job's done channel, so results
// come out in the order they were read, without a reordering map.
//
// Errors and cancellation: the first error from any stage (or the parent
// context's cancellation) is recorded, cancels the pipeline's context, and is
// what every later call returns. Stages select on that context wherever they
// could block on each other, so they all stop promptly. stop waits for every
// goroutine, so none outlives the verb that started it.

// errNoMoreJobs is what a pipeline's read function returns at the end. It is
// a private sentinel, not io.EOF, so that an io.EOF leaking from a truncated
// input can never be mistaken for a clean end.
var errNoMoreJobs = errors.New("vhdcrypt: no more jobs")

// job is one unit of work: a buffer plus the stage-specific fields in v.
type job[T any] struct {
	seq  int64
	buf  []byte
	v    T
	err  error         // set by the worker before done is closed
	done chan struct{} // closed when processing has finished (or was skipped)
}

// pipelineConfig describes one pipeline.
type pipelineConfig[T any] struct {
	workers int // worker goroutines; >= 1
	depth   int // buffers, i.e. the most jobs in flight; >= workers+1
	bufSize int // bytes per buffer

	// read fills the next job (j.buf has bufSize bytes, j.v is zero) and
	// returns errNoMoreJobs when there is nothing more. It runs in one goroutine,
	// so it may read a stream sequentially.
	read func(ctx context.Context, j *job[T]) error
	// process runs concurrently in the workers. It may be nil.
	process func(ctx context.Context, j *job[T]) error
}

// pipeline is a running pipeline. Its consumer calls next and release in a
// single goroutine, then stop.
type pipeline[T any] struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	g      errgroup.Group

	free  chan []byte   // free buffers; nil entries are not allocated yet
	work  chan *job[T]  // to the workers
	order chan *job[T]  // to the consumer, in read order
	once  sync.Once     // guards err
	err   error         // the first error
	size  int           // bufSize
	wg    chan struct{} // closed when all goroutines have returned
}

// startPipeline starts the reader and the workers.
func startPipeline[T any](parent context.Context, cfg pipelineConfig[T]) *pipeline[T] {
	workers := max(cfg.workers, 1)
	depth := max(cfg.depth, workers+1)
	ctx, cancel := context.WithCancelCause(parent)
	p := &pipeline[T]{
		ctx:    ctx,
		cancel: cancel,
		free:   make(chan []byte, depth),
		work:   make(chan *job[T], depth),
		order:  make(chan *job[T], depth),
		size:   cfg.bufSize,
		wg:     make(chan struct{}),
	}
	for range depth {
		p.free <- nil
	}
	p.g.Go(func() error { return p.runReader(cfg.read) })
	for range workers {
		p.g.Go(func() error { return p.runWorker(cfg.process) })
	}
	go func() {
		_ = p.g.Wait()
		close(p.wg)
	}()
	return p
}

// fail records err if it is the first error and cancels the pipeline.
func (p *pipeline[T]) fail(err error) error {
	p.once.Do(func() {
		p.err = err
		p.cancel(err)
	})
	return err
}

// firstErr returns the recorded error, or the context's cause when the
// pipeline was cancelled from outside.
func (p *pipeline[T]) firstErr() error {
	var err error
	p.once.Do(func() {
		// Nobody failed yet: the parent context must have been cancelled.
		err = context.Cause(p.ctx)
		if err == nil {
			err = context.Canceled
		}
		p.err = err
		p.cancel(err)
	})
	if err != nil {
		return err
	}
	return p.err
}

func (p *pipeline[T]) runReader(read func(context.Context, *job[T]) error) error {
	defer close(p.order)
	defer close(p.work)
	for seq := int64(0); ; seq++ {
		var buf []byte
		select {
		case <-p.ctx.Done():
			return p.firstErr()
		case buf = <-p.free:
		}
		if buf == nil {
			buf = make([]byte, p.size)
		}
		j := &job[T]{seq: seq, buf: buf, done: make(chan struct{})}
		if err := read(p.ctx, j); err != nil {
			p.free <- buf
			if err == errNoMoreJobs {
				return nil
			}
			if p.ctx.Err() != nil {
				// The read failed because we were cancelled: keep the cause.
				return p.firstErr()
			}
			return p.fail(err)
		}
		// Both queues have room for every buffer, so these sends do not block;
		// the select only makes that independent of the invariant.
		select {
		case p.order <- j:
		case <-p.ctx.Done():
			return p.firstErr()
		}
		select {
		case p.work <- j:
		case <-p.ctx.Done():
			return p.firstErr()
		}
	}
}

func (p *pipeline[T]) runWorker(process func(context.Context, *job[T]) error) error {
	for j := range p.work {
		if err := p.ctx.Err(); err != nil {
			j.err = p.firstErr()
			close(j.done)
			return j.err
		}
		if process != nil {
			j.err = process(p.ctx, j)
		}
		close(j.done)
		if j.err != nil {
			if p.ctx.Err() != nil {
				return p.firstErr()
			}
			return p.fail(j.err)
		}
	}
	return nil
}

// next returns the next processed job in read order, io.EOF after the last
// one, or the pipeline's first error.
func (p *pipeline[T]) next() (*job[T], error) {
	if p.ctx.Err() != nil {
		if err := p.firstErr(); err != nil {
			return nil, err
		}
		return nil, io.EOF // stopped after a clean end
	}
	var j *job[T]
	var ok bool
	select {
	case j, ok = <-p.order:
	case <-p.ctx.Done():
		return nil, p.firstErr()
	}
	if !ok {
		// The reader has finished: cleanly unless it recorded an error.
		if p.ctx.Err() != nil {
			return nil, p.firstErr()
		}
		return nil, io.EOF
	}
	select {
	case <-j.done:
	case <-p.ctx.Done():
		return nil, p.firstErr()
	}
	if j.err != nil {
		return nil, p.firstErr()
	}
	return j, nil
}

// release gives a job's buffer back to the reader.
func (p *pipeline[T]) release(j *job[T]) {
	buf := j.buf
	j.buf = nil
	p.free <- buf // never blocks: free has room for every buffer
}

// stop ends the pipeline, waits for its goroutines and returns the first
// error. A nil cause means the consumer saw the end of the jobs; otherwise
// cause is recorded (unless an earlier error was) and everything is cancelled.
func (p *pipeline[T]) stop(cause error) error {
	if cause != nil {
		p.fail(cause)
	}
	// After the end of the jobs the reader and the workers are returning by
	// themselves; after a failure they have been cancelled. Either way, wait.
	<-p.wg
	p.once.Do(func() {}) // seal: no error can be recorded any more
	p.cancel(context.Canceled)
	return p.err
}

// runPipeline runs a pipeline to the end, handing each job to consume in
// order. It returns the first error of any stage.
func runPipeline[T any](ctx context.Context, cfg pipelineConfig[T], consume func(*job[T]) error) error {
	p := startPipeline(ctx, cfg)
	for {
		j, err := p.next()
		if errors.Is(err, io.EOF) {
			return p.stop(nil)
		}
		if err != nil {
			return p.stop(err)
		}
		if err := consume(j); err != nil {
			return p.stop(err)
		}
		p.release(j)
	}
}
