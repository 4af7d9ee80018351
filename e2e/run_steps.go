package e2e

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/units"
	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// checkpointEvery bounds how often an upload's progress is written to the
// state file.
const checkpointEvery = 5 * time.Second

// auditPoll is how often the audit step reads again while expected events
// are missing (Plan.AuditWait).
const auditPoll = 15 * time.Second

// prepare creates the missing IAM objects (iam.Client.Setup).
func (r *runner) prepare(ctx context.Context, s *Step) error {
	switch {
	case !r.p.Prepare:
		s.Status, s.Detail = StepSkipped, "not asked for: the preparation is only checked"
		return nil
	case r.st.ImportRequested:
		s.Status, s.Detail = StepResumed, "an earlier attempt prepared and started the import"
		return nil
	}
	// The image is examined before anything changes in the account: an
	// image that cannot be imported leaves no service ID, key or policy
	// behind (the preflight reuses this result). A template's disk is
	// examined as it is exported (Plan.Doctor), which the export step does.
	if c, ok := r.imageCheck(); ok && r.p.source == nil {
		rep := iam.Preflight(ctx, c)
		if err := ctx.Err(); err != nil {
			return err
		}
		if !rep.OK() {
			r.res.Preflight = preflightResults(rep)
			s.Detail = "not prepared: the image check failed"
			return &PreflightError{Report: rep}
		}
	}
	sr, err := r.setup(ctx)
	if err != nil {
		return err
	}
	if created := sr.Created(); len(created) > 0 {
		s.Detail = "created " + strings.Join(created, ", ")
	} else {
		s.Detail = "everything was in place"
	}
	if sr.ServiceID != nil && sr.ServiceID.Note != "" {
		s.Detail += "; " + sr.ServiceID.Note
	}
	return nil
}

// setup runs iam.Client.Setup, records what it found or made and keeps the
// service ID's API key for the import.
func (r *runner) setup(ctx context.Context) (*iam.SetupResult, error) {
	if err := r.dropOrphanKey(ctx); err != nil {
		return nil, err
	}
	sr, err := r.p.IAM.Setup(ctx, r.p.iamPlan(r.key))
	if sr != nil {
		r.recordIAM(sr)
		if serr := r.save(); err == nil {
			err = serr
		}
	}
	if err != nil {
		return sr, err
	}
	if sid := sr.ServiceID; sid != nil && !sid.APIKey.Empty() {
		if r.ownImportKey && r.importKey != sid.APIKey {
			r.importKey.Zero()
		}
		r.importKey, r.ownImportKey = sid.APIKey, sid.APIKey != r.p.ImportAPIKey && sid.APIKey != r.p.ServiceID.KnownAPIKey
		if sid.APIKeyCreated {
			if err := r.adoptKey(ctx, sid); err != nil {
				return sr, err
			}
		}
	}
	return sr, nil
}

// adoptKey decides who owns an API key the preparation just created: the
// user, when Plan.SaveAPIKey stores it (a key that cannot be stored is
// deleted before the error is reported, since its value would be lost);
// otherwise the run, which records its id (never its value) in the state
// and deletes it once the import no longer needs it (releaseKey).
func (r *runner) adoptKey(ctx context.Context, sid *iam.ServiceIDResult) error {
	if r.p.SaveAPIKey != nil {
		err := r.p.SaveAPIKey(ctx, sid.ServiceID, sid.APIKeyID, sid.APIKey)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("e2e: saving the service ID's new API key %s: %w", sid.APIKeyID, err)
		if derr := r.p.IAM.DeleteAPIKey(context.WithoutCancel(ctx), sid.APIKeyID); derr != nil {
			return errors.Join(err, fmt.Errorf("e2e: and deleting the key that could not be saved: %w", derr))
		}
		return fmt.Errorf("%w (the key was deleted: its value could not be kept)", err)
	}
	r.mu.Lock()
	r.st.RunAPIKeyID = sid.APIKeyID
	err := r.saveLocked()
	r.mu.Unlock()
	return err
}

// dropOrphanKey deletes, by id, the API key an earlier attempt of this run
// created and owned (State.RunAPIKeyID) when this attempt does not hold
// its value (none given as ImportAPIKey or ServiceID.KnownAPIKey): the
// preparation is about to make its replacement.
func (r *runner) dropOrphanKey(ctx context.Context) error {
	id := r.st.RunAPIKeyID
	if id == "" || !r.importKey.Empty() {
		return nil
	}
	if err := r.p.IAM.DeleteAPIKey(ctx, id); err != nil {
		return fmt.Errorf("e2e: deleting API key %s, which an earlier attempt made and whose value is gone: %w", id, err)
	}
	r.mu.Lock()
	r.st.RunAPIKeyID = ""
	err := r.saveLocked()
	r.mu.Unlock()
	return err
}

