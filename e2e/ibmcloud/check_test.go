package ibmcloud_test

// Clients.Check against the local simulator: every call it makes reads,
// seen three ways (a transport below the clients, the Recorder, and the
// simulator's own request counters), and the responses it records come
// out scrubbed.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/secret"
)

// wireReq is a request as it left the process.
type wireReq struct {
	method, host, path, query string
	// slMethod is Service::method for a classic API request.
	slMethod string
}

// wireLog is an http.RoundTripper that notes every request it carries.
type wireLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []wireReq
}

func (w *wireLog) RoundTrip(req *http.Request) (*http.Response, error) {
	r := wireReq{method: req.Method, host: req.URL.Host, path: req.URL.Path, query: req.URL.RawQuery}
	// Classic REST paths are .../<Service>[/<id>][/<method>].json
	// (../../docs/CLOUD.md §5.5).
	if i := strings.Index(r.path, "/SoftLayer_"); i >= 0 {
		segs := strings.Split(strings.TrimSuffix(r.path[i+1:], ".json"), "/")
		name := ""
		if last := segs[len(segs)-1]; len(segs) > 1 && strings.Trim(last, "0123456789") != "" {
			name = last
		} else {
			name = map[string]string{"GET": "getObject", "POST": "createObject", "PUT": "editObject", "DELETE": "deleteObject"}[req.Method]
		}
		r.slMethod = segs[0] + "::" + name
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, r)
	w.mu.Unlock()
	return w.base.RoundTrip(req)
}

// CloseIdleConnections closes the base transport's idle connections, so
// that Clients.Close reaches them.
func (w *wireLog) CloseIdleConnections() {
	if ci, ok := w.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (w *wireLog) requests() []wireReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reqs)
}

// writes returns the requests that are not reads. Reads are GET and HEAD,
// and, on the classic API, only GET of a get* method. Two POSTs read too:
// IAM's token grant (POST /identity/token) and a Cloud Logs query (POST
// /v1/query). service names the service a host belongs to.
func writes(reqs []wireReq, service func(host string) string) []string {
	var out []string
	for _, r := range reqs {
		svc := service(r.host)
		_, slName, _ := strings.Cut(r.slMethod, "::")
		switch {
		case r.slMethod != "":
			if r.method == http.MethodGet && strings.HasPrefix(slName, "get") {
				continue
			}
		case r.method == http.MethodGet || r.method == http.MethodHead:
			continue
		case r.method == http.MethodPost && svc == "iam" && strings.HasSuffix(r.path, "/identity/token"):
			continue
		case r.method == http.MethodPost && svc == "logs" && strings.HasSuffix(r.path, "/v1/query"):
			continue
		}
		out = append(out, r.method+" "+svc+" "+r.path+" "+r.slMethod)
	}
	return out
}

// simService names the simulator service behind a host.
func simService(urls cloudsim.URLs) func(string) string {
	byHost := map[string]string{}
	for svc, raw := range map[string]string{
		"iam": urls.IAM, "kms": urls.KMS, "s3": urls.S3, "softlayer": urls.SoftLayer, "logs": urls.ActivityTracker,
	} {
		u, err := url.Parse(raw)
		if err == nil {
			byHost[u.Host] = svc
		}
	}
	return func(host string) string {
		if s, ok := byHost[host]; ok {
			return s
		}
		return "unknown(" + host + ")"
	}
}

// checkSim is a simulator and the Cloud that reaches it.
type checkSim struct {
	sim   *cloudsim.Sim
	cloud ibmcloud.Config
}

func newCheckSim(t *testing.T) *checkSim {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 7})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	b, err := json.Marshal(sim.URLs)
	require.NoError(t, err)
	var ep ibmcloud.Endpoints
	require.NoError(t, json.Unmarshal(b, &ep))
	a := sim.Account
	return &checkSim{sim: sim, cloud: ibmcloud.Config{
		APIKey: secret.NewString(a.APIKey), RootKeyCRN: a.RootKeyCRN, COSInstance: a.COSInstanceCRN, Endpoints: ep,
	}}
}

