// Package s3sim simulates IBM Cloud Object Storage's S3 API for one COS
// instance: it embeds gofakes3 (github.com/johannesboyne/gofakes3) with a
// file-backed store, and adds what COS does and gofakes3 does not: IBM IAM
// bearer-token authentication with the ibm-service-instance-id header, HMAC
// (AWS SigV4) authentication, access checks for service IDs, bucket
// locations (GET ?location, ListBucketsExtended), Key Protect / HPCS bucket
// encryption headers on CreateBucket and HeadBucket, the 5 MiB minimum
// part size on CompleteMultipartUpload, and S3's ETag of a multipart object
// (the MD5 of its parts' MD5s and "-N") on HEAD, GET and listings, with
// If-Match and If-None-Match on HEAD and GET evaluated against it.
//
// Object data lives in files under a directory (a temporary one by
// default, TempDirPattern, removed by Close; one left by a killed process is
// removed by the next New), metadata in memory. A completed multipart upload is stored as
// its part files, so uploads of any size take no extra memory and no copy.
//
// What this package does NOT do: presigned URLs and SigV2, versioning,
// object lock and retention, ACLs, CORS and website configuration,
// lifecycle, replication, tagging, Aspera, IBM bucket firewall and
// activity-tracking configuration, key rotation or re-encryption of data
// (objects are stored in plain form whatever the bucket's encryption), COS
// Activity Tracker data events, the endpoints of other locations, and the
// SigV4 payload hash check (the signature is verified over the
// X-Amz-Content-Sha256 header as sent).
//
// # Endpoints and locations
//
// The server is the regional endpoint of Config.Region. A request naming a
// Regional bucket of another region answers 404 NoSuchBucket, as COS does
// on the wrong endpoint ("subsequent requests to that bucket must be sent
// to the same corresponding endpoint", IBM Cloud Object Storage S3 API,
// https://cloud.ibm.com/apidocs/cos/cos-compatibility; NoSuchBucket "The
// specified bucket does not exist." for a bucket asked on another
// location's endpoint, IBM/ibm-cos-sdk-js issues #3 and #81); the
// instance's listings (GET / and GET /?extended) show every bucket
// wherever it is, as IBM's extended-listing example does. Invented: Cross
// Region and Single Data Center buckets are served here too (real COS
// serves them on their own endpoints, which the simulator does not have),
// so that their location can be read; and a bucket of any location can be
// created on this endpoint.
package s3sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/e2eimage/e2eimage/internal/cloudsim/kmssim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// ServiceName is the IAM service name of Cloud Object Storage.
const ServiceName = "cloud-object-storage"

// MinPartSize is the smallest part but the last of a multipart upload
// (../../../docs/CLOUD.md section 4.5: 5 MiB).
const MinPartSize = 5 << 20

// Location constraint parts (../../../docs/CLOUD.md section 4.3).
var (
	regionalLocations    = []string{"us-south", "us-east", "eu-gb", "eu-de", "au-syd", "jp-tok", "jp-osa", "ca-tor", "br-sao", "eu-es", "ca-mon", "in-che", "in-mum"}
	crossRegionLocations = []string{"us", "eu", "ap"}
	singleSiteLocations  = []string{"ams03", "che01", "mon01", "par01", "sjc04", "sng01"}
	storageClasses       = []string{"standard", "vault", "cold", "smart", "onerate_active"}
)

// Resiliency classes of a bucket location.
const (
	Regional    = "regional"
	CrossRegion = "cross-region"
	SingleSite  = "single-site"
)