// releaseKey deletes the API key the run owns (State.RunAPIKeyID) once
// nothing needs it: the import (and the export of a template source, which
// comes before it) is done. It returns what it did, for the step's detail.
func (r *runner) releaseKey(ctx context.Context) (string, error) {
	id := r.st.RunAPIKeyID
	if id == "" || r.p.IAM == nil {
		return "", nil
	}
	if err := r.p.IAM.DeleteAPIKey(ctx, id); err != nil {
		return "", fmt.Errorf("e2e: deleting the run's API key %s after the import: %w", id, err)
	}
	r.mu.Lock()
	r.st.RunAPIKeyID = ""
	err := r.saveLocked()
	r.mu.Unlock()
	if r.ownImportKey {
		r.importKey.Zero()
		r.importKey, r.ownImportKey = nil, false
	}
	return "; the run's API key " + id + " was deleted", err
}

func (r *runner) recordIAM(sr *iam.SetupResult) {
	ir := &IAMResult{BlockStorageAuthorization: sr.BlockStorageAuthorization.ID, Created: sr.Created()}
	if sr.COSAuthorization != nil {
		ir.COSAuthorization = sr.COSAuthorization.ID
	}
	if s := sr.ServiceID; s != nil {
		ir.ServiceID, ir.ServiceIDName, ir.ServiceIDIAMID, ir.ServiceIDCRN, ir.APIKeyID = s.ID, s.Name, s.IAMID, s.CRN, s.APIKeyID
	}
	if sr.COSPolicy != nil {
		ir.COSPolicy = sr.COSPolicy.ID
	}
	if sr.KeyPolicy != nil {
		ir.KeyPolicy = sr.KeyPolicy.ID
	}
	r.mu.Lock()
	r.st.IAM = ir
	r.mu.Unlock()
	cp := *ir
	r.res.IAM = &cp
}

// preflight runs the checks; a failure stops the run.
func (r *runner) preflight(ctx context.Context, s *Step) error {
	rep := iam.Preflight(ctx, r.checks()...)
	r.res.Preflight = preflightResults(rep)
	if err := ctx.Err(); err != nil {
		return err
	}
	if !rep.OK() {
		for _, f := range rep.Failed() {
			if u := unreachable(f.Err, f.Name); u != nil { // one cause, said once
				return u
			}
		}
		var names []string
		for _, f := range rep.Failed() {
			names = append(names, f.Name)
		}
		s.Detail = fmt.Sprintf("%d of %d checks failed: %s", len(names), len(rep.Results), strings.Join(names, ", "))
		return &PreflightError{Report: rep}
	}
	s.Detail = fmt.Sprintf("%d checks passed", len(rep.Results))
	return r.save() // the image check may have learnt the disk size
}