// connect makes clients whose requests all go through rt.
func (s *checkSim) connect(t *testing.T, rt http.RoundTripper) *ibmcloud.Clients {
	t.Helper()
	c := s.cloud
	c.HTTPClient = &http.Client{Transport: rt}
	cl, err := ibmcloud.Connect(c)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// countWrites counts, on the simulator's side, the requests of each
// method to each service, from now on.
func countWrites(s *cloudsim.Sim) func() map[string]int {
	ids := map[string]int{}
	for _, svc := range []string{cloudsim.ServiceIAM, cloudsim.ServiceIAMIdentity, cloudsim.ServiceIAMPolicy, cloudsim.ServiceKMS,
		cloudsim.ServiceHPCS, cloudsim.ServiceS3, cloudsim.ServiceSoftLayer, cloudsim.ServiceActivityTracker} {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			ids[svc+" "+m] = s.Faults.Add(faults.Rule{Service: svc, Method: m, Kind: faults.Latency})
		}
	}
	ids["iam POST /identity/token"] = s.Faults.Add(faults.Rule{Service: cloudsim.ServiceIAM, Method: "POST", PathContains: "/identity/token", Kind: faults.Latency})
	ids["activity_tracker POST /v1/query"] = s.Faults.Add(faults.Rule{Service: cloudsim.ServiceActivityTracker, Method: "POST", PathContains: "/v1/query", Kind: faults.Latency})
	return func() map[string]int {
		out := map[string]int{}
		for k, id := range ids {
			if n := s.Faults.Hits(id); n > 0 {
				out[k] = n
			}
		}
		return out
	}
}

// wrapOnce wraps a DEK: a Key Protect event for Cloud Logs to find.
func wrapOnce(ctx context.Context, t *testing.T, cl *ibmcloud.Clients) {
	t.Helper()
	dek, err := secret.NewDEK(make([]byte, secret.DEK512))
	require.NoError(t, err)
	defer dek.Zero()
	_, err = cl.Keys.Wrap(ctx, dek)
	require.NoError(t, err)
}

func checkCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestCheckOnlyReads(t *testing.T) {
	s := newCheckSim(t)
	ctx := checkCtx(t)

	// Give the audit sources something to find: a wrap (a request of this
	// test, before the check) leaves a Key Protect event in Cloud Logs.
	setup := s.connect(t, http.DefaultTransport)
	wrapOnce(ctx, t, setup)

	// The check, with no Recorder to refuse anything: what it sends is
	// what it would send to IBM Cloud.
	wire := &wireLog{base: http.DefaultTransport}
	cl := s.connect(t, wire)
	server := countWrites(s.sim)
	rep, err := cl.Check(ctx, ibmcloud.CheckOptions{Bucket: s.sim.Account.Bucket, Clock: s.sim.Clock.Now})
	require.NoError(t, err, "%v", rep)

	for _, c := range rep.Calls {
		require.Equal(t, ibmcloud.CheckOK, c.Status, "%s: %s", c.Name, c.Error)
		require.NotEmpty(t, c.Detail, c.Name)
		require.Positive(t, c.Duration, c.Name)
		require.Empty(t, c.Responses, "no Recorder, no responses")
	}
	names := make([]string, 0, len(rep.Calls))
	for _, c := range rep.Calls {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{ibmcloud.CheckIAMToken, ibmcloud.CheckRootKey, ibmcloud.CheckBucket, ibmcloud.CheckOSCodes, ibmcloud.CheckEventLog, ibmcloud.CheckCloudLogs}, names)
	require.Contains(t, rep.Calls[5].Detail, "1 event(s)", "the wrap is found")

	// 1. The requests as they left the process.
	reqs := wire.requests()
	require.Empty(t, writes(reqs, simService(s.sim.URLs)), "the check sent requests that are not reads")
	seen := map[string]bool{}
	for _, r := range reqs {
		svc := simService(s.sim.URLs)(r.host)
		key := r.method + " " + svc
		switch {
		case r.slMethod != "":
			key = r.method + " " + r.slMethod
		case svc == "s3" && (r.query == "location" || r.query == "location="):
			key += " ?location"
		case svc == "kms" && strings.HasSuffix(r.path, "/metadata"):
			key += " metadata"
		}
		seen[key] = true
	}
	for _, want := range []string{
		"POST iam", "GET kms metadata", "HEAD s3", "GET s3 ?location",
		"GET SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions",
		"GET SoftLayer_Event_Log::getAllObjects", "POST logs",
	} {
		require.True(t, seen[want], "the check did not send %q; it sent %v", want, seen)
	}

	// 2. The same requests as the simulator received them.
	got := server()
	for k, n := range got {
		method := strings.Fields(k)[1]
		switch method {
		case "GET", "HEAD":
		case "POST":
			require.Contains(t, []string{"iam POST", "activity_tracker POST", "iam POST /identity/token", "activity_tracker POST /v1/query"}, k,
				"the simulator received a POST it must not have: %v", got)
		default:
			t.Fatalf("the simulator received %d %s: %v", n, k, got)
		}
	}
	require.Equal(t, got["iam POST"], got["iam POST /identity/token"], "every IAM POST is a token grant: %v", got)
	require.Equal(t, got["activity_tracker POST"], got["activity_tracker POST /v1/query"], "every Cloud Logs POST is a query: %v", got)
	require.Positive(t, got["iam POST /identity/token"])
	require.Positive(t, got["softlayer GET"])
	require.Positive(t, got["s3 HEAD"]+got["s3 GET"])
}

