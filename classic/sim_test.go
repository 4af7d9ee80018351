package classic_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhd"
)

// countingTransport counts the requests that reach the SoftLayer API, by
// method name.
type countingTransport struct {
	mu    sync.Mutex
	total atomic.Int64
	paths []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.total.Add(1)
	c.mu.Lock()
	c.paths = append(c.paths, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.paths {
		if strings.Contains(p, substr) {
			n++
		}
	}
	return n
}

// world is the simulated cloud with an encrypted image uploaded to the
// account's Regional bucket.
type world struct {
	sim     *cloudsim.Sim
	apiKey  *secret.String
	cl      *classic.Client
	rt      *countingTransport
	cos     *cos.Client
	kp      *kms.Client
	object  string
	dek     *secret.DEK
	wrapped kms.WrappedDEK
	size    int64
}

// rawDisk is the sample Linux disk (internal/sampleimage: an MBR, an ext4
// root with cloud-init recorded), which the simulated backplane checks
// after decryption.
func rawDisk() []byte {
	d, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	if err != nil {
		panic(err) // the options are valid: a failure is a bug of sampleimage
	}
	return d
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w, err := buildWorld()
	if w != nil {
		t.Cleanup(w.close)
	}
	require.NoError(t, err)
	return w
}

// buildWorld starts the simulator, encrypts rawDisk with a new DEK, uploads
// it and wraps the DEK with the account's root key. Call close when done.
func buildWorld() (*world, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 7, ClockSpeed: 2000, SeedAuthorizations: true})
	if err != nil {
		return nil, err
	}
	w := &world{sim: sim, apiKey: secret.NewString(sim.Account.APIKey), rt: &countingTransport{}}
	if w.cl, err = classic.New(classic.IBMCloudAPIKey(w.apiKey), classic.WithEndpoint(sim.URLs.SoftLayer),
		classic.WithHTTPClient(&http.Client{Transport: w.rt}), classic.WithPollInterval(5*time.Millisecond, 50*time.Millisecond)); err != nil {
		return w, err
	}
	if w.cos, err = cos.New(cos.Config{Region: sim.Account.Region, Endpoint: sim.URLs.S3, APIKey: w.apiKey,
		IAMTokenURL: sim.URLs.TokenURL(), ServiceInstanceID: sim.Account.COSInstanceCRN}); err != nil {
		return w, err
	}
	auth, err := iam.NewAuthenticator(w.apiKey, iam.WithURL(sim.URLs.IAM))
	if err != nil {
		return w, err
	}
	if w.kp, err = kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS)); err != nil {
		return w, err
	}
	if w.dek, err = vhdcrypt.NewDEK(vhdcrypt.AES128XTS); err != nil {
		return w, err
	}
	var enc bytes.Buffer
	if err := vhdcrypt.EncryptImage(ctx, &enc, bytes.NewReader(rawDisk()), w.dek); err != nil {
		return w, err
	}
	w.object = "e2e-test.vhd-0.vhd"
	w.size = int64(len(rawDisk()))
	if _, err := w.cos.Upload(ctx, sim.Account.Bucket, w.object, bytes.NewReader(enc.Bytes()), int64(enc.Len())); err != nil {
		return w, err
	}
	w.wrapped, err = w.kp.Wrap(ctx, w.dek)
	return w, err
}

func (w *world) close() {
	w.dek.Zero()
	_ = w.sim.Close()
}

// locator reads a bucket's location constraint from the simulated COS.
func (w *world) locator(ctx context.Context, _, bucket string) (string, error) {
	out, err := w.cos.SDK().GetBucketLocationWithContext(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return "", err
	}
	return aws.StringValue(out.LocationConstraint), nil
}

func (w *world) request(name, object, wdek string) classic.ImportRequest {
	return classic.ImportRequest{
		Name:          name,
		Note:          "classic acceptance test",
		URI:           "cos://" + w.sim.Account.Region + "/" + w.sim.Account.Bucket + "/" + object,
		APIKey:        w.apiKey,
		OSCode:        "UBUNTU_22_64",
		DiskSize:      w.size,
		BucketLocator: w.locator,
		Encryption:    &classic.Encryption{RootKeyCRN: w.sim.Account.RootKeyCRN, WrappedDEK: wdek},
	}
}

func spec(host string, tmpl *classic.Template) classic.ServerSpec {
	return classic.ServerSpec{Hostname: host, Domain: "e2e.example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096,
		Template: classic.TemplateRef{ID: tmpl.ID}, NetworkSpeedMbps: 100}
}

