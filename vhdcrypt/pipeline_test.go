package vhdcrypt

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counterJobs is a synthetic pipeline: read writes the sequence number into
// the buffer, process squares it after a random delay (so workers finish out
// of order), and the consumer checks the order.
type counterJobs struct {
	n         int64
	readCalls atomic.Int64
	bufs      sync.Map // distinct buffers seen (by first byte address)
	delay     time.Duration
}

func (c *counterJobs) config(workers, depth int) pipelineConfig[int64] {
	return pipelineConfig[int64]{
		workers: workers,
		depth:   depth,
		bufSize: 16,
		read: func(_ context.Context, j *job[int64]) error {
			i := c.readCalls.Add(1) - 1
			if i >= c.n {
				return errNoMoreJobs
			}
			c.bufs.Store(&j.buf[0], true)
			binary.LittleEndian.PutUint64(j.buf, uint64(i))
			j.v = i
			return nil
		},
		process: func(_ context.Context, j *job[int64]) error {
			if c.delay > 0 {
				time.Sleep(time.Duration(rand.Int64N(int64(c.delay))))
			}
			x := binary.LittleEndian.Uint64(j.buf)
			binary.LittleEndian.PutUint64(j.buf[8:], x*x)
			return nil
		},
	}
}

func TestPipelineOrderAndBoundedBuffers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ workers, depth int }{{1, 2}, {2, 6}, {8, 18}, {4, 1}} {
		c := &counterJobs{n: 500, delay: 200 * time.Microsecond}
		var got int64
		err := runPipeline(context.Background(), c.config(tc.workers, tc.depth), func(j *job[int64]) error {
			require.Equal(t, got, j.v, "jobs must come out in read order")
			require.Equal(t, got, j.seq)
			require.Equal(t, uint64(got*got), binary.LittleEndian.Uint64(j.buf[8:]), "job %d not processed", got)
			got++
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, c.n, got)
		distinct := 0
		c.bufs.Range(func(any, any) bool { distinct++; return true })
		require.LessOrEqual(t, distinct, max(tc.depth, tc.workers+1), "buffers must be recycled, not allocated per job")
	}
}

func TestPipelineEmpty(t *testing.T) {
	t.Parallel()
	c := &counterJobs{n: 0}
	calls := 0
	err := runPipeline(context.Background(), c.config(3, 8), func(*job[int64]) error { calls++; return nil })
	require.NoError(t, err)
	require.Zero(t, calls)
}

func TestPipelineErrors(t *testing.T) {
	t.Parallel()
	errRead := errors.New("read failed")
	errProcess := errors.New("process failed")
	errConsume := errors.New("consume failed")
	for _, tc := range []struct {
		name    string
		failAt  int64
		stage   string
		wantErr error
	}{
		{"read", 37, "read", errRead},
		{"process", 12, "process", errProcess},
		{"consume", 90, "consume", errConsume},
		{"read first job", 0, "read", errRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counterJobs{n: 1000, delay: 50 * time.Microsecond}
			cfg := c.config(4, 10)
			read, process := cfg.read, cfg.process
			cfg.read = func(ctx context.Context, j *job[int64]) error {
				if tc.stage == "read" && c.readCalls.Load() == tc.failAt {
					c.readCalls.Add(1)
					return errRead
				}
				return read(ctx, j)
			}
			cfg.process = func(ctx context.Context, j *job[int64]) error {
				if tc.stage == "process" && j.v == tc.failAt {
					return errProcess
				}
				return process(ctx, j)
			}
			var consumed int64
			err := runPipeline(context.Background(), cfg, func(j *job[int64]) error {
				if tc.stage == "consume" && j.v == tc.failAt {
					return errConsume
				}
				consumed++
				return nil
			})
			require.ErrorIs(t, err, tc.wantErr)
			require.LessOrEqual(t, consumed, tc.failAt, "nothing after the failing job may be consumed")
		})
	}
}

func TestPipelineFirstErrorWins(t *testing.T) {
	t.Parallel()
	// Every worker fails; the consumer must see exactly one of those errors,
	// never a context error caused by the cancellation that followed.
	for range 50 {
		var n atomic.Int64
		cfg := pipelineConfig[int64]{
			workers: 4, depth: 8, bufSize: 1,
			read: func(context.Context, *job[int64]) error { return nil },
			process: func(context.Context, *job[int64]) error {
				return fmtErr(n.Add(1))
			},
		}
		err := runPipeline(context.Background(), cfg, func(*job[int64]) error { return nil })
		var fe fmtErr
		require.ErrorAs(t, err, &fe)
		require.NotErrorIs(t, err, context.Canceled)
	}
}

type fmtErr int64

func (e fmtErr) Error() string { return "worker error" }

func TestPipelineParentCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &counterJobs{n: 1 << 40, delay: 100 * time.Microsecond} // effectively endless
	var consumed atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- runPipeline(ctx, c.config(2, 6), func(*job[int64]) error {
			if consumed.Add(1) == 100 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("pipeline did not stop after cancellation")
	}
	require.Less(t, consumed.Load(), int64(100+10), "work continued long after cancellation")
}

func TestPipelineStopEarly(t *testing.T) {
	t.Parallel()
	// A consumer that abandons the pipeline (like a Reader being closed)
	// stops every goroutine.
	c := &counterJobs{n: 1 << 40}
	p := startPipeline(context.Background(), c.config(3, 8))
	for range 10 {
		j, err := p.next()
		require.NoError(t, err)
		p.release(j)
	}
	errStop := errors.New("closed")
	require.ErrorIs(t, p.stop(errStop), errStop)
	_, err := p.next()
	require.ErrorIs(t, err, errStop)
}

// Zero workers means the default, GOMAXPROCS, as a zero Plan.Workers does.
func TestZeroWorkersMeansDefault(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -3} {
		if got, want := buildOptions([]Option{WithWorkers(n)}).workers, runtime.GOMAXPROCS(0); got != want {
			t.Errorf("WithWorkers(%d): %d workers, want GOMAXPROCS = %d", n, got, want)
		}
	}
}
