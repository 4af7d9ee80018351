package e2e_test

// Acceptance tests of the whole flow (e2e.Run) against the local cloud
// simulator, through the official SDKs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// world is a simulated cloud with clients connected to it.
type world struct {
	sim     *cloudsim.Sim
	apiKey  *secret.String
	clients *ibmcloud.Clients
	// s3Writes counts the requests that write object data or start a
	// multipart upload (PUT object or part, POST ?uploads).
	s3Puts, s3Creates int
}

func newWorld(t *testing.T, opts cloudsim.Options) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the simulator; under -short the flow runs against in-memory fakes (TestRunAgainstFakes)")
	}
	if opts.ClockSpeed == 0 {
		opts.ClockSpeed = 2000
	}
	sim, err := cloudsim.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	w := &world{sim: sim, apiKey: secret.NewString(sim.Account.APIKey)}
	w.s3Puts = sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceS3, Method: "PUT", Kind: faults.Latency})
	w.s3Creates = sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceS3, Method: "POST", QueryContains: "uploads", Kind: faults.Latency})

	// The simulator's URLs, read as ibmcloud.Endpoints through JSON: the names
	// examples/cloudsim prints are the ones Endpoints reads.
	b, err := json.Marshal(sim.URLs)
	require.NoError(t, err)
	var ep ibmcloud.Endpoints
	require.NoError(t, json.Unmarshal(b, &ep))
	w.clients, err = ibmcloud.Connect(ibmcloud.Config{
		APIKey: w.apiKey, RootKeyCRN: sim.Account.RootKeyCRN, COSInstance: sim.Account.COSInstanceCRN,
		Endpoints: ep, PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(w.clients.Close)
	return w
}

// plan is a complete plan without IAM preparation, server or audit.
func (w *world) plan(t *testing.T, img []byte) e2e.Plan {
	return e2e.Plan{
		Image:        bytes.NewReader(img),
		Name:         "e2e-run-test",
		Note:         "e2e.Run acceptance test",
		OSCode:       "UBUNTU_22_64",
		KeyService:   w.clients.Keys,
		COS:          w.clients.COS,
		Bucket:       w.sim.Account.Bucket,
		PartSize:     cos.MinPartSize,
		Concurrency:  2,
		Classic:      w.clients.Classic,
		ImportAPIKey: w.apiKey,
		StatePath:    filepath.Join(t.TempDir(), "state.json"),
		Clock:        w.sim.Clock.Now,
	}
}

// templates returns the parent template groups (the simulator lists
// each data center's child group too), without the sample template every
// simulated account starts with.
func (w *world) templates() []slsim.TemplateInfo {
	var out []slsim.TemplateInfo
	for _, ti := range w.sim.SoftLayer.Templates() {
		if ti.ParentID == 0 && ti.Name != cloudsim.SampleTemplate {
			out = append(out, ti)
		}
	}
	return out
}

func (w *world) puts() int    { return w.sim.Faults.Hits(w.s3Puts) }
func (w *world) creates() int { return w.sim.Faults.Hits(w.s3Creates) }

func sample(t *testing.T, size int64) []byte {
	t.Helper()
	b, err := sampleimage.Build(sampleimage.Options{Size: size, Seed: 5})
	require.NoError(t, err)
	return b
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stepLog records the finished steps.
type stepLog struct {
	mu    sync.Mutex
	steps []e2e.Step
}

func (l *stepLog) add(s e2e.Step) {
	if s.Status == e2e.StepRunning {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

func (l *stepLog) status() map[e2e.StepName]e2e.StepStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[e2e.StepName]e2e.StepStatus{}
	for _, s := range l.steps {
		m[s.Name] = s.Status
	}
	return m
}

// download returns the object's bytes.
func (w *world) download(t *testing.T, ctx context.Context, key string) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := w.clients.COS.DownloadStream(ctx, w.sim.Account.Bucket, key, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// decrypt unwraps the result's WDEK with the key service and decrypts enc.
func (w *world) decrypt(t *testing.T, ctx context.Context, res *e2e.Result, enc []byte) []byte {
	t.Helper()
	dek, _, err := w.clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: res.Key.WrappedDEK})
	require.NoError(t, err)
	defer dek.Zero()
	// IBM's documented image check: the stored nonce is 32 zero bytes and
	// the stored hash is SHA-256(zero nonce || DEK) (vhd-util key -C -k).
	info, err := vhdcrypt.Inspect(ctx, bytes.NewReader(enc))
	require.NoError(t, err)
	require.NotNil(t, info.KeyHash)
	require.Equal(t, [32]byte{}, info.KeyHash.Nonce, "Run's default nonce must be zero")
	require.Equal(t, sha256.Sum256(append(make([]byte, 32), dek.Bytes()...)), info.KeyHash.Hash)
	var raw bytes.Buffer
	require.NoError(t, vhdcrypt.DecryptImage(ctx, &raw, bytes.NewReader(enc), dek))
	return raw.Bytes()
}

// requireNoSecrets fails if b contains any of the secrets, in any of the
// encodings a careless program would use.
func requireNoSecrets(t *testing.T, what string, b []byte, secrets ...[]byte) {
	t.Helper()
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s)} {
			require.NotContains(t, string(b), enc, "%s holds a secret", what)
		}
	}
}