func TestCheckWithRecorderWritesScrubbedFixtures(t *testing.T) {
	s := newCheckSim(t)
	ctx := checkCtx(t)
	setup := s.connect(t, http.DefaultTransport)
	wrapOnce(ctx, t, setup)

	// Every answer also carries a cookie and a header naming a person.
	wire := &wireLog{base: headerAdder{http.DefaultTransport}}
	rec, err := ibmcloud.NewRecorder(wire)
	require.NoError(t, err)
	cl := s.connect(t, rec)
	rep, err := cl.Check(ctx, ibmcloud.CheckOptions{Bucket: s.sim.Account.Bucket, Recorder: rec, Clock: s.sim.Clock.Now})
	require.NoError(t, err, "%v", rep)

	// The Recorder saw what the wire carried, refused nothing, and named
	// each request's call.
	recorded := rec.Requests()
	require.Len(t, recorded, len(wire.requests()))
	for i, r := range recorded {
		require.False(t, r.Refused)
		require.NotEmpty(t, r.Call, "request %d (%s %s) has no call", i, r.Method, r.Path)
		require.Equal(t, wire.requests()[i].slMethod, r.SoftLayerMethod)
		require.Positive(t, r.Status)
	}
	for _, c := range rep.Calls {
		require.NotEmpty(t, c.Responses, "%s recorded no response", c.Name)
		for _, resp := range c.Responses {
			require.Empty(t, resp.Omitted, c.Name)
		}
	}

	dir := filepath.Join(t.TempDir(), "fixtures")
	paths, err := rep.WriteFixtures(dir)
	require.NoError(t, err)
	n := 0
	for _, c := range rep.Calls {
		n += len(c.Responses)
	}
	require.Len(t, paths, n)

	a := s.sim.Account
	secrets := []string{a.AccountID, a.APIKey, a.S3SecretKey, a.S3AccessKey}
	files := map[string]map[string]any{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, sec := range secrets {
			require.NotContains(t, string(b), sec, "%s holds a secret or the account id", p)
		}
		require.NotContains(t, string(b), "eyJhbGciOiJSUzI1NiI", "%s holds a signed token", p)
		require.NotContains(t, string(b), "0123456789abcdef", "%s holds a cookie", p)
		require.NotContains(t, string(b), "jane.doe", p)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
		var f map[string]any
		require.NoError(t, json.Unmarshal(b, &f), p)
		files[filepath.Base(p)] = f
	}
	for name, f := range files {
		h, _ := f["header"].(map[string]any)
		require.NotContains(t, h, "Set-Cookie", name)
		require.Equal(t, "user1@example.com", h["X-Owner"], "%s: headers are kept, scrubbed", name)
	}
	tok := files["iam-token-1.json"]
	require.Equal(t, "POST", tok["method"])
	require.Equal(t, "/identity/token", tok["path"])
	body := tok["body"].(map[string]any)
	require.NotEmpty(t, body["access_token"])
	require.EqualValues(t, 3600, body["expires_in"])

	key := files["root-key-1.json"]
	require.Contains(t, key["path"], "/metadata")
	kb, err := json.Marshal(key["body"])
	require.NoError(t, err)
	require.Contains(t, string(kb), "a/00000000000000000000000000000001:"+a.KMSInstanceID, "the key CRN keeps its shape")

	loc := 0
	for name, f := range files {
		if q := f["query"]; strings.HasPrefix(name, "bucket-") && (q == "location" || q == "location=") {
			loc++
			require.Contains(t, *strPtr(f["body_text"]), "us-south-standard")
		}
	}
	require.Equal(t, 1, loc, "one GET ?location")

	el := files["event-log-1.json"]
	require.Contains(t, el["header"], "Softlayer-Total-Items", "the paging header is part of the contract")

	logs := files["cloud-logs-1.json"]
	require.Equal(t, "/v1/query", logs["path"])
	require.Contains(t, logs["body_text"], "kms.secrets.wrap")

	// Fixtures are never replaced.
	_, err = rep.WriteFixtures(dir)
	require.ErrorIs(t, err, fs.ErrExist)
}

