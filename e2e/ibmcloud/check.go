package ibmcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/durable"
	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/scrub"
	"github.com/e2eimage/e2eimage/kms"
)

// The calls Check makes, in this order. Each one only reads.
const (
	// CheckIAMToken exchanges the API key for an access token (POST
	// /identity/token): iam.Authenticator.AccessToken, after dropping any
	// cached token so that the exchange really happens.
	CheckIAMToken = "iam-token"
	// CheckRootKey reads the root key's metadata (GET
	// /api/v2/keys/<id>/metadata) and checks that it can wrap
	// (kms.CheckKey). Skipped without a root key CRN.
	CheckRootKey = "root-key"
	// CheckBucket checks the bucket (HEAD /<bucket> and GET
	// /<bucket>?location, cos.Client.CheckBucket): it exists, is Regional
	// and is in the expected region. Skipped without CheckOptions.Bucket.
	CheckBucket = "bucket"
	// CheckOSCodes lists the operating system codes VHD imports accept
	// (SoftLayer_Virtual_Guest_Block_Device_Template_Group::
	// getVhdImportSoftwareDescriptions, a GET).
	CheckOSCodes = "os-codes"
	// CheckEventLog reads one page of the classic event log
	// (SoftLayer_Event_Log::getAllObjects, a GET, with the date filter
	// package audit builds).
	CheckEventLog = "event-log"
	// CheckCloudLogs queries IBM Cloud Logs for one event (POST
	// /v1/query, which reads). Skipped without Endpoints.ActivityTracker.
	CheckCloudLogs = "cloud-logs"
)

// CheckStatus is how a check call ended.
type CheckStatus string

// Check call statuses.
const (
	CheckOK      CheckStatus = "ok"
	CheckFailed  CheckStatus = "failed"
	CheckSkipped CheckStatus = "skipped"
)

// ErrCheckFailed is matched by Check's error when at least one call failed;
// the error also wraps each call's error.
var ErrCheckFailed = errors.New("ibmcloud: the cloud check failed")

// ErrNotReadOnly is matched by the error a Recorder returns for a request
// that could change something, which it does not send.
var ErrNotReadOnly = errors.New("ibmcloud: request refused: it is not read-only")

// CheckOptions says what Check looks at.
type CheckOptions struct {
	// Bucket is the COS bucket to check; "" skips CheckBucket.
	Bucket string
	// Region is where the bucket must be. Default: the root key's region,
	// else the COS client's.
	Region string
	// Since is how far back the event log and Cloud Logs calls look.
	// Default 24 hours.
	Since time.Duration
	// EventLogLimit is the size of the one event log page read. Default 5,
	// at most audit.DefaultEventLogPageSize.
	EventLogLimit int
	// Clock gives the end of the event log and Cloud Logs windows
	// (default time.Now); a simulator with a fast clock wants its own.
	Clock func() time.Time
	// Recorder, when it is the Transport of the Config.HTTPClient the
	// clients were made with, gives each call's responses, scrubbed, to the
	// report (for CheckReport.WriteFixtures). Check fails if it saw none of
	// the check's requests.
	Recorder *Recorder
}

// CheckCall is one call of a check.
type CheckCall struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	// Detail says what was found, or why the call was skipped.
	Detail string `json:"detail,omitempty"`
	// Error and Fix are set when the call failed.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
	// Err is the error itself, for errors.Is and errors.As.
	Err error `json:"-"`
	// Duration is how long the call took (zero when skipped).
	Duration time.Duration `json:"duration_ns"`
	// Responses are the call's HTTP responses, scrubbed, when
	// CheckOptions.Recorder was given.
	Responses []CheckResponse `json:"responses,omitempty"`
}