func TestRunWholeFlowOnSimulator(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 21}) // a fresh account: no authorization yet
	ctx := ctxFor(t)
	img := sample(t, 24<<20)

	var importKey *secret.String
	var log stepLog
	var progressMu sync.Mutex
	uploaded := int64(0)
	plan := w.plan(t, img)
	plan.IAM, plan.Prepare = w.clients.IAM, true
	plan.ServiceID = iam.ServiceIDSpec{Name: "e2e-run-test-import"}
	plan.COSInstanceID = w.sim.Account.COSInstanceCRN
	plan.ImportAPIKey = nil
	plan.SaveAPIKey = func(_ context.Context, sid iam.ServiceID, keyID string, key *secret.String) error {
		require.NotEmpty(t, sid.IAMID)
		require.NotEmpty(t, keyID)
		importKey = secret.NewString(key.Reveal())
		return nil
	}
	plan.Server = &classic.ServerSpec{Hostname: "e2e-run", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096}
	plan.Audit = w.clients.Audit
	plan.OnStep = log.add
	plan.OnProgress = func(p vhdcrypt.Progress) {
		if p.Phase == e2e.PhaseUpload {
			progressMu.Lock()
			uploaded = p.Done
			progressMu.Unlock()
		}
	}

	res, err := e2e.Run(ctx, plan)
	require.NoError(t, err)

	// Every step ran and did its work.
	for _, name := range []e2e.StepName{e2e.StepPrepare, e2e.StepPreflight, e2e.StepKey, e2e.StepUpload, e2e.StepImport,
		e2e.StepWaitTemplate, e2e.StepOrder, e2e.StepWaitServer, e2e.StepAudit} {
		require.Equal(t, e2e.StepDone, log.status()[name], "step %s", name)
	}
	require.Len(t, res.Steps, 9)
	require.False(t, res.Resumed)
	require.NotNil(t, importKey, "the service ID's new API key was handed to SaveAPIKey")
	require.Equal(t, res.Object.Size, uploaded, "upload progress reached the object size")

	// The preparation made the authorization, the service ID and its
	// policies, and the preflight saw them.
	require.NotNil(t, res.IAM)
	require.NotEmpty(t, res.IAM.BlockStorageAuthorization)
	require.NotEmpty(t, res.IAM.ServiceID)
	require.NotEmpty(t, res.IAM.COSPolicy)
	require.NotEmpty(t, res.IAM.KeyPolicy)
	for _, c := range res.Preflight {
		require.True(t, c.OK, "preflight %s: %s", c.Name, c.Detail)
	}

	// A 32-byte DEK generated and wrapped by the key service.
	require.Equal(t, w.sim.Account.RootKeyCRN, res.Key.RootKeyCRN)
	require.Equal(t, vhdcrypt.AES128XTS, res.Key.DEKSize)
	require.Equal(t, e2e.DEKKeyService, res.Key.DEKSource)
	require.NotEmpty(t, res.Key.KeyVersion)

	// The server is provisioned from an encrypted template made from the
	// object.
	require.Equal(t, "e2e-run-test.vhd-0.vhd", res.Object.Key)
	require.Equal(t, "cos://us-south/"+w.sim.Account.Bucket+"/e2e-run-test.vhd-0.vhd", res.Object.URI)
	require.Greater(t, res.Object.Parts, 1, "a multipart upload")
	var tmpl *slsim.TemplateInfo
	for _, ti := range w.templates() {
		if ti.ID == res.Template.ID {
			tmpl = &ti
		}
	}
	require.NotNil(t, tmpl)
	require.Equal(t, slsim.TemplateStatusActive, tmpl.Status)
	require.True(t, tmpl.Encrypted)
	require.Equal(t, vhdcrypt.AES128XTS, tmpl.KeySize)
	require.Equal(t, int64(len(img)), tmpl.VirtualSize)
	require.Equal(t, res.Object.URI, tmpl.URI)
	var guest *slsim.GuestInfo
	for _, g := range w.sim.SoftLayer.Guests() {
		if g.ID == res.Server.ID {
			guest = &g
		}
	}
	require.NotNil(t, guest)
	require.Equal(t, res.Template.ID, guest.TemplateID)
	require.False(t, guest.ProvisionDate.IsZero())
	require.False(t, res.Server.ProvisionDate.IsZero())
	require.NotEmpty(t, res.Server.BackendIP)

	// The object decrypts, with the unwrapped DEK, to the input image.
	enc := w.download(t, ctx, res.Object.Key)
	require.Equal(t, res.Object.Size, int64(len(enc)))
	require.True(t, bytes.Equal(img, w.decrypt(t, ctx, res, enc)), "the object does not decrypt to the image")

	// The audit trail has this run's wrap, template creation and
	// provisioning.
	require.Empty(t, res.AuditMissing)
	have := map[string]bool{}
	for _, e := range res.Audit {
		have[e.Action] = true
		require.False(t, e.Time.Before(res.Started.Truncate(time.Second)), "event before the run: %+v", e)
	}
	for _, a := range []string{audit.ActionWrap, audit.ActionTemplateCreate, audit.ActionProvision} {
		require.True(t, have[a], "audit trail lacks %s: %v", a, have)
	}

	// Resources are listed with their ids.
	kinds := map[string]string{}
	for _, r := range res.Resources() {
		kinds[r.Kind] = r.ID
	}
	require.Equal(t, fmt.Sprint(res.Template.ID), kinds["image template"])
	require.Equal(t, fmt.Sprint(res.Server.ID), kinds["server"])
	require.Equal(t, res.IAM.ServiceID, kinds["service ID"])

	// Neither the state file nor the result holds a secret.
	dek, _, err := w.clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: res.Key.WrappedDEK})
	require.NoError(t, err)
	defer dek.Zero()
	state, err := os.ReadFile(plan.StatePath)
	require.NoError(t, err)
	fi, err := os.Stat(plan.StatePath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	resJSON, err := json.Marshal(res)
	require.NoError(t, err)
	secrets := [][]byte{dek.Bytes(), []byte(w.sim.Account.APIKey), []byte(importKey.Reveal())}
	requireNoSecrets(t, "state file", state, secrets...)
	requireNoSecrets(t, "result", resJSON, secrets...)
	require.Contains(t, string(state), res.Key.WrappedDEK, "the state keeps the WDEK")

	// A second run with the same state does nothing again.
	puts, creates, templates, guests := w.puts(), w.creates(), len(w.templates()), len(w.sim.SoftLayer.Guests())
	var log2 stepLog
	plan.OnStep = log2.add
	plan.Image = nil // not needed any more
	plan.ImportAPIKey = importKey
	res2, err := e2e.Run(ctx, plan)
	require.NoError(t, err)
	require.True(t, res2.Resumed)
	for _, name := range []e2e.StepName{e2e.StepKey, e2e.StepUpload, e2e.StepImport, e2e.StepWaitTemplate, e2e.StepOrder, e2e.StepWaitServer} {
		require.Equal(t, e2e.StepResumed, log2.status()[name], "step %s", name)
	}
	require.Equal(t, puts, w.puts())
	require.Equal(t, creates, w.creates())
	require.Len(t, w.templates(), templates)
	require.Len(t, w.sim.SoftLayer.Guests(), guests)
	require.Equal(t, res.Template.ID, res2.Template.ID)
	require.Equal(t, res.Server.ID, res2.Server.ID)
}

