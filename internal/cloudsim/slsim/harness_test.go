package slsim_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/softlayer/softlayer-go/session"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// The test world: small stand-ins for IAM, COS (S3) and Key Protect that
// follow the wire contracts of ../../../docs/CLOUD.md, plus fakes of the simcore
// interfaces.

const (
	testAccount = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	ownerKey    = "owner-api-key-0123456789abcdef0123456789"
	importKey   = "import-api-key-0123456789abcdef012345678"
	noCOSKey    = "nocos-api-key-0123456789abcdef0123456789"
	otherKey    = "other-account-key-0123456789abcdef01234"
	kpInstance  = "11111111-2222-3333-4444-555555555555"
	hpInstance  = "99999999-8888-7777-6666-555555555555"
)

type fakeIdentity struct {
	mu   sync.Mutex
	keys map[string]simcore.Principal
}

func (f *fakeIdentity) LookupAPIKey(k string) (simcore.Principal, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.keys[k]
	return p, ok
}

// Tokens are "tok-" + API key.
func (f *fakeIdentity) LookupToken(tok string) (simcore.Principal, bool) {
	tok = strings.TrimPrefix(strings.TrimPrefix(tok, "Bearer "), "bearer ")
	k, ok := strings.CutPrefix(tok, "tok-")
	if !ok {
		return simcore.Principal{}, false
	}
	return f.LookupAPIKey(k)
}

type fakeAuthz struct {
	mu    sync.Mutex
	allow map[string]bool // account|source|target|instance
}

func (f *fakeAuthz) grant(acct, src, tgt, inst string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allow[acct+"|"+src+"|"+tgt+"|"+inst] = true
}

func (f *fakeAuthz) revoke(acct, src, tgt, inst string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.allow, acct+"|"+src+"|"+tgt+"|"+inst)
}

func (f *fakeAuthz) HasAuthorization(acct, src, tgt, inst string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allow[acct+"|"+src+"|"+tgt+"|"+inst] || f.allow[acct+"|"+src+"|"+tgt+"|"]
}

func (f *fakeAuthz) HasAccess(string, string, string, string) bool { return true }

type fakeSink struct {
	mu     sync.Mutex
	events []simcore.Event
}

func (f *fakeSink) Record(e simcore.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeSink) all() []simcore.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]simcore.Event(nil), f.events...)
}

// fakeIAM answers the API-key grant with "tok-<key>".
func fakeIAM(ident *fakeIdentity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/identity/token" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		key := r.PostForm.Get("apikey")
		w.Header().Set("Content-Type", "application/json")
		if _, ok := ident.LookupAPIKey(key); !ok || r.PostForm.Get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.","context":{"requestId":"x"}}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "tok-" + key, "refresh_token": "not_supported", "token_type": "Bearer",
			"expires_in": 3600, "expiration": time.Now().Add(time.Hour).Unix(), "scope": "ibm openid",
		})
	})
}

type s3Bucket struct {
	location string
	objects  map[string][]byte
}

// fakeS3 is a path-style S3 endpoint: GET ?location, HEAD and ranged GET of
// objects, PUT, and multipart uploads (which the SDK's uploader uses for
// objects over 5 MiB). Bearer tokens must belong to a key in readers.
type fakeS3 struct {
	mu        sync.Mutex
	buckets   map[string]*s3Bucket
	uploads   map[string]map[int][]byte // multipart upload ID -> parts
	readers   map[string]bool           // API keys with access
	served    atomic.Int64              // object bytes served by GET
	fullReads atomic.Int64              // GETs without a Range header
	// headSize overrides the Content-Length HEAD reports for bucket/key, to
	// simulate objects too large to hold in a test.
	headSize map[string]int64
}

func (f *fakeS3) put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[bucket].objects[key] = data
}

