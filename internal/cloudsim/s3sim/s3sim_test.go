package s3sim_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/kmssim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/s3sim"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(ownerHelperEnv) != "" {
		ownerHelper()
		return
	}
	testenv.VerifyTestMain(m, testenv.NoStrayTemp(s3sim.TempDirPattern))
}

const (
	acct      = "0123456789abcdef0123456789abcdef"
	ownerKey  = "owner-api-key-0123456789abcdef0123456789"
	cosGUID   = "aaaaaaaa-2222-4333-8444-555555555555"
	kmsGUID   = "bbbbbbbb-2222-4333-8444-555555555555"
	accessKey = "0123456789abcdef0123456789abcdef"
	secretKey = "fedcba9876543210fedcba9876543210fedcba9876543210"
)

var cosCRN = "crn:v1:bluemix:public:cloud-object-storage:global:a/" + acct + ":" + cosGUID + "::"

type fixture struct {
	iam    *iamsim.Server
	kms    *kmssim.Server
	s3     *s3sim.Server
	iamURL string
	s3URL  string
	tr     *http.Transport
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{tr: &http.Transport{}}
	t.Cleanup(f.tr.CloseIdleConnections)
	var err error
	f.iam, err = iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey})
	require.NoError(t, err)
	f.kms, err = kmssim.New(kmssim.Config{InstanceID: kmsGUID, AccountID: acct, Identity: f.iam, Authz: f.iam})
	require.NoError(t, err)
	f.s3, err = s3sim.New(s3sim.Config{
		Dir: t.TempDir(), AccountID: acct, InstanceID: cosGUID, InstanceCRN: cosCRN,
		Identity: f.iam, Authz: f.iam, KeyServices: []*kmssim.Server{f.kms},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.s3.Close()) })
	f.s3.AddHMAC(accessKey, secretKey, f.iam.Owner())
	iamSrv := httptest.NewServer(f.iam.Handler())
	t.Cleanup(iamSrv.Close)
	s3Srv := httptest.NewServer(f.s3.Handler())
	t.Cleanup(s3Srv.Close)
	f.iamURL, f.s3URL = iamSrv.URL, s3Srv.URL
	return f
}

func (f *fixture) client(t *testing.T, creds *credentials.Credentials) *s3.S3 {
	t.Helper()
	conf := aws.NewConfig().WithRegion("us-south").WithEndpoint(f.s3URL).WithS3ForcePathStyle(true).
		WithCredentials(creds).WithHTTPClient(&http.Client{Transport: f.tr}).WithMaxRetries(2)
	sess, err := session.NewSession(conf)
	require.NoError(t, err)
	return s3.New(sess)
}

func (f *fixture) iamClient(t *testing.T, apiKey string) *s3.S3 {
	return f.client(t, ibmiam.NewStaticCredentials(aws.NewConfig(), f.iamURL+"/identity/token", apiKey, cosGUID))
}

func (f *fixture) hmacClient(t *testing.T, secret string) *s3.S3 {
	return f.client(t, credentials.NewStaticCredentials(accessKey, secret, ""))
}

func awsCode(t *testing.T, err error) string {
	t.Helper()
	var ae awserr.Error
	require.True(t, errors.As(err, &ae), "want awserr.Error, got %T: %v", err, err)
	return ae.Code()
}

