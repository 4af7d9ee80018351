package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
	"github.com/e2eimage/e2eimage/internal/retry"
	"github.com/e2eimage/e2eimage/secret"
)

// Limits of the IBM Cloud Logs query API (../docs/CLOUD.md section 6.5).
const (
	// MaxQueryLimit is the most results one synchronous query returns
	// (50,000 records).
	MaxQueryLimit = 50_000
	// DefaultQueryLimit is the limit this package asks for per query.
	DefaultQueryLimit = 1000
	// MinSplitWindow is the narrowest window Window splits a query into
	// when a query returns its limit; a window this narrow that is still
	// full gives ErrTooManyEvents.
	MinSplitWindow = time.Second
	// maxSSELine bounds one line of the event stream (a data line holds up
	// to a page of results).
	maxSSELine = 64 << 20
	// maxErrorBody bounds how much of an error response is kept.
	maxErrorBody = 4 << 10
)

// ErrTooManyEvents is returned when even a MinSplitWindow-wide query
// returns its limit, so that results would be lost.
var ErrTooManyEvents = errors.New("audit: too many events in one window")

// QueryError is an error answered by the Cloud Logs query endpoint: an
// HTTP error status, or an error item inside the event stream. IBM's
// logs-go-sdk (logsv0 QueryResponseStreamItem) shows both kinds of stream
// item: {"error":{"message"}} and the API error form
// {"errors":[{"code","message","more_info"}],"trace","status_code"}.
type QueryError struct {
	// StatusCode is the HTTP status; for an error inside the stream, the
	// item's status_code, else 200.
	StatusCode int
	// Code is the error code, when the service gave one
	// ("resource_exhausted", "unauthenticated", ...).
	Code string
	// Message is the service's message (API keys given with WithSecrets
	// redacted).
	Message string
	// Trace is the service's trace id, to quote to IBM support.
	Trace string
	// InStream reports an error item of a 200 event stream, as opposed to
	// an HTTP error status.
	InStream bool
}

func (e *QueryError) Error() string {
	msg := fmt.Sprintf("audit: Cloud Logs query failed (HTTP %d", e.StatusCode)
	if e.InStream {
		msg += ", in the event stream"
	}
	msg += ")"
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Trace != "" {
		msg += " (trace " + e.Trace + ")"
	}
	return msg
}

// StreamError reports an event stream that could not be read: a message
// that is not JSON, or a line too long. A result whose user_data is not an
// audit event does not stop the read: it is skipped and counted (see
// CloudLogs.Skipped).
type StreamError struct {
	Line   int // 1-based line of the stream where the message ended
	Reason string
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("audit: Cloud Logs event stream, line %d: %s", e.Line, e.Reason)
}

// queryTimeout bounds one query (request and streamed answer) of the
// default client; a query returns at most MaxQueryLimit small results.
const queryTimeout = 2 * time.Minute

// CloudLogsOption configures a CloudLogs.
type CloudLogsOption func(*CloudLogs)