func TestRunResumesAfterKillFollowingUpload(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 22, SeedAuthorizations: true})
	img := sample(t, 24<<20)
	plan := w.plan(t, img)

	// The "kill": the context ends as soon as the upload step is done.
	ctx, cancel := context.WithCancel(ctxFor(t))
	plan.OnStep = func(s e2e.Step) {
		if s.Name == e2e.StepUpload && s.Status == e2e.StepDone {
			cancel()
		}
	}
	res, err := e2e.Run(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	var se *e2e.StepError
	require.ErrorAs(t, err, &se)
	require.Equal(t, e2e.StepImport, se.Step)
	require.NotNil(t, res.Object)
	require.Empty(t, w.templates(), "nothing imported")
	puts, creates := w.puts(), w.creates()
	require.Positive(t, puts)
	require.Equal(t, 1, creates, "one multipart upload")

	// The re-run does not upload again, and finishes.
	var log stepLog
	plan.OnStep = log.add
	plan.Image = bytes.NewReader(img)
	res, err = e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, e2e.StepResumed, log.status()[e2e.StepKey])
	require.Equal(t, e2e.StepResumed, log.status()[e2e.StepUpload])
	require.Equal(t, e2e.StepDone, log.status()[e2e.StepImport])
	require.Equal(t, puts, w.puts(), "no object data was sent again")
	require.Equal(t, creates, w.creates(), "no multipart upload was started again")
	require.Len(t, w.templates(), 1)
	require.Equal(t, slsim.TemplateStatusActive, w.templates()[0].Status)
	require.True(t, bytes.Equal(img, w.decrypt(t, ctxFor(t), res, w.download(t, ctxFor(t), res.Object.Key))))
}