// CheckResponse is one HTTP response seen during a check call, scrubbed by
// package scrub's rules: account ids, user ids and names, e-mail
// addresses, IP addresses, tokens, API keys and key material are replaced
// by placeholders of the same shape.
type CheckResponse struct {
	Method      string `json:"method"`
	Host        string `json:"host"`
	Path        string `json:"path"`
	Query       string `json:"query,omitempty"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
	// Header holds the response's headers (values joined by ", "),
	// scrubbed, without those that carry credentials or cookies
	// (Set-Cookie, Authorization, WWW-Authenticate and the like).
	Header map[string]string `json:"header,omitempty"`
	// Body is the scrubbed body; nil when Omitted says why it was not kept.
	Body    []byte `json:"-"`
	Omitted string `json:"omitted,omitempty"`
}

// CheckReport is what Check found.
type CheckReport struct {
	Started time.Time   `json:"started"`
	Calls   []CheckCall `json:"calls"`
}

// Failed returns the calls that failed.
func (r *CheckReport) Failed() []CheckCall {
	var out []CheckCall
	for _, c := range r.Calls {
		if c.Status == CheckFailed {
			out = append(out, c)
		}
	}
	return out
}

// String lists the calls, one a line, with their status, duration and
// detail or error.
func (r *CheckReport) String() string {
	var b strings.Builder
	for _, c := range r.Calls {
		d := "-"
		if c.Status != CheckSkipped {
			d = c.Duration.Round(time.Millisecond).String()
			if c.Duration < 10*time.Millisecond {
				d = c.Duration.Round(10 * time.Microsecond).String()
			}
		}
		text := c.Detail
		if c.Status == CheckFailed {
			text = c.Error
		}
		fmt.Fprintf(&b, "%-11s %-8s %8s  %s\n", c.Name, c.Status, d, text)
		if c.Fix != "" && c.Status == CheckFailed {
			fmt.Fprintf(&b, "%-30s fix: %s\n", "", c.Fix)
		}
		if n := len(c.Responses); n > 0 {
			fmt.Fprintf(&b, "%-30s %d response(s) recorded\n", "", n)
		}
	}
	return b.String()
}

// Check makes read-only calls against the services the clients reach, one
// after another, and reports each (see the Check* call names): it proves
// that the API key, the root key, the bucket, the classic credentials and
// the audit sources work as this package expects, without creating,
// changing or deleting anything. A failed call does not stop the others.
// The returned error matches ErrCheckFailed when a call failed, and wraps
// every failed call's error; the report is returned in every case.
//
// Check sends no request other than those listed: GET and HEAD, and two
// POSTs that change nothing (IAM's token grant and a Cloud Logs query).
// With CheckOptions.Recorder in the clients' transport, anything else is
// refused before it is sent.
func (cl *Clients) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	if cl == nil || cl.Auth == nil || cl.COS == nil || cl.Classic == nil {
		return nil, fmt.Errorf("%w: Check needs clients made by Connect", e2e.ErrPlan)
	}
	k := newChecker(cl, opts)
	k.run(ctx, CheckIAMToken, "", k.iamToken)
	k.run(ctx, CheckRootKey, skipIf(cl.Keys == nil, "no root key CRN was given"), func(ctx context.Context, c *CheckCall) error {
		detail, fix, err := kms.CheckKey(ctx, cl.Keys)
		c.Detail, c.Fix = detail, fix
		return err
	})
	k.run(ctx, CheckBucket, skipIf(opts.Bucket == "", "no bucket was given"), k.bucket)
	k.run(ctx, CheckOSCodes, "", k.osCodes)
	k.run(ctx, CheckEventLog, "", k.eventLog)
	k.run(ctx, CheckCloudLogs, skipIf(cl.cloudLogs == nil, "no Cloud Logs instance URL was given"), k.cloudLogs)
	return k.result()
}

func skipIf(cond bool, why string) string {
	if cond {
		return why
	}
	return ""
}

// checker is one Check: its settings, the report and the failures.
type checker struct {
	cl     *Clients
	opts   CheckOptions
	since  time.Duration
	limit  int
	now    func() time.Time
	region string
	rep    *CheckReport
	scr    *scrub.Scrubber
	errs   []error
}

func newChecker(cl *Clients, opts CheckOptions) *checker {
	k := &checker{cl: cl, opts: opts, since: opts.Since, limit: opts.EventLogLimit, now: opts.Clock, region: opts.Region,
		rep: &CheckReport{Started: time.Now()}, scr: scrub.New()}
	if k.since <= 0 {
		k.since = 24 * time.Hour
	}
	if k.limit <= 0 {
		k.limit = 5
	}
	k.limit = min(k.limit, audit.DefaultEventLogPageSize)
	if k.now == nil {
		k.now = time.Now
	}
	switch {
	case k.region != "":
	case cl.Keys != nil:
		k.region = cl.Keys.CRN().Region
	default:
		k.region = cl.COS.Region()
	}
	return k
}

// run makes one call (or reports it skipped) and records it.
func (k *checker) run(ctx context.Context, name, skip string, fn func(ctx context.Context, c *CheckCall) error) {
	c := CheckCall{Name: name}
	if skip != "" {
		c.Status, c.Detail = CheckSkipped, skip
		k.rep.Calls = append(k.rep.Calls, c)
		return
	}
	rec := k.opts.Recorder
	cctx := context.WithValue(ctx, checkKey{}, &checkTag{name: name, capture: rec != nil})
	start := time.Now()
	err := fn(cctx, &c)
	c.Duration = time.Since(start)
	if rec != nil {
		caps, refused := rec.take(name)
		if refused > 0 && !errors.Is(err, ErrNotReadOnly) {
			err = errors.Join(err, fmt.Errorf("%w: %d request(s) refused", ErrNotReadOnly, refused))
		}
		c.Responses = scrubResponses(k.scr, caps)
	}
	if err != nil {
		c.Status, c.Err, c.Error = CheckFailed, err, err.Error()
		k.errs = append(k.errs, fmt.Errorf("%s: %w", name, err))
	} else {
		c.Status = CheckOK
	}
	k.rep.Calls = append(k.rep.Calls, c)
}

func (k *checker) iamToken(ctx context.Context, c *CheckCall) error {
	k.cl.Auth.InvalidateToken()
	tok, err := k.cl.Auth.AccessToken(ctx)
	if err != nil {
		return err
	}
	k.scr.AddSecret(tok.Reveal())
	c.Detail = "IAM issued an access token (" + k.cl.Auth.URL() + ")"
	return nil
}

func (k *checker) bucket(ctx context.Context, c *CheckCall) error {
	info, err := k.cl.COS.CheckBucket(ctx, k.opts.Bucket, k.region)
	if err != nil {
		c.Fix = "E2E imports need a Regional bucket in the root key's region (" + k.region + ") that the API key can read"
		return err
	}
	enc := "not encrypted with a root key"
	if info.KeyProtect {
		enc = "encrypted with root key " + info.RootKeyCRN
	}
	c.Detail = fmt.Sprintf("bucket %s is %s (%s), %s", info.Name, info.Location.Resiliency, info.Location.Constraint, enc)
	return nil
}

func (k *checker) osCodes(ctx context.Context, c *CheckCall) error {
	codes, err := k.cl.Classic.OSReferenceCodes(ctx)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		return errors.New("classic: getVhdImportSoftwareDescriptions lists no operating system codes")
	}
	names := make([]string, 0, len(codes))
	for code := range codes {
		names = append(names, code)
	}
	slices.Sort(names)
	c.Detail = fmt.Sprintf("%d operating system codes for VHD imports (%s)", len(codes), strings.Join(names[:min(3, len(names))], ", "))
	if len(names) > 3 {
		c.Detail = strings.TrimSuffix(c.Detail, ")") + ", ...)"
	}
	return nil
}

func (k *checker) eventLog(ctx context.Context, c *CheckCall) error {
	to := k.now()
	from := to.Add(-k.since)
	el := audit.NewEventLog(k.cl.Classic, audit.WithPageSize(k.limit))
	filters := el.Filters(audit.Query{}, from, to)
	page, err := k.cl.Classic.EventLogPage(ctx, filters[0], 0, k.limit)
	if err != nil {
		return err
	}
	for i, r := range page {
		if r.EventName == nil || r.EventCreateDate == nil {
			return fmt.Errorf("classic: event log record %d has no eventName or eventCreateDate: package audit could not read it", i)
		}
	}
	c.Detail = fmt.Sprintf("%d event log record(s) in the last %s (one page of at most %d)", len(page), shortDuration(k.since), k.limit)
	return nil
}

func (k *checker) cloudLogs(ctx context.Context, c *CheckCall) error {
	to := k.now()
	evs, err := k.cl.cloudLogs.Search(ctx, "*", to.Add(-k.since), to, 1)
	if err != nil {
		return err
	}
	c.Detail = fmt.Sprintf("%d event(s) in the last %s (query limited to 1)", len(evs), shortDuration(k.since))
	if len(evs) > 0 {
		c.Detail += ": " + evs[0].Action
	}
	return nil
}

// result is the report, and an error naming the failed calls.
func (k *checker) result() (*CheckReport, error) {
	if k.opts.Recorder != nil && !k.opts.Recorder.sawCall() {
		return k.rep, fmt.Errorf("%w: CheckOptions.Recorder saw none of the check's requests: make it the Transport of Config.HTTPClient", e2e.ErrPlan)
	}
	if len(k.errs) == 0 {
		return k.rep, nil
	}
	names := make([]string, 0, len(k.errs))
	for _, c := range k.rep.Failed() {
		names = append(names, c.Name)
	}
	head := fmt.Errorf("%w: %d of %d calls failed (%s)", ErrCheckFailed, len(k.errs), len(k.rep.Calls), strings.Join(names, ", "))
	return k.rep, errors.Join(append([]error{head}, k.errs...)...)
}

// shortDuration prints 24h for 24h0m0s and 1h30m for 1h30m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// scrubResponses scrubs what the Recorder captured for one call.
func scrubResponses(scr *scrub.Scrubber, caps []captured) []CheckResponse {
	out := make([]CheckResponse, 0, len(caps))
	for _, c := range caps {
		r := CheckResponse{
			Method: c.method, Host: scr.Text(c.host), Path: scr.Text(c.path), Query: scr.Text(c.query),
			Status: c.status, ContentType: c.contentType, Omitted: c.omitted,
		}
		for k, v := range c.header {
			if droppedHeaders[http.CanonicalHeaderKey(k)] {
				continue
			}
			if r.Header == nil {
				r.Header = map[string]string{}
			}
			r.Header[k] = scr.Text(strings.Join(v, ", "))
		}
		if r.Omitted == "" {
			b, err := scr.Body(c.contentType, c.body)
			if err != nil {
				r.Omitted = "not text"
			} else {
				r.Body = b
			}
		}
		clear(c.body)
		out = append(out, r)
	}
	return out
}

// droppedHeaders are response headers never kept in a CheckResponse.
var droppedHeaders = map[string]bool{
	"Set-Cookie": true, "Set-Cookie2": true, "Authorization": true, "Proxy-Authorization": true,
	"Www-Authenticate": true, "Proxy-Authenticate": true, "X-Amz-Security-Token": true, "Cookie": true,
}

// fixture is the file WriteFixtures writes for one response.
type fixture struct {
	Call        string            `json:"call"`
	Recorded    string            `json:"recorded"`
	Scrubbed    string            `json:"scrubbed"`
	Method      string            `json:"method"`
	Host        string            `json:"host"`
	Path        string            `json:"path"`
	Query       string            `json:"query,omitempty"`
	Status      int               `json:"status"`
	ContentType string            `json:"content_type,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	Body        json.RawMessage   `json:"body,omitempty"`
	BodyText    *string           `json:"body_text,omitempty"`
	Omitted     string            `json:"omitted,omitempty"`
}