func TestBucketsLocationsAndEncryption(t *testing.T) {
	f := newFixture(t)
	c := f.iamClient(t, ownerKey)
	for name, loc := range map[string]string{
		"regional-bkt": "us-south-standard", "cross-bkt": "us-standard", "single-bkt": "ams03-standard", "vault-bkt": "eu-de-vault",
	} {
		_, err := c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String(name), CreateBucketConfiguration: &s3.CreateBucketConfiguration{LocationConstraint: aws.String(loc)}})
		require.NoError(t, err, name)
		out, err := c.GetBucketLocation(&s3.GetBucketLocationInput{Bucket: aws.String(name)})
		if s3sim.Location(loc) == "eu-de" { // another region's bucket: see TestBucketOfAnotherRegion
			require.Equal(t, "NoSuchBucket", awsCode(t, err), name)
			continue
		}
		require.NoError(t, err, name)
		require.Equal(t, loc, aws.StringValue(out.LocationConstraint), name)
	}
	require.Equal(t, s3sim.Regional, s3sim.Resiliency("us-south-standard"))
	require.Equal(t, s3sim.CrossRegion, s3sim.Resiliency("us-standard"))
	require.Equal(t, s3sim.SingleSite, s3sim.Resiliency("ams03-standard"))
	require.Equal(t, "", s3sim.Resiliency("mars-standard"))

	// Without a configuration, the bucket lands in the region.
	_, err := c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("default-bkt")})
	require.NoError(t, err)
	loc, ok := f.s3.BucketLocation("default-bkt")
	require.True(t, ok)
	require.Equal(t, "us-south-standard", loc)

	_, err = c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("bad-bkt"), CreateBucketConfiguration: &s3.CreateBucketConfiguration{LocationConstraint: aws.String("mars-standard")}})
	require.Equal(t, "InvalidLocationConstraint", awsCode(t, err))
	_, err = c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("regional-bkt")})
	require.Equal(t, "BucketAlreadyExists", awsCode(t, err))

	ext, err := c.ListBucketsExtended(&s3.ListBucketsExtendedInput{})
	require.NoError(t, err)
	locs := map[string]string{}
	for _, b := range ext.Buckets {
		locs[aws.StringValue(b.Name)] = aws.StringValue(b.LocationConstraint)
	}
	require.Equal(t, "ams03-standard", locs["single-bkt"])
	require.Len(t, locs, 5)
	plain, err := c.ListBuckets(&s3.ListBucketsInput{})
	require.NoError(t, err)
	require.Len(t, plain.Buckets, 5)

	// Key Protect encryption needs the root key and the S2S authorization.
	root, err := f.kms.CreateRootKey("cos-key")
	require.NoError(t, err)
	in := &s3.CreateBucketInput{
		Bucket: aws.String("kp-bkt"), CreateBucketConfiguration: &s3.CreateBucketConfiguration{LocationConstraint: aws.String("us-south-smart")},
		IBMSSEKPEncryptionAlgorithm: aws.String("AES256"), IBMSSEKPCustomerRootKeyCrn: aws.String(root.CRN),
	}
	_, err = c.CreateBucket(in)
	require.Error(t, err)
	require.Contains(t, err.Error(), "The Key CRN could not be found")
	f.iam.AddAuthorization("cloud-object-storage", "kms", kmsGUID)
	_, err = c.CreateBucket(in)
	require.NoError(t, err)
	head, err := c.HeadBucket(&s3.HeadBucketInput{Bucket: aws.String("kp-bkt")})
	require.NoError(t, err)
	require.True(t, aws.BoolValue(head.IBMSSEKPEnabled))
	require.Equal(t, root.CRN, aws.StringValue(head.IBMSSEKPCrkId))
	head, err = c.HeadBucket(&s3.HeadBucketInput{Bucket: aws.String("regional-bkt")})
	require.NoError(t, err)
	require.False(t, aws.BoolValue(head.IBMSSEKPEnabled))
	in.Bucket = aws.String("kp-bkt-2")
	in.IBMSSEKPCustomerRootKeyCrn = aws.String(strings.Replace(root.CRN, root.ID, "00000000-0000-4000-8000-000000000000", 1))
	_, err = c.CreateBucket(in)
	require.Error(t, err)

	// Deleting the bucket forgets its encryption; the key stays.
	kc := root.CRN
	_, err = c.DeleteBucket(&s3.DeleteBucketInput{Bucket: aws.String("kp-bkt")})
	require.NoError(t, err)
	_, ok = f.s3.BucketLocation("kp-bkt")
	require.False(t, ok)
	require.Empty(t, f.s3.BucketKeyCRN("kp-bkt"))
	_, ok = f.kms.LookupCRN(kc)
	require.True(t, ok)
}

