// Package faultflow runs the whole End to End flow (e2e.Run: IAM
// preparation, preflight, key wrap, encrypt+upload, import, server order,
// audit) against the cloud simulator while every service fails: 429s,
// 5xx, connection resets and gateway timeouts from internal/faults, and
// answers lost after the service did the work (test/internal/lostproxy).
// Each attempt must either finish or stop with a *e2e.StepError, leave a
// state file that loads (mode 0600, no temporary files beside it), and
// re-running must converge to exactly one Active template, one object, no
// pending multipart upload and one provisioned server, with no secret in
// any log line, error, result or state file.
package faultflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/leak"
	"github.com/e2eimage/e2eimage/test/internal/lostproxy"
)

// long reports whether the long loops were asked for (test/harden.sh).
func long() bool { return os.Getenv("HARDEN_LONG") == "1" }

// services the flow talks to (hpcs is not used by a Key Protect run).
var services = []string{
	cloudsim.ServiceIAM, cloudsim.ServiceIAMIdentity, cloudsim.ServiceIAMPolicy, cloudsim.ServiceKMS,
	cloudsim.ServiceS3, cloudsim.ServiceSoftLayer, cloudsim.ServiceActivityTracker,
}

// syncBuffer is a log sink shared by the clients' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type world struct {
	sim     *cloudsim.Sim
	apiKey  *secret.String
	clients *ibmcloud.Clients
	logs    *syncBuffer
	proxies []*lostproxy.Proxy
	s3Puts  int // counting rule: PUTs of object data
}