func TestSimEncryptedImportOrderAndProvision(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tmpl, err := w.cl.Import(ctx, w.request("e2e-ok", w.object, w.wrapped.Ciphertext))
	require.NoError(t, err)
	require.NotZero(t, tmpl.ID)
	require.NotEmpty(t, tmpl.GlobalIdentifier)

	// Ordering while the import runs fails before anything is ordered.
	_, err = w.cl.OrderServer(ctx, spec("too-early", tmpl))
	require.ErrorIs(t, err, classic.ErrTemplateNotActive)
	require.Zero(t, w.rt.count("/SoftLayer_Virtual_Guest.json"), "no createObject")

	var steps []string
	active, err := w.cl.WaitTemplate(ctx, tmpl.ID, classic.TemplateProgress(func(t classic.Template) {
		if len(steps) == 0 || steps[len(steps)-1] != t.Transaction {
			steps = append(steps, t.Transaction)
		}
	}))
	require.NoError(t, err)
	require.True(t, active.Active())
	require.Equal(t, "e2e-ok", active.Name)
	require.Equal(t, "", steps[len(steps)-1])
	require.Greater(t, len(steps), 1, "transaction progress was reported: %v", steps)
	t.Logf("steps %v", steps)

	found, err := w.cl.FindTemplateByName(ctx, "e2e-ok")
	require.NoError(t, err)
	require.Equal(t, tmpl.ID, found.ID)

	// Dry run: verified, nothing created.
	q, err := w.cl.VerifyServer(ctx, spec("e2e-vsi", tmpl))
	require.NoError(t, err)
	require.Equal(t, tmpl.ID, q.TemplateID)
	require.Zero(t, w.rt.count("/SoftLayer_Virtual_Guest.json"), "VerifyServer must not call createObject")
	_, err = w.cl.FindServer(ctx, "e2e-vsi", "e2e.example.com")
	require.ErrorIs(t, err, classic.ErrNotFound)

	var provisioning []string
	srv, err := w.cl.OrderServer(ctx, spec("e2e-vsi", tmpl), classic.ServerProgress(func(s classic.Server) {
		provisioning = append(provisioning, s.Transaction)
	}))
	require.NoError(t, err)
	require.True(t, srv.Provisioned())
	require.NotZero(t, srv.ID)
	require.Equal(t, "e2e-vsi.e2e.example.com", srv.FQDN)
	require.NotEmpty(t, srv.PrimaryIP)
	require.NotEmpty(t, srv.BackendIP)
	require.Equal(t, "dal13", srv.Datacenter)
	require.NotZero(t, srv.TemplateID)
	require.NotEmpty(t, provisioning)
	require.Equal(t, 1, w.rt.count("/SoftLayer_Virtual_Guest.json"), "exactly one createObject")

	again, err := w.cl.FindServer(ctx, "e2e-vsi", "e2e.example.com")
	require.NoError(t, err)
	require.Equal(t, srv.ID, again.ID)
	require.True(t, again.Provisioned())
}

func TestSimImportWithWrongWDEKReportsTheReason(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A WDEK of another DEK, wrapped by the right root key: it unwraps, but
	// not to the key the image was encrypted with.
	other, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	defer other.Zero()
	wrong, err := w.kp.Wrap(ctx, other)
	require.NoError(t, err)

	tmpl, err := w.cl.Import(ctx, w.request("e2e-wrong-key", w.object, wrong.Ciphertext))
	require.NoError(t, err)
	_, err = w.cl.WaitTemplate(ctx, tmpl.ID)
	require.ErrorIs(t, err, classic.ErrImportFailed)
	var fe *classic.ImportFailedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, tmpl.ID, fe.TemplateID)
	require.Equal(t, "ERROR", fe.Status, "the simulator's (invented) error status")
	require.Contains(t, fe.Reason, "key hash", "the simulator's reason (DEK does not match the image's key hash): %q", fe.Reason)

	// A failed template cannot be ordered from.
	_, err = w.cl.VerifyServer(ctx, spec("never", tmpl))
	require.ErrorIs(t, err, classic.ErrTemplateNotActive)
	require.Zero(t, w.rt.count("generateOrderTemplate"))

	// Garbage that is not a ciphertext of this key service fails too.
	bad := w.request("e2e-bad-wdek", w.object, "bm90IGEgY2lwaGVydGV4dA==")
	tmpl2, err := w.cl.Import(ctx, bad)
	require.NoError(t, err)
	_, err = w.cl.WaitTemplate(ctx, tmpl2.ID)
	require.ErrorAs(t, err, &fe)
	require.NotEmpty(t, fe.Reason)
	t.Logf("reason %q / %v", fe.Reason, err)
	require.NotContains(t, err.Error(), w.apiKey.Reveal())
}

func TestSimValidationMakesNoRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	cases := map[string]func(r *classic.ImportRequest){
		"object is not a VHD": func(r *classic.ImportRequest) { r.URI = strings.Replace(r.URI, w.object, "image.qcow2", 1) },
		"disk over 100 GB":    func(r *classic.ImportRequest) { r.DiskSize = classic.MaxImportDiskSize + 1 },
		"empty name":          func(r *classic.ImportRequest) { r.Name = "" },
		"cross-region bucket": func(r *classic.ImportRequest) {
			r.URI = strings.Replace(r.URI, w.sim.Account.Bucket, cloudsim.CrossRegionBucket, 1)
		},
		"single-site bucket": func(r *classic.ImportRequest) {
			r.URI = strings.Replace(r.URI, w.sim.Account.Bucket, cloudsim.SingleSiteBucket, 1)
		},
		"key in another region": func(r *classic.ImportRequest) {
			r.Encryption.RootKeyCRN = strings.Replace(r.Encryption.RootKeyCRN, ":us-south:", ":eu-de:", 1)
		},
		"wrapped DEK is not base64":   func(r *classic.ImportRequest) { r.Encryption.WrappedDEK = "%%%" },
		"bucket location unknowable":  func(r *classic.ImportRequest) { r.BucketLocator = nil },
		"import region not supported": func(r *classic.ImportRequest) { r.URI = strings.Replace(r.URI, "us-south", "br-sao", 1) },
		"OS not documented for E2E":   func(r *classic.ImportRequest) { r.OSCode = "CENTOS_7_64" },
	}
	for name, edit := range cases {
		r := w.request("e2e-invalid", w.object, w.wrapped.Ciphertext)
		enc := *r.Encryption
		r.Encryption = &enc
		edit(&r)
		_, err := w.cl.Import(ctx, r)
		require.ErrorIs(t, err, classic.ErrInvalidImportRequest, name)
	}
	require.Zero(t, w.rt.total.Load(), "every invalid request was refused before any SoftLayer call: %v", w.rt.paths)

	// Only an unknown OS code needs the API (once, then cached), and
	// nothing is imported.
	r := w.request("e2e-invalid", w.object, w.wrapped.Ciphertext)
	r.OSCode = "AMIGAOS_3_32"
	r.AnyOSCode = true
	for range 2 {
		_, err := w.cl.Import(ctx, r)
		var ie *classic.InvalidImportError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, "OSCode", ie.Field)
	}
	require.Equal(t, int64(1), w.rt.total.Load(), "%v", w.rt.paths)
	require.Zero(t, w.rt.count("createFromIcos"))
}

func TestSimExportUnencryptedTemplate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var plain bytes.Buffer
	require.NoError(t, vhd.WriteFixed(&plain, bytes.NewReader(rawDisk()), w.size))
	_, err := w.cos.Upload(ctx, w.sim.Account.Bucket, "plain.vhd", bytes.NewReader(plain.Bytes()), int64(plain.Len()))
	require.NoError(t, err)
	req := w.request("plain", "plain.vhd", "")
	req.Encryption = nil
	tmpl, err := w.cl.Import(ctx, req)
	require.NoError(t, err)
	_, err = w.cl.WaitTemplate(ctx, tmpl.ID)
	require.NoError(t, err)

	list := func(ctx context.Context, bucket, prefix string) ([]classic.ListedObject, error) {
		var out []classic.ListedObject
		err := w.cos.SDK().ListObjectsV2PagesWithContext(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)},
			func(p *s3.ListObjectsV2Output, _ bool) bool {
				for _, o := range p.Contents {
					out = append(out, classic.ListedObject{Key: aws.StringValue(o.Key), Size: aws.Int64Value(o.Size)})
				}
				return true
			})
		return out, err
	}
	base := "cos://" + w.sim.Account.Region + "/" + w.sim.Account.Bucket + "/"
	res, err := w.cl.Export(ctx, tmpl.ID, classic.ExportRequest{URI: base + "exported.vhd", APIKey: w.apiKey, List: list})
	require.NoError(t, err)
	require.Len(t, res.Objects, 1)
	require.Equal(t, base+"exported-0.vhd", res.Objects[0].URI, "IBM: image.vhd is exported as image-0.vhd")
	info, err := w.cos.Stat(ctx, w.sim.Account.Bucket, "exported-0.vhd")
	require.NoError(t, err)
	require.Equal(t, info.Size, res.Objects[0].Size)
	require.Positive(t, info.Size)

	// The same name again: the earlier export's object is there.
	_, err = w.cl.Export(ctx, tmpl.ID, classic.ExportRequest{URI: base + "exported.vhd", APIKey: w.apiKey, List: list})
	require.ErrorIs(t, err, classic.ErrExportTargetExists)

	// IBM allows exporting an encrypted template too.
	enc, err := w.cl.Import(ctx, w.request("enc", w.object, w.wrapped.Ciphertext))
	require.NoError(t, err)
	_, err = w.cl.WaitTemplate(ctx, enc.ID)
	require.NoError(t, err)
	res, err = w.cl.Export(ctx, enc.ID, classic.ExportRequest{URI: base + "encrypted.vhd", APIKey: w.apiKey, List: list})
	require.NoError(t, err)
	require.Len(t, res.Objects, 1)
	require.Equal(t, "encrypted-0.vhd", res.Objects[0].Key)
}