// keyStep makes and wraps the DEK, or finds the wrapped DEK of an earlier
// attempt.
func (r *runner) keyStep(ctx context.Context, s *Step) error {
	st := r.st
	if st.WrappedDEK != "" {
		s.Status = StepResumed
		s.Detail = fmt.Sprintf("%d-byte DEK wrapped by an earlier attempt (key version %s)", st.DEKSize, orDash(st.KeyVersion))
		return nil
	}
	var (
		dek     *secret.DEK
		wrapped kms.WrappedDEK
		source  string
		err     error
	)
	if r.p.DEK != nil {
		if wrapped, err = r.p.KeyService.Wrap(ctx, r.p.DEK); err != nil {
			return err
		}
		if dek, err = vhdcrypt.DEKFromBytes(r.p.DEK.Bytes()); err != nil {
			return err
		}
		source = DEKProvided
	} else {
		if dek, wrapped, err = kms.NewDEK(ctx, r.p.KeyService, r.p.DEKSize); err != nil {
			return err
		}
		source = DEKLocal
		if dek.Len() == vhdcrypt.AES128XTS {
			source = DEKKeyService
		}
	}
	r.dek = dek
	r.mu.Lock()
	st.WrappedDEK, st.KeyVersion, st.DEKSize, st.DEKSource = wrapped.Ciphertext, wrapped.KeyVersion, dek.Len(), source
	_, _, _, err = st.encryptionParams(r.p.Clock(), r.p.RandomNonce)
	if err == nil {
		err = r.saveLocked()
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("%d-byte DEK (%s) wrapped by %s (key version %s)", dek.Len(), source, r.key.Service.DisplayName(), orDash(wrapped.KeyVersion))
	return nil
}

// loadDEK returns the run's DEK, unwrapping the stored WDEK on resume.
func (r *runner) loadDEK(ctx context.Context) (*secret.DEK, error) {
	if r.dek != nil {
		return r.dek, nil
	}
	st := r.st
	if st.WrappedDEK == "" {
		return nil, fmt.Errorf("%w: no wrapped DEK to unwrap", errUnexpected)
	}
	dek, rewrapped, err := r.p.KeyService.Unwrap(ctx, kms.WrappedDEK{Ciphertext: st.WrappedDEK, KeyVersion: st.KeyVersion})
	if err != nil {
		return nil, fmt.Errorf("e2e: unwrapping the DEK of an earlier attempt: %w", err)
	}
	if r.p.DEK != nil && subtle.ConstantTimeCompare(dek.Bytes(), r.p.DEK.Bytes()) != 1 {
		dek.Zero()
		return nil, fmt.Errorf("%w: the plan's DEK is not the one the state file's wrapped DEK holds", ErrStateMismatch)
	}
	if rewrapped != nil && !st.ImportRequested {
		// The root key was rotated: the import gets the DEK wrapped by
		// the newest version.
		r.mu.Lock()
		st.WrappedDEK, st.KeyVersion = rewrapped.Ciphertext, rewrapped.KeyVersion
		err = r.saveLocked()
		r.mu.Unlock()
		if err != nil {
			dek.Zero()
			return nil, err
		}
	}
	r.dek = dek
	return dek, nil
}

// upload encrypts the image and uploads it in one stream, or resumes an
// interrupted multipart upload, or checks that an earlier attempt's object
// is still there.
func (r *runner) upload(ctx context.Context, s *Step) error {
	st := r.st
	if st.Uploaded != nil {
		if st.TemplateActive {
			s.Status, s.Detail = StepResumed, st.Uploaded.URI+" was uploaded and imported by an earlier attempt"
			return nil
		}
		info, err := r.p.COS.Stat(ctx, st.Bucket, st.Object)
		switch {
		case err == nil && info.Size == st.Uploaded.Size && sameETag(info.ETag, st.Uploaded.ETag) &&
			(info.SHA256 == "" || info.SHA256 == st.Uploaded.SHA256):
			s.Status = StepResumed
			s.Detail = fmt.Sprintf("%s is already uploaded (%s, ETag %s)", st.Uploaded.URI, units.Bytes(info.Size), info.ETag)
			return nil
		case err == nil:
			r.p.Logger.Warn("e2e: the uploaded object changed since an earlier attempt; uploading again", "object", st.Uploaded.URI)
		case errors.Is(err, cos.ErrNotFound):
			r.p.Logger.Warn("e2e: the uploaded object is gone; uploading again", "object", st.Uploaded.URI)
		default:
			return fmt.Errorf("e2e: checking the object an earlier attempt uploaded: %w", err)
		}
		r.mu.Lock()
		st.Uploaded = nil
		err = r.saveLocked()
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if r.p.Image == nil {
		return ErrNoImage
	}
	dek, err := r.loadDEK(ctx)
	if err != nil {
		return err
	}
	res, err := r.send(ctx, s, dek)
	if err != nil && errors.Is(err, cos.ErrUploadGone) && rereadable(r.p.Image) {
		// The upload to resume is gone and the object at the key is not
		// this image (Resume checked): start again, from the same bytes.
		r.p.Logger.Warn("e2e: the multipart upload to resume no longer exists and the object is not this image; uploading from the start",
			"object", st.Bucket+"/"+st.Object)
		res, err = r.send(ctx, s, dek)
	}
	if err != nil {
		if errors.Is(err, cos.ErrUploadGone) {
			return fmt.Errorf("%w (run again to upload from the start)", err)
		}
		return err
	}
	obj := &ObjectResult{
		Bucket: res.Bucket, Key: res.Key, URI: r.objectURI(), Size: res.Size, ETag: res.ETag, SHA256: res.SHA256,
		UploadID: res.UploadID, Parts: res.Parts, PartsSent: res.PartsSent, PartsSkipped: res.PartsSkipped,
	}
	r.mu.Lock()
	st.Upload, st.Uploaded = nil, obj
	err = r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	cp := *obj
	r.res.Object = &cp
	s.Detail = fmt.Sprintf("%s: %s encrypted and uploaded", obj.URI, units.Bytes(obj.Size))
	if res.Parts > 0 {
		s.Detail += fmt.Sprintf(" in %d parts", res.Parts)
	}
	if res.PartsSkipped > 0 {
		s.Detail += fmt.Sprintf(" (%d already uploaded by an earlier attempt, checked and kept)", res.PartsSkipped)
	}
	return nil
}

// send encrypts the image and uploads it, or resumes the upload the state
// records. On failure it records what a later attempt can resume (nothing
// when the upload to resume is gone: the next attempt starts afresh).
func (r *runner) send(ctx context.Context, s *Step, dek *secret.DEK) (*cos.Result, error) {
	st := r.st
	enc, err := r.newEncryptor(ctx, dek)
	if err != nil {
		return nil, err
	}
	if st.ImageSize != 0 && st.ImageSize != enc.Size() {
		return nil, fmt.Errorf("%w: the encrypted image is %d bytes, the state file's was %d (another image?)", ErrStateMismatch, enc.Size(), st.ImageSize)
	}
	r.mu.Lock()
	st.ImageSize = enc.Size()
	if r.remote != nil {
		st.DiskSize = enc.VirtualSize()
	}
	err = r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}

	opts := []cos.Option{
		cos.WithContentType("application/octet-stream"),
		cos.WithProgress(func(done, total int64) {
			r.progress(vhdcrypt.Progress{Phase: PhaseUpload, Done: done, Total: total})
		}),
	}
	if r.p.PartSize > 0 {
		opts = append(opts, cos.WithPartSize(r.p.PartSize))
	}
	if r.p.Concurrency > 0 {
		opts = append(opts, cos.WithConcurrency(r.p.Concurrency))
	}
	if r.p.StatePath != "" {
		opts = append(opts, cos.WithKeepOnCancel(), cos.WithCheckpoint(r.checkpoint))
	}
	body := enc.Reader()
	defer body.Close()
	var res *cos.Result
	if st.Upload != nil && st.Upload.UploadID != "" {
		s.Detail = "resuming multipart upload " + st.Upload.UploadID
		r.emit(*s)
		res, err = r.p.COS.Resume(ctx, *st.Upload, body, enc.Size(), opts...)
	} else {
		res, err = r.p.COS.Upload(ctx, st.Bucket, st.Object, body, enc.Size(), opts...)
	}
	if err != nil {
		var ue *cos.UploadError
		r.mu.Lock()
		if errors.As(err, &ue) && ue.Resumable && ue.UploadID != "" && r.p.StatePath != "" {
			us := ue.UploadState
			st.Upload = &us
		} else {
			st.Upload = nil
		}
		serr := r.saveLocked()
		r.mu.Unlock()
		return nil, errors.Join(err, serr)
	}
	return res, nil
}

// rereadable reports whether the image can be read again from the start
// (a regular file, a block device, a sized ReaderAt), as a second upload
// attempt within one run needs.
func rereadable(src io.Reader) bool {
	_, _, ok, err := vhdcrypt.RandomAccess(src)
	return ok && err == nil
}

// newEncryptor prepares the encryption with the state's reproducible
// parameters, so that every attempt produces the same bytes.
func (r *runner) newEncryptor(ctx context.Context, dek *secret.DEK) (*vhdcrypt.Encryptor, error) {
	r.mu.Lock()
	nonce, id, ts, err := r.st.encryptionParams(r.p.Clock(), r.p.RandomNonce)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	opts := []vhdcrypt.Option{vhdcrypt.WithNonce(nonce), vhdcrypt.WithUniqueID(id), vhdcrypt.WithTimestamp(ts), vhdcrypt.WithProgress(r.progress)}
	switch {
	case r.remote != nil:
		// An exported image is read with ranged GETs: more requests in
		// flight than cores, and no zero scan of a raw or fixed export,
		// which would fetch the whole object twice (its output then
		// allocates every block; a dynamic VHD export keeps its own
		// allocation).
		opts = append(opts, vhdcrypt.WithWorkers(remoteWorkers(r.p.Workers)), vhdcrypt.WithoutZeroScan())
	case r.p.Workers > 0:
		opts = append(opts, vhdcrypt.WithWorkers(r.p.Workers))
	}
	if r.p.ImageSize > 0 {
		opts = append(opts, vhdcrypt.WithSize(r.p.ImageSize))
	}
	opts = append(opts, vhdcrypt.WithLogger(r.p.Logger))
	return vhdcrypt.NewEncryptor(ctx, r.p.Image, dek, opts...)
}

// checkpoint records a multipart upload's progress (cos.WithCheckpoint).
// The first checkpoint of an upload (its id) is saved at once, later ones
// at most every checkpointEvery: a resumed upload asks the server which
// parts it holds, so a few missing entries cost only their re-checking,
// while saving after each of thousands of parts would write the growing
// list thousands of times.
func (r *runner) checkpoint(us cos.UploadState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.st.Upload == nil || r.st.Upload.UploadID != us.UploadID
	r.st.Upload = &us
	if !first && time.Since(r.lastCheckpoint) < checkpointEvery {
		return
	}
	r.lastCheckpoint = time.Now()
	if err := r.saveLocked(); err != nil {
		r.p.Logger.Warn("e2e: saving the upload's progress", "err", err)
	}
}

func (r *runner) objectURI() string {
	return classic.COSURI{Region: r.p.COS.Region(), Bucket: r.p.Bucket, Object: r.p.Object}.String()
}

// sameETag compares ETags ignoring quotes and a multipart "-N" suffix,
// which some servers drop from HEAD answers.
func sameETag(a, b string) bool {
	norm := func(s string) string {
		s = strings.Trim(s, `"`)
		if i := strings.IndexByte(s, '-'); i >= 0 {
			s = s[:i]
		}
		return strings.ToLower(s)
	}
	return a != "" && norm(a) == norm(b)
}

// importStep starts the import, or finds the template of an earlier
// attempt.
func (r *runner) importStep(ctx context.Context, s *Step) error {
	st := r.st
	if st.TemplateID != 0 {
		t, err := r.p.Classic.GetTemplate(ctx, st.TemplateID)
		switch {
		case err == nil && !t.Failed():
			r.recordTemplate(t)
			s.Status, s.Detail = StepResumed, fmt.Sprintf("template %d (%s) imported by an earlier attempt, %s", t.ID, t.GlobalIdentifier, t.Status)
			return r.save()
		case err == nil:
			if err := r.forgetTemplate("import failed: " + t.FailureReason()); err != nil {
				return err
			}
		case errors.Is(err, classic.ErrNotFound):
			if err := r.forgetTemplate("it no longer exists"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("e2e: reading the template of an earlier attempt: %w", err)
		}
	} else if st.ImportRequested {
		// An attempt sent createFromIcos and did not learn the outcome.
		t, err := r.p.Classic.FindTemplateByName(ctx, r.p.Name)
		switch {
		case err == nil && !t.Failed():
			r.recordTemplate(t)
			if err := r.save(); err != nil {
				return err
			}
			s.Status, s.Detail = StepResumed, fmt.Sprintf("template %d found by name: an earlier attempt's import", t.ID)
			return nil
		case err == nil, errors.Is(err, classic.ErrNotFound):
		default:
			return fmt.Errorf("e2e: looking for the template an earlier attempt may have created: %w", err)
		}
	}
	if st.Uploaded == nil {
		return fmt.Errorf("%w: import without an uploaded object", errUnexpected)
	}
	apiKey, err := r.importAPIKey(ctx)
	if err != nil {
		return err
	}
	req := classic.ImportRequest{
		Name:           r.p.Name,
		Note:           r.p.Note,
		URI:            r.objectURI(),
		APIKey:         apiKey,
		OSCode:         r.p.OSCode,
		AnyOSCode:      r.p.AnyOSCode,
		DiskSize:       st.DiskSize,
		BucketLocation: r.bucketLocation,
		BucketLocator: func(ctx context.Context, _, bucket string) (string, error) {
			info, err := r.p.COS.CheckBucket(ctx, bucket, "")
			if info == nil {
				return "", err
			}
			return info.Location.Constraint, err
		},
		Encryption: &classic.Encryption{RootKeyCRN: r.key.String(), WrappedDEK: st.WrappedDEK},
		CloudInit:  true,
	}
	tries, err := r.proveImportKey(ctx, apiKey)
	if err != nil {
		return err
	}
	r.mu.Lock()
	st.ImportRequested = true
	err = r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	t, err := r.p.Classic.Import(ctx, req)
	if err != nil {
		if errors.Is(err, classic.ErrInvalidImportRequest) {
			// Refused before sending: nothing to look for next time.
			r.mu.Lock()
			st.ImportRequested = false
			serr := r.saveLocked()
			r.mu.Unlock()
			return errors.Join(err, serr)
		}
		return err
	}
	r.recordTemplate(t)
	if err := r.save(); err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("template %d (%s) importing %s", t.ID, t.GlobalIdentifier, req.URI)
	if tries > 1 {
		s.Detail += fmt.Sprintf(" (the import key was refused %d times before IAM made it usable)", tries-1)
	}
	return nil
}

// proveImportKey calls Plan.ProveImportKey until it succeeds, retrying
// while the key is refused (IAM is eventually consistent) for at most
// Plan.ImportKeyWait. It returns how many calls it made.
func (r *runner) proveImportKey(ctx context.Context, apiKey *secret.String) (int, error) {
	if r.p.ProveImportKey == nil {
		return 0, nil
	}
	deadline := time.Now().Add(r.p.ImportKeyWait)
	for tries := 1; ; tries++ {
		err := r.p.ProveImportKey(ctx, apiKey, r.p.Bucket, r.p.Object)
		if err == nil {
			return tries, nil
		}
		if !errors.Is(err, ErrImportKeyRefused) {
			return tries, err
		}
		r.p.Logger.Info("e2e: the import API key is not usable yet; IAM changes take effect after a delay", "try", tries, "error", err)
		if werr := sleepUntil(ctx, backoff(r.p.ImportKeyWait, tries), deadline); werr != nil {
			return tries, fmt.Errorf("%w (still refused after %d tries in %s)", err, tries, r.p.ImportKeyWait)
		}
	}
}

// backoff is the pause after the n-th failed try of something bounded by
// total: total/64 doubling each time, at most 30 s.
func backoff(total time.Duration, n int) time.Duration {
	d := total / 64
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// maxReimports bounds the imports Run sends again within one run after an
// import failed for lack of access.
const maxReimports = 5

// errDeadline says that a pause would end after its deadline.
var errDeadline = errors.New("e2e: deadline reached")

// sleepUntil pauses for d, or returns ctx's error, or errDeadline when the
// pause would end after deadline. It is the package's one wait: the import
// key's proof, the re-imports and the audit step's polling all pause here
// (package classic does the template and server waits).
func sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) error {
	if time.Now().Add(d).After(deadline) {
		return errDeadline
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// accessFailure reports whether an import's failure reason says that the
// backplane was refused access (IAM, COS or the key service). IBM does not
// document the reasons' wording, so this looks for the words any such
// message uses; a false match costs one more import, never an upload.
func accessFailure(reason string) bool {
	r := strings.ToLower(reason)
	for _, w := range []string{"access", "denied", "unauthori", "forbidden", "permission", "not authorized", "api key", "apikey", "401", "403"} {
		if strings.Contains(r, w) {
			return true
		}
	}
	return false
}

// importAPIKey returns the API key the backplane uses, running the IAM
// preparation when the service ID's key is needed but was not made in this
// run (a resumed run that must import again).
func (r *runner) importAPIKey(ctx context.Context) (*secret.String, error) {
	if !r.importKey.Empty() {
		return r.importKey, nil
	}
	if r.p.Prepare && r.p.ServiceID.Name != "" {
		if _, err := r.setup(ctx); err != nil {
			return nil, err
		}
		if !r.importKey.Empty() {
			return r.importKey, nil
		}
	}
	return nil, errNotPrepared
}

func (r *runner) recordTemplate(t *classic.Template) {
	r.template = t
	r.mu.Lock()
	r.st.TemplateID, r.st.TemplateGUID = t.ID, t.GlobalIdentifier
	r.st.TemplateActive = t.Active()
	r.mu.Unlock()
	r.res.Template = &TemplateResult{ID: t.ID, GlobalIdentifier: t.GlobalIdentifier, Name: t.Name, Status: t.Status}
}

// forgetTemplate moves the recorded template to the failed list, so that
// the run imports again.
func (r *runner) forgetTemplate(why string) error {
	r.p.Logger.Warn("e2e: importing again", "template", r.st.TemplateID, "reason", why)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	if !slices.Contains(st.FailedTemplates, st.TemplateID) {
		st.FailedTemplates = append(st.FailedTemplates, st.TemplateID)
	}
	st.TemplateID, st.TemplateGUID, st.TemplateActive, st.ImportRequested = 0, "", false, false
	r.template = nil
	r.res.Template = nil
	return r.saveLocked()
}

// waitTemplate waits until the import is done.
func (r *runner) waitTemplate(ctx context.Context, s *Step) error {
	st := r.st
	if st.TemplateActive {
		s.Status, s.Detail = StepResumed, fmt.Sprintf("template %d is Active", st.TemplateID)
		note, err := r.releaseKey(ctx)
		s.Detail += note
		return err
	}
	last := ""
	t, err := r.p.Classic.WaitTemplate(ctx, st.TemplateID, classic.TemplateProgress(func(t classic.Template) {
		if d := t.Status + " " + t.Transaction; d != last {
			last = d
			s.Detail = strings.TrimSpace(d)
			r.emit(*s)
		}
	}))
	if err != nil {
		var failed *classic.ImportFailedError
		if errors.As(err, &failed) {
			ferr := r.forgetTemplate("import failed: " + failed.Reason)
			if ferr == nil && accessFailure(failed.Reason) && r.reimports < maxReimports && r.p.ProveImportKey != nil {
				// Access refused: maybe IAM had not yet made the import
				// key's policies effective. Import again (the upload is
				// done) after a pause, once the key is proven, while
				// ImportKeyWait since the first refusal allows.
				if r.reimportDeadline.IsZero() {
					r.reimportDeadline = time.Now().Add(r.p.ImportKeyWait)
				}
				r.reimports++
				if werr := sleepUntil(ctx, backoff(r.p.ImportKeyWait, r.reimports), r.reimportDeadline); werr != nil {
					return errors.Join(err, werr)
				}
				r.p.Logger.Warn("e2e: the import was refused access; importing again", "reason", failed.Reason, "attempt", r.reimports)
				if ierr := r.importStep(ctx, s); ierr != nil {
					return errors.Join(err, ierr)
				}
				return r.waitTemplate(ctx, s)
			}
			// The next attempt imports again (after the cause is fixed).
			return errors.Join(err, ferr)
		}
		return err
	}
	r.recordTemplate(t)
	if err := r.save(); err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("template %d (%s) is Active", t.ID, t.GlobalIdentifier)
	note, err := r.releaseKey(ctx)
	s.Detail += note
	return err
}

// order orders the server, or finds the server of an earlier attempt.
func (r *runner) order(ctx context.Context, s *Step) error {
	if r.p.Server == nil {
		s.Status, s.Detail = StepSkipped, "no server asked for"
		return nil
	}
	st := r.st
	spec := *r.p.Server
	if st.GuestID != 0 {
		srv, err := r.p.Classic.GetServer(ctx, st.GuestID)
		switch {
		case err == nil:
			r.recordServer(srv)
			s.Status, s.Detail = StepResumed, fmt.Sprintf("server %d (%s) ordered by an earlier attempt", srv.ID, srv.FQDN)
			return nil
		case errors.Is(err, classic.ErrNotFound):
			r.p.Logger.Warn("e2e: the server of an earlier attempt no longer exists; ordering again", "id", st.GuestID)
			r.mu.Lock()
			st.GuestID, st.GuestGUID, st.Provisioned, st.OrderRequested = 0, "", false, false
			r.mu.Unlock()
		default:
			return fmt.Errorf("e2e: reading the server of an earlier attempt: %w", err)
		}
	} else if st.OrderRequested {
		srv, err := r.p.Classic.FindServer(ctx, spec.Hostname, spec.Domain)
		switch {
		case err == nil:
			r.recordServer(srv)
			if err := r.save(); err != nil {
				return err
			}
			s.Status, s.Detail = StepResumed, fmt.Sprintf("server %d found by name: an earlier attempt's order", srv.ID)
			return nil
		case errors.Is(err, classic.ErrNotFound):
		default:
			return fmt.Errorf("e2e: looking for the server an earlier attempt may have ordered: %w", err)
		}
	}
	spec.Template = classic.TemplateRef{ID: st.TemplateID, GlobalIdentifier: st.TemplateGUID}
	r.mu.Lock()
	st.OrderRequested = true
	err := r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	srv, err := r.p.Classic.CreateServer(ctx, spec)
	if err != nil {
		if errors.Is(err, classic.ErrInvalidServerSpec) || errors.Is(err, classic.ErrTemplateNotActive) {
			r.mu.Lock()
			st.OrderRequested = false
			serr := r.saveLocked()
			r.mu.Unlock()
			return errors.Join(err, serr)
		}
		return err
	}
	r.recordServer(srv)
	if err := r.save(); err != nil {
		return err
	}
	dc := srv.Datacenter
	if dc == "" {
		dc = orDash(spec.Datacenter)
	}
	s.Detail = fmt.Sprintf("server %d (%s.%s) ordered in %s from template %d", srv.ID, srv.Hostname, srv.Domain, dc, st.TemplateID)
	return nil
}

func (r *runner) recordServer(srv *classic.Server) {
	r.mu.Lock()
	r.st.GuestID, r.st.GuestGUID, r.st.Provisioned = srv.ID, srv.GlobalIdentifier, srv.Provisioned()
	r.mu.Unlock()
	r.res.Server = &ServerResult{
		ID: srv.ID, GlobalIdentifier: srv.GlobalIdentifier, Hostname: srv.Hostname, Domain: srv.Domain,
		PrimaryIP: srv.PrimaryIP, BackendIP: srv.BackendIP, Datacenter: srv.Datacenter, ProvisionDate: srv.ProvisionDate,
	}
}

// waitServer waits until the server is provisioned.
func (r *runner) waitServer(ctx context.Context, s *Step) error {
	if r.p.Server == nil {
		s.Status, s.Detail = StepSkipped, "no server asked for"
		return nil
	}
	st := r.st
	if st.Provisioned && r.res.Server != nil {
		s.Status, s.Detail = StepResumed, fmt.Sprintf("server %d was provisioned %s", st.GuestID, r.res.Server.ProvisionDate.Format(time.RFC3339))
		return nil
	}
	last := ""
	srv, err := r.p.Classic.WaitServer(ctx, st.GuestID, classic.ServerProgress(func(srv classic.Server) {
		if srv.Transaction != last && srv.Transaction != "" {
			last = srv.Transaction
			s.Detail = srv.Transaction
			r.emit(*s)
		}
	}))
	if err != nil {
		return err
	}
	r.recordServer(srv)
	if err := r.save(); err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("server %d (%s) provisioned, public %s, private %s", srv.ID, srv.FQDN, orDash(srv.PrimaryIP), orDash(srv.BackendIP))
	return nil
}

// auditStep collects the run's events, reading again while expected ones
// are missing, up to Plan.AuditWait. The expected events are the actions
// IBM documents for what the run did (audit.ExpectedActions: the DEK's
// wrap and the server's provisioning, none for the import); one absent
// when the wait is over is reported as "not found".
func (r *runner) auditStep(ctx context.Context, s *Step) error {
	if r.p.Audit == nil {
		s.Status, s.Detail = StepSkipped, "no audit reader"
		return nil
	}
	st := r.st
	q := audit.Query{
		Start:   st.Started.Truncate(time.Second),
		KeyCRNs: []string{r.key.String()},
	}
	if st.TemplateID != 0 {
		q.TemplateIDs = []int{st.TemplateID}
		if st.TemplateGUID != "" {
			q.TemplateGUIDs = []string{st.TemplateGUID}
		}
	}
	if st.GuestID != 0 {
		q.GuestIDs = []int{st.GuestID}
	}
	want := audit.ExpectedActions(q)
	deadline := time.Now().Add(r.p.AuditWait)
	for {
		// The window ends at the later of the plan's clock and the audit
		// services' clock (a source with a ServiceNow, as *audit.Reader,
		// reads it from their answers), which stamps the events: the local
		// clock may lag it. A source without a clock keeps the plan's.
		end := r.p.Clock().Add(time.Second)
		if c, ok := r.p.Audit.(serviceClock); ok {
			t, err := c.ServiceNow(ctx)
			if err != nil {
				return err
			}
			if t.After(end) {
				end = t
			}
		}
		q.End = end
		events, err := r.p.Audit.Collect(ctx, q)
		if err != nil {
			return err
		}
		missing := audit.Missing(events, want)
		r.res.Audit, r.res.AuditMissing = events, missing
		skipped := ""
		if n, _ := r.p.Audit.Skipped(); n > 0 {
			skipped = fmt.Sprintf("; %d records skipped (not readable as audit events)", n)
		}
		if len(missing) == 0 {
			s.Detail = fmt.Sprintf("%d events, including %s%s", len(events), strings.Join(want, ", "), skipped)
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			s.Detail = fmt.Sprintf("%d events; not found: %s%s", len(events), strings.Join(missing, ", "), skipped)
			return nil
		}
		s.Detail = fmt.Sprintf("%d events so far; waiting for %s%s", len(events), strings.Join(missing, ", "), skipped)
		r.emit(*s)
		if err := sleepUntil(ctx, min(wait, auditPoll), deadline); err != nil && !errors.Is(err, errDeadline) {
			return err
		}
	}
}