// The endpoint is the region's: a Regional bucket of another region answers
// every request with 404 NoSuchBucket, as COS does on the wrong endpoint,
// while the instance's extended listing shows where it is.
func TestBucketOfAnotherRegion(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("here-bkt", "us-south-smart"))
	require.NoError(t, f.s3.CreateBucket("frankfurt-bkt", "eu-de-standard"))
	for _, b := range []string{"here-bkt", "frankfurt-bkt"} {
		require.NoError(t, f.s3.Put(b, "img.vhd-0.vhd", strings.NewReader("vhd"), 3))
	}
	for _, c := range []*s3.S3{f.iamClient(t, ownerKey), f.hmacClient(t, secretKey)} {
		_, err := c.HeadBucket(&s3.HeadBucketInput{Bucket: aws.String("here-bkt")})
		require.NoError(t, err)
		obj, err := c.GetObject(&s3.GetObjectInput{Bucket: aws.String("here-bkt"), Key: aws.String("img.vhd-0.vhd")})
		require.NoError(t, err)
		body, err := io.ReadAll(obj.Body)
		require.NoError(t, err)
		require.NoError(t, obj.Body.Close())
		require.Equal(t, "vhd", string(body))

		var rf awserr.RequestFailure
		_, err = c.HeadBucket(&s3.HeadBucketInput{Bucket: aws.String("frankfurt-bkt")})
		require.ErrorAs(t, err, &rf)
		require.Equal(t, http.StatusNotFound, rf.StatusCode())
		_, err = c.GetBucketLocation(&s3.GetBucketLocationInput{Bucket: aws.String("frankfurt-bkt")})
		require.Equal(t, "NoSuchBucket", awsCode(t, err))
		_, err = c.GetObject(&s3.GetObjectInput{Bucket: aws.String("frankfurt-bkt"), Key: aws.String("img.vhd-0.vhd")})
		require.Equal(t, "NoSuchBucket", awsCode(t, err))
		_, err = c.PutObject(&s3.PutObjectInput{Bucket: aws.String("frankfurt-bkt"), Key: aws.String("x"), Body: strings.NewReader("x")})
		require.Equal(t, "NoSuchBucket", awsCode(t, err))
		_, err = c.CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: aws.String("frankfurt-bkt"), Key: aws.String("x")})
		require.Equal(t, "NoSuchBucket", awsCode(t, err))
		_, err = c.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: aws.String("frankfurt-bkt")})
		require.Equal(t, "NoSuchBucket", awsCode(t, err))
		_, err = c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("frankfurt-bkt")})
		require.Equal(t, "BucketAlreadyExists", awsCode(t, err), "bucket names are global")

		ext, err := c.ListBucketsExtended(&s3.ListBucketsExtendedInput{Prefix: aws.String("frankfurt")})
		require.NoError(t, err)
		locs := map[string]string{}
		for _, b := range ext.Buckets {
			locs[aws.StringValue(b.Name)] = aws.StringValue(b.LocationConstraint)
		}
		require.Equal(t, "eu-de-standard", locs["frankfurt-bkt"])
	}
	require.Equal(t, "eu-de", s3sim.Location("eu-de-standard"))
	require.Equal(t, "us-south", s3sim.Location("us-south-onerate_active"))
	require.Equal(t, "", s3sim.Location("mars-standard"))
}

