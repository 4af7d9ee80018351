package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/filter"
)

// EventLogPager reads one page of SoftLayer_Event_Log::getAllObjects.
// *classic.Client implements it (with retries and secret scrubbing).
type EventLogPager interface {
	EventLogPage(ctx context.Context, objectFilter string, offset, limit int) ([]datatypes.Event_Log, error)
}

// DefaultEventLogPageSize is how many event log records one request asks
// for (resultLimit). SLDN's own examples page by 50 to 100.
const DefaultEventLogPageSize = 100

// EventLogOption configures an EventLog.
type EventLogOption func(*EventLog)

// WithPageSize sets the resultLimit page size (default DefaultEventLogPageSize).
func WithPageSize(n int) EventLogOption {
	return func(l *EventLog) {
		if n > 0 {
			l.pageSize = n
		}
	}
}

// WithObjectNames sets the event log objectName of virtual server and
// image template events (defaults ObjectNameGuest and ObjectNameTemplate).
func WithObjectNames(guest, template string) EventLogOption {
	return func(l *EventLog) { l.guestObject, l.templateObject = guest, template }
}

// EventLog is the classic infrastructure event log as a Source. It selects
// records with object filters built by softlayer-go's filter package
// (objectName, objectId, eventName and an eventCreateDate betweenDate) and
// pages through them with resultLimit. It knows servers and templates by
// id only: TemplateGUIDs and KeyCRNs of a Query do not select event log
// records.
type EventLog struct {
	pager          EventLogPager
	pageSize       int
	guestObject    string
	templateObject string
}

// NewEventLog returns the event log read through p.
func NewEventLog(p EventLogPager, opts ...EventLogOption) *EventLog {
	l := &EventLog{pager: p, pageSize: DefaultEventLogPageSize, guestObject: ObjectNameGuest, templateObject: ObjectNameTemplate}
	for _, f := range opts {
		f(l)
	}
	return l
}

// Filters returns the object filters (JSON) that select q's records in
// [from, to). The date bounds are widened to whole seconds, as
// eventCreateDate has second resolution and betweenDate includes both
// ends; Window trims the answer to [from, to). Each filter is one query:
// an object filter cannot say "this guest OR that template".
func (l *EventLog) Filters(q Query, from, to time.Time) []string {
	start := from.UTC().Truncate(time.Second).Format(time.RFC3339)
	endT := to.UTC().Truncate(time.Second)
	if !endT.Equal(to.UTC()) {
		endT = endT.Add(time.Second)
	}
	end := endT.Format(time.RFC3339)
	common := []filter.Filter{filter.Path("eventCreateDate").DateBetween(start, end)}
	if len(q.Actions) > 0 {
		common = append(common, filter.Path("eventName").In(anys(q.Actions)...))
	}
	if !q.anyResource() {
		return []string{filter.Build(common...)}
	}
	var out []string
	add := func(object string, ids []int) {
		if len(ids) == 0 {
			return
		}
		fs := append([]filter.Filter{
			filter.Path("objectName").Eq(object),
			filter.Path("objectId").In(anys(ids)...),
		}, common...)
		out = append(out, filter.Build(fs...))
	}
	add(l.guestObject, q.GuestIDs)
	add(l.templateObject, q.TemplateIDs)
	return out
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Window returns q's event log records in [from, to), reading every page.
func (l *EventLog) Window(ctx context.Context, q Query, from, to time.Time) ([]Event, error) {
	var out []Event
	// A record is kept once even if two filters select it (a server that
	// ignores object filters answers every query with everything).
	seen := map[string]bool{}
	for _, f := range l.Filters(q, from, to) {
		for offset := 0; ; {
			page, err := l.pager.EventLogPage(ctx, f, offset, l.pageSize)
			if err != nil {
				return nil, fmt.Errorf("audit: reading the classic event log at offset %d: %w", offset, err)
			}
			for i := range page {
				e, err := fromEventLog(&page[i])
				if err != nil {
					return nil, err
				}
				switch e.TargetType {
				case l.guestObject:
					e.kind = kindGuest
				case l.templateObject:
					e.kind = kindTemplate
				}
				if !e.Time.Before(from) && e.Time.Before(to) && !seen[string(e.Raw)] {
					seen[string(e.Raw)] = true
					out = append(out, e)
				}
			}
			// A short page is the last. A page longer than asked means the
			// server ignored resultLimit and sent everything.
			if len(page) < l.pageSize || len(page) > l.pageSize {
				break
			}
			offset += len(page)
		}
	}
	return out, nil
}

func fromEventLog(r *datatypes.Event_Log) (Event, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return Event{}, fmt.Errorf("audit: encoding an event log record: %w", err)
	}
	e := Event{
		Source:        ClassicEventLog,
		Action:        deref(r.EventName),
		TargetType:    deref(r.ObjectName),
		TargetName:    deref(r.Label),
		Message:       deref(r.Label),
		CorrelationID: deref(r.TraceId),
		Initiator:     deref(r.Username),
		Raw:           raw,
	}
	if e.Initiator == "" {
		e.Initiator = deref(r.OpenIdConnectUserName)
	}
	if r.ObjectId != nil {
		e.TargetID = strconv.Itoa(*r.ObjectId)
	}
	if r.EventCreateDate != nil {
		e.Time = r.EventCreateDate.Time
	}
	return e, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