// WithHTTPClient sets the HTTP client of the queries (default: a client
// over a transport of the CloudLogs' own, TLS 1.2 or later, which
// CloseIdleConnections can empty without touching anyone else's
// connections).
func WithHTTPClient(hc *http.Client) CloudLogsOption {
	return func(c *CloudLogs) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithQueryLimit sets the limit of each query (default DefaultQueryLimit,
// at most MaxQueryLimit). A query that returns its limit is split in two.
func WithQueryLimit(n int) CloudLogsOption {
	return func(c *CloudLogs) {
		if n > 0 {
			c.limit = min(n, MaxQueryLimit)
		}
	}
}

// DefaultQueryAttempts is how many times a query is tried when the service
// answers 429 or 502/503/504 or the connection fails.
const DefaultQueryAttempts = 3

// WithQueryAttempts sets how many times a query is tried (default
// DefaultQueryAttempts; 1 disables retries). Queries only read, so a retry
// is always safe.
func WithQueryAttempts(n int) CloudLogsOption {
	return func(c *CloudLogs) {
		if n > 0 {
			c.attempts = n
		}
	}
}

// WithLogger sets the logger for debug messages and the stream's warnings
// (default: none).
func WithLogger(l *slog.Logger) CloudLogsOption {
	return func(c *CloudLogs) {
		if l != nil {
			c.log = l
		}
	}
}

// WithSecrets names strings (API keys) that must never appear in this
// client's errors; the key of the IAM authenticator is one.
func WithSecrets(s ...*secret.String) CloudLogsOption {
	return func(c *CloudLogs) { c.secrets = append(c.secrets, s...) }
}

// CloudLogs reads Activity Tracker events from an IBM Cloud Logs instance
// through its query API (POST /v1/query, Lucene syntax, server-sent
// events) as a Source.
type CloudLogs struct {
	clock     httppolicy.ServiceClock
	endpoint  string
	auth      core.Authenticator
	hc        *http.Client
	limit     int
	attempts  int
	retryBase time.Duration
	log       *slog.Logger
	secrets   []*secret.String
	skips     skipLog
}

// NewCloudLogs returns a reader of the Cloud Logs instance at instanceURL
// (https://<instance-guid>.api.<region>.logs.cloud.ibm.com, without
// /v1/query) that authenticates with auth (an IAM authenticator: see
// NewIAMAuthenticator). The URL must be https, or http to a loopback
// address, and an HTTP client given by WithHTTPClient must verify TLS
// certificates.
func NewCloudLogs(instanceURL string, auth core.Authenticator, opts ...CloudLogsOption) (*CloudLogs, error) {
	ep, err := checkURL(instanceURL)
	if err != nil {
		return nil, fmt.Errorf("audit: Cloud Logs endpoint: %w", err)
	}
	if auth == nil {
		return nil, errors.New("audit: Cloud Logs needs an authenticator")
	}
	c := &CloudLogs{endpoint: ep, auth: auth, hc: &http.Client{Transport: endpoint.NewTransport(), Timeout: queryTimeout}, limit: DefaultQueryLimit,
		attempts: DefaultQueryAttempts, retryBase: time.Second, log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(c)
	}
	if err := endpoint.CheckClient(c.hc); err != nil {
		return nil, fmt.Errorf("audit: refusing to send tokens over this HTTP client: %w", err)
	}
	// The library's HTTP policy: no redirect takes the token or the query
	// elsewhere (a copy: the caller's client is not changed); every
	// answer's Date sets the service clock (Now).
	hc := httppolicy.Client(c.hc)
	hc.Transport = httppolicy.Wrap(c.clock.Transport(c.hc.Transport))
	c.hc = hc
	return c, nil
}

// Skipped returns how many results the client skipped since it was made
// because their user_data was not an audit event, and the first of them
// (at most MaxSkipDetails).
func (c *CloudLogs) Skipped() (int, []Skip) { return c.skips.get() }

// Now returns Cloud Logs' current time as the Date of its last answer
// showed it, sending a one-result query first if no answer has been seen
// yet. Audit events carry the service's time: a window that ends "now"
// ends at this time, not at the local clock's.
func (c *CloudLogs) Now(ctx context.Context) (time.Time, error) {
	if t, ok := c.clock.Now(); ok {
		return t, nil
	}
	now := time.Now()
	if _, _, err := c.searchRetried(ctx, "*", now.Add(-time.Minute), now, 1); err != nil {
		return time.Time{}, fmt.Errorf("audit: reading the Cloud Logs clock: %w", err)
	}
	t, _ := c.clock.Now()
	return t, nil
}

// CloseIdleConnections closes the keep-alive connections of the query
// client that carry no request now, as http.Client.CloseIdleConnections
// does (with WithHTTPClient, that client's transport, which may be
// shared). The CloudLogs stays usable; the authenticator's connections are
// its own.
func (c *CloudLogs) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// checkURL applies internal/endpoint's rule (https, or http to a loopback
// host) and drops trailing slashes.
func checkURL(raw string) (string, error) {
	u, err := endpoint.Check(raw)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// LuceneQuery returns the query CloudLogs sends for q: the key CRNs as
// exact target.id terms, classic resources as the audit-log service's
// actions (their CRNs are not documented, so they are matched after the
// fact by Query.Matches), and q.Actions as a conjunction.
func LuceneQuery(q Query) string {
	var terms []string
	for _, crn := range q.KeyCRNs {
		terms = append(terms, "target.id:"+luceneQuote(crn))
	}
	if len(q.TemplateIDs)+len(q.TemplateGUIDs)+len(q.GuestIDs) > 0 {
		terms = append(terms, "action:audit-log.*")
	}
	var acts []string
	for _, a := range q.Actions {
		acts = append(acts, "action:"+luceneQuote(a))
	}
	switch {
	case len(terms) == 0 && len(acts) == 0:
		return "*"
	case len(acts) == 0:
		return strings.Join(terms, " OR ")
	case len(terms) == 0:
		return strings.Join(acts, " OR ")
	}
	return "(" + strings.Join(terms, " OR ") + ") AND (" + strings.Join(acts, " OR ") + ")"
}

func luceneQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Window returns the events of q in [from, to). When a query returns its
// limit, the window is split in two and each half is queried, down to
// MinSplitWindow.
func (c *CloudLogs) Window(ctx context.Context, q Query, from, to time.Time) ([]Event, error) {
	return c.window(ctx, LuceneQuery(q), from, to)
}

func (c *CloudLogs) window(ctx context.Context, query string, from, to time.Time) ([]Event, error) {
	evs, results, err := c.searchRetried(ctx, query, from, to, c.limit)
	if err != nil {
		return nil, err
	}
	// Results, not events, tell whether the limit was reached: a skipped
	// result took a place in the answer.
	if results < c.limit {
		out := evs[:0]
		for _, e := range evs {
			if !e.Time.Before(from) && e.Time.Before(to) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	if to.Sub(from) <= MinSplitWindow {
		return nil, fmt.Errorf("%w: %d or more events between %s and %s", ErrTooManyEvents, c.limit,
			from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	mid := from.Add(to.Sub(from) / 2)
	c.log.DebugContext(ctx, "audit: query hit its limit, splitting the window", "from", from, "to", to, "limit", c.limit)
	a, err := c.window(ctx, query, from, mid)
	if err != nil {
		return nil, err
	}
	b, err := c.window(ctx, query, mid, to)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

type queryRequest struct {
	Query    string        `json:"query"`
	Metadata queryMetadata `json:"metadata"`
}

type queryMetadata struct {
	StartDate string `json:"start_date"`
	EndDate   string `json:"end_date"`
	Tier      string `json:"tier"`
	Syntax    string `json:"syntax"`
	Limit     int    `json:"limit"`
}

// Search runs one Lucene query over [from, to) and returns at most limit
// events, in the order the service sent them. It retries rate limiting,
// 502/503/504 and connection failures (WithQueryAttempts), whether the
// service answers them with an HTTP status or with an error item in the
// stream. Results whose user_data is not an audit event are skipped and
// counted (Skipped).
func (c *CloudLogs) Search(ctx context.Context, query string, from, to time.Time, limit int) ([]Event, error) {
	evs, _, err := c.searchRetried(ctx, query, from, to, limit)
	return evs, err
}

// searchRetried is Search that also returns how many results the service
// sent, skipped ones included. It retries under the library's one retry
// policy (internal/retry), with retryableQuery as its classifier.
func (c *CloudLogs) searchRetried(ctx context.Context, query string, from, to time.Time, limit int) ([]Event, int, error) {
	var (
		evs     []Event
		results int
	)
	p := retry.Policy{MaxAttempts: c.attempts, MinWait: c.retryBase, MaxWait: 30 * time.Second,
		OnRetry: func(n int, err error, wait time.Duration) {
			c.log.DebugContext(ctx, "audit: retrying the Cloud Logs query", "attempt", n, "wait", wait, "err", err)
		}}
	err := retry.Do(ctx, p, classifyQuery, func(int) (err error) {
		evs, results, err = c.search(ctx, query, from, to, limit)
		return err
	})
	if err != nil {
		var ce *retry.CanceledError
		if errors.As(err, &ce) {
			return nil, 0, fmt.Errorf("audit: querying Cloud Logs: %w", ce)
		}
		return nil, 0, err
	}
	return evs, results, nil
}

// transportError marks a query that got no HTTP response. It unwraps to
// the transport's error (a *url.Error over a *net.OpError, say) unless
// that error's text held a secret.
type transportError struct {
	msg   string
	cause error
}

func (e *transportError) Error() string { return e.msg }

func (e *transportError) Unwrap() error { return e.cause }

func classifyQuery(err error) retry.Decision {
	if retryableQuery(err) {
		return retry.Retryable
	}
	return retry.Permanent
}

func retryableQuery(err error) bool {
	var qe *QueryError
	if errors.As(err, &qe) {
		switch qe.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var te *transportError
	return errors.As(err, &te)
}

func (c *CloudLogs) search(ctx context.Context, query string, from, to time.Time, limit int) ([]Event, int, error) {
	body, err := json.Marshal(queryRequest{Query: query, Metadata: queryMetadata{
		StartDate: from.UTC().Format(time.RFC3339Nano),
		EndDate:   to.UTC().Format(time.RFC3339Nano),
		Tier:      "frequent_search",
		Syntax:    "lucene",
		Limit:     limit,
	}})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: encoding the query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/v1/query", bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("audit: building the query request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if err := c.auth.Authenticate(req); err != nil {
		return nil, 0, fmt.Errorf("audit: getting an IAM token: %s", scrub(err.Error(), c.secrets))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("audit: querying Cloud Logs: %w", ctx.Err())
		}
		te := &transportError{msg: "audit: querying Cloud Logs: " + scrub(err.Error(), c.secrets)}
		if te.msg == "audit: querying Cloud Logs: "+err.Error() {
			te.cause = err
		}
		return nil, 0, te
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, 0, httpQueryError(resp.StatusCode, b, c.secrets)
	}
	var out []Event
	results := 0
	err = ReadEventStream(resp.Body, func(data []byte, line int) error {
		evs, n, err := c.decodeMessage(ctx, data, line)
		out = append(out, evs...)
		results += n
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("audit: reading Cloud Logs results: %w", ctx.Err())
		}
		return nil, 0, err
	}
	return out, results, nil
}

// apiError is the API error form of the query endpoint, both as an HTTP
// error body and as a stream item (logs-go-sdk QueryResponseStreamItem:
// errors[] of OpenapiApiErrorError {code, message, more_info}, trace,
// status_code).
type apiError struct {
	Errors []struct {
		Code     json.RawMessage `json:"code"`
		Message  string          `json:"message"`
		MoreInfo string          `json:"more_info"`
	} `json:"errors"`
	Trace      string `json:"trace"`
	StatusCode *int   `json:"status_code"`
}

func (a *apiError) isError() bool {
	return len(a.Errors) > 0 || (a.StatusCode != nil && *a.StatusCode >= 400)
}

// queryError builds the QueryError of an API error; status is used when
// the item names none.
func (a *apiError) queryError(status int, secrets []*secret.String) *QueryError {
	qe := &QueryError{StatusCode: status, Trace: scrub(a.Trace, secrets)}
	if a.StatusCode != nil && *a.StatusCode != 0 {
		qe.StatusCode = *a.StatusCode
	}
	if len(a.Errors) > 0 {
		qe.Code, qe.Message = codeString(a.Errors[0].Code), a.Errors[0].Message
		if more := len(a.Errors) - 1; more > 0 {
			qe.Message += fmt.Sprintf(" (and %d more errors)", more)
		}
	}
	qe.Code, qe.Message = scrub(qe.Code, secrets), scrub(qe.Message, secrets)
	return qe
}

// httpQueryError reads an error response: JSON in the API error form
// {"errors":[{"code","message"}],"trace","status_code"}, {"message"},
// {"error"}, or text.
func httpQueryError(status int, body []byte, secrets []*secret.String) *QueryError {
	var a apiError
	if json.Unmarshal(body, &a) == nil && len(a.Errors) > 0 {
		qe := a.queryError(status, secrets)
		qe.StatusCode = status // the HTTP status is what happened to this request
		return qe
	}
	qe := &QueryError{StatusCode: status}
	var j struct {
		Message string          `json:"message"`
		Error   string          `json:"error"`
		Code    json.RawMessage `json:"code"`
		Trace   string          `json:"trace"`
	}
	if json.Unmarshal(body, &j) == nil {
		qe.Code, qe.Message, qe.Trace = codeString(j.Code), j.Message+j.Error, j.Trace
	} else {
		qe.Message = strings.TrimSpace(string(body))
	}
	qe.Code, qe.Message, qe.Trace = scrub(qe.Code, secrets), scrub(qe.Message, secrets), scrub(qe.Trace, secrets)
	return qe
}

// queryMessage is one item of the query API's stream (logs-go-sdk
// QueryResponseStreamItem): query_id, result, warning, error, or the API
// error form (errors, trace, status_code).
type queryMessage struct {
	QueryID json.RawMessage `json:"query_id"`
	Result  *struct {
		Results []queryResult `json:"results"`
	} `json:"result"`
	Warning json.RawMessage `json:"warning"`
	Error   *struct {
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
	apiError
}

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type queryResult struct {
	Metadata []keyValue `json:"metadata"`
	Labels   []keyValue `json:"labels"`
	UserData string     `json:"user_data"`
}

// decodeMessage reads one stream item: the events of a result item and how
// many results it held (skipped ones included), or the QueryError of an
// error item. A result whose user_data is not an audit event is skipped,
// counted and logged; it does not stop the search.
func (c *CloudLogs) decodeMessage(ctx context.Context, data []byte, line int) ([]Event, int, error) {
	var m queryMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, 0, &StreamError{Line: line, Reason: "message is not JSON: " + err.Error()}
	}
	switch {
	case m.Error != nil:
		return nil, 0, &QueryError{StatusCode: http.StatusOK, InStream: true, Code: scrub(codeString(m.Error.Code), c.secrets),
			Message: scrub(m.Error.Message, c.secrets)}
	case m.isError():
		qe := m.queryError(http.StatusOK, c.secrets)
		qe.InStream = true
		return nil, 0, qe
	case len(m.Warning) > 0 && string(m.Warning) != "null":
		c.log.WarnContext(ctx, "audit: Cloud Logs query warning", "warning", scrub(string(m.Warning), c.secrets))
		return nil, 0, nil
	case m.Result != nil:
		out := make([]Event, 0, len(m.Result.Results))
		for i, r := range m.Result.Results {
			e, err := fromResult(&r)
			if err != nil {
				reason := scrub(err.Error(), c.secrets)
				c.skips.add(Skip{Source: ActivityTracker, Where: fmt.Sprintf("stream line %d, result %d", line, i), Reason: reason})
				c.log.WarnContext(ctx, "audit: skipping a Cloud Logs result that is not an audit event", "line", line, "result", i, "reason", reason)
				continue
			}
			out = append(out, e)
		}
		return out, len(m.Result.Results), nil
	}
	return nil, 0, nil // query_id, or an item this package does not know
}

// codeString renders an error code that may be a string, a number or an
// object.
func codeString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// cadfEvent is the part of an Activity Tracker event (../docs/CLOUD.md section
// 6.3) the Event model holds.
type cadfEvent struct {
	Action    string `json:"action"`
	Outcome   string `json:"outcome"`
	EventTime string `json:"eventTime"`
	Initiator struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"initiator"`
	Target struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		TypeURI string `json:"typeURI"`
	} `json:"target"`
	Reason struct {
		ReasonForFailure string `json:"reasonForFailure"`
	} `json:"reason"`
	CorrelationID string `json:"correlationId"`
	Message       string `json:"message"`
}

// eventTimeLayouts are the forms of eventTime: RFC 3339, and Activity
// Tracker's documented "2006-01-02T15:04:05.00+0000" without a colon in
// the offset.
var eventTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700", "2006-01-02T15:04:05-0700"}

func parseEventTime(s string) (time.Time, bool) {
	for _, l := range eventTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func fromResult(r *queryResult) (Event, error) {
	if r.UserData == "" {
		return Event{}, errors.New("empty user_data")
	}
	var ev cadfEvent
	if err := json.Unmarshal([]byte(r.UserData), &ev); err != nil {
		return Event{}, fmt.Errorf("user_data is not an event: %v", err)
	}
	if ev.Action == "" {
		return Event{}, errors.New("user_data has no action")
	}
	e := Event{
		Source:        ActivityTracker,
		Action:        ev.Action,
		Outcome:       ev.Outcome,
		TargetID:      ev.Target.ID,
		TargetType:    ev.Target.TypeURI,
		TargetName:    ev.Target.Name,
		Initiator:     ev.Initiator.Name,
		Message:       ev.Message,
		CorrelationID: ev.CorrelationID,
		FailureReason: ev.Reason.ReasonForFailure,
		Raw:           json.RawMessage(r.UserData),
	}
	if e.Initiator == "" {
		e.Initiator = ev.Initiator.ID
	}
	t, ok := parseEventTime(ev.EventTime)
	if !ok {
		for _, m := range r.Metadata {
			if m.Key == "timestamp" {
				t, ok = parseEventTime(m.Value)
			}
		}
	}
	if !ok {
		return Event{}, fmt.Errorf("no readable eventTime (%q) or timestamp", ev.EventTime)
	}
	e.Time = t
	return e, nil
}

// ReadEventStream reads a server-sent event stream (the WHATWG
// EventSource format) and calls fn with the data of each event and the line
// where it ended. Several data lines are joined with newlines; comment lines
// (":" keep-alives) and the event, id and retry fields are ignored; CRLF,
// LF and CR line ends are accepted; an event cut off by the end of the
// stream is still delivered. An error from fn stops the read.
func ReadEventStream(r io.Reader, fn func(data []byte, line int) error) error {
	sc := newLineScanner(r)
	var data []byte
	has := false
	dispatch := func(line int) error {
		if !has {
			return nil
		}
		d := data
		data, has = nil, false
		return fn(d, line)
	}
	for sc.scan() {
		line := sc.text()
		if len(line) == 0 {
			if err := dispatch(sc.line); err != nil {
				return err
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) != "data" {
			continue
		}
		if has {
			data = append(data, '\n')
		}
		data = append(data, value...)
		has = true
	}
	if err := sc.err; err != nil {
		return err
	}
	return dispatch(sc.line)
}

// lineScanner splits a stream on CRLF, LF or CR, with a line length limit.
type lineScanner struct {
	r       *bufferedReader
	buf     []byte
	line    int
	err     error
	afterCR bool
}

type bufferedReader struct {
	r   io.Reader
	b   []byte
	pos int
	n   int
	err error
}

func newLineScanner(r io.Reader) *lineScanner {
	return &lineScanner{r: &bufferedReader{r: r, b: make([]byte, 32<<10)}}
}

func (b *bufferedReader) readByte() (byte, error) {
	for b.pos == b.n {
		if b.err != nil {
			return 0, b.err
		}
		b.n, b.err = b.r.Read(b.b)
		b.pos = 0
	}
	c := b.b[b.pos]
	b.pos++
	return c, nil
}

func (s *lineScanner) scan() bool {
	s.buf = s.buf[:0]
	for {
		c, err := s.r.readByte()
		if err != nil {
			if err != io.EOF {
				s.err = fmt.Errorf("audit: reading the event stream: %w", err)
				return false
			}
			if len(s.buf) > 0 {
				s.line++
				return true
			}
			return false
		}
		if s.afterCR {
			s.afterCR = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\r':
			s.afterCR = true
			s.line++
			return true
		case '\n':
			s.line++
			return true
		}
		if len(s.buf) >= maxSSELine {
			s.err = &StreamError{Line: s.line + 1, Reason: fmt.Sprintf("line longer than %d bytes", maxSSELine)}
			return false
		}
		s.buf = append(s.buf, c)
	}
}

func (s *lineScanner) text() []byte { return s.buf }

// scrub replaces every secret in s.
func scrub(s string, secrets []*secret.String) string {
	for _, k := range secrets {
		if v := k.Reveal(); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, secret.Redacted)
		}
	}
	return s
}