// Resiliency classifies a location constraint such as "us-south-standard":
// Regional, CrossRegion or SingleSite, and "" for an invalid one.
func Resiliency(constraint string) string {
	for _, c := range storageClasses {
		loc, ok := strings.CutSuffix(constraint, "-"+c)
		if !ok {
			continue
		}
		switch {
		case contains(regionalLocations, loc):
			return Regional
		case contains(crossRegionLocations, loc):
			return CrossRegion
		case contains(singleSiteLocations, loc):
			return SingleSite
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ResourceAuthorizer is optionally implemented by Config.Authz to scope
// access policies to a bucket (iamsim.Server implements it).
type ResourceAuthorizer interface {
	HasResourceAccess(accountID, iamID, serviceName, serviceInstance, resourceType, resource string) bool
}

// Config configures a Server.
type Config struct {
	// Dir holds object data. Empty means a new temporary directory that
	// Close removes.
	Dir string
	// AccountID, InstanceID (GUID) and InstanceCRN identify the COS
	// instance (all required).
	AccountID, InstanceID, InstanceCRN string
	// Region is the default location of new buckets (default us-south).
	Region string
	// AccessKey and SecretKey are an HMAC credential of the account owner
	// (optional).
	AccessKey, SecretKey string
	// Identity validates bearer tokens; Authz checks access (required).
	Identity simcore.Identity
	Authz    simcore.Authorizer
	// KeyServices are the Key Protect and HPCS instances whose root keys
	// buckets may be encrypted with.
	KeyServices []*kmssim.Server
	// Events receives bucket management events (optional).
	Events simcore.EventSink
	// Clock gives simulated time (default: real time).
	Clock *simcore.Clock
	// Logger is for debug logs (default: discard).
	Logger *slog.Logger
}

// Server is a simulated COS instance. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	backend *fileBackend
	fake    http.Handler
	tempDir string
	unlock  func() // releases tempDir's owner lock

	mu      sync.Mutex
	buckets map[string]*bucketMeta
	hmac    map[string]hmacCred
}

type bucketMeta struct {
	location string
	kpCRN    string
	created  time.Time
}

type hmacCred struct {
	secret string
	p      simcore.Principal
}

// New returns a simulated COS instance with no buckets.
func New(cfg Config) (*Server, error) {
	if cfg.AccountID == "" || cfg.InstanceID == "" || cfg.InstanceCRN == "" {
		return nil, errors.New("s3sim: Config.AccountID, InstanceID and InstanceCRN are required")
	}
	if cfg.Identity == nil || cfg.Authz == nil {
		return nil, errors.New("s3sim: Config.Identity and Config.Authz are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-south"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, buckets: make(map[string]*bucketMeta), hmac: make(map[string]hmacCred)}
	dir := cfg.Dir
	if dir == "" {
		d, unlock, err := makeTempDir()
		if err != nil {
			return nil, err
		}
		dir, s.tempDir, s.unlock = d, d, unlock
	}
	b, err := newFileBackend(dir, s.now)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.backend = b
	s.fake = gofakes3.New(b,
		gofakes3.WithTimeSource(clockSource{s}),
		gofakes3.WithTimeSkewLimit(0), // the simulation clock may run fast
		gofakes3.WithLogger(gofakes3.DiscardLog()),
		gofakes3.WithIntegrityCheck(true),
	).Server()
	return s, nil
}

type clockSource struct{ s *Server }

func (c clockSource) Now() time.Time                  { return c.s.now() }
func (c clockSource) Since(t time.Time) time.Duration { return c.s.now().Sub(t) }

func (s *Server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock.Now().UTC()
	}
	return time.Now().UTC()
}

// Close removes the temporary data directory, if New made one. A
// simulator that ends without Close (killed) leaves its directory, which
// the next New in the same temporary directory removes.
func (s *Server) Close() error {
	if s.tempDir == "" {
		return nil
	}
	err := os.RemoveAll(s.tempDir)
	s.unlock()
	s.tempDir, s.unlock = "", nil
	if err != nil {
		return fmt.Errorf("s3sim: removing the data directory: %w", err)
	}
	return nil
}

// AddHMAC registers an HMAC credential for a principal.
func (s *Server) AddHMAC(accessKey, secretKey string, p simcore.Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hmac[accessKey] = hmacCred{secret: secretKey, p: p}
}

// BucketCRN returns a bucket's CRN.
func (s *Server) BucketCRN(bucket string) string {
	return fmt.Sprintf("crn:v1:bluemix:public:cloud-object-storage:global:a/%s:%s:bucket:%s", s.cfg.AccountID, s.cfg.InstanceID, bucket)
}

// CreateBucket creates a bucket directly (for seeding and tests) with a
// location constraint such as "us-south-standard" ("" = the region's
// standard class).
func (s *Server) CreateBucket(name, location string) error {
	if location == "" {
		location = s.cfg.Region + "-standard"
	}
	if Resiliency(location) == "" {
		return fmt.Errorf("s3sim: invalid location constraint %q", location)
	}
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return fmt.Errorf("s3sim: bucket %q: %w", name, err)
	}
	if err := s.backend.CreateBucket(name); err != nil {
		return fmt.Errorf("s3sim: creating bucket %q: %w", name, err)
	}
	s.mu.Lock()
	s.buckets[name] = &bucketMeta{location: location, created: s.now()}
	s.mu.Unlock()
	return nil
}

// BucketLocation returns a bucket's location constraint.
func (s *Server) BucketLocation(bucket string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.buckets[bucket]
	if !ok {
		return "", false
	}
	return m.location, true
}

// elsewhere reports whether bucket is a Regional bucket of another region
// than the endpoint's.
func (s *Server) elsewhere(bucket string) bool {
	loc, ok := s.BucketLocation(bucket)
	return ok && Resiliency(loc) == Regional && Location(loc) != s.cfg.Region
}

// Location returns the location part of a location constraint
// ("eu-de-smart" → "eu-de"), or "" for an invalid one.
func Location(constraint string) string {
	if Resiliency(constraint) == "" {
		return ""
	}
	return constraint[:strings.LastIndexByte(constraint, '-')]
}

// BucketKeyCRN returns the root key CRN a bucket is encrypted with, or "".
func (s *Server) BucketKeyCRN(bucket string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.buckets[bucket]; ok {
		return m.kpCRN
	}
	return ""
}

// Open opens an object for reading in process (for other simulated
// services, such as the image import) and returns its size.
func (s *Server) Open(bucket, key string) (io.ReadSeekCloser, int64, error) {
	r, err := s.backend.open(bucket, key)
	if err != nil {
		return nil, 0, fmt.Errorf("s3sim: opening %s/%s: %w", bucket, key, err)
	}
	return r, r.size, nil
}

// Put stores an object directly (for seeding and tests).
func (s *Server) Put(bucket, key string, body io.Reader, size int64) error {
	meta := map[string]string{"Last-Modified": s.now().Format(http.TimeFormat)}
	_, err := s.backend.PutObject(bucket, key, meta, body, size, nil)
	return err
}

// PendingUploads returns how many multipart uploads are in progress in a
// bucket.
func (s *Server) PendingUploads(bucket string) int { return s.backend.pending(bucket) }

// IsNotFound reports whether an error from Open means the bucket or object
// does not exist.
func IsNotFound(err error) bool {
	return gofakes3.HasErrorCode(errors.Unwrap(err), gofakes3.ErrNoSuchKey) ||
		gofakes3.HasErrorCode(errors.Unwrap(err), gofakes3.ErrNoSuchBucket)
}

// s3Error writes an S3 XML error.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	_ = xml.NewEncoder(&b).Encode(struct {
		XMLName    xml.Name `xml:"Error"`
		Code       string   `xml:"Code"`
		Message    string   `xml:"Message"`
		Resource   string   `xml:"Resource"`
		RequestID  string   `xml:"RequestId"`
		StatusCode int      `xml:"httpStatusCode"`
	}{Code: code, Message: msg, Resource: r.URL.Path, RequestID: randomHex(8), StatusCode: status})
	_, _ = w.Write(b.Bytes())
}

