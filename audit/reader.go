package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A Source returns audit events of one time window. EventLog and CloudLogs
// are Sources.
type Source interface {
	// Window returns the events in [from, to) that concern q. It may
	// return events that do not match q; Reader keeps only those that
	// Query.Matches.
	Window(ctx context.Context, q Query, from, to time.Time) ([]Event, error)
}

// Skip is a record a source read but could not turn into an Event: a
// Cloud Logs result whose user_data is not an audit event, or an event log
// record without a readable date. The search goes on without it.
type Skip struct {
	// Source is where the record was read.
	Source SourceName
	// Where locates it: "stream line 7, result 2" (Cloud Logs) or
	// "offset 100, record 3" (event log).
	Where string
	// Reason says why it was skipped.
	Reason string
}

// MaxSkipDetails is how many skipped records a source describes; it counts
// every one.
const MaxSkipDetails = 20

// SkipReporter is implemented by sources that skip records they cannot
// read (EventLog and CloudLogs): Skipped returns how many they skipped
// since they were made, and the first MaxSkipDetails of them.
type SkipReporter interface {
	Skipped() (int, []Skip)
}

// skipLog counts skipped records and keeps the first MaxSkipDetails.
type skipLog struct {
	mu    sync.Mutex
	n     int
	first []Skip
}

func (l *skipLog) add(s Skip) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < MaxSkipDetails {
		l.first = append(l.first, s)
	}
}

func (l *skipLog) get() (int, []Skip) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, slices.Clone(l.first)
}

// DefaultSlice is how much time Reader reads from every source at once.
const DefaultSlice = time.Hour

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithSlice sets how wide a time slice Reader reads at once (default
// DefaultSlice). Events are held in memory one slice at a time.
func WithSlice(d time.Duration) ReaderOption {
	return func(r *Reader) {
		if d > 0 {
			r.slice = d
		}
	}
}

// Reader merges the events of several sources into one trail, sorted by
// time.
type Reader struct {
	sources []Source
	slice   time.Duration
}

// NewReader returns a Reader over the sources.
func NewReader(sources []Source, opts ...ReaderOption) *Reader {
	r := &Reader{sources: slices.Clone(sources), slice: DefaultSlice}
	for _, f := range opts {
		f(r)
	}
	return r
}

// Events returns an iterator over the events of q from every source,
// merged and sorted by time (then source, action and target). It reads the
// window one slice at a time, all sources of a slice concurrently, so memory
// holds one slice's events; each source pages within the slice (resultLimit
// for the event log, limit and window splitting for Cloud Logs). On an
// error the iterator yields it once, with a zero Event, and stops.
func (r *Reader) Events(ctx context.Context, q Query) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		// A window ends no later than the services' now: no event is
		// stamped after it, and an End far ahead (-until 2100) would
		// otherwise be read slice by slice, hundreds of thousands of
		// requests for nothing. Without a clock among the sources the
		// local now stands in only for a zero End.
		if len(r.sources) > 0 && (q.End.IsZero() || r.hasClock()) {
			end, err := r.ServiceNow(ctx)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if q.End.IsZero() || q.End.After(end) {
				q.End = end
			}
		}
		if q.Start.IsZero() || q.End.IsZero() || !q.End.After(q.Start) {
			yield(Event{}, errors.New("audit: the query needs a window with Start before End"))
			return
		}
		if len(r.sources) == 0 {
			yield(Event{}, errors.New("audit: no sources"))
			return
		}
		for from := q.Start; from.Before(q.End); {
			to := from.Add(r.slice)
			if to.After(q.End) {
				to = q.End
			}
			evs, err := r.slice1(ctx, q, from, to)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, e := range evs {
				if !yield(e, nil) {
					return
				}
			}
			from = to
		}
	}
}

func (r *Reader) slice1(ctx context.Context, q Query, from, to time.Time) ([]Event, error) {
	got := make([][]Event, len(r.sources))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range r.sources {
		g.Go(func() error {
			evs, err := s.Window(gctx, q, from, to)
			got[i] = evs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var out []Event
	for _, evs := range got {
		for _, e := range evs {
			if !e.Time.Before(from) && e.Time.Before(to) && q.Matches(&e) {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, compareEvents)
	return out, nil
}

// Skipped sums what the Reader's sources that report skipped records
// (SkipReporter) skipped since they were made: the count, and the first
// MaxSkipDetails records of each source.
func (r *Reader) Skipped() (int, []Skip) {
	var n int
	var out []Skip
	for _, s := range r.sources {
		if sr, ok := s.(SkipReporter); ok {
			k, first := sr.Skipped()
			n += k
			out = append(out, first...)
		}
	}
	return n, out
}

// Clock is implemented by a Source that can read its service's clock
// (EventLog over a *classic.Client, CloudLogs).
type Clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// hasClock reports whether a source can read its service's clock.
func (r *Reader) hasClock() bool {
	for _, s := range r.sources {
		if _, ok := s.(Clock); ok {
			return true
		}
	}
	return false
}

// ServiceNow returns the latest current time of the sources' services
// (each Source that is a Clock), or the local time when none is. A Query
// whose End is zero ends there: events carry the services' times, and a
// local clock that lags them would leave the latest events out. A Query
// whose End is later ends there too when a source has a clock: nothing is
// stamped after it.
func (r *Reader) ServiceNow(ctx context.Context) (time.Time, error) {
	var latest time.Time
	for _, s := range r.sources {
		c, ok := s.(Clock)
		if !ok {
			continue
		}
		t, err := c.Now(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(latest) {
			latest = t
		}
	}
	if latest.IsZero() {
		return time.Now(), nil
	}
	return latest, nil
}

// Collect returns all the events of q (see Events).
func (r *Reader) Collect(ctx context.Context, q Query) ([]Event, error) {
	var out []Event
	for e, err := range r.Events(ctx, q) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}