// interruptUpload runs plan until the first part of the upload is
// acknowledged and returns the state file as the run left it, and as it was
// on disk at that moment: a process killed there (SIGKILL, a crash) leaves
// no more than that.
func interruptUpload(t *testing.T, plan e2e.Plan) (st *e2e.State, onDisk []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	plan.OnProgress = func(p vhdcrypt.Progress) {
		if p.Phase == e2e.PhaseUpload && p.Done > 0 && onDisk == nil {
			b, err := os.ReadFile(plan.StatePath)
			if err == nil {
				onDisk = b
			}
			cancel()
		}
	}
	_, err := e2e.Run(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	st, err = e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.NotNil(t, st.Upload, "the multipart upload is kept for resumption")
	return st, onDisk
}

func TestRunResumesInterruptedUpload(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 23, SeedAuthorizations: true})
	img := sample(t, 32<<20)
	plan := w.plan(t, img)
	plan.Concurrency = 1

	st, onDisk := interruptUpload(t, plan)
	require.NotEmpty(t, st.Upload.UploadID)
	require.NotEmpty(t, st.Upload.Completed)
	require.Nil(t, st.Uploaded)
	require.Equal(t, 1, w.sim.S3.PendingUploads(w.sim.Account.Bucket))

	// The state as the kill left it already names the upload.
	require.NotNil(t, onDisk)
	require.NoError(t, os.WriteFile(plan.StatePath, onDisk, 0o600))
	killed, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.NotNil(t, killed.Upload)
	require.Equal(t, st.Upload.UploadID, killed.Upload.UploadID)

	// A new process: the state's WDEK is unwrapped and the image encrypted
	// to the same bytes, so the parts already there are kept.
	plan.OnProgress = nil
	plan.Image = bytes.NewReader(img)
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, st.Upload.UploadID, res.Object.UploadID)
	require.GreaterOrEqual(t, res.Object.PartsSkipped, len(st.Upload.Completed))
	require.Equal(t, res.Object.Parts, res.Object.PartsSent+res.Object.PartsSkipped)
	require.Equal(t, 1, w.creates())
	require.Zero(t, w.sim.S3.PendingUploads(w.sim.Account.Bucket))
	require.True(t, bytes.Equal(img, w.decrypt(t, ctxFor(t), res, w.download(t, ctxFor(t), res.Object.Key))))
}