func TestInstanceHeaderAndAccess(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	require.NoError(t, f.s3.CreateBucket("other", ""))

	// A bearer-authenticated bucket creation must name the instance.
	wrong := f.client(t, ibmiam.NewStaticCredentials(aws.NewConfig(), f.iamURL+"/identity/token", ownerKey, "not-the-instance"))
	_, err := wrong.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("x-bkt")})
	require.Equal(t, "InvalidArgument", awsCode(t, err))
	// The CRN works as well as the GUID.
	byCRN := f.client(t, ibmiam.NewStaticCredentials(aws.NewConfig(), f.iamURL+"/identity/token", ownerKey, cosCRN))
	_, err = byCRN.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("crn-bkt")})
	require.NoError(t, err)

	// A service ID sees only what its policy allows.
	_, sid := f.iam.CreateServiceID("reader")
	key := f.iam.CreateAPIKey(sid, "k")
	svc := f.iamClient(t, key)
	_, err = svc.PutObject(&s3.PutObjectInput{Bucket: aws.String("images"), Key: aws.String("a"), Body: strings.NewReader("x")})
	require.Equal(t, "AccessDenied", awsCode(t, err))
	body := `{"type":"access","subjects":[{"attributes":[{"name":"iam_id","value":"` + sid + `"}]}],"roles":[{"role_id":"crn:v1:bluemix:public:iam::::serviceRole:Writer"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"cloud-object-storage"},{"name":"serviceInstance","value":"` + cosGUID + `"},{"name":"resourceType","value":"bucket"},{"name":"resource","value":"images"}]}]}`
	otok, _, err := f.iam.IssueToken(ownerKey)
	require.NoError(t, err)
	iamSrv := httptest.NewServer(f.iam.Handler())
	defer iamSrv.Close()
	req, _ := http.NewRequest(http.MethodPost, iamSrv.URL+"/v1/policies", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+otok)
	resp, err := (&http.Client{Transport: f.tr}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	_, err = svc.PutObject(&s3.PutObjectInput{Bucket: aws.String("images"), Key: aws.String("a"), Body: strings.NewReader("x")})
	require.NoError(t, err)
	_, err = svc.PutObject(&s3.PutObjectInput{Bucket: aws.String("other"), Key: aws.String("a"), Body: strings.NewReader("x")})
	require.Equal(t, "AccessDenied", awsCode(t, err))

	// No credentials at all.
	resp, err = (&http.Client{Transport: f.tr}).Get(f.s3URL + "/images/a")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Unsupported subresources are refused, not misread.
	_, err = f.iamClient(t, ownerKey).GetBucketAcl(&s3.GetBucketAclInput{Bucket: aws.String("images")})
	require.Equal(t, "NotImplemented", awsCode(t, err))
}

func TestMultipartThroughS3Manager(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	c := f.iamClient(t, ownerKey)
	data := make([]byte, 23<<20+12345) // 5 parts, the last short
	_, _ = rand.Read(data)
	up := s3manager.NewUploaderWithClient(c, func(u *s3manager.Uploader) {
		u.PartSize = 5 << 20
		u.Concurrency = 4
	})
	out, err := up.UploadWithContext(context.Background(), &s3manager.UploadInput{
		Bucket: aws.String("images"), Key: aws.String("img.vhd-0.vhd"), Body: io.MultiReader(bytes.NewReader(data)),
	})
	require.NoError(t, err)
	require.NotEmpty(t, out.UploadID)
	require.Zero(t, f.s3.PendingUploads("images"))

	got, err := c.GetObject(&s3.GetObjectInput{Bucket: aws.String("images"), Key: aws.String("img.vhd-0.vhd")})
	require.NoError(t, err)
	b, err := io.ReadAll(got.Body)
	got.Body.Close()
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(b))
	require.EqualValues(t, len(data), aws.Int64Value(got.ContentLength))

	// A range across a part boundary.
	rng, err := c.GetObject(&s3.GetObjectInput{Bucket: aws.String("images"), Key: aws.String("img.vhd-0.vhd"), Range: aws.String("bytes=5242870-5242889")})
	require.NoError(t, err)
	b, _ = io.ReadAll(rng.Body)
	rng.Body.Close()
	require.Equal(t, data[5242870:5242890], b)

	// The in-process reader sees the same bytes.
	rd, size, err := f.s3.Open("images", "img.vhd-0.vhd")
	require.NoError(t, err)
	require.EqualValues(t, len(data), size)
	_, err = rd.Seek(10<<20-3, io.SeekStart)
	require.NoError(t, err)
	buf := make([]byte, 6)
	_, err = io.ReadFull(rd, buf)
	require.NoError(t, err)
	require.Equal(t, data[10<<20-3:10<<20+3], buf)
	require.NoError(t, rd.Close())
	_, _, err = f.s3.Open("images", "missing")
	require.True(t, s3sim.IsNotFound(err))

	list, err := c.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: aws.String("images")})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	require.EqualValues(t, len(data), aws.Int64Value(list.Contents[0].Size))
}