// endpointsOf reads the simulator's URLs as ibmcloud.Endpoints (the JSON names
// are shared).
func endpointsOf(t *testing.T, sim *cloudsim.Sim) ibmcloud.Endpoints {
	b, err := json.Marshal(sim.URLs)
	if err != nil {
		t.Fatal(err)
	}
	var ep ibmcloud.Endpoints
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// newWorld starts a simulator; lose puts answer-losing proxies in front of
// the services named by its keys.
func newWorld(t *testing.T, seed int64, lose map[string][]lostproxy.Rule) *world {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: seed, ClockSpeed: 3000, SeedAuthorizations: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	w := &world{sim: sim, apiKey: secret.NewString(sim.Account.APIKey), logs: &syncBuffer{}}
	w.s3Puts = sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceS3, Method: "PUT", Kind: faults.Latency})
	ep := endpointsOf(t, sim)
	for svc, rules := range lose {
		target := map[string]*string{
			cloudsim.ServiceSoftLayer: &ep.SoftLayer, cloudsim.ServiceS3: &ep.S3,
			cloudsim.ServiceIAMIdentity: &ep.IAMIdentity, cloudsim.ServiceKMS: &ep.KMS, cloudsim.ServiceIAM: &ep.IAM,
		}[svc]
		p, err := lostproxy.Start(*target, rules...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		w.proxies = append(w.proxies, p)
		*target = p.URL
	}
	logger := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.clients, err = ibmcloud.Connect(ibmcloud.Config{
		APIKey: w.apiKey, RootKeyCRN: sim.Account.RootKeyCRN, COSInstance: sim.Account.COSInstanceCRN,
		Endpoints: ep, PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.clients.Close)
	return w
}

// faultRules are the injected failures of one service: rate limiting, server
// errors, dropped connections and gateway timeouts, each at most scale
// times, so that a run converges.
func faultRules(service string, scale int) []faults.Rule {
	return []faults.Rule{
		{Service: service, Kind: faults.Status, Status: 429, Probability: 0.08, Count: scale},
		{Service: service, Kind: faults.Status, Status: 503, Probability: 0.08, Count: scale},
		{Service: service, Kind: faults.Status, Status: 500, Probability: 0.04, Count: scale},
		{Service: service, Kind: faults.Status, Status: 502, Probability: 0.04, Count: scale},
		{Service: service, Kind: faults.Reset, Probability: 0.04, Count: scale},
		{Service: service, Kind: faults.Timeout, Delay: 200 * time.Millisecond, Probability: 0.03, Count: scale},
	}
}

// runToConvergence runs the flow until it succeeds, checking each failed
// attempt's error and state file. It returns only for a flow that
// converged (it stops the test otherwise).
func runToConvergence(t *testing.T, w *world, img []byte, maxAttempts int) (*e2e.Result, e2e.Plan, []string, int) {
	t.Helper()
	dir := t.TempDir()
	var savedKey *secret.String
	var mu sync.Mutex
	uploadDonePuts := -1
	plan := e2e.Plan{
		Name: "faultflow", OSCode: "UBUNTU_22_64",
		KeyService: w.clients.Keys, COS: w.clients.COS, Bucket: w.sim.Account.Bucket,
		PartSize: cos.MinPartSize, Concurrency: 2, Classic: w.clients.Classic,
		IAM: w.clients.IAM, Prepare: true, ServiceID: iam.ServiceIDSpec{Name: "faultflow-import"},
		COSInstanceID: w.sim.Account.COSInstanceCRN,
		SaveAPIKey: func(_ context.Context, _ iam.ServiceID, _ string, k *secret.String) error {
			mu.Lock()
			defer mu.Unlock()
			savedKey = secret.NewString(k.Reveal())
			return nil
		},
		Server:    &classic.ServerSpec{Hostname: "faultflow", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
		Audit:     w.clients.Audit,
		StatePath: filepath.Join(dir, "state.json"),
		Clock:     w.sim.Clock.Now,
		Logger:    slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnStep: func(s e2e.Step) {
			if s.Name == e2e.StepUpload && s.Status == e2e.StepDone {
				mu.Lock()
				uploadDonePuts = w.sim.Faults.Hits(w.s3Puts)
				mu.Unlock()
			}
		},
	}
	var errs []string
	for attempt := 1; ; attempt++ {
		if attempt > maxAttempts {
			t.Fatalf("the flow did not converge in %d attempts; errors:\n%s", maxAttempts, strings.Join(errs, "\n"))
		}
		mu.Lock()
		if savedKey != nil {
			plan.ImportAPIKey = savedKey
			plan.ServiceID.KnownAPIKey = savedKey
		}
		mu.Unlock()
		plan.Image = bytes.NewReader(img)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		start := time.Now()
		res, err := e2e.Run(ctx, plan)
		cancel()
		took := time.Since(start).Round(10 * time.Millisecond)
		checkStateDir(t, dir, plan.StatePath, err == nil)
		if err == nil {
			mu.Lock()
			if uploadDonePuts >= 0 && w.sim.Faults.Hits(w.s3Puts) != uploadDonePuts {
				t.Errorf("object data was sent after the upload step was done: %d PUTs then, %d now", uploadDonePuts, w.sim.Faults.Hits(w.s3Puts))
			}
			mu.Unlock()
			js, _ := json.Marshal(res)
			errs = append(errs, string(js)) // scanned for secrets with the errors
			t.Logf("attempt %d (%v): done", attempt, took)
			return res, plan, errs, attempt
		}
		errs = append(errs, err.Error())
		var se *e2e.StepError
		if !errors.As(err, &se) || errors.Is(err, e2e.ErrPlan) {
			t.Fatalf("attempt %d: not a resumable step error: %T %v", attempt, err, err)
		}
		t.Logf("attempt %d (%v): step %s failed: %.300s", attempt, took, se.Step, err)
	}
}

// checkStateDir asserts that the state file, if any, loads and is private,
// and that no temporary file is left beside it.
func checkStateDir(t *testing.T, dir, path string, mustExist bool) {
	t.Helper()
	st, err := e2e.LoadState(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !mustExist:
	case err != nil:
		t.Fatalf("the state file does not load: %v", err)
	default:
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("state file mode %v: readable by others", fi.Mode().Perm())
		}
		if st.Name != "faultflow" {
			t.Errorf("state file for %q", st.Name)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind beside the state file: %s", e.Name())
		}
	}
}

// verifyFinal checks the cloud after convergence: one Active encrypted
// template, one provisioned server, no pending upload, an object that
// decrypts to the image; and scans every output for secrets. It returns
// the number of secrets found and whether the cloud is in the state a
// converged flow leaves (every check above held).
func verifyFinal(t *testing.T, w *world, res *e2e.Result, plan e2e.Plan, img []byte, outputs []string) (int, bool) {
	t.Helper()
	problems := 0
	fail := func(format string, args ...any) {
		t.Helper()
		problems++
		t.Errorf(format, args...)
	}
	w.sim.Faults.Clear() // the checks below must not fail for injected faults
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One Active template; an import the backplane failed (its own IAM
	// or key service calls meet the injected faults too) leaves an ERROR
	// template, which Run reports and never deletes.
	var active []int
	failed := map[int]bool{}
	for _, id := range res.Template.Failed {
		failed[id] = true
	}
	for _, ti := range w.sim.SoftLayer.Templates() {
		if ti.ParentID != 0 || ti.Name != plan.Name {
			continue
		}
		switch {
		case ti.Status == "ACTIVE" && ti.Encrypted:
			active = append(active, ti.ID)
		case ti.Status == "ERROR" && failed[ti.ID]:
			t.Logf("failed import %d reported: %s", ti.ID, ti.Reason)
		default:
			fail("template %d: status %s, encrypted %v, reported failed %v", ti.ID, ti.Status, ti.Encrypted, failed[ti.ID])
		}
	}
	if len(active) != 1 || active[0] != res.Template.ID {
		fail("Active templates named %q: %v, want exactly the result's %d", plan.Name, active, res.Template.ID)
	}
	guests := 0
	for _, g := range w.sim.SoftLayer.Guests() {
		if g.Hostname == plan.Server.Hostname {
			guests++
			if g.ProvisionDate.IsZero() {
				fail("server %d is not provisioned", g.ID)
			}
		}
	}
	if guests != 1 {
		fail("%d servers named %s, want exactly one", guests, plan.Server.Hostname)
	}
	if n := w.sim.S3.PendingUploads(w.sim.Account.Bucket); n != 0 {
		fail("%d multipart uploads left pending (orphans)", n)
	}
	var enc bytes.Buffer
	if _, err := w.clients.COS.DownloadStream(ctx, w.sim.Account.Bucket, res.Object.Key, &enc); err != nil {
		t.Fatalf("downloading the object: %v", err)
	}
	dek, _, err := w.clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: res.Key.WrappedDEK})
	if err != nil {
		t.Fatalf("unwrapping the DEK: %v", err)
	}
	defer dek.Zero()
	var raw bytes.Buffer
	if err := vhdcrypt.DecryptImage(ctx, &raw, bytes.NewReader(enc.Bytes()), dek); err != nil {
		t.Fatalf("decrypting the object: %v", err)
	}
	if !bytes.Equal(raw.Bytes(), img) {
		fail("the object does not decrypt to the image")
	}

	sc := leak.NewScanner()
	sc.AddKey("DEK", dek.Bytes())
	sc.AddString("API key", w.sim.Account.APIKey)
	if k := plan.ImportAPIKey; k != nil {
		sc.AddString("import API key", k.Reveal())
	}
	if tok, err := w.sim.Token(); err == nil {
		sc.AddString("IAM token", strings.TrimPrefix(tok, "Bearer "))
	}
	var found []string
	found = append(found, sc.Scan("logs", w.logs.String())...)
	for i, e := range outputs {
		found = append(found, sc.Scan(fmt.Sprintf("error/result %d", i), e)...)
	}
	state, err := os.ReadFile(plan.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	found = append(found, sc.Scan("state file", string(state))...)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	if !strings.Contains(string(state), res.Key.WrappedDEK) {
		fail("the state file does not keep the wrapped DEK")
	}
	return len(found), problems == 0
}

func TestFlowUnderFaults(t *testing.T) {
	seeds := []int64{101}
	if long() {
		seeds = append(seeds, 102, 103, 104, 105)
	}
	img, err := sampleimage.Build(sampleimage.Options{Size: 16 << 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	flows, converged := 0, 0
	for _, seed := range seeds {
		flows++
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			ok := 0
			w := newWorld(t, seed, nil)
			var ids []int
			for _, svc := range services {
				scale := 1
				if long() {
					scale = 2
				}
				for _, r := range faultRules(svc, scale) {
					ids = append(ids, w.sim.Faults.Add(r))
				}
			}
			res, plan, outs, attempts := runToConvergence(t, w, img, 60)
			injected := 0
			for _, id := range ids {
				injected += w.sim.Faults.Hits(id)
			}
			secrets, done := verifyFinal(t, w, res, plan, img, outs)
			if done {
				ok++
				converged++
			}
			if injected == 0 {
				t.Errorf("no fault was injected")
			}
			lost := 0
			for _, p := range w.proxies {
				lost += p.TotalLost()
			}
			t.Logf("per service: %v", w.sim.Faults.Counts())
			t.Logf("HARDEN faults scenario=errors-seed-%d injected=%d lost_answers=%d attempts=%d converged=%d secrets_found=%d",
				seed, injected, lost, attempts, ok, secrets)
		})
	}
	if converged != flows {
		t.Errorf("%d of %d flows converged", converged, flows)
	}
}

func TestFlowWithLostAnswers(t *testing.T) {
	img, err := sampleimage.Build(sampleimage.Options{Size: 16 << 20, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Each answer is lost once, after the service did the work. The
	// multipart create and complete are in their own tests below.
	lose := map[string][]lostproxy.Rule{
		cloudsim.ServiceSoftLayer: {
			{Name: "createFromIcos", Method: "POST", PathContains: "createFromIcos", Lose: 1},
			{Name: "createObject", Method: "POST", PathContains: "SoftLayer_Virtual_Guest.json", Lose: 1},
		},
		cloudsim.ServiceS3: {
			{Name: "part", Method: "PUT", QueryContains: "partNumber=2", Lose: 1},
		},
		cloudsim.ServiceIAMIdentity: {
			{Name: "create-service-id", Method: "POST", PathContains: "serviceids", Lose: 1},
			{Name: "create-api-key", Method: "POST", PathContains: "apikeys", Lose: 1},
		},
		cloudsim.ServiceKMS: {
			{Name: "wrap", Method: "POST", QueryContains: "wrap", Lose: 1},
		},
	}
	w := newWorld(t, 201, lose)
	res, plan, outs, attempts := runToConvergence(t, w, img, 40)
	lost := 0
	for _, p := range w.proxies {
		lost += p.TotalLost()
		t.Log(p.Report())
	}
	secrets, done := verifyFinal(t, w, res, plan, img, outs)
	converged := 0
	if done {
		converged++
	}
	if lost < 5 {
		t.Errorf("only %d answers were lost", lost)
	}
	if converged != 1 {
		t.Errorf("the flow did not converge to the expected cloud state")
	}
	t.Logf("HARDEN faults scenario=lost-answers injected=%d lost_answers=%d attempts=%d converged=%d secrets_found=%d", lost, lost, attempts, converged, secrets)
}

// lostS3Answer runs the flow with one S3 answer lost and returns the world
// and the part PUTs the object needed.
func lostS3Answer(t *testing.T, seed int64, rule lostproxy.Rule) {
	img, err := sampleimage.Build(sampleimage.Options{Size: 16 << 20, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, seed, map[string][]lostproxy.Rule{cloudsim.ServiceS3: {rule}})
	res, plan, outs, attempts := runToConvergence(t, w, img, 10)
	lost := w.proxies[0].Lost(rule.Name)
	if lost != 1 {
		t.Fatalf("%d answers lost", lost)
	}
	secrets, done := verifyFinal(t, w, res, plan, img, outs)
	converged := 0
	if done {
		converged++
	}
	if puts := w.sim.Faults.Hits(w.s3Puts); puts > res.Object.Parts {
		converged = 0
		t.Errorf("%d PUTs of object data for an object of %d parts: data was uploaded twice", puts, res.Object.Parts)
	}
	if converged != 1 {
		t.Errorf("the flow did not converge to the expected cloud state")
	}
	t.Logf("HARDEN faults scenario=lost-%s injected=%d lost_answers=%d attempts=%d converged=%d secrets_found=%d",
		rule.Name, lost, lost, attempts, converged, secrets)
}

// TestLostCreateMultipartAnswer: CreateMultipartUpload succeeds but its
// answer is lost; the SDK retries and gets a second upload ID. The first
// upload must not be left pending (an orphan that costs storage).
func TestLostCreateMultipartAnswer(t *testing.T) {
	lostS3Answer(t, 202, lostproxy.Rule{Name: "create-multipart", Method: "POST", QueryContains: "uploads", Lose: 1})
}

// TestLostCompleteMultipartAnswer: CompleteMultipartUpload succeeds but its
// answer is lost; the retry meets NoSuchUpload and the object must be
// recognised as ours (it is), without uploading it again.
func TestLostCompleteMultipartAnswer(t *testing.T) {
	lostS3Answer(t, 203, lostproxy.Rule{Name: "complete-multipart", Method: "POST", QueryContains: "uploadId", Lose: 1})
}