func TestRunPreflightCatchesMissingAuthorization(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 24}) // no server-protect -> kms authorization
	plan := w.plan(t, sample(t, sampleimage.MinSize))
	plan.IAM = w.clients.IAM // checked, not prepared

	var log stepLog
	plan.OnStep = log.add
	res, err := e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, iam.ErrPreflight)
	var pe *e2e.PreflightError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, err.Error(), "authorization server-protect -> kms")
	require.Equal(t, e2e.StepFailed, log.status()[e2e.StepPreflight])
	require.NotContains(t, log.status(), e2e.StepUpload)
	require.NotContains(t, log.status(), e2e.StepKey)

	failed := 0
	for _, c := range res.Preflight {
		if !c.OK {
			failed++
			require.Equal(t, "authorization server-protect -> kms", c.Name)
			require.NotEmpty(t, c.Fix)
		}
	}
	require.Equal(t, 1, failed, "only the authorization is missing: %+v", res.Preflight)
	require.Zero(t, w.puts(), "nothing was uploaded")
	require.Zero(t, w.creates(), "no multipart upload was created")
	require.Zero(t, w.sim.S3.PendingUploads(w.sim.Account.Bucket))
	require.Empty(t, w.templates())
}

// wrongWrapper wraps another DEK than the one it is given: the import's
// DEK then does not match the image's key hash.
type wrongWrapper struct{ kms.KeyService }

func (w wrongWrapper) Wrap(ctx context.Context, _ *secret.DEK) (kms.WrappedDEK, error) {
	other, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	if err != nil {
		return kms.WrappedDEK{}, err
	}
	defer other.Zero()
	return w.KeyService.Wrap(ctx, other)
}

func TestRunImportFailureReportsTheReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   cloudsim.Options
		wrap   func(kms.KeyService) kms.KeyService
		reason string
	}{
		// Without an IAM client the preflight cannot see the missing
		// authorization; the backplane finds it.
		{"missing authorization", cloudsim.Options{Seed: 25}, nil, slsim.ReasonNoAuthorization + " kms"},
		{"wrong wrapped DEK", cloudsim.Options{Seed: 26, SeedAuthorizations: true},
			func(ks kms.KeyService) kms.KeyService { return wrongWrapper{ks} }, slsim.ReasonDEKMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.opts)
			plan := w.plan(t, sample(t, sampleimage.MinSize))
			if tc.wrap != nil {
				plan.KeyService = tc.wrap(plan.KeyService)
				plan.RootKeyCRN = w.sim.Account.RootKeyCRN
				plan.DEKSize = vhdcrypt.AES256XTS // a local DEK, which Wrap wraps (a 32-byte one is generated)
			}
			res, err := e2e.Run(ctxFor(t), plan)
			var failed *classic.ImportFailedError
			require.ErrorAs(t, err, &failed)
			require.True(t, strings.HasPrefix(failed.Reason, tc.reason), "reason %q", failed.Reason)
			require.Contains(t, err.Error(), tc.reason)
			var se *e2e.StepError
			require.ErrorAs(t, err, &se)
			require.Equal(t, e2e.StepWaitTemplate, se.Step)
			require.Len(t, res.Template.Failed, 1, "the failed template is reported")

			// The state forgets the failed template, so that a re-run
			// (after the cause is fixed) imports again.
			st, err := e2e.LoadState(plan.StatePath)
			require.NoError(t, err)
			require.Zero(t, st.TemplateID)
			require.False(t, st.ImportRequested)
			require.Equal(t, res.Template.Failed, st.FailedTemplates)
			require.NotNil(t, st.Uploaded)
		})
	}
}