func (f *fakeS3) get(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket]
	if !ok {
		return nil, false
	}
	d, ok := b.objects[key]
	return d, ok
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	key, _ := strings.CutPrefix(tok, "tok-")
	f.mu.Lock()
	allowed := f.readers[key]
	f.mu.Unlock()
	if !allowed {
		s3Error(w, http.StatusForbidden, "AccessDenied")
		return
	}
	bucketName, objKey, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	f.mu.Lock()
	b, ok := f.buckets[bucketName]
	f.mu.Unlock()
	if !ok {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		s3Error(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	if objKey == "" {
		if _, loc := r.URL.Query()["location"]; loc && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/xml")
			_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s</LocationConstraint>`, b.location)
			return
		}
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
		return
	}
	if f.multipart(w, r, bucketName, objKey) {
		return
	}
	switch r.Method {
	case http.MethodPut:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			s3Error(w, http.StatusBadRequest, "IncompleteBody")
			return
		}
		f.put(bucketName, objKey, data)
		w.Header().Set("ETag", `"etag"`)
		return
	case http.MethodHead, http.MethodGet:
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
		return
	}
	data, ok := f.get(bucketName, objKey)
	if !ok {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		s3Error(w, http.StatusNotFound, "NoSuchKey")
		return
	}
	start, end := int64(0), int64(len(data))-1
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, _ := strings.Cut(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.ParseInt(a, 10, 64)
		if b != "" {
			end, _ = strconv.ParseInt(b, 10, 64)
		}
		end = min(end, int64(len(data))-1)
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	} else if r.Method == http.MethodGet {
		f.fullReads.Add(1)
	}
	f.mu.Lock()
	hs, fake := f.headSize[bucketName+"/"+objKey]
	f.mu.Unlock()
	if fake && r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.FormatInt(hs, 10))
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	w.Header().Set("ETag", `"etag"`)
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		n, _ := w.Write(data[start : end+1])
		f.served.Add(int64(n))
	}
}

// multipart serves the multipart-upload calls (CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload, AbortMultipartUpload) and reports
// whether r was one.
func (f *fakeS3) multipart(w http.ResponseWriter, r *http.Request, bucket, key string) bool {
	q := r.URL.Query()
	id := q.Get("uploadId")
	_, create := q["uploads"]
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && create:
		if f.uploads == nil {
			f.uploads = map[string]map[int][]byte{}
		}
		id = fmt.Sprintf("upload-%d", len(f.uploads)+1)
		f.uploads[id] = map[int][]byte{}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, bucket, key, id)
	case id == "":
		return false
	case f.uploads[id] == nil:
		s3Error(w, http.StatusNotFound, "NoSuchUpload")
	case r.Method == http.MethodPut:
		n, err := strconv.Atoi(q.Get("partNumber"))
		data, rerr := io.ReadAll(r.Body)
		if err != nil || rerr != nil {
			s3Error(w, http.StatusBadRequest, "InvalidPart")
			return true
		}
		f.uploads[id][n] = data
		w.Header().Set("ETag", fmt.Sprintf(`"part-%d"`, n))
	case r.Method == http.MethodPost:
		parts := f.uploads[id]
		var all []byte
		for n := 1; n <= len(parts); n++ {
			p, ok := parts[n]
			if !ok {
				s3Error(w, http.StatusBadRequest, "InvalidPart")
				return true
			}
			all = append(all, p...)
		}
		delete(f.uploads, id)
		f.buckets[bucket].objects[key] = all
		w.Header().Set("Content-Type", "application/xml")
		_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>"etag"</ETag></CompleteMultipartUploadResult>`, bucket, key)
	case r.Method == http.MethodDelete:
		delete(f.uploads, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
	}
	return true
}

type kmsKey struct {
	root  []byte
	state int // 1 active, 2 suspended, 3 deactivated, 5 destroyed
}

// fakeKMS is a Key Protect key-action endpoint with AES-GCM wrapping.
type fakeKMS struct {
	mu       sync.Mutex
	instance string
	keys     map[string]*kmsKey
	ident    *fakeIdentity
	unwraps  atomic.Int64
}

func (f *fakeKMS) addKey(t *testing.T, id string) {
	root := make([]byte, 32)
	_, _ = rand.Read(root)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id] = &kmsKey{root: root, state: 1}
}

func (f *fakeKMS) setState(id string, state int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id].state = state
}

