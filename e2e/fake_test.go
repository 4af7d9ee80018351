package e2e_test

// In-memory fakes of the facade's interfaces (kms.KeyService,
// e2e.ObjectStore, e2e.ImageService): the flow runs without a simulator,
// so `go test -short ./e2e` checks it in milliseconds. The simulator-backed
// tests (newWorld) check the same flow through the real clients.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

const fakeKeyCRN = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-3333-4444-555555555555:key:66666666-7777-8888-9999-000000000000"

// fakeKeys "wraps" a DEK by keeping it under a handle.
type fakeKeys struct {
	mu    sync.Mutex
	deks  map[string][]byte
	calls map[string]int
}

func (k *fakeKeys) count(op string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.calls == nil {
		k.calls = map[string]int{}
	}
	k.calls[op]++
}

func (k *fakeKeys) Describe(context.Context) (*kms.KeyInfo, error) {
	key, err := crn.ParseKey(fakeKeyCRN)
	return &kms.KeyInfo{CRN: key, Name: "root", Type: kms.RootKey, State: kms.StateActive, KeyVersion: "v1"}, err
}

func (k *fakeKeys) Wrap(_ context.Context, dek *secret.DEK) (kms.WrappedDEK, error) {
	k.count("wrap")
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.deks == nil {
		k.deks = map[string][]byte{}
	}
	h := "w" + strings.Repeat("x", len(k.deks)+1)
	k.deks[h] = append([]byte(nil), dek.Bytes()...)
	return kms.WrappedDEK{Ciphertext: h, KeyVersion: "v1"}, nil
}

func (k *fakeKeys) Unwrap(_ context.Context, w kms.WrappedDEK) (*secret.DEK, *kms.WrappedDEK, error) {
	k.count("unwrap")
	k.mu.Lock()
	b, ok := k.deks[w.Ciphertext]
	k.mu.Unlock()
	if !ok {
		return nil, nil, errors.New("fake: not wrapped here")
	}
	d, err := secret.NewDEK(b)
	return d, nil, err
}

func (k *fakeKeys) GenerateDEK(ctx context.Context) (*secret.DEK, kms.WrappedDEK, error) {
	k.count("generate")
	d, err := secret.GenerateDEK(secret.DEK256)
	if err != nil {
		return nil, kms.WrappedDEK{}, err
	}
	w, err := k.Wrap(ctx, d)
	return d, w, err
}

// fakeStore keeps objects in memory; uploads are single PUTs.
type fakeStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	uploads int
}

func (s *fakeStore) Region() string { return "us-south" }

func (s *fakeStore) CheckBucket(_ context.Context, bucket, _ string) (*cos.BucketInfo, error) {
	loc, err := cos.ParseLocationConstraint("us-south-standard")
	return &cos.BucketInfo{Name: bucket, Location: loc}, err
}

func (s *fakeStore) Upload(_ context.Context, bucket, key string, r io.Reader, _ int64, _ ...cos.Option) (*cos.Result, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects == nil {
		s.objects = map[string][]byte{}
	}
	s.objects[bucket+"/"+key] = b
	s.uploads++
	sum := sha256.Sum256(b)
	return &cos.Result{Bucket: bucket, Key: key, Size: int64(len(b)), ETag: "etag", SHA256: hex.EncodeToString(sum[:]), Verified: true}, nil
}

func (s *fakeStore) Resume(ctx context.Context, st cos.UploadState, r io.Reader, size int64, opts ...cos.Option) (*cos.Result, error) {
	return s.Upload(ctx, st.Bucket, st.Key, r, size, opts...)
}

func (s *fakeStore) Stat(_ context.Context, bucket, key string) (*cos.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[bucket+"/"+key]
	if !ok {
		return nil, cos.ErrNotFound
	}
	return &cos.ObjectInfo{Size: int64(len(b)), ETag: "etag"}, nil
}

func (s *fakeStore) List(context.Context, string, string) ([]cos.ListedObject, error) {
	return nil, nil
}
func (s *fakeStore) OpenObject(context.Context, string, string, ...cos.ObjectOption) (*cos.Object, error) {
	return nil, errors.New("fake: no OpenObject")
}
func (s *fakeStore) Delete(context.Context, string, string) error { return nil }

// fakeClassic imports at once: a template is Active as soon as it exists.
type fakeClassic struct {
	mu        sync.Mutex
	templates []*classic.Template
	imports   []classic.ImportRequest
}