// WriteFixtures writes each recorded response as a JSON file in dir
// (created if missing), named <call>-<n>.json, and returns their paths. The
// file holds the request line, the status, the content type, the headers
// and the scrubbed body: as JSON under "body" when it is JSON, else as a string
// under "body_text". Files are mode 0600 and never replaced: if one of
// the names exists, nothing is written and the error wraps fs.ErrExist.
// Read the files before publishing them: scrubbing knows the fields this
// SDK has met, not every field IBM may add.
func (r *CheckReport) WriteFixtures(dir string) ([]string, error) {
	type file struct {
		path string
		data []byte
	}
	var files []file
	for _, c := range r.Calls {
		for i, resp := range c.Responses {
			f := fixture{
				Call: c.Name, Recorded: r.Started.UTC().Format(time.RFC3339), Scrubbed: "account ids, users, addresses, tokens and key material replaced",
				Method: resp.Method, Host: resp.Host, Path: resp.Path, Query: resp.Query, Status: resp.Status,
				ContentType: resp.ContentType, Header: resp.Header, Omitted: resp.Omitted,
			}
			if resp.Body != nil {
				if json.Valid(resp.Body) && len(bytes.TrimSpace(resp.Body)) > 0 {
					f.Body = resp.Body
				} else {
					s := string(resp.Body)
					f.BodyText = &s
				}
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // keep & < > as the services wrote them
			enc.SetIndent("", "  ")
			if err := enc.Encode(f); err != nil {
				return nil, fmt.Errorf("ibmcloud: encoding fixture %s-%d: %w", c.Name, i+1, err)
			}
			files = append(files, file{filepath.Join(dir, fmt.Sprintf("%s-%d.json", c.Name, i+1)), b.Bytes()})
		}
	}
	if len(files) == 0 {
		return nil, errors.New("ibmcloud: the check recorded no responses (check with CheckOptions.Recorder)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ibmcloud: fixtures directory: %w", err)
	}
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return nil, fmt.Errorf("ibmcloud: fixture %s: %w", f.path, fs.ErrExist)
		}
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		if err := durable.Create(f.path, f.data); err != nil {
			return paths, fmt.Errorf("ibmcloud: writing fixture: %w", err)
		}
		paths = append(paths, f.path)
	}
	return paths, nil
}