// headerAdder adds a cookie and a header with an e-mail address to every
// response.
type headerAdder struct{ base http.RoundTripper }

func (h headerAdder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(req)
	if err == nil {
		resp.Header.Set("Set-Cookie", "session=0123456789abcdef")
		resp.Header.Set("X-Owner", "jane.doe@corp.example.org")
	}
	return resp, err
}

func (h headerAdder) CloseIdleConnections() {
	if ci, ok := h.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func strPtr(v any) *string {
	s, _ := v.(string)
	return &s
}

func TestCheckSkipsWhatIsNotGiven(t *testing.T) {
	s := newCheckSim(t)
	c := s.cloud
	c.RootKeyCRN, c.Region, c.Endpoints.ActivityTracker = "", s.sim.Account.Region, ""
	cl, err := ibmcloud.Connect(c)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	rep, err := cl.Check(checkCtx(t), ibmcloud.CheckOptions{Clock: s.sim.Clock.Now})
	require.NoError(t, err)
	status := map[string]ibmcloud.CheckStatus{}
	for _, c := range rep.Calls {
		status[c.Name] = c.Status
		if c.Status == ibmcloud.CheckSkipped {
			require.Zero(t, c.Duration)
			require.NotEmpty(t, c.Detail, "a skipped call says why")
		}
	}
	require.Equal(t, map[string]ibmcloud.CheckStatus{
		ibmcloud.CheckIAMToken: ibmcloud.CheckOK, ibmcloud.CheckRootKey: ibmcloud.CheckSkipped, ibmcloud.CheckBucket: ibmcloud.CheckSkipped,
		ibmcloud.CheckOSCodes: ibmcloud.CheckOK, ibmcloud.CheckEventLog: ibmcloud.CheckOK, ibmcloud.CheckCloudLogs: ibmcloud.CheckSkipped,
	}, status)
	require.Contains(t, rep.String(), "skipped")
}

func TestCheckReportsEachFailureAndGoesOn(t *testing.T) {
	s := newCheckSim(t)
	cl := s.connect(t, http.DefaultTransport)
	rep, err := cl.Check(checkCtx(t), ibmcloud.CheckOptions{Bucket: cloudsim.SingleSiteBucket, Clock: s.sim.Clock.Now})
	require.ErrorIs(t, err, ibmcloud.ErrCheckFailed)
	require.ErrorIs(t, err, cos.ErrNotRegional, "the call's own error is wrapped")
	failed := rep.Failed()
	require.Len(t, failed, 1)
	require.Equal(t, ibmcloud.CheckBucket, failed[0].Name)
	require.NotEmpty(t, failed[0].Fix)
	require.Contains(t, rep.String(), "fix: ")
	for _, c := range rep.Calls {
		if c.Name != ibmcloud.CheckBucket {
			require.Equal(t, ibmcloud.CheckOK, c.Status, "%s ran after the failure", c.Name)
		}
	}

	// A key IAM does not know fails the token and every call that needs one.
	bad := s.cloud
	bad.APIKey = secret.NewString("not-a-key-of-this-account-0123456789abcdefgh")
	bad.Classic.Username, bad.Classic.APIKey = "apikey", secret.NewString(s.sim.Account.APIKey)
	cl2, err := ibmcloud.Connect(bad)
	require.NoError(t, err)
	t.Cleanup(cl2.Close)
	rep, err = cl2.Check(checkCtx(t), ibmcloud.CheckOptions{Bucket: s.sim.Account.Bucket, Clock: s.sim.Clock.Now})
	require.ErrorIs(t, err, ibmcloud.ErrCheckFailed)
	require.NotContains(t, err.Error(), "not-a-key-of-this-account", "the API key never shows in an error")
	require.NotContains(t, rep.String(), "not-a-key-of-this-account")
	status := map[string]ibmcloud.CheckStatus{}
	for _, c := range rep.Calls {
		status[c.Name] = c.Status
	}
	require.Equal(t, ibmcloud.CheckFailed, status[ibmcloud.CheckIAMToken])
	require.Equal(t, ibmcloud.CheckFailed, status[ibmcloud.CheckRootKey])
	require.Equal(t, ibmcloud.CheckOK, status[ibmcloud.CheckOSCodes], "the classic credentials are other ones")
}

// okTransport answers every request 200 with a body, counting them.
type okTransport struct {
	mu sync.Mutex
	n  int
}

func (o *okTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.n++
	o.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func TestRecorderRefusesWrites(t *testing.T) {
	base := &okTransport{}
	rec, err := ibmcloud.NewRecorder(base)
	require.NoError(t, err)
	hc := &http.Client{Transport: rec}
	sl := "https://api.softlayer.com/rest/v3.1/"
	for _, tc := range []struct {
		method, url string
		ok          bool
	}{
		{"GET", sl + "SoftLayer_Event_Log/getAllObjects.json?resultLimit=0,5", true},
		{"GET", sl + "SoftLayer_Account/getVirtualGuests.json", true},
		{"GET", sl + "SoftLayer_Virtual_Guest/1234.json", true}, // getObject
		{"GET", sl + "SoftLayer_Virtual_Guest/1234/powerOff.json", false},
		{"POST", sl + "SoftLayer_Virtual_Guest_Block_Device_Template_Group/createFromIcos.json", false},
		{"POST", sl + "SoftLayer_Product_Order/placeOrder.json", false},
		{"POST", sl + "SoftLayer_Virtual_Guest.json", false}, // createObject
		{"DELETE", sl + "SoftLayer_Virtual_Guest/1234.json", false},
		{"PUT", sl + "SoftLayer_Virtual_Guest/1234.json", false},
		{"POST", sl + "SoftLayer_Account/getVirtualGuests.json", false}, // a get with parameters is still a POST
		{"POST", "https://iam.cloud.ibm.com/identity/token", true},
		{"POST", "https://iam.cloud.ibm.com/v1/apikeys", false},
		{"POST", "https://iam.cloud.ibm.com/v1/policies", false},
		{"GET", "https://us-south.kms.cloud.ibm.com/api/v2/keys/k/metadata", true},
		{"POST", "https://us-south.kms.cloud.ibm.com/api/v2/keys/k?action=wrap", false},
		{"DELETE", "https://us-south.kms.cloud.ibm.com/api/v2/keys/k", false},
		{"HEAD", "https://s3.us-south.cloud-object-storage.appdomain.cloud/b", true},
		{"GET", "https://s3.us-south.cloud-object-storage.appdomain.cloud/b?location", true},
		{"PUT", "https://s3.us-south.cloud-object-storage.appdomain.cloud/b/o", false},
		{"POST", "https://s3.us-south.cloud-object-storage.appdomain.cloud/b/o?uploads", false},
		{"DELETE", "https://s3.us-south.cloud-object-storage.appdomain.cloud/b/o", false},
		{"POST", "https://guid.api.us-south.logs.cloud.ibm.com/v1/query", true},
		{"PATCH", "https://guid.api.us-south.logs.cloud.ibm.com/v1/query", false},
	} {
		before := base.n
		req, err := http.NewRequest(tc.method, tc.url, strings.NewReader("x"))
		require.NoError(t, err)
		resp, err := hc.Do(req)
		if tc.ok {
			require.NoError(t, err, "%s %s", tc.method, tc.url)
			resp.Body.Close()
			require.Equal(t, before+1, base.n)
			continue
		}
		require.True(t, errors.Is(err, ibmcloud.ErrNotReadOnly), "%s %s: %v", tc.method, tc.url, err)
		require.Equal(t, before, base.n, "%s %s reached the network", tc.method, tc.url)
	}
	refused := 0
	for _, r := range rec.Requests() {
		if r.Refused {
			refused++
			require.Zero(t, r.Status)
		}
	}
	require.Equal(t, 15, refused)
	require.Equal(t, "SoftLayer_Virtual_Guest::editObject", rec.Requests()[8].SoftLayerMethod)
}

func TestRecorderRefusesAnInsecureBase(t *testing.T) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	_, err := ibmcloud.NewRecorder(tr)
	require.Error(t, err)
}

func TestCheckNeedsTheRecorderInTheTransport(t *testing.T) {
	s := newCheckSim(t)
	cl := s.connect(t, http.DefaultTransport)
	rec, err := ibmcloud.NewRecorder(nil)
	require.NoError(t, err)
	_, err = cl.Check(checkCtx(t), ibmcloud.CheckOptions{Recorder: rec, Clock: s.sim.Clock.Now})
	require.ErrorIs(t, err, e2e.ErrPlan)
	require.Contains(t, err.Error(), "Config.HTTPClient")
}
