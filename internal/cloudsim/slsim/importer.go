package slsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam/token"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/secret"
)

// Import limits.
const (
	// MaxImportDiskSize is the largest guest disk an import accepts: "disk at
	// most 100 GB; boot volume only" (../../../docs/CLOUD.md section 7.2, from IBM's
	// image-templates create-encrypted-image.md). Classic infrastructure
	// sizes disks in binary gigabytes, so 100 GB is read as 100 GiB.
	MaxImportDiskSize = 100 << 30
	// MaxImportObjectSize is the largest image object an import reads: a
	// MaxImportDiskSize disk plus the VHD metadata of a fully allocated
	// dynamic VHD (a 512-byte bitmap and up to 3.5 KiB of alignment per
	// 2 MiB block, the BAT and footers), rounded up to 1/256 of the disk.
	MaxImportObjectSize = MaxImportDiskSize + MaxImportDiskSize/256
)

// Failure reasons of an import. A failed template's status.description, the
// metaData "reason" of its "Import Failed" Event_Log record and the
// reasonForFailure of its Activity Tracker event start with one of these,
// optionally followed by ": " and a detail. IBM does not document its
// messages; these are the simulator's.
const (
	ReasonInvalidAPIKey         = "invalid ibmApiKey"
	ReasonIAMFailed             = "IAM token request failed"
	ReasonBucketNotFound        = "bucket not found"
	ReasonObjectNotFound        = "image object not found"
	ReasonCOSAccessDenied       = "ibmApiKey has no access to the image in Cloud Object Storage"
	ReasonBucketNotRegional     = "bucket is not Regional"
	ReasonBucketRegion          = "bucket is not in the region of the uri"
	ReasonBucketKeyRegion       = "bucket is not in the root key's region"
	ReasonObjectTooLarge        = "image object is larger than 100 GB"
	ReasonCOSFailed             = "reading the image from Cloud Object Storage failed"
	ReasonNotVHD                = "image is not a VHD"
	ReasonBadVHD                = "image is not a valid VHD"
	ReasonDiskTooLarge          = "virtual disk is larger than 100 GB"
	ReasonNotEncrypted          = "image is not encrypted"
	ReasonUnexpectedlyEncrypted = "image is encrypted but isEncrypted is not set"
	ReasonNoAuthorization       = "no authorization from Cloud Block Storage to" // followed by " kms" or " hs-crypto"
	ReasonKeyNotFound           = "root key not found"
	ReasonKeyNotActive          = "root key is not active"
	ReasonKeyDeleted            = "root key has been deleted"
	ReasonKMSAccessDenied       = "ibmApiKey has no access to the root key"
	ReasonUnwrapFailed          = "wrapped DEK does not unwrap under this root key"
	ReasonKMSFailed             = "key management service request failed"
	ReasonBadDEKSize            = "unwrapped DEK is not 32 or 64 bytes"
	ReasonDEKMismatch           = "DEK does not match the image's key hash"
	ReasonNoPartitionTable      = "no partition table: the image does not decrypt to a bootable disk"
	ReasonNoRootFS              = "no Linux root file system found on the disk"
	ReasonNoCloudInit           = "cloud-init is not installed"
	ReasonCloudInitTooOld       = "cloud-init is older than 0.7.7"
	ReasonNoConfigDrive         = "cloud-init's datasource_list excludes ConfigDrive"
	ReasonInternal              = "internal error"
)

// importFailure is a failed import step: a Reason* constant and a detail
// that never contains a secret.
type importFailure struct {
	reason, detail string
	internal       bool // a fault of the simulated platform, not of the request
}

func (f *importFailure) Error() string {
	if f.detail == "" {
		return f.reason
	}
	return f.reason + ": " + f.detail
}

func failf(reason, format string, a ...any) *importFailure {
	return &importFailure{reason: reason, detail: fmt.Sprintf(format, a...)}
}

type importJob struct {
	templateID int
	acct       *account
	who        actor
	req        *importRequest
}

type importResult struct {
	virtualSize int64
	keySize     int
	// imageCheck summarises the guest checks: "checked: ..." or "not
	// checked: ..." (see checkGuest).
	imageCheck string
	// imageCheckRead counts the guest-disk bytes the checks fetched.
	imageCheckRead int64
}

