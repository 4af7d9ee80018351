package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/filter"
)

// EventLogPager reads one page of SoftLayer_Event_Log::getAllObjects and
// returns each record as the JSON the service sent, undecoded: a record
// that softlayer-go's datatypes.Event_Log cannot hold (a SYSTEM record's
// userId is "", as softlayer-python's SoftLayer_Event_Log fixture shows)
// must not fail its page. *classic.Client implements it (with retries and
// secret scrubbing).
type EventLogPager interface {
	EventLogRecords(ctx context.Context, objectFilter string, offset, limit int) ([]json.RawMessage, error)
}

// ServiceTimer is implemented by an EventLogPager that knows the service's
// clock (*classic.Client: the Date of the API's answers).
type ServiceTimer interface {
	ServiceTime() (time.Time, bool)
}

// Now returns the event log service's current time when the pager knows it
// (ServiceTimer), reading one record first if no answer has been seen yet;
// the local time otherwise.
func (l *EventLog) Now(ctx context.Context) (time.Time, error) {
	st, ok := l.pager.(ServiceTimer)
	if !ok {
		return time.Now(), nil
	}
	if t, ok := st.ServiceTime(); ok {
		return t, nil
	}
	if _, err := l.pager.EventLogRecords(ctx, "", 0, 1); err != nil {
		return time.Time{}, fmt.Errorf("audit: reading the event log service's clock: %w", err)
	}
	t, _ := st.ServiceTime()
	return t, nil
}

// DefaultEventLogPageSize is how many event log records one request asks
// for (resultLimit). SLDN's own examples page by 50 to 100.
const DefaultEventLogPageSize = 100

// EventLogDateLayout is how EventLog writes the dates of its
// eventCreateDate filters: microseconds and a numeric offset, the form
// softlayer-python sends (SoftLayer/utils.py format_event_log_date, e.g.
// "2017-10-30T00:00:00.000000+00:00" in tests/managers/event_log_tests.py)
// and the form the service answers with ("2021-03-29T14:41:55.444089-06:00"
// on SLDN's "Working with Event Logs" page). Dates are written in UTC.
const EventLogDateLayout = "2006-01-02T15:04:05.000000-07:00"

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

// WithEventLogLogger sets the logger that receives a warning for every
// record the event log skips (default: none).
func WithEventLogLogger(lg *slog.Logger) EventLogOption {
	return func(l *EventLog) {
		if lg != nil {
			l.log = lg
		}
	}
}

// EventLog is the classic infrastructure event log as a Source. It selects
// records with object filters built by softlayer-go's filter package
// (objectName, objectId, eventName and an eventCreateDate betweenDate) and
// pages through them with resultLimit. It knows servers and templates by
// id only: TemplateGUIDs and KeyCRNs of a Query do not select event log
// records. A record it cannot read (no readable eventCreateDate, not a
// JSON object) is skipped, counted and reported by Skipped; the rest of
// its page is kept.
type EventLog struct {
	pager          EventLogPager
	pageSize       int
	guestObject    string
	templateObject string
	log            *slog.Logger
	skips          skipLog
}

// NewEventLog returns the event log read through p.
func NewEventLog(p EventLogPager, opts ...EventLogOption) *EventLog {
	l := &EventLog{pager: p, pageSize: DefaultEventLogPageSize, guestObject: ObjectNameGuest,
		templateObject: ObjectNameTemplate, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(l)
	}
	return l
}

// Skipped returns how many records the event log skipped since it was
// made, and the first of them (at most MaxSkipDetails).
func (l *EventLog) Skipped() (int, []Skip) { return l.skips.get() }