func (f *fakeKMS) wrap(t *testing.T, id string, dek []byte) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.keys[id]
	block, _ := aes.NewCipher(k.root)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, dek, nil))
}

func kpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"metadata":  map[string]any{"collectionType": "application/vnd.ibm.kms.error+json", "collectionTotal": 1},
		"resources": []any{map[string]any{"errorMsg": msg, "reasons": []any{map[string]any{"code": code, "message": msg, "status": status}}}},
	})
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.ident.LookupToken(r.Header.Get("Authorization")); !ok {
		kpError(w, http.StatusUnauthorized, "UNAUTHORIZED_ERR", "Unauthorized")
		return
	}
	if r.Header.Get("bluemix-instance") != f.instance {
		kpError(w, http.StatusUnauthorized, "UNAUTHORIZED_ERR", "Unauthorized: wrong instance")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/keys/")
	id, action, ok2 := strings.Cut(rest, "/actions/")
	if !ok || !ok2 || action != "unwrap" || r.Method != http.MethodPost {
		kpError(w, http.StatusNotFound, "NOT_FOUND", "not found")
		return
	}
	f.unwraps.Add(1)
	var body struct {
		Ciphertext string `json:"ciphertext"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	k, ok := f.keys[id]
	var state int
	var root []byte
	if ok {
		state, root = k.state, k.root
	}
	f.mu.Unlock()
	switch {
	case !ok:
		kpError(w, http.StatusNotFound, "KEY_NOT_FOUND_ERR", "Not Found: key does not exist")
		return
	case state == 5:
		kpError(w, http.StatusGone, "KEY_DELETED_ERR", "Gone: The key has been deleted")
		return
	case state != 1 && state != 3:
		kpError(w, http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state")
		return
	}
	ct, err := base64.StdEncoding.DecodeString(body.Ciphertext)
	block, _ := aes.NewCipher(root)
	gcm, _ := cipher.NewGCM(block)
	if err != nil || len(ct) < gcm.NonceSize() {
		kpError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_CIPHERTEXT_ERR", "The provided ciphertext is invalid or corrupted")
		return
	}
	plain, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], nil)
	if err != nil {
		kpError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_CIPHERTEXT_ERR", "The provided ciphertext is invalid or corrupted")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plain), "keyVersion": map[string]string{"id": id}})
}

type world struct {
	t     *testing.T
	clock *simcore.Clock
	ident *fakeIdentity
	authz *fakeAuthz
	sink  *fakeSink
	s3    *fakeS3
	kms   *fakeKMS
	hpcs  *fakeKMS
	srv   *slsim.Server
	api   *httptest.Server
	sess  *session.Session
}

type worldOpt func(*slsim.Config)

// newWorld starts the stand-ins and a Server. speed is the clock speed
// (simulated seconds per real second).
func newWorld(t *testing.T, speed float64, opts ...worldOpt) *world {
	t.Helper()
	w := &world{t: t, clock: simcore.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), speed)}
	w.ident = &fakeIdentity{keys: map[string]simcore.Principal{
		ownerKey:  {AccountID: testAccount, IAMID: "IBMid-2700000001", Name: "owner@example.com"},
		importKey: {AccountID: testAccount, IAMID: "iam-ServiceId-0f0f0f0f", Name: "image-import"},
		noCOSKey:  {AccountID: testAccount, IAMID: "iam-ServiceId-0e0e0e0e", Name: "no-cos"},
		otherKey:  {AccountID: "ffffffffffffffffffffffffffffffff", IAMID: "IBMid-2700000002", Name: "other@example.com"},
	}}
	w.authz = &fakeAuthz{allow: map[string]bool{}}
	w.authz.grant(testAccount, "server-protect", "kms", kpInstance)
	w.authz.grant(testAccount, "server-protect", "hs-crypto", hpInstance)
	w.sink = &fakeSink{}
	w.s3 = &fakeS3{buckets: map[string]*s3Bucket{
		"images":       {location: "us-south-standard", objects: map[string][]byte{}},
		"cross":        {location: "us-standard", objects: map[string][]byte{}},
		"single":       {location: "ams03-standard", objects: map[string][]byte{}},
		"frankfurt":    {location: "eu-de-smart", objects: map[string][]byte{}},
		"exports":      {location: "us-south-standard", objects: map[string][]byte{}},
		"plain-us-sth": {location: "us-south-vault", objects: map[string][]byte{}},
	}, readers: map[string]bool{importKey: true, ownerKey: true}, headSize: map[string]int64{}}
	w.kms = &fakeKMS{instance: kpInstance, keys: map[string]*kmsKey{}, ident: w.ident}
	w.hpcs = &fakeKMS{instance: hpInstance, keys: map[string]*kmsKey{}, ident: w.ident}

	iam := httptest.NewServer(fakeIAM(w.ident))
	s3 := httptest.NewServer(w.s3)
	kms := httptest.NewServer(w.kms)
	hpcs := httptest.NewServer(w.hpcs)
	cfg := slsim.Config{
		IAMTokenURL: iam.URL + "/identity/token", S3URL: s3.URL, KMSURL: kms.URL, HPCSURL: hpcs.URL,
		Identity: w.ident, Authz: w.authz, Events: w.sink, Clock: w.clock,
		ImportDuration: 10 * time.Minute, ProvisionDuration: 5 * time.Minute,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := slsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	w.api = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		w.api.Close()
		srv.Close()
		iam.Close()
		s3.Close()
		kms.Close()
		hpcs.Close()
	})
	w.sess = w.session(ownerKey)
	return w
}

func (w *world) session(apiKey string) *session.Session {
	return &session.Session{UserName: "apikey", APIKey: apiKey, Endpoint: w.api.URL + "/rest/v3.1", Timeout: 10 * time.Second}
}

func (w *world) keyCRN(service, instance, keyID string) string {
	return fmt.Sprintf("crn:v1:bluemix:public:%s:us-south:a/%s:%s:key:%s", service, testAccount, instance, keyID)
}

// linuxDisk returns a disk the simulated import accepts: the sample Linux
// disk of internal/sampleimage (an MBR, an ext4 root laid out as Ubuntu
// 22.04's, cloud-init 23.4.4 recorded by dpkg, ConfigDrive in its
// datasource_list) in its smallest size, 8 MiB.
func linuxDisk(t testing.TB) []byte {
	t.Helper()
	b, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tableOnlyDisk returns a disk of size bytes whose MBR lists one Linux
// partition (from 1 MiB to the end) that holds no file system.
func tableOnlyDisk(size int) []byte {
	d := make([]byte, size)
	e := d[446:462]
	e[0], e[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(size/512-2048))
	d[510], d[511] = 0x55, 0xAA
	return d
}

// noTableDisk returns size bytes of data with no partition table.
func noTableDisk(size int) []byte {
	d := make([]byte, size)
	for i := 4096; i < len(d); i += 65536 {
		d[i] = byte(i >> 16)
	}
	return d
}

// makeVHD writes raw as a tapdisk-style dynamic VHD; with a DEK it encrypts
// every sector with the tapdisk tweak and stores the key hash.
func makeVHD(t *testing.T, raw []byte, dek []byte) []byte {
	t.Helper()
	nb := vhd.NumBlocks(int64(len(raw)))
	l := &vhd.Layout{Size: int64(len(raw)), Allocated: make([]vhd.Bitmap, nb)}
	for i := range l.Allocated {
		l.Allocated[i] = vhd.FullBitmap()
	}
	var c *xts.Cipher
	if dek != nil {
		var nonce [32]byte
		_, _ = rand.Read(nonce[:])
		kh := vhd.ComputeKeyHash(nonce, dek)
		l.KeyHash = &kh
		var err error
		if c, err = xts.NewCipher(dek); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	wr, err := vhd.NewWriter(&buf, l)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, vhd.BlockSize)
	for i := 0; i < nb; i++ {
		clear(block)
		copy(block, raw[i*vhd.BlockSize:])
		if c != nil {
			if err := c.EncryptSectors(block, block, uint64(i*vhd.SectorsPerBlock)); err != nil {
				t.Fatal(err)
			}
		}
		if err := wr.WriteBlock(i, block); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomDEK(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