// runImport is the import transaction: verify, then copy for
// ImportDuration of simulated time, then Active (or Error with a reason).
func (s *Server) runImport(ctx context.Context, j *importJob) {
	res, err := s.importImage(ctx, j)
	if ctx.Err() != nil {
		j.req.apiKey.Zero() // deleted, or the server is closing
		return
	}
	if err != nil {
		var f *importFailure
		if !errors.As(err, &f) {
			f = &importFailure{reason: ReasonInternal, detail: err.Error(), internal: true}
		}
		s.finishImport(j, nil, f)
		return
	}
	if !s.setTemplateTx(j.templateID, TxImportCopy) {
		return
	}
	if err := s.clock.Sleep(ctx, s.cfg.ImportDuration); err != nil {
		j.req.apiKey.Zero()
		return
	}
	s.finishImport(j, res, nil)
}

// importImage runs the checks of the import backplane in order; each
// failure is an *importFailure.
func (s *Server) importImage(ctx context.Context, j *importJob) (*importResult, error) {
	req := j.req
	if !s.setTemplateTx(j.templateID, TxImportAuth) {
		return nil, context.Canceled
	}
	tok, err := s.iamToken(ctx, req.apiKey)
	if err != nil {
		return nil, err
	}
	defer tok.Zero()

	if !s.setTemplateTx(j.templateID, TxImportDownload) {
		return nil, context.Canceled
	}
	cos, release, err := s.s3Client(tok, req.uri.region)
	if err != nil {
		return nil, err
	}
	defer release()
	size, err := s.checkObject(ctx, cos, req)
	if err != nil {
		return nil, err
	}

	if !s.setTemplateTx(j.templateID, TxImportVerify) {
		return nil, context.Canceled
	}
	ra := &s3ReaderAt{ctx: ctx, client: cos, bucket: req.uri.bucket, key: req.uri.key, size: size}
	img, err := inspectImage(ra, size)
	if err != nil {
		return nil, err
	}
	res := &importResult{virtualSize: img.virtualSize()}
	if res.virtualSize > MaxImportDiskSize {
		return nil, failf(ReasonDiskTooLarge, "the virtual disk is %d bytes; the limit is %d", res.virtualSize, int64(MaxImportDiskSize))
	}
	switch {
	case req.encrypted && !img.encrypted():
		return nil, failf(ReasonNotEncrypted, "the VHD carries no key hash; encrypt it with vhd-util copy -k or an equivalent tool")
	case !req.encrypted && img.encrypted():
		return nil, failf(ReasonUnexpectedlyEncrypted, "the VHD carries a key hash; import it with isEncrypted, crkCrn and wrappedDek")
	}
	osr, _ := findOS(req.osCode)
	check := guestCheck{windows: osr.maker == "Microsoft", cloudInit: req.cloudInit}
	if !req.encrypted {
		if err := img.verifyBoot(nil); err != nil {
			return nil, err
		}
		res.imageCheck, err = img.checkGuest(nil, check)
		res.imageCheckRead = img.guestBytes
		if err != nil {
			return nil, err
		}
		return res, nil
	}

	if !s.setTemplateTx(j.templateID, TxImportKey) {
		return nil, context.Canceled
	}
	if !s.cfg.Authz.HasAuthorization(j.acct.ibm, "server-protect", req.crk.service, req.crk.instance) {
		return nil, failf(ReasonNoAuthorization+" "+req.crk.service,
			"create a service-to-service authorization from Cloud Block Storage (server-protect) to %s instance %s with the Reader role",
			req.crk.service, req.crk.instance)
	}
	dek, err := s.unwrapDEK(ctx, req)
	if err != nil {
		return nil, err
	}
	defer dek.Zero()
	res.keySize = dek.Len()
	if !s.setTemplateTx(j.templateID, TxImportVerify) {
		return nil, context.Canceled
	}
	if err := img.verifyBoot(dek.Bytes()); err != nil {
		return nil, err
	}
	res.imageCheck, err = img.checkGuest(dek.Bytes(), check)
	res.imageCheckRead = img.guestBytes
	if err != nil {
		return nil, err
	}
	return res, nil
}