// Filters returns the object filters (JSON) that select q's records in
// [from, to). The date bounds are written in EventLogDateLayout and widened
// to whole seconds (betweenDate includes both ends; a service that compares
// at a coarser resolution than microseconds still returns every record of
// the window); Window trims the answer to [from, to). Records are ordered
// by traceId ascending, as softlayer-python orders them, so that paging by
// offset neither skips nor repeats a record. Each filter is one
// query: an object filter cannot say "this guest OR that template".
func (l *EventLog) Filters(q Query, from, to time.Time) []string {
	start := from.UTC().Truncate(time.Second).Format(EventLogDateLayout)
	endT := to.UTC().Truncate(time.Second)
	if !endT.Equal(to.UTC()) {
		endT = endT.Add(time.Second)
	}
	end := endT.Format(EventLogDateLayout)
	// Offset paging needs a stable order: softlayer-python's event log
	// filter always sorts on traceId, ascending (SoftLayer/managers/event_log.py
	// build_filter, with utils.query_filter_orderby), and its docs advise an
	// orderBy on a unique property whenever results are paged.
	common := []filter.Filter{
		filter.Path("eventCreateDate").DateBetween(start, end),
		filter.Path("traceId").OrderBy("ASC"),
	}
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
			page, err := l.pager.EventLogRecords(ctx, f, offset, l.pageSize)
			if err != nil {
				return nil, fmt.Errorf("audit: reading the classic event log at offset %d: %w", offset, err)
			}
			for i, raw := range page {
				e, err := fromEventLog(raw)
				if err != nil {
					l.skips.add(Skip{Source: ClassicEventLog, Where: fmt.Sprintf("offset %d, record %d", offset, i), Reason: err.Error()})
					l.log.WarnContext(ctx, "audit: skipping an event log record", "offset", offset, "record", i, "reason", err.Error())
					continue
				}
				switch e.TargetType {
				case l.guestObject:
					e.kind = kindGuest
				case l.templateObject:
					e.kind = kindTemplate
				}
				key := string(e.Raw)
				if !e.Time.Before(from) && e.Time.Before(to) && !seen[key] {
					seen[key] = true
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

// eventLogRecord is the part of a SoftLayer_Event_Log record the Event
// model holds. Numbers are read leniently: SYSTEM records carry userId ""
// (softlayer-python's SoftLayer_Event_Log fixture), which softlayer-go's
// *int field refuses.
type eventLogRecord struct {
	EventName             string    `json:"eventName"`
	EventCreateDate       string    `json:"eventCreateDate"`
	ObjectName            string    `json:"objectName"`
	ObjectID              looseInt  `json:"objectId"`
	Label                 string    `json:"label"`
	TraceID               looseText `json:"traceId"`
	Username              string    `json:"username"`
	OpenIDConnectUserName string    `json:"openIdConnectUserName"`
	UserID                looseInt  `json:"userId"`
	UserType              string    `json:"userType"`
}

// looseInt is an integer that may come as a number, as a string of digits,
// as "" or null (absent).
type looseInt struct {
	v   int
	set bool
}

func (n *looseInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" || s == `""` {
		*n = looseInt{}
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %.40s", string(b))
	}
	*n = looseInt{v: v, set: true}
	return nil
}

// looseText is a string that may also come as a number (traceId is a hex
// string in every published example, but the datatype does not promise it).
type looseText string

func (t *looseText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = looseText(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*t = looseText(n.String())
		return nil
	}
	if string(bytes.TrimSpace(b)) == "null" {
		*t = ""
		return nil
	}
	return fmt.Errorf("not a string: %.40s", string(b))
}

// eventLogTimeLayouts are the forms of eventCreateDate: RFC 3339 with
// microseconds and a colon in the offset in every published example, and
// for safety without the colon.
var eventLogTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"}

func fromEventLog(raw json.RawMessage) (Event, error) {
	var r eventLogRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return Event{}, fmt.Errorf("the record is not a SoftLayer_Event_Log object: %v", err)
	}
	var t time.Time
	var err error
	for _, layout := range eventLogTimeLayouts {
		if t, err = time.Parse(layout, r.EventCreateDate); err == nil {
			break
		}
	}
	if err != nil {
		return Event{}, fmt.Errorf("no readable eventCreateDate (%q)", r.EventCreateDate)
	}
	e := Event{
		Time:          t.UTC(),
		Source:        ClassicEventLog,
		Action:        r.EventName,
		TargetType:    r.ObjectName,
		TargetName:    r.Label,
		Message:       r.Label,
		CorrelationID: string(r.TraceID),
		Initiator:     r.Username,
		Raw:           append(json.RawMessage(nil), raw...),
	}
	if e.Initiator == "" {
		e.Initiator = r.OpenIDConnectUserName
	}
	if e.Initiator == "" {
		e.Initiator = r.UserType // SYSTEM records name no user
	}
	if r.ObjectID.set {
		e.TargetID = strconv.Itoa(r.ObjectID.v)
	}
	return e, nil
}