func writeXML(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(b.Bytes())
}

// Query parameters the simulator understands; requests carrying other
// subresources (acl, tagging, lifecycle, ...) get 501 rather than being
// mistaken for a listing or a plain GET.
var knownQuery = map[string]bool{
	"list-type": true, "prefix": true, "delimiter": true, "marker": true, "max-keys": true,
	"continuation-token": true, "start-after": true, "fetch-owner": true, "encoding-type": true,
	"location": true, "uploads": true, "uploadId": true, "partNumber": true, "key-marker": true,
	"upload-id-marker": true, "max-uploads": true, "max-parts": true, "part-number-marker": true,
	"delete": true, "extended": true, "x-id": true,
	"response-content-type": true, "response-content-language": true, "response-expires": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
}

// Handler serves the S3 API, path-style (/bucket/key).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	for k := range r.URL.Query() {
		if !knownQuery[k] {
			s3Error(w, r, http.StatusNotImplemented, "NotImplemented", "The simulated COS does not implement the "+k+" subresource")
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")

	p, ok := s.authenticate(w, r, bucket)
	if !ok {
		return
	}
	q := r.URL.Query()
	if bucket != "" && !(key == "" && r.Method == http.MethodPut) && s.elsewhere(bucket) {
		// COS: a bucket is reached only on its location's endpoint; on
		// another it does not exist (see the package documentation).
		s3Error(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	switch {
	case bucket == "":
		if r.Method != http.MethodGet {
			s3Error(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource")
			return
		}
		s.listBuckets(w, r, q.Has("extended"))
		return
	case key == "" && r.Method == http.MethodPut:
		s.createBucket(w, r, p, bucket)
		return
	case key == "" && r.Method == http.MethodGet && q.Has("location"):
		loc, ok := s.BucketLocation(bucket)
		if !ok {
			s3Error(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
			Value   string   `xml:",chardata"`
		}{Value: loc})
		return
	case key == "" && r.Method == http.MethodHead:
		s.mu.Lock()
		m := s.buckets[bucket]
		s.mu.Unlock()
		if m != nil {
			w.Header().Set("ibm-sse-kp-enabled", fmt.Sprint(m.kpCRN != ""))
			if m.kpCRN != "" {
				w.Header().Set("ibm-sse-kp-customer-root-key-crn", m.kpCRN)
			}
		}
	case key == "" && r.Method == http.MethodDelete:
		rec := &simcore.StatusRecorder{ResponseWriter: w}
		s.fake.ServeHTTP(rec, r)
		if rec.Status == http.StatusNoContent {
			s.bucketDeleted(r, p, bucket)
		}
		return
	case key != "" && r.Method == http.MethodPost && q.Has("uploadId"):
		if !s.checkPartSizes(w, r, bucket, key, q.Get("uploadId")) {
			return
		}
	case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !q.Has("uploadId"):
		s.getObject(w, r, bucket, key)
		return
	}
	s.fake.ServeHTTP(w, r)
}

// getObject serves GetObject and HeadObject through gofakes3 with the
// object's S3 ETag: gofakes3 writes the hex of the backend's hash, which
// for a multipart object lacks the "-N" suffix S3 and COS give, and it
// ignores If-Match and compares If-None-Match with that bare hash. The
// conditions are evaluated here against the object's real ETag instead.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if etag, ok := s.backend.objectETag(bucket, key); ok {
		if im := r.Header.Get("If-Match"); im != "" && !etagListMatches(im, etag) {
			s3Error(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			return
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, etag) {
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	r = r.Clone(r.Context())
	r.Header.Del("If-None-Match") // decided above
	ew := &etagWriter{ResponseWriter: w, b: s.backend, bucket: bucket, key: key}
	s.fake.ServeHTTP(ew, r)
	ew.fix() // a HEAD answer may have written nothing: net/http sends the header after the handler returns
}

// etagWriter completes the ETag header gofakes3 writes for an object
// before the header goes out.
type etagWriter struct {
	http.ResponseWriter
	b           *fileBackend
	bucket, key string
	done        bool
}

func (e *etagWriter) fix() {
	if e.done {
		return
	}
	e.done = true
	if v := e.Header().Get("ETag"); v != "" {
		e.Header().Set("ETag", e.b.fullETag(e.bucket, e.key, v))
	}
}

func (e *etagWriter) WriteHeader(code int) {
	e.fix()
	e.ResponseWriter.WriteHeader(code)
}

func (e *etagWriter) Write(p []byte) (int, error) {
	e.fix()
	return e.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the underlying writer.
func (e *etagWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// sameETag compares two ETags, quoted or not.
func sameETag(a, b string) bool {
	return strings.Trim(strings.TrimSpace(a), `"`) == strings.Trim(strings.TrimSpace(b), `"`)
}

// etagListMatches reports whether an If-Match or If-None-Match value ("*"
// or a comma-separated list of quoted ETags) names etag. S3 compares ETags
// strongly, so a weak "W/" tag never matches.
func etagListMatches(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || (!strings.HasPrefix(v, "W/") && sameETag(v, etag)) {
			return true
		}
	}
	return false
}

// authenticate checks the credentials and the caller's access; it writes
// the error itself when it returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, bucket string) (simcore.Principal, bool) {
	auth := r.Header.Get("Authorization")
	var p simcore.Principal
	bearer := false
	switch {
	case auth == "":
		s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied: the request has no credentials")
		return p, false
	case strings.HasPrefix(auth, "AWS4-HMAC-SHA256 "):
		sig, err := parseSigV4(auth)
		if err != nil {
			s3Error(w, r, http.StatusBadRequest, "AuthorizationHeaderMalformed", err.Error())
			return p, false
		}
		s.mu.Lock()
		cred, ok := s.hmac[sig.accessKey]
		s.mu.Unlock()
		if !ok {
			s3Error(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
			return p, false
		}
		if !verifySigV4(r, sig, cred.secret) {
			s3Error(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return p, false
		}
		p = cred.p
	case len(auth) > 7 && strings.EqualFold(auth[:7], "bearer "):
		var ok bool
		if p, ok = s.cfg.Identity.LookupToken(auth); !ok {
			s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied: the IAM token is invalid or expired")
			return p, false
		}
		bearer = true
	default:
		s3Error(w, r, http.StatusBadRequest, "InvalidArgument", "Unsupported authorization type (presigned URLs and SigV2 are not simulated)")
		return p, false
	}
	if bearer && (bucket == "" || (r.Method == http.MethodPut && !strings.Contains(strings.TrimPrefix(r.URL.Path, "/"), "/"))) {
		inst := r.Header.Get("ibm-service-instance-id")
		if inst != s.cfg.InstanceID && inst != s.cfg.InstanceCRN {
			s3Error(w, r, http.StatusBadRequest, "InvalidArgument", "The ibm-service-instance-id header must name the COS instance")
			return p, false
		}
	}
	if p.AccountID != s.cfg.AccountID || !s.allowed(p, bucket) {
		s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied")
		return p, false
	}
	return p, true
}

func (s *Server) allowed(p simcore.Principal, bucket string) bool {
	if bucket != "" {
		if ra, ok := s.cfg.Authz.(ResourceAuthorizer); ok {
			return ra.HasResourceAccess(p.AccountID, p.IAMID, ServiceName, s.cfg.InstanceID, "bucket", bucket)
		}
	}
	return s.cfg.Authz.HasAccess(p.AccountID, p.IAMID, ServiceName, s.cfg.InstanceID)
}

type createBucketConfiguration struct {
	LocationConstraint string `xml:"LocationConstraint"`
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, p simcore.Principal, bucket string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		s3Error(w, r, http.StatusBadRequest, "IncompleteBody", "reading the request body failed")
		return
	}
	var cfg createBucketConfiguration
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xml.Unmarshal(body, &cfg); err != nil {
			s3Error(w, r, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
			return
		}
	}
	loc := cfg.LocationConstraint
	if loc == "" {
		loc = s.cfg.Region + "-standard"
	}
	if Resiliency(loc) == "" {
		s3Error(w, r, http.StatusBadRequest, "InvalidLocationConstraint", "The specified location-constraint is not valid")
		return
	}
	if err := gofakes3.ValidateBucketName(bucket); err != nil {
		s3Error(w, r, http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
		return
	}
	algo := r.Header.Get("ibm-sse-kp-encryption-algorithm")
	crn := r.Header.Get("ibm-sse-kp-customer-root-key-crn")
	var keySvc *kmssim.Server
	var keyInfo kmssim.KeyInfo
	if algo != "" || crn != "" {
		if algo != "AES256" || crn == "" {
			s3Error(w, r, http.StatusBadRequest, "InvalidArgument", "ibm-sse-kp-encryption-algorithm must be AES256 and come with ibm-sse-kp-customer-root-key-crn")
			return
		}
		for _, k := range s.cfg.KeyServices {
			if info, ok := k.LookupCRN(crn); ok && !info.Extractable && info.State == kmssim.StateActive &&
				s.cfg.Authz.HasAuthorization(s.cfg.AccountID, ServiceName, k.ServiceName(), k.InstanceID()) {
				keySvc, keyInfo = k, info
			}
		}
		if keySvc == nil {
			s3Error(w, r, http.StatusBadRequest, "InvalidArgument", "The Key CRN could not be found")
			return
		}
	}
	if err := s.backend.CreateBucket(bucket); err != nil {
		if gofakes3.IsAlreadyExists(err) {
			s3Error(w, r, http.StatusConflict, "BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
			return
		}
		s3Error(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	s.mu.Lock()
	s.buckets[bucket] = &bucketMeta{location: loc, kpCRN: crn, created: s.now()}
	s.mu.Unlock()
	if keySvc != nil {
		_ = keySvc.Register(keyInfo.ID, s.BucketCRN(bucket))
	}
	s.record(r, p, "cloud-object-storage.bucket.create", bucket, http.StatusOK, map[string]any{"location": loc, "kpEnabled": crn != ""})
	w.Header().Set("Location", "/"+bucket)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) bucketDeleted(r *http.Request, p simcore.Principal, bucket string) {
	s.mu.Lock()
	m := s.buckets[bucket]
	delete(s.buckets, bucket)
	s.mu.Unlock()
	if m != nil && m.kpCRN != "" {
		for _, k := range s.cfg.KeyServices {
			if info, ok := k.LookupCRN(m.kpCRN); ok {
				k.Unregister(info.ID, s.BucketCRN(bucket))
			}
		}
	}
	s.record(r, p, "cloud-object-storage.bucket.delete", bucket, http.StatusNoContent, nil)
}

func (s *Server) record(r *http.Request, p simcore.Principal, action, bucket string, code int, resp map[string]any) {
	if s.cfg.Events == nil {
		return
	}
	s.cfg.Events.Record(simcore.Event{
		Action: action, Outcome: simcore.OutcomeSuccess, Severity: simcore.SeverityNormal, EventTime: s.now(),
		Initiator: simcore.Initiator{ID: p.IAMID, Name: p.Name, TypeURI: "service/security/account/user",
			Credential: simcore.Credential{Type: "token"}, Host: simcore.Host{Address: simcore.RemoteHost(r)}},
		Target:       simcore.Target{ID: s.BucketCRN(bucket), Name: bucket, TypeURI: "cloud-object-storage/bucket"},
		Reason:       simcore.Reason{ReasonCode: code, ReasonType: http.StatusText(code)},
		RequestData:  map[string]any{"requestURI": r.URL.RequestURI()},
		ResponseData: resp,
		LogSourceCRN: s.cfg.InstanceCRN,
		Message:      "Cloud Object Storage: " + action[strings.LastIndexByte(action, '.')+1:] + " bucket " + bucket,
	})
}

type bucketXML struct {
	Name               string `xml:"Name"`
	CreationDate       string `xml:"CreationDate"`
	LocationConstraint string `xml:"LocationConstraint,omitempty"`
}

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request, extended bool) {
	s.mu.Lock()
	names := make([]string, 0, len(s.buckets))
	for n := range s.buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]bucketXML, 0, len(names))
	for _, n := range names {
		m := s.buckets[n]
		b := bucketXML{Name: n, CreationDate: m.created.UTC().Format("2006-01-02T15:04:05.000Z")}
		if extended {
			b.LocationConstraint = m.location
		}
		list = append(list, b)
	}
	s.mu.Unlock()
	type owner struct {
		ID          string `xml:"ID"`
		DisplayName string `xml:"DisplayName"`
	}
	out := struct {
		XMLName     xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
		Owner       owner       `xml:"Owner"`
		IsTruncated *bool       `xml:"IsTruncated,omitempty"`
		Buckets     []bucketXML `xml:"Buckets>Bucket"`
	}{Owner: owner{ID: s.cfg.InstanceID, DisplayName: s.cfg.InstanceID}, Buckets: list}
	if extended {
		f := false
		out.IsTruncated = &f
	}
	writeXML(w, out)
}

// checkPartSizes enforces the minimum part size before gofakes3 completes
// an upload; it restores the body for it.
func (s *Server) checkPartSizes(w http.ResponseWriter, r *http.Request, bucket, key, uploadID string) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20)) // 10,000 parts fit easily
	if err != nil {
		s3Error(w, r, http.StatusBadRequest, "IncompleteBody", "reading the request body failed")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in gofakes3.CompleteMultipartUploadRequest
	if err := xml.Unmarshal(body, &in); err != nil {
		return true // gofakes3 reports the malformed XML
	}
	nums := make([]int, len(in.Parts))
	for i, p := range in.Parts {
		nums[i] = p.PartNumber
	}
	sizes, err := s.backend.partSizes(bucket, key, gofakes3.UploadID(uploadID), nums)
	if err != nil {
		return true // gofakes3 reports NoSuchUpload
	}
	for i, n := range nums {
		if sz, ok := sizes[n]; ok && i < len(nums)-1 && sz < MinPartSize {
			s3Error(w, r, http.StatusBadRequest, "EntityTooSmall",
				fmt.Sprintf("Your proposed upload is smaller than the minimum allowed object size: part %d is %d bytes, the minimum is %d", n, sz, MinPartSize))
			return false
		}
	}
	return true
}