// checkKey is the context key under which Check names its current call.
type checkKey struct{}

type checkTag struct {
	name    string
	capture bool
}

// maxCapture bounds the body a Recorder keeps of one response.
const maxCapture = 4 << 20

// RecordedRequest is a request a Recorder saw. It holds no header and no
// body.
type RecordedRequest struct {
	// Call is the Check call the request belongs to ("" outside Check).
	Call   string
	Method string
	Host   string
	Path   string
	Query  string
	// SoftLayerMethod is Service::method for a classic API request, ""
	// for other services.
	SoftLayerMethod string
	// Status is the response's, 0 when there was none.
	Status int
	// Refused is set when the Recorder did not send the request.
	Refused bool
}

// captured is a response kept for Check, raw until scrubResponses.
type captured struct {
	method, host, path, query string
	status                    int
	contentType               string
	header                    http.Header
	body                      []byte
	omitted                   string
}

// Recorder is an http.RoundTripper for read-only sessions such as Check.
// Give it as the Transport of Config.HTTPClient. It sends only requests
// that read:
//
//   - GET and HEAD, except on the classic API, where only GET of a method
//     whose name starts with "get" passes (softlayer-go sends a method
//     without parameters, such as a power-off, as a GET too);
//   - POST to a path ending in /identity/token: IAM's token grant, which
//     issues a token and changes nothing in the account;
//   - POST to a path ending in /v1/query: an IBM Cloud Logs query.
//
// Any other request is not sent: RoundTrip returns an error matching
// ErrNotReadOnly. The Recorder remembers every request (Requests), and
// keeps the responses to Check's calls, up to 4 MiB each, until Check
// takes them. It is safe for concurrent use.
type Recorder struct {
	base http.RoundTripper

	mu       sync.Mutex
	requests []RecordedRequest
	bodies   map[string][]captured
}

