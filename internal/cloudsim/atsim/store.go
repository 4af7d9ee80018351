// Package atsim simulates where IBM Cloud audit events end up: an in-memory,
// bounded event store that every simulated service records into
// (simcore.EventSink), and a search endpoint in the shape of the IBM Cloud
// Logs query API (POST /v1/query answering server-sent events, ../../../docs/CLOUD.md
// section 6.5), with a subset of the Lucene query syntax (see Parse).
//
// Every action name a simulated service records is catalogued in Actions
// with its provenance: where IBM documents it, or what is invented about
// it; the Store counts any other (Uncatalogued).
//
// What this package does NOT do: DataPrime queries, Lucene ranges, fuzzy
// and proximity queries, boosts, regular expressions and leading wildcards;
// background (asynchronous) queries, archive tiers, aggregations,
// Activity Tracker Event Routing (targets and routes), the legacy LogDNA
// export API, and persistence: events live in memory and the oldest are
// dropped beyond the store's capacity.
package atsim

import (
	"sort"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// DefaultCapacity is how many events a Store keeps by default.
const DefaultCapacity = 100_000

// Store is a bounded, thread-safe event store. It implements
// simcore.EventSink. The zero value is not usable; call NewStore.
type Store struct {
	mu      sync.Mutex
	ring    []simcore.Event
	next    int // index of the next write once the ring is full
	full    bool
	dropped int
	notify  chan struct{} // closed and replaced on every Record
	// uncatalogued counts recorded events by action, for actions missing
	// from Actions.
	uncatalogued map[string]int
}

var _ simcore.EventSink = (*Store)(nil)

// NewStore returns a store that keeps the newest capacity events
// (DefaultCapacity when capacity <= 0).
func NewStore(capacity int) *Store {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Store{ring: make([]simcore.Event, 0, capacity), notify: make(chan struct{}), uncatalogued: map[string]int{}}
}

// Record stores an event, dropping the oldest when the store is full.
func (s *Store) Record(ev simcore.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := Actions[ev.Action]; !ok {
		s.uncatalogued[ev.Action]++
	}
	if !s.full && len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, ev)
		if len(s.ring) == cap(s.ring) {
			s.full = true
		}
	} else {
		s.ring[s.next] = ev
		s.next = (s.next + 1) % len(s.ring)
		s.dropped++
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// Len returns how many events the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ring)
}

// Uncatalogued returns how many events were recorded under each action
// that Actions does not list (no provenance), or an empty map.
func (s *Store) Uncatalogued() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.uncatalogued))
	for a, n := range s.uncatalogued {
		out[a] = n
	}
	return out
}

// Dropped returns how many events were dropped for lack of room.
func (s *Store) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Events returns a copy of every stored event in the order recorded.
func (s *Store) Events() []simcore.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]simcore.Event, 0, len(s.ring))
	if s.full {
		out = append(out, s.ring[s.next:]...)
		out = append(out, s.ring[:s.next]...)
	} else {
		out = append(out, s.ring...)
	}
	return out
}

// Changed returns a channel that is closed at the next Record, for tests
// that wait for an event.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// Filter selects events. Zero fields match everything.
type Filter struct {
	Action   string    // exact action, or a prefix ending in '*'
	TargetID string    // exact target.id
	From, To time.Time // eventTime in [From, To)
}

func (f Filter) match(ev *simcore.Event) bool {
	if f.Action != "" && !matchWord(f.Action, ev.Action, false) {
		return false
	}
	if f.TargetID != "" && ev.Target.ID != f.TargetID {
		return false
	}
	if !f.From.IsZero() && ev.EventTime.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !ev.EventTime.Before(f.To) {
		return false
	}
	return true
}

// Find returns the events matching f, oldest first (by eventTime, then
// recording order).
func (s *Store) Find(f Filter) []simcore.Event {
	var out []simcore.Event
	for _, ev := range s.Events() {
		if f.match(&ev) {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].EventTime.Before(out[j].EventTime) })
	return out
}

// Search runs a Lucene-subset query (see Parse) over the events whose
// eventTime lies in [from, to) (zero times are open ends) and returns at
// most limit of them (0 = no limit), oldest first.
func (s *Store) Search(query string, from, to time.Time, limit int) ([]simcore.Event, error) {
	q, err := Parse(query)
	if err != nil {
		return nil, err
	}
	var out []simcore.Event
	for _, ev := range s.Find(Filter{From: from, To: to}) {
		doc, err := toDoc(&ev)
		if err != nil {
			return nil, err
		}
		if q.Match(doc) {
			out = append(out, ev)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
	}
	return out, nil
}