func TestRunFixedAuthorizationThenReimports(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 27})
	img := sample(t, sampleimage.MinSize)
	plan := w.plan(t, img)
	_, err := e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, classic.ErrImportFailed)
	puts := w.puts()

	// The operator prepares the account; the re-run imports again without
	// uploading again.
	plan.IAM, plan.Prepare = w.clients.IAM, true
	var log stepLog
	plan.OnStep = log.add
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, e2e.StepDone, log.status()[e2e.StepPrepare])
	require.Equal(t, e2e.StepResumed, log.status()[e2e.StepUpload])
	require.Equal(t, e2e.StepDone, log.status()[e2e.StepImport])
	require.Equal(t, puts, w.puts())
	require.Len(t, res.Template.Failed, 1)
	require.NotEqual(t, res.Template.Failed[0], res.Template.ID)
	require.Len(t, w.templates(), 2)
}

func TestRunBringYourOwnDEKAndGeneratedDEK(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 28, SeedAuthorizations: true})
	img := sample(t, sampleimage.MinSize)

	// A 32-byte DEK generated by the key service.
	plan := w.plan(t, img)
	plan.Name = "e2e-generated"
	plan.Object = ""
	plan.DEKSize = vhdcrypt.AES128XTS
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, e2e.DEKKeyService, res.Key.DEKSource)
	require.Equal(t, vhdcrypt.AES128XTS, res.Key.DEKSize)
	require.Equal(t, "e2e-generated.vhd-0.vhd", res.Object.Key)

	// A DEK the caller brings; the state file must then belong to it.
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	require.NoError(t, err)
	defer dek.Zero()
	plan = w.plan(t, img)
	plan.Name, plan.Object, plan.DEK = "e2e-byok", "byok.vhd", dek
	res, err = e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, e2e.DEKProvided, res.Key.DEKSource)
	require.Equal(t, vhdcrypt.AES256XTS, dek.Len(), "Run does not zero the caller's DEK")
	enc := w.download(t, ctxFor(t), "byok.vhd")
	require.NoError(t, vhdcrypt.VerifyKey(ctxFor(t), bytes.NewReader(enc), dek))

	// Resuming that state with another DEK is refused before anything is
	// sent (the state says uploaded, so the image is not re-read: force a
	// re-upload by removing the record).
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	st.Uploaded, st.TemplateID, st.TemplateActive, st.ImportRequested = nil, 0, false, false
	require.NoError(t, st.Save(plan.StatePath))
	other, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	require.NoError(t, err)
	defer other.Zero()
	plan.DEK = other
	plan.Image = bytes.NewReader(img)
	_, err = e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, e2e.ErrStateMismatch)
}

func TestRunRefusesAnotherRunsState(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 29, SeedAuthorizations: true})
	plan := w.plan(t, sample(t, sampleimage.MinSize))
	_, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	plan.Name, plan.Object = "another-image", ""
	res, err := e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, e2e.ErrStateMismatch)
	require.Nil(t, res)
}

func TestRunPlanErrors(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 30})
	base := w.plan(t, sample(t, sampleimage.MinSize))
	for name, mutate := range map[string]func(p *e2e.Plan){
		"no name":                 func(p *e2e.Plan) { p.Name, p.Object = "", "x.vhd" },
		"no OS code for a stream": func(p *e2e.Plan) { p.OSCode, p.Image = "", struct{ io.Reader }{p.Image} },
		"object not .vhd":         func(p *e2e.Plan) { p.Object = "image.qcow2" },
		"no key service":          func(p *e2e.Plan) { p.KeyService, p.RootKeyCRN = nil, w.sim.Account.RootKeyCRN },
		"bad DEK size":            func(p *e2e.Plan) { p.DEKSize = 48 },
		"no bucket":               func(p *e2e.Plan) { p.Bucket = "" },
		"service ID, no IAM": func(p *e2e.Plan) {
			p.ServiceID.Name, p.COSInstanceID = "sid", "guid"
		},
		"server without a name": func(p *e2e.Plan) { p.Server = &classic.ServerSpec{Datacenter: "dal13"} },
	} {
		t.Run(name, func(t *testing.T) {
			p := base
			mutate(&p)
			_, err := e2e.Run(ctxFor(t), p)
			require.ErrorIs(t, err, e2e.ErrPlan)
		})
	}
	require.Zero(t, w.puts())
	_, err := os.Stat(base.StatePath)
	require.True(t, errors.Is(err, os.ErrNotExist), "no state file written for an invalid plan")
}