// NewRecorder returns a Recorder sending through base (nil: a transport
// of its own that verifies TLS certificates). A base that skips TLS
// verification is refused.
func NewRecorder(base http.RoundTripper) (*Recorder, error) {
	if base == nil {
		base = endpoint.NewTransport()
	}
	if err := endpoint.CheckTransport(base); err != nil {
		return nil, fmt.Errorf("ibmcloud: recorder: %w", err)
	}
	return &Recorder{base: base, bodies: map[string][]captured{}}, nil
}

// Requests returns the requests seen so far, in order.
func (r *Recorder) Requests() []RecordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it can.
func (r *Recorder) CloseIdleConnections() {
	if ci, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := RecordedRequest{
		Method: req.Method, Host: req.URL.Host, Path: req.URL.Path, Query: req.URL.RawQuery,
		SoftLayerMethod: softLayerMethod(req.Method, req.URL.Path),
	}
	tag, _ := req.Context().Value(checkKey{}).(*checkTag)
	if tag != nil {
		rec.Call = tag.name
	}
	if err := readOnly(req.Method, req.URL.Path, rec.SoftLayerMethod); err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, also on error
		}
		rec.Refused = true
		r.add(rec, nil)
		return nil, err
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		r.add(rec, nil)
		return nil, err
	}
	rec.Status = resp.StatusCode
	if tag == nil || !tag.capture {
		r.add(rec, nil)
		return resp, nil
	}
	c := &captured{method: rec.Method, host: rec.Host, path: rec.Path, query: rec.Query, status: resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"), header: resp.Header.Clone()}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		c.omitted = "content encoding " + ce
		r.add(rec, c)
		return resp, nil
	}
	// Read the body now (up to the bound) and hand the client the same
	// bytes, followed by the rest and by any read error.
	buf, rerr := io.ReadAll(io.LimitReader(resp.Body, maxCapture+1))
	rest := io.Reader(resp.Body)
	switch {
	case rerr != nil:
		rest = errReader{rerr}
		c.omitted = "the body could not be read in full"
	case len(buf) > maxCapture:
		c.omitted = "larger than 4 MiB"
	default:
		c.body = slices.Clone(buf)
	}
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), rest), closer: resp.Body}
	r.add(rec, c)
	return resp, nil
}