// finishImport records the outcome of an import. Caller does not hold s.mu.
func (s *Server) finishImport(j *importJob, res *importResult, f *importFailure) {
	s.mu.Lock()
	t, ok := s.templates[j.templateID]
	if !ok {
		s.mu.Unlock()
		return
	}
	t.cancel = nil
	ch := s.importChild(t)
	if ch != nil {
		ch.tx = nil
	}
	var ev simcore.Event
	meta := map[string]any{"uri": t.uri, "globalIdentifier": t.guid}
	if f != nil {
		t.status, t.reason = TemplateStatusError, f.Error()
		if ch != nil {
			ch.status = TemplateStatusError
		}
		if t.apiKey != nil {
			t.apiKey.Zero()
		}
		meta["reason"] = t.reason
		s.logEvent(j.acct, j.who, true, ObjectImage, t.id, EventImportFailed, t.name, meta)
		code := 400
		if f.internal {
			code = 500
		}
		ev = s.auditEvent(j.acct, j.who, ActionTemplateCreate, simcore.OutcomeFailure, "image-template", t.id, t.name,
			code, t.reason, map[string]any{"uri": t.uri, "isEncrypted": t.encrypted}, nil)
		if s.cfg.DeleteFailedImports {
			for _, id := range append([]int{t.id}, t.children...) {
				delete(s.templates, id)
			}
		}
		s.log.Info("slsim: image import failed", "template", t.id, "reason", t.reason)
	} else {
		t.status, t.reason = TemplateStatusActive, ""
		t.virtualSize, t.keySize, t.imageCheck, t.imageCheckRead = res.virtualSize, res.keySize, res.imageCheck, res.imageCheckRead
		s.ids.blockDevice++
		t.blockDevID = s.ids.blockDevice
		if ch != nil {
			ch.virtualSize, ch.keySize, ch.imageCheck, ch.ready = res.virtualSize, res.keySize, res.imageCheck, true
			t.datacenters = append([]string(nil), ch.datacenters...)
		}
		// The import's API key stays in memory: copyToIcos streams the
		// source object again, for encrypted templates too.
		meta["virtualSize"] = t.virtualSize
		s.logEvent(j.acct, j.who, true, ObjectImage, t.id, EventImportComplete, t.name, meta)
		ev = s.auditEvent(j.acct, j.who, ActionTemplateCreate, simcore.OutcomeSuccess, "image-template", t.id, t.name,
			200, "", map[string]any{"uri": t.uri, "isEncrypted": t.encrypted},
			map[string]any{"id": t.id, "globalIdentifier": t.guid, "status": "Active"})
		s.log.Info("slsim: image import complete", "template", t.id, "imageCheck", t.imageCheck)
	}
	s.mu.Unlock()
	s.emit(ev)
}