func TestListAndAbortMultipartUploads(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	c := f.iamClient(t, ownerKey)

	lu, err := c.ListMultipartUploads(&s3.ListMultipartUploadsInput{Bucket: aws.String("images")})
	require.NoError(t, err, "an empty list, not NoSuchUpload")
	require.Empty(t, lu.Uploads)

	cr, err := c.CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: aws.String("images"), Key: aws.String("big")})
	require.NoError(t, err)
	part := bytes.Repeat([]byte("a"), 1024)
	for n := int64(1); n <= 2; n++ {
		_, err = c.UploadPart(&s3.UploadPartInput{Bucket: aws.String("images"), Key: aws.String("big"), UploadId: cr.UploadId, PartNumber: aws.Int64(n), Body: bytes.NewReader(part)})
		require.NoError(t, err)
	}
	lu, err = c.ListMultipartUploads(&s3.ListMultipartUploadsInput{Bucket: aws.String("images")})
	require.NoError(t, err)
	require.Len(t, lu.Uploads, 1)
	require.Equal(t, aws.StringValue(cr.UploadId), aws.StringValue(lu.Uploads[0].UploadId))
	lp, err := c.ListParts(&s3.ListPartsInput{Bucket: aws.String("images"), Key: aws.String("big"), UploadId: cr.UploadId})
	require.NoError(t, err)
	require.Len(t, lp.Parts, 2)
	require.EqualValues(t, 1024, aws.Int64Value(lp.Parts[0].Size))
	require.Equal(t, 1, f.s3.PendingUploads("images"))

	// Parts below 5 MiB (but the last) are refused at completion.
	_, err = c.CompleteMultipartUpload(&s3.CompleteMultipartUploadInput{
		Bucket: aws.String("images"), Key: aws.String("big"), UploadId: cr.UploadId,
		MultipartUpload: &s3.CompletedMultipartUpload{Parts: []*s3.CompletedPart{
			{PartNumber: aws.Int64(1), ETag: lp.Parts[0].ETag}, {PartNumber: aws.Int64(2), ETag: lp.Parts[1].ETag},
		}},
	})
	require.Equal(t, "EntityTooSmall", awsCode(t, err))

	_, err = c.AbortMultipartUpload(&s3.AbortMultipartUploadInput{Bucket: aws.String("images"), Key: aws.String("big"), UploadId: cr.UploadId})
	require.NoError(t, err)
	require.Zero(t, f.s3.PendingUploads("images"))
	_, err = c.ListParts(&s3.ListPartsInput{Bucket: aws.String("images"), Key: aws.String("big"), UploadId: cr.UploadId})
	require.Equal(t, "NoSuchUpload", awsCode(t, err))
}