func (c *fakeClassic) OSReferenceCodes(context.Context) (map[string]string, error) {
	return map[string]string{"UBUNTU_22_64": "Ubuntu 22.04 LTS"}, nil
}

func (c *fakeClassic) Import(_ context.Context, req classic.ImportRequest) (*classic.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.imports = append(c.imports, req)
	t := &classic.Template{ID: 3100000 + len(c.templates) + 1, GlobalIdentifier: "guid", Name: req.Name,
		Status: classic.TemplateActive, StatusName: classic.TemplateActive}
	c.templates = append(c.templates, t)
	return t, nil
}

func (c *fakeClassic) template(id int) (*classic.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.templates {
		if t.ID == id {
			cp := *t
			return &cp, nil
		}
	}
	return nil, classic.ErrNotFound
}

func (c *fakeClassic) Export(context.Context, int, classic.ExportRequest, ...classic.WaitOption) (*classic.ExportResult, error) {
	return nil, errors.New("fake: no Export")
}
func (c *fakeClassic) GetTemplate(_ context.Context, id int) (*classic.Template, error) {
	return c.template(id)
}
func (c *fakeClassic) GetTemplateContent(context.Context, int) (*classic.TemplateContent, error) {
	return nil, errors.New("fake: no GetTemplateContent")
}
func (c *fakeClassic) FindTemplateByName(_ context.Context, name string) (*classic.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.templates {
		if t.Name == name {
			cp := *t
			return &cp, nil
		}
	}
	return nil, nil
}
func (c *fakeClassic) WaitTemplate(_ context.Context, id int, _ ...classic.WaitOption) (*classic.Template, error) {
	return c.template(id)
}
func (c *fakeClassic) Placement(context.Context, classic.ServerSpec) (*classic.Placement, error) {
	return nil, errors.New("fake: no servers")
}
func (c *fakeClassic) CreateServer(context.Context, classic.ServerSpec, ...classic.WaitOption) (*classic.Server, error) {
	return nil, errors.New("fake: no servers")
}
func (c *fakeClassic) FindServer(context.Context, string, string) (*classic.Server, error) {
	return nil, nil
}
func (c *fakeClassic) GetServer(context.Context, int) (*classic.Server, error) {
	return nil, errors.New("fake: no servers")
}
func (c *fakeClassic) WaitServer(context.Context, int, ...classic.WaitOption) (*classic.Server, error) {
	return nil, errors.New("fake: no servers")
}

// The whole flow (preflight, key, upload, import, wait) against the fakes:
// the DEK is the key service's 32 bytes, the object is the image encrypted
// with it, one import is sent; run again, every step resumes and nothing
// is sent twice.
func TestRunAgainstFakes(t *testing.T) {
	keys, store, cl := &fakeKeys{}, &fakeStore{}, &fakeClassic{}
	img := sample(t, 8<<20)
	plan := e2e.Plan{
		Image: bytes.NewReader(img), Name: "fake", OSCode: "UBUNTU_22_64", KeyService: keys, RootKeyCRN: fakeKeyCRN,
		COS: store, Bucket: "bucket", Classic: cl, ImportAPIKey: secret.NewString("import-key"),
		StatePath: t.TempDir() + "/state.json",
	}
	res, err := e2e.Run(context.Background(), plan)
	require.NoError(t, err)
	require.Equal(t, vhdcrypt.AES128XTS, res.Key.DEKSize)
	require.Equal(t, e2e.DEKKeyService, res.Key.DEKSource)
	require.Equal(t, 1, store.uploads)
	require.Len(t, cl.imports, 1)
	require.Equal(t, res.Key.WrappedDEK, cl.imports[0].Encryption.WrappedDEK)

	// The object is the image encrypted with the DEK the key service made.
	dek, _, err := keys.Unwrap(context.Background(), kms.WrappedDEK{Ciphertext: res.Key.WrappedDEK})
	require.NoError(t, err)
	defer dek.Zero()
	obj := store.objects["bucket/fake.vhd-0.vhd"]
	require.NoError(t, vhdcrypt.VerifyKey(context.Background(), bytes.NewReader(obj), dek))

	plan.Image = bytes.NewReader(img)
	res, err = e2e.Run(context.Background(), plan)
	require.NoError(t, err)
	require.True(t, res.Resumed)
	require.Equal(t, 1, store.uploads, "not uploaded again")
	require.Len(t, cl.imports, 1, "not imported again")
	t.Logf("fakes: %d upload(s), %d import(s), key service calls %v", store.uploads, len(cl.imports), keys.calls)
}