// iamToken exchanges the import's API key for an access token at
// IAMTokenURL, as the backplane does before it touches COS.
func (s *Server) iamToken(ctx context.Context, apiKey *secret.String) (*secret.String, error) {
	if s.cfg.IAMTokenURL == "" {
		return nil, &importFailure{reason: ReasonInternal, detail: "no IAM token URL configured", internal: true}
	}
	form := url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {apiKey.Reveal()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.IAMTokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &importFailure{reason: ReasonIAMFailed, detail: err.Error(), internal: true}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &importFailure{reason: ReasonIAMFailed, detail: scrubURLError(err), internal: true}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var tr struct {
		AccessToken  string `json:"access_token"`
		ErrorCode    string `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &tr)
	clear(body)
	switch {
	case resp.StatusCode == http.StatusOK && tr.AccessToken != "":
		return secret.NewString(tr.AccessToken), nil
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized ||
		resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusConflict:
		detail := "IAM refused the API key"
		if tr.ErrorCode != "" {
			detail += " (" + tr.ErrorCode + ": " + tr.ErrorMessage + ")"
		}
		return nil, failf(ReasonInvalidAPIKey, "%s", detail)
	default:
		return nil, &importFailure{reason: ReasonIAMFailed, detail: fmt.Sprintf("HTTP %d", resp.StatusCode), internal: true}
	}
}

// scrubURLError drops the query of a *url.Error's URL (a form body never
// reaches it, but be safe).
func scrubURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return ue.Op + " " + u + ": " + ue.Err.Error()
	}
	return err.Error()
}

// tokenProvider gives the COS SDK a fixed IAM access token. The SDK's own
// ibmiam providers would fetch a second token and arm a background refresh
// timer that outlives the import.
type tokenProvider struct{ tok *secret.String }

func (p *tokenProvider) Retrieve() (credentials.Value, error) {
	if p.tok.Empty() {
		return credentials.Value{}, errors.New("slsim: import token already released")
	}
	return credentials.Value{
		Token:        token.Token{AccessToken: p.tok.Reveal(), TokenType: "Bearer"},
		ProviderName: "slsimImportToken",
		ProviderType: "oauth",
	}, nil
}

func (p *tokenProvider) IsExpired() bool { return false }

// s3Client returns a COS client authenticated by tok and a function that
// releases its connections. Each client gets its own http.Client and
// transport: the SDK's session rewrites the client's transport when
// AWS_CA_BUNDLE is set, which must not touch a shared one.
func (s *Server) s3Client(tok *secret.String, region string) (*s3.S3, func(), error) {
	if s.cfg.S3URL == "" {
		return nil, nil, &importFailure{reason: ReasonInternal, detail: "no Cloud Object Storage endpoint configured", internal: true}
	}
	hc := *s.http
	switch t := hc.Transport.(type) {
	case nil:
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		hc.Transport = t.Clone()
	}
	release := func() { hc.CloseIdleConnections() }
	conf := aws.NewConfig().
		WithEndpoint(s.cfg.S3URL).
		WithRegion(region).
		WithS3ForcePathStyle(true).
		WithHTTPClient(&hc).
		WithMaxRetries(2).
		WithCredentials(credentials.NewCredentials(&tokenProvider{tok: tok}))
	sess, err := session.NewSession(conf)
	if err != nil {
		release()
		return nil, nil, &importFailure{reason: ReasonInternal, detail: "creating the COS client: " + err.Error(), internal: true}
	}
	return s3.New(sess), release, nil
}

// COS location classes (../../../docs/CLOUD.md section 4.3): a LocationConstraint is
// <location>-<class>.
var (
	cosClasses     = []string{"standard", "vault", "cold", "smart", "flex", "onerate_active"}
	cosRegions     = map[string]bool{"us-south": true, "us-east": true, "eu-gb": true, "eu-de": true, "au-syd": true, "jp-tok": true, "jp-osa": true, "ca-tor": true, "br-sao": true, "eu-es": true, "ca-mon": true, "in-che": true, "in-mum": true}
	cosCrossRegion = map[string]bool{"us": true, "eu": true, "ap": true}
)

// bucketLocation splits a LocationConstraint into location and class.
func bucketLocation(lc string) (location, class string) {
	for _, c := range cosClasses {
		if l, ok := strings.CutSuffix(lc, "-"+c); ok {
			return l, c
		}
	}
	return lc, ""
}

func cosFailure(err error, what string) *importFailure {
	var rf awserr.RequestFailure
	if errors.As(err, &rf) {
		switch {
		case rf.StatusCode() == http.StatusForbidden || rf.StatusCode() == http.StatusUnauthorized:
			return failf(ReasonCOSAccessDenied, "%s: HTTP %d %s", what, rf.StatusCode(), rf.Code())
		case rf.Code() == "NoSuchBucket":
			return failf(ReasonBucketNotFound, "%s", what)
		case rf.StatusCode() == http.StatusNotFound:
			return failf(ReasonObjectNotFound, "%s", what)
		}
		return &importFailure{reason: ReasonCOSFailed, detail: fmt.Sprintf("%s: HTTP %d %s", what, rf.StatusCode(), rf.Code()), internal: rf.StatusCode() >= 500}
	}
	return &importFailure{reason: ReasonCOSFailed, detail: what + ": " + err.Error(), internal: true}
}

// checkObject checks the bucket's location and the object's size.
func (s *Server) checkObject(ctx context.Context, cos *s3.S3, req *importRequest) (int64, error) {
	u := req.uri
	loc, err := cos.GetBucketLocationWithContext(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(u.bucket)})
	if err != nil {
		f := cosFailure(err, "bucket "+u.bucket)
		if f.reason == ReasonObjectNotFound {
			f.reason = ReasonBucketNotFound
		}
		return 0, f
	}
	lc := aws.StringValue(loc.LocationConstraint)
	where, _ := bucketLocation(lc)
	switch {
	case lc == "":
		return 0, failf(ReasonBucketNotRegional, "bucket %s reports no location constraint", u.bucket)
	case cosCrossRegion[where]:
		return 0, failf(ReasonBucketNotRegional, "bucket %s is Cross Region (%s); E2E import needs a Regional bucket", u.bucket, lc)
	case !cosRegions[where]:
		return 0, failf(ReasonBucketNotRegional, "bucket %s is Single Data Center or unknown (%s); E2E import needs a Regional bucket", u.bucket, lc)
	case where != u.region:
		return 0, failf(ReasonBucketRegion, "bucket %s is in %s, the uri says %s", u.bucket, where, u.region)
	case req.encrypted && where != req.crk.region:
		return 0, failf(ReasonBucketKeyRegion, "bucket %s is in %s, the root key in %s", u.bucket, where, req.crk.region)
	}
	head, err := cos.HeadObjectWithContext(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key)})
	if err != nil {
		return 0, cosFailure(err, "object "+u.String())
	}
	size := aws.Int64Value(head.ContentLength)
	if size > MaxImportObjectSize {
		return 0, failf(ReasonObjectTooLarge, "%s is %d bytes; the limit is %d", u.String(), size, int64(MaxImportObjectSize))
	}
	return size, nil
}

// s3ReaderAt reads an object through ranged GETs, so that verifying an image
// reads only its metadata and first sectors, never the whole object.
type s3ReaderAt struct {
	ctx    context.Context
	client *s3.S3
	bucket string
	key    string
	size   int64
}

func (r *s3ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("slsim: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p)) - 1
	if end >= r.size {
		end = r.size - 1
	}
	out, err := r.client.GetObjectWithContext(r.ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(r.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
	})
	if err != nil {
		return 0, cosFailure(err, fmt.Sprintf("reading bytes %d-%d of cos://%s/%s", off, end, r.bucket, r.key))
	}
	defer out.Body.Close()
	want := int(end - off + 1)
	n, err := io.ReadFull(out.Body, p[:want])
	if err != nil {
		return n, cosFailure(err, fmt.Sprintf("reading bytes %d-%d of cos://%s/%s", off, end, r.bucket, r.key))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// unwrapDEK unwraps the import's WDEK with keyprotect-go-client against Key
// Protect or HPCS (chosen by the CRN's service), authenticated by ibmApiKey.
func (s *Server) unwrapDEK(ctx context.Context, req *importRequest) (*secret.DEK, error) {
	base := s.cfg.KMSURL
	if req.crk.service == "hs-crypto" {
		base = s.cfg.HPCSURL
	}
	if base == "" {
		return nil, &importFailure{reason: ReasonInternal, detail: "no endpoint configured for " + req.crk.service, internal: true}
	}
	client, err := kp.New(kp.ClientConfig{
		BaseURL:    strings.TrimRight(base, "/"),
		APIKey:     req.apiKey.Reveal(),
		TokenURL:   s.cfg.IAMTokenURL,
		InstanceID: req.crk.instance,
		Timeout:    30,
	}, kp.DefaultTransport())
	if err != nil {
		return nil, &importFailure{reason: ReasonInternal, detail: "creating the key management client: " + err.Error(), internal: true}
	}
	plain, _, err := client.UnwrapV2(ctx, req.crk.keyID, []byte(req.wrappedDEK), nil)
	if err != nil {
		return nil, kmsFailure(err, req.crk)
	}
	// keyprotect-go-client returns the plaintext as base64 text.
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(plain)))
	n, err := base64.StdEncoding.Decode(raw, plain)
	clear(plain)
	if err != nil {
		clear(raw)
		return nil, failf(ReasonKMSFailed, "the unwrap response is not base64")
	}
	defer clear(raw)
	dek, err := secret.NewDEK(raw[:n])
	if err != nil {
		return nil, failf(ReasonBadDEKSize, "got %d bytes", n)
	}
	return dek, nil
}

func kmsFailure(err error, crk keyCRN) *importFailure {
	var ke *kp.Error
	if errors.As(err, &ke) {
		detail := fmt.Sprintf("unwrap with key %s: HTTP %d", crk.keyID, ke.StatusCode)
		if ke.Message != "" {
			detail += " " + ke.Message
		}
		switch ke.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return failf(ReasonKMSAccessDenied, "%s", detail)
		case http.StatusNotFound:
			return failf(ReasonKeyNotFound, "%s", detail)
		case http.StatusConflict:
			return failf(ReasonKeyNotActive, "%s", detail)
		case http.StatusGone:
			return failf(ReasonKeyDeleted, "%s", detail)
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			return failf(ReasonUnwrapFailed, "%s", detail)
		}
		return &importFailure{reason: ReasonKMSFailed, detail: detail, internal: ke.StatusCode >= 500}
	}
	if strings.Contains(err.Error(), "BXNIM") { // an IAM error code: the token request failed

		return failf(ReasonInvalidAPIKey, "IAM refused the API key for the key management service")
	}
	return &importFailure{reason: ReasonKMSFailed, detail: err.Error(), internal: true}
}