func TestPrepareAndPreflight(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 31})
	plan := e2e.Plan{
		KeyService: w.clients.Keys, IAM: w.clients.IAM, COS: w.clients.COS, Bucket: w.sim.Account.Bucket,
		Classic: w.clients.Classic, OSCode: "UBUNTU_22_64",
		ServiceID: iam.ServiceIDSpec{Name: "prepared-import"}, COSInstanceID: w.sim.Account.COSInstanceID,
	}
	rep, err := e2e.Preflight(ctxFor(t), plan)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Len(t, rep.Failed(), 4, rep.String()) // authorization, service ID, two policies

	var saved int
	plan.Prepare = true
	plan.SaveAPIKey = func(context.Context, iam.ServiceID, string, *secret.String) error { saved++; return nil }
	res, err := e2e.Prepare(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, 1, saved)
	require.Len(t, res.Steps, 2)
	require.Len(t, res.IAM.Created, 5, "%v", res.IAM.Created)

	rep, err = e2e.Preflight(ctxFor(t), plan)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	names := make([]string, 0, len(rep.Results))
	for _, r := range rep.Results {
		names = append(names, r.Name)
	}
	require.True(t, slices.Contains(names, "bucket "+w.sim.Account.Bucket), "%v", names)
	require.True(t, slices.Contains(names, "classic infrastructure API"), "%v", names)

	// A bucket that is not Regional (whose bucket-scoped access policy is
	// missing too), and an unknown OS code, are found.
	plan.Bucket, plan.OSCode = cloudsim.CrossRegionBucket, "NOT_AN_OS_64"
	rep, err = e2e.Preflight(ctxFor(t), plan)
	require.NoError(t, err)
	require.ErrorIs(t, rep.Err(), cos.ErrNotRegional)
	var failed []string
	for _, f := range rep.Failed() {
		failed = append(failed, f.Name)
	}
	require.Equal(t, []string{"access policy prepared-import -> cloud-object-storage", "bucket " + cloudsim.CrossRegionBucket,
		"classic infrastructure API"}, failed)
}

func TestRunPreflightNeedsAnImportKey(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 32, SeedAuthorizations: true})
	plan := w.plan(t, sample(t, sampleimage.MinSize))
	plan.ImportAPIKey = nil
	res, err := e2e.Run(ctxFor(t), plan)
	var pe *e2e.PreflightError
	require.ErrorAs(t, err, &pe)
	c, ok := pe.Report.Result("import API key")
	require.True(t, ok)
	require.False(t, c.OK)
	require.NotEmpty(t, c.Fix)
	require.Len(t, res.Steps, 2)
	require.Zero(t, w.puts())
}

func TestRunWithHPCS(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 33})
	b, err := json.Marshal(w.sim.URLs)
	require.NoError(t, err)
	var ep ibmcloud.Endpoints
	require.NoError(t, json.Unmarshal(b, &ep))
	hpcs, err := ibmcloud.Connect(ibmcloud.Config{APIKey: w.apiKey, RootKeyCRN: w.sim.Account.HPCSRootKeyCRN, Endpoints: ep,
		PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond})
	require.NoError(t, err)
	defer hpcs.Close()
	require.Equal(t, w.sim.URLs.HPCS, hpcs.Keys.Endpoint())

	plan := w.plan(t, sample(t, sampleimage.MinSize))
	plan.KeyService, plan.IAM, plan.Prepare = hpcs.Keys, hpcs.IAM, true
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, w.sim.Account.HPCSRootKeyCRN, res.Key.RootKeyCRN)
	require.Contains(t, res.Preflight[1].Name, "server-protect -> hs-crypto")
	require.Equal(t, slsim.TemplateStatusActive, w.templates()[0].Status)
}