func (r *Recorder) add(rec RecordedRequest, c *captured) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, rec)
	if c != nil {
		r.bodies[rec.Call] = append(r.bodies[rec.Call], *c)
	}
}

// take returns and forgets the responses kept for call, and counts the
// requests of call that were refused.
func (r *Recorder) take(call string) (caps []captured, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	caps = r.bodies[call]
	delete(r.bodies, call)
	for _, q := range r.requests {
		if q.Call == call && q.Refused {
			refused++
		}
	}
	return caps, refused
}

// sawCall reports whether any request of a Check call went through r.
func (r *Recorder) sawCall() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.requests {
		if q.Call != "" {
			return true
		}
	}
	return false
}

type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// softLayerMethod names the classic API method of a REST request
// (<endpoint>/<Service>[/<id>][/<method>].json, ../../docs/CLOUD.md §5.5):
// "Service::method", or "" when the path names no SoftLayer_ service. A
// path without a method part is getObject, createObject, editObject or
// deleteObject by the HTTP method, as softlayer-go sends them.
func softLayerMethod(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	svc := -1
	for i, s := range segs {
		if strings.HasPrefix(s, "SoftLayer_") {
			svc = i
			break
		}
	}
	if svc < 0 {
		return ""
	}
	trim := func(s string) string { return strings.TrimSuffix(strings.TrimSuffix(s, ".json"), ".xml") }
	service := trim(segs[svc])
	last := trim(segs[len(segs)-1])
	if len(segs)-1 > svc && !isDigits(last) {
		return service + "::" + last
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return service + "::getObject"
	case http.MethodPost:
		return service + "::createObject"
	case http.MethodPut:
		return service + "::editObject"
	case http.MethodDelete:
		return service + "::deleteObject"
	}
	return service + "::" + strings.ToLower(method)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// readOnly is the Recorder's rule (see Recorder).
func readOnly(method, path, slMethod string) error {
	if slMethod != "" {
		_, name, _ := strings.Cut(slMethod, "::")
		if method == http.MethodGet && strings.HasPrefix(name, "get") {
			return nil
		}
		return fmt.Errorf("%w: %s %s (classic method %s)", ErrNotReadOnly, method, path, slMethod)
	}
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return nil
	case method == http.MethodPost && strings.HasSuffix(path, "/identity/token"):
		return nil
	case method == http.MethodPost && strings.HasSuffix(path, "/v1/query"):
		return nil
	}
	return fmt.Errorf("%w: %s %s", ErrNotReadOnly, method, path)
}