func TestHMACSignatures(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	c := f.hmacClient(t, secretKey)
	for _, key := range []string{"plain", "dir/with space+plus&amp=eq", "ünïcode/ключ", "tilde~star*"} {
		_, err := c.PutObject(&s3.PutObjectInput{Bucket: aws.String("images"), Key: aws.String(key), Body: strings.NewReader("hello " + key)})
		require.NoError(t, err, key)
		got, err := c.GetObject(&s3.GetObjectInput{Bucket: aws.String("images"), Key: aws.String(key)})
		require.NoError(t, err, key)
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		require.Equal(t, "hello "+key, string(b))
	}
	list, err := c.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: aws.String("images"), Prefix: aws.String("dir/"), MaxKeys: aws.Int64(10)})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)

	_, err = f.hmacClient(t, "wrong-secret").GetObject(&s3.GetObjectInput{Bucket: aws.String("images"), Key: aws.String("plain")})
	require.Equal(t, "SignatureDoesNotMatch", awsCode(t, err))
	other := f.client(t, credentials.NewStaticCredentials("unknown-key", secretKey, ""))
	_, err = other.GetObject(&s3.GetObjectInput{Bucket: aws.String("images"), Key: aws.String("plain")})
	require.Equal(t, "InvalidAccessKeyId", awsCode(t, err))
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := s3sim.New(s3sim.Config{AccountID: acct})
	require.Error(t, err)
	iam, err := iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey})
	require.NoError(t, err)
	s, err := s3sim.New(s3sim.Config{AccountID: acct, InstanceID: cosGUID, InstanceCRN: cosCRN, Identity: iam, Authz: iam})
	require.NoError(t, err)
	require.Error(t, s.CreateBucket("x", "mars-standard"))
	require.Error(t, s.CreateBucket("Bad_Name", ""))
	require.NoError(t, s.Close(), "removes its temporary directory")
}

// TestBigUploadMemory uploads an object through s3manager from an
// unseekable stream and checks that the heap stays bounded by the
// uploader's own part buffers, not by the object: the store keeps data in
// files. The object is 96 MiB by default (CLOUDSIM_BIG_MB overrides it,
// e.g. 1024); the peak heap in use, sampled during the upload, may grow by
// at most (concurrency+2) part buffers plus 16 MiB over the heap before.
func TestBigUploadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 96 MiB")
	}
	mb := 96
	if v := os.Getenv("CLOUDSIM_BIG_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CLOUDSIM_BIG_MB=%q: want a positive number of MiB", v)
		}
		mb = n
	}
	const partSize, concurrency = 5 << 20, 2
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	c := f.iamClient(t, ownerKey)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak atomic.Uint64
	samples := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond) // sampling, not synchronisation
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			samples++
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	size := int64(mb) << 20
	src := io.LimitReader(zeroReader{}, size)
	up := s3manager.NewUploaderWithClient(c, func(u *s3manager.Uploader) { u.PartSize = partSize; u.Concurrency = concurrency })
	_, err := up.Upload(&s3manager.UploadInput{Bucket: aws.String("images"), Key: aws.String("big"), Body: struct{ io.Reader }{src}})
	close(stop)
	<-done
	require.NoError(t, err)
	rd, n, err := f.s3.Open("images", "big")
	require.NoError(t, err)
	require.NoError(t, rd.Close())
	require.Equal(t, size, n)

	growth := int64(peak.Load()) - int64(before)
	budget := int64((concurrency+2)*partSize + 16<<20)
	t.Logf("uploaded %d MiB in %d-MiB parts; heap in use %.1f MiB before, peak %.1f MiB (+%.1f MiB, budget %.1f MiB) over %d samples",
		mb, partSize>>20, float64(before)/(1<<20), float64(peak.Load())/(1<<20), float64(growth)/(1<<20), float64(budget)/(1<<20), samples)
	if samples < 2 {
		t.Fatalf("the heap was sampled %d times during the upload", samples)
	}
	if growth > budget {
		t.Errorf("the heap grew by %d MiB for a %d MiB upload, more than the %d MiB the part buffers need: the data is held in memory",
			growth>>20, mb, budget>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestMultipartETag checks that a completed multipart object carries S3's
// composite ETag (hex MD5 of the parts' binary MD5s, "-", part count) on
// completion, HEAD, GET and listings, that If-Match and If-None-Match are
// evaluated against it, and that single PUTs and copies keep the content
// MD5.
func TestMultipartETag(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.s3.CreateBucket("images", ""))
	c := f.hmacClient(t, secretKey)
	bucket, key := aws.String("images"), aws.String("mp")
	parts := [][]byte{bytes.Repeat([]byte("a"), s3sim.MinPartSize), []byte("the short last part")}
	cr, err := c.CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	require.NoError(t, err)
	var done []*s3.CompletedPart
	var md5s []byte
	for i, p := range parts {
		sum := md5.Sum(p)
		md5s = append(md5s, sum[:]...)
		up, err := c.UploadPart(&s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: cr.UploadId,
			PartNumber: aws.Int64(int64(i + 1)), Body: bytes.NewReader(p)})
		require.NoError(t, err)
		require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, aws.StringValue(up.ETag), "a part's ETag is its MD5")
		done = append(done, &s3.CompletedPart{PartNumber: aws.Int64(int64(i + 1)), ETag: up.ETag})
	}
	composite := md5.Sum(md5s)
	want := `"` + hex.EncodeToString(composite[:]) + `-2"`

	cm, err := c.CompleteMultipartUpload(&s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: cr.UploadId,
		MultipartUpload: &s3.CompletedMultipartUpload{Parts: done}})
	require.NoError(t, err)
	require.Equal(t, want, aws.StringValue(cm.ETag))

	head, err := c.HeadObject(&s3.HeadObjectInput{Bucket: bucket, Key: key})
	require.NoError(t, err)
	require.Equal(t, want, aws.StringValue(head.ETag))
	require.EqualValues(t, len(parts[0])+len(parts[1]), aws.Int64Value(head.ContentLength))

	get, err := c.GetObject(&s3.GetObjectInput{Bucket: bucket, Key: key, IfMatch: aws.String(want), Range: aws.String("bytes=5242878-5242881")})
	require.NoError(t, err)
	b, err := io.ReadAll(get.Body)
	require.NoError(t, get.Body.Close())
	require.NoError(t, err)
	require.Equal(t, "aath", string(b))
	require.Equal(t, want, aws.StringValue(get.ETag))

	list, err := c.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: bucket})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	require.Equal(t, want, aws.StringValue(list.Contents[0].ETag))

	// Conditions are evaluated against the composite ETag.
	plain := `"` + hex.EncodeToString(composite[:]) + `"`
	_, err = c.GetObject(&s3.GetObjectInput{Bucket: bucket, Key: key, IfMatch: aws.String(plain)})
	require.Equal(t, "PreconditionFailed", awsCode(t, err))
	_, err = c.HeadObject(&s3.HeadObjectInput{Bucket: bucket, Key: key, IfMatch: aws.String(plain)})
	var rf awserr.RequestFailure
	require.ErrorAs(t, err, &rf)
	require.Equal(t, http.StatusPreconditionFailed, rf.StatusCode())
	_, err = c.GetObject(&s3.GetObjectInput{Bucket: bucket, Key: key, IfNoneMatch: aws.String(want)})
	require.ErrorAs(t, err, &rf)
	require.Equal(t, http.StatusNotModified, rf.StatusCode())
	get, err = c.GetObject(&s3.GetObjectInput{Bucket: bucket, Key: key, IfNoneMatch: aws.String(plain)})
	require.NoError(t, err)
	require.NoError(t, get.Body.Close())

	// A single PUT's ETag, and a copy's, is the MD5 of the content.
	body := []byte("one put")
	sum := md5.Sum(body)
	_, err = c.PutObject(&s3.PutObjectInput{Bucket: bucket, Key: aws.String("single"), Body: bytes.NewReader(body)})
	require.NoError(t, err)
	head, err = c.HeadObject(&s3.HeadObjectInput{Bucket: bucket, Key: aws.String("single")})
	require.NoError(t, err)
	require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, aws.StringValue(head.ETag))

	cp, err := c.CopyObject(&s3.CopyObjectInput{Bucket: bucket, Key: aws.String("copy"), CopySource: aws.String("images/mp")})
	require.NoError(t, err)
	head, err = c.HeadObject(&s3.HeadObjectInput{Bucket: bucket, Key: aws.String("copy")})
	require.NoError(t, err)
	require.NotContains(t, aws.StringValue(head.ETag), "-", "a copy is stored whole")
	require.Equal(t, aws.StringValue(head.ETag), aws.StringValue(cp.CopyObjectResult.ETag))
}
