package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/importspec"
	"github.com/e2eimage/e2eimage/internal/units"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhd"
)

// ExportSuffix is how the export's file name ends by default
// (Plan.ExportObject = Name + ExportSuffix): the export then writes
// <Name>.export-0.vhd for the boot disk.
const ExportSuffix = ".export.vhd"

// SourceNameSuffix is appended to the source template's name to make the
// default name of the encrypted template.
const SourceNameSuffix = "-encrypted"

// SourceHeadCache is how many of the exported image's first bytes a run
// keeps once read (cos.WithHeadCache): the first two 2 MiB blocks, which
// Plan.Doctor reads before the encryption reads them again.
const SourceHeadCache = 2 * vhd.BlockSize

// minRemoteWorkers is the number of encryption workers, hence of ranged
// GETs in flight, that a run from a template uses at least when
// Plan.Workers is 0: the work waits on the network more than on the CPU.
const minRemoteWorkers = 4

// ErrSourceTemplate is matched (errors.Is) by the errors about a source
// template that cannot be used: not found, ambiguous, encrypted, without a
// boot disk, a boot disk above classic.MaxImportDiskSize, no OS code.
var ErrSourceTemplate = errors.New("e2e: the source template cannot be encrypted")

// ExportedObject is one object an export wrote, as the state file and the
// result record it.
type ExportedObject struct {
	Key         string `json:"key"`
	BlockDevice int    `json:"block_device"`
	Size        int64  `json:"size"`
	ETag        string `json:"etag,omitempty"`
	// Deleted is set once the run (or Cleanup) deleted the object.
	Deleted bool `json:"deleted,omitempty"`
}

// ExportResult describes the export of the source template (Plan.SourceTemplate).
type ExportResult struct {
	SourceTemplateID   int    `json:"source_template_id"`
	SourceTemplateName string `json:"source_template_name,omitempty"`
	// URI is the export's cos://<region>/<bucket>/<file name>.
	URI string `json:"uri"`
	// Objects are the plaintext objects the export wrote, one per block
	// device; the one of block device 0 is the boot disk, the only one
	// encrypted and imported.
	Objects []ExportedObject `json:"objects,omitempty"`
	// Kept is true when the plan keeps the plaintext objects (KeepExport).
	Kept bool `json:"kept,omitempty"`
	// Read counts what the encryption fetched of the boot disk's object
	// in this run: bytes and ranged GETs.
	ReadBytes    int64 `json:"read_bytes,omitempty"`
	ReadRequests int64 `json:"read_requests,omitempty"`
}

// Left returns the keys of the plaintext objects still in the bucket.
func (e *ExportResult) Left() []string {
	var out []string
	for _, o := range e.Objects {
		if !o.Deleted {
			out = append(out, o.Key)
		}
	}
	return out
}

// checkSource checks the source-template fields without a request.
func (p *Plan) checkSource(mode runMode) []error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, a...))
	}
	if p.SourceTemplate == "" {
		if p.ExportObject != "" || p.Doctor != nil {
			return []error{bad("ExportObject and Doctor apply only with SourceTemplate")}
		}
		return nil
	}
	var errs []error
	if p.Image != nil {
		errs = append(errs, bad("give Image or SourceTemplate, not both"))
	}
	if p.Classic == nil && mode == modeRun {
		errs = append(errs, bad("SourceTemplate needs Classic (the classic infrastructure client)"))
	}
	if p.ExportObject != "" && !strings.HasSuffix(strings.ToLower(p.ExportObject), ".vhd") {
		errs = append(errs, bad("export file name %q must end in .vhd", p.ExportObject))
	}
	if _, clash := importspec.ParseExportedName(p.ExportObject, p.Object); p.ExportObject != "" && clash {
		errs = append(errs, bad("the export file name %q would name the encrypted object %q too", p.ExportObject, p.Object))
	}
	return errs
}

// resolveSource finds Plan.SourceTemplate and fills the defaults that come
// from it (Name, Note, OSCode).
func (p Plan) resolveSource(ctx context.Context) (Plan, error) {
	if p.Classic == nil {
		return p, fmt.Errorf("%w: SourceTemplate needs Classic (the classic infrastructure client)", ErrPlan)
	}
	id, err := strconv.Atoi(p.SourceTemplate)
	if err != nil || id <= 0 {
		t, ferr := p.Classic.FindTemplateByName(ctx, p.SourceTemplate)
		if ferr != nil {
			return p, fmt.Errorf("%w: finding image template %q: %w", ErrSourceTemplate, p.SourceTemplate, ferr)
		}
		id = t.ID
	}
	tc, err := p.Classic.GetTemplateContent(ctx, id)
	if err != nil {
		return p, fmt.Errorf("%w: reading image template %d: %w", ErrSourceTemplate, id, err)
	}
	p.source = tc
	if p.Name == "" {
		p.Name = tc.Name + SourceNameSuffix
	}
	if p.Note == "" {
		p.Note = tc.Note
	}
	if p.OSCode == "" {
		p.OSCode = tc.OSCode
	}
	return p, nil
}

// sourceCheck is the preflight check of the source template.
func (r *runner) sourceCheck() iam.Check {
	tc := r.p.source
	return iam.FuncCheck(fmt.Sprintf("source template %d", tc.ID), func(context.Context) (string, error) {
		switch {
		case tc.Encrypted:
			return "", fmt.Errorf("%w: %d (%s) is encrypted; E2E re-encryption of an encrypted template is not supported", ErrSourceTemplate, tc.ID, tc.Name)
		case len(tc.Disks) == 0:
			return "", fmt.Errorf("%w: %d (%s) lists no block device (is its capture done?)", ErrSourceTemplate, tc.ID, tc.Name)
		case tc.Disks[0].Capacity > classic.MaxImportDiskSize:
			return "", fmt.Errorf("%w: the boot disk is %s, more than an import accepts (%s)", ErrSourceTemplate,
				units.Bytes(tc.Disks[0].Capacity), units.Bytes(classic.MaxImportDiskSize))
		case r.p.OSCode == "":
			return "", fmt.Errorf("%w: %d (%s) names no operating system; give Plan.OSCode", ErrSourceTemplate, tc.ID, tc.Name)
		}
		d := fmt.Sprintf("%q, unencrypted, boot disk %s, %s", tc.Name, units.Bytes(tc.Disks[0].Capacity), r.p.OSCode)
		if n := len(tc.Disks) - 1; n > 0 {
			what := "deleted once exported"
			if r.p.KeepExport {
				what = "kept in the bucket (KeepExport)"
			}
			d += fmt.Sprintf("; %d more disk(s) (%s) are not imported (E2E imports a boot disk only), their exported objects are %s", n, tc.String(), what)
		}
		return d, nil
	}, "give an unencrypted image template whose boot disk is at most 100 GiB, and Plan.OSCode when it names no operating system")
}

// exportKeyCheck checks that the export has an API key.
func (r *runner) exportKeyCheck() iam.Check {
	return iam.FuncCheck("export API key", func(context.Context) (string, error) {
		switch {
		case r.st.Uploaded != nil || r.st.ExportDone:
			return "not needed: the template is exported", nil
		case !r.p.ExportAPIKey.Empty():
			return "given", nil
		case !r.importKey.Empty():
			return "the import's API key (it needs Writer on the bucket)", nil
		}
		return "", errNoExportKey
	}, "give Plan.ExportAPIKey, a key with Writer access to the bucket")
}

var errNoExportKey = errors.New("e2e: no API key for the export: give ExportAPIKey or ImportAPIKey")

func (r *runner) exportKey() (*secret.String, error) {
	if !r.p.ExportAPIKey.Empty() {
		return r.p.ExportAPIKey, nil
	}
	if !r.importKey.Empty() {
		return r.importKey, nil
	}
	return nil, errNoExportKey
}

func (r *runner) exportURI() string {
	return classic.COSURI{Region: r.p.COS.Region(), Bucket: r.p.Bucket, Object: r.p.ExportObject}.String()
}

func (r *runner) lister() classic.ObjectLister {
	return func(ctx context.Context, bucket, prefix string) ([]classic.ListedObject, error) {
		objs, err := r.p.COS.List(ctx, bucket, prefix)
		if err != nil {
			return nil, err
		}
		out := make([]classic.ListedObject, len(objs))
		for i, o := range objs {
			out[i] = classic.ListedObject{Key: o.Key, Size: o.Size}
		}
		return out, nil
	}
}

// bootExport returns the recorded object of block device 0.
func (st *State) bootExport() *ExportedObject {
	for i := range st.Exported {
		if st.Exported[i].BlockDevice == 0 {
			return &st.Exported[i]
		}
	}
	return nil
}

// exportStep exports the source template to the bucket, or finds the
// export of an earlier attempt.
func (r *runner) exportStep(ctx context.Context, s *Step) error {
	st := r.st
	if st.Uploaded != nil {
		s.Status, s.Detail = StepResumed, "the boot disk was encrypted and uploaded by an earlier attempt"
		return nil
	}
	if st.ExportDone {
		boot := st.bootExport()
		info, err := r.p.COS.Stat(ctx, r.p.Bucket, boot.Key)
		switch {
		case err == nil && info.Size == boot.Size && info.ETag == boot.ETag:
			s.Status, s.Detail = StepResumed, fmt.Sprintf("%s was exported by an earlier attempt (%s)", boot.Key, units.Bytes(boot.Size))
			return r.dropOtherDisks(ctx, s)
		case err == nil, errors.Is(err, cos.ErrNotFound):
			r.p.Logger.Warn("e2e: the export of an earlier attempt is gone or changed; exporting again", "object", boot.Key)
			if err := r.deleteExports(ctx, nil); err != nil {
				return err
			}
			r.mu.Lock()
			st.ExportDone, st.ExportRequested, st.Exported = false, false, nil
			err = r.saveLocked()
			r.mu.Unlock()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("e2e: checking the export of an earlier attempt: %w", err)
		}
	}
	id := r.p.source.ID
	progress := classic.TemplateProgress(func(t classic.Template) {
		if t.Transaction != "" && s.Detail != t.Transaction {
			s.Detail = t.Transaction
			r.emit(*s)
		}
	})
	if st.ExportRequested {
		// An attempt sent copyToIcos and stopped: wait until no transaction
		// runs on the template, then look for what it wrote.
		if _, err := r.p.Classic.WaitTemplate(ctx, id, progress); err != nil {
			return fmt.Errorf("e2e: waiting for the export an earlier attempt started: %w", err)
		}
		objs, err := r.findExported(ctx)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			if err := r.recordExport(ctx, objs); err != nil {
				return err
			}
			s.Status = StepResumed
			s.Detail = fmt.Sprintf("found the export an earlier attempt started: %s", keys(objs))
			return r.dropOtherDisks(ctx, s)
		}
		r.p.Logger.Warn("e2e: an earlier attempt's export wrote nothing; exporting again", "template", id)
	}
	apiKey, err := r.exportKey()
	if err != nil {
		return err
	}
	r.mu.Lock()
	st.ExportRequested = true
	err = r.saveLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	res, err := r.p.Classic.Export(ctx, id, classic.ExportRequest{URI: r.exportURI(), APIKey: apiKey, List: r.lister()}, progress)
	if err != nil {
		if errors.Is(err, classic.ErrExportTargetExists) {
			r.mu.Lock()
			st.ExportRequested = false
			serr := r.saveLocked()
			r.mu.Unlock()
			return errors.Join(fmt.Errorf("%w (objects of another export, or of a run without this state file: remove them or set ExportObject)", err), serr)
		}
		return err
	}
	objs := make([]ExportedObject, len(res.Objects))
	for i, o := range res.Objects {
		objs[i] = ExportedObject{Key: o.Key, BlockDevice: o.BlockDevice, Size: o.Size}
	}
	if err := r.recordExport(ctx, objs); err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("template %d exported to %s", id, keys(objs))
	return r.dropOtherDisks(ctx, s)
}

func keys(objs []ExportedObject) string {
	ks := make([]string, len(objs))
	for i, o := range objs {
		ks[i] = fmt.Sprintf("%s (%s)", o.Key, units.Bytes(o.Size))
	}
	return strings.Join(ks, ", ")
}

// findExported lists the objects the export wrote.
func (r *runner) findExported(ctx context.Context) ([]ExportedObject, error) {
	objs, err := r.p.COS.List(ctx, r.p.Bucket, importspec.ExportStem(r.p.ExportObject))
	if err != nil {
		return nil, err
	}
	var out []ExportedObject
	for _, o := range objs {
		n, ok := importspec.ParseExportedName(r.p.ExportObject, o.Key)
		if !ok {
			continue
		}
		out = append(out, ExportedObject{Key: o.Key, BlockDevice: n, Size: o.Size, ETag: o.ETag})
	}
	return out, nil
}

// recordExport records the exported objects, with the boot disk's ETag,
// so that a later attempt can tell the same export from a replaced one.
func (r *runner) recordExport(ctx context.Context, objs []ExportedObject) error {
	var boot *ExportedObject
	for i := range objs {
		if objs[i].BlockDevice == 0 {
			boot = &objs[i]
		}
	}
	if boot == nil {
		return fmt.Errorf("%w: the export wrote %s but no object for block device 0, the boot disk", ErrSourceTemplate, keys(objs))
	}
	info, err := r.p.COS.Stat(ctx, r.p.Bucket, boot.Key)
	if err != nil {
		return fmt.Errorf("e2e: reading the exported boot disk: %w", err)
	}
	boot.Size, boot.ETag = info.Size, info.ETag
	r.mu.Lock()
	r.st.Exported, r.st.ExportDone = objs, true
	err = r.saveLocked()
	r.mu.Unlock()
	return err
}

// dropOtherDisks deletes the objects of the disks other than the boot disk
// (E2E imports a boot disk only), unless the plan keeps the export, and
// says so in the step's detail.
func (r *runner) dropOtherDisks(ctx context.Context, s *Step) error {
	var others []string
	for _, o := range r.st.Exported {
		if o.BlockDevice != 0 {
			others = append(others, o.Key)
		}
	}
	if len(others) == 0 {
		return nil
	}
	if r.p.KeepExport {
		s.Detail += fmt.Sprintf("; %d more disk(s) not imported (E2E imports a boot disk only), kept: %s", len(others), strings.Join(others, ", "))
		return nil
	}
	if err := r.deleteExports(ctx, func(o ExportedObject) bool { return o.BlockDevice != 0 }); err != nil {
		return err
	}
	s.Detail += fmt.Sprintf("; %d more disk(s) not imported (E2E imports a boot disk only), deleted: %s", len(others), strings.Join(others, ", "))
	return nil
}

// deleteExports deletes the recorded export objects that which selects
// (nil: all) and records each deletion.
func (r *runner) deleteExports(ctx context.Context, which func(ExportedObject) bool) error {
	for i := range r.st.Exported {
		o := r.st.Exported[i]
		if o.Deleted || (which != nil && !which(o)) {
			continue
		}
		if err := r.p.COS.Delete(ctx, r.p.Bucket, o.Key); err != nil {
			return fmt.Errorf("e2e: deleting the plaintext export: %w", err)
		}
		r.mu.Lock()
		r.st.Exported[i].Deleted = true
		err := r.saveLocked()
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// uploadFromExport encrypts the exported boot disk as it streams from COS
// and uploads it (the upload step of a run from a template).
func (r *runner) uploadFromExport(ctx context.Context, s *Step) error {
	st := r.st
	boot := st.bootExport()
	if boot != nil && !boot.Deleted && (st.Uploaded == nil || !st.TemplateActive) {
		obj, err := r.p.COS.OpenObject(ctx, r.p.Bucket, boot.Key, cos.WithHeadCache(SourceHeadCache))
		if err != nil {
			return fmt.Errorf("e2e: opening the exported boot disk: %w", err)
		}
		if obj.Info().ETag != boot.ETag {
			return fmt.Errorf("%w: the exported object %s changed since the export (ETag %s, recorded %s)", ErrStateMismatch, boot.Key, obj.Info().ETag, boot.ETag)
		}
		r.remote = obj
		r.p.Image = io.NewSectionReader(obj, 0, obj.Size()) // an io.Reader that vhdcrypt reads with random access
		examine := r.p.Doctor
		if examine == nil {
			examine = r.examineExport
		}
		if st.Uploaded == nil {
			if err := examine(ctx, obj, obj.Size()); err != nil {
				return fmt.Errorf("e2e: the image doctor refused the exported boot disk: %w", err)
			}
		}
	}
	err := r.upload(ctx, s)
	if r.remote != nil {
		stats := r.remote.Stats()
		r.readBytes, r.readRequests = stats.Bytes, stats.Requests
		if stats.Requests > 0 {
			s.Detail += fmt.Sprintf("; read %s of the %s export in %d ranged GETs", units.Bytes(stats.Bytes), units.Bytes(r.remote.Size()), stats.Requests)
		}
	}
	return err
}

// remoteWorkers is the encryption's worker count for a remote source.
func remoteWorkers(planned int) int {
	if planned > 0 {
		return planned
	}
	return max(runtime.GOMAXPROCS(0), minRemoteWorkers)
}

// cleanupStep deletes the plaintext export once the encrypted template is
// Active.
func (r *runner) cleanupStep(ctx context.Context, s *Step) error {
	if r.p.KeepExport {
		s.Status = StepSkipped
		s.Detail = "the plaintext export is kept (KeepExport): " + strings.Join(r.exportResult().Left(), ", ")
		return nil
	}
	left := r.exportResult().Left()
	if len(left) == 0 {
		s.Status, s.Detail = StepResumed, "the plaintext export was deleted by an earlier attempt"
		return nil
	}
	if err := r.deleteExports(ctx, nil); err != nil {
		return err
	}
	s.Detail = "deleted the plaintext export: " + strings.Join(left, ", ")
	return nil
}

// exportResult builds Result.Export from the state.
func (r *runner) exportResult() *ExportResult {
	st := r.st
	e := &ExportResult{SourceTemplateID: st.SourceTemplateID, URI: r.exportURI(), Kept: r.p.KeepExport,
		ReadBytes: r.readBytes, ReadRequests: r.readRequests}
	if r.p.source != nil {
		e.SourceTemplateName = r.p.source.Name
	}
	e.Objects = append([]ExportedObject(nil), st.Exported...)
	return e
}

// CleanupResult is what Cleanup did.
type CleanupResult struct {
	// Deleted are the plaintext export objects Cleanup deleted.
	Deleted []string `json:"deleted,omitempty"`
	// Remaining are the ones it could not delete (the error says why).
	Remaining []string `json:"remaining,omitempty"`
}

// Cleanup deletes the plaintext objects that the export of a run from a
// template wrote and that the run has not deleted: the ones the state file
// (plan.StatePath) records and any other object named like that export's
// (<stem>-<n>.vhd under plan.ExportObject, by default Name + ExportSuffix,
// which a run stopped between copyToIcos and its answer may have left).
// It needs plan.COS, plan.Bucket and plan.StatePath, and with
// plan.Classic waits first until no transaction runs on the source
// template, so that an export still under way does not write after it. The
// state file records the deletions; a later Run exports again if it still
// needs the export.
func Cleanup(ctx context.Context, plan Plan) (*CleanupResult, error) {
	if plan.COS == nil || plan.Bucket == "" || plan.StatePath == "" {
		return nil, fmt.Errorf("%w: Cleanup needs COS, Bucket and StatePath", ErrPlan)
	}
	store := fileStore{plan.StatePath}
	unlock, err := store.lock() // never beside a run of the same state
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := store.load()
	if err != nil {
		return nil, err
	}
	if plan.ExportObject == "" {
		plan.ExportObject = st.ExportObject
	}
	if plan.ExportObject == "" {
		return &CleanupResult{}, nil // the state is not of a run from a template
	}
	r := &runner{p: plan, st: st}
	if r.p.Clock == nil {
		r.p.Clock = time.Now
	}
	if plan.Classic != nil && st.SourceTemplateID != 0 && st.ExportRequested {
		if _, err := plan.Classic.WaitTemplate(ctx, st.SourceTemplateID); err != nil && !errors.Is(err, classic.ErrTemplateGone) {
			return nil, fmt.Errorf("e2e: waiting for the source template's export to end: %w", err)
		}
	}
	found, err := r.findExported(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		known := false
		for i := range st.Exported {
			if st.Exported[i].Key == f.Key {
				known = true
				st.Exported[i].Deleted = false // it is there: delete it again
			}
		}
		if !known {
			st.Exported = append(st.Exported, f)
		}
	}
	res := &CleanupResult{}
	var derr error
	for i := range st.Exported {
		o := &st.Exported[i]
		if o.Deleted {
			continue
		}
		if err := plan.COS.Delete(ctx, plan.Bucket, o.Key); err != nil {
			derr = errors.Join(derr, fmt.Errorf("e2e: deleting the plaintext export: %w", err))
			res.Remaining = append(res.Remaining, o.Key)
			continue
		}
		o.Deleted = true
		res.Deleted = append(res.Deleted, o.Key)
	}
	if st.Uploaded == nil {
		// The encryption still needs an export: the next run makes one.
		st.ExportDone, st.ExportRequested = false, false
		if len(res.Remaining) == 0 {
			st.Exported = nil
		}
	}
	st.Updated = r.p.Clock()
	if err := store.save(st); err != nil {
		return res, errors.Join(derr, err)
	}
	return res, derr
}

// examineExport is the default Plan.Doctor: the image doctor on the
// exported boot disk, read through ranged GETs (metadata only), with the
// plan's OS code (which the source template gave when the plan had none).
func (r *runner) examineExport(ctx context.Context, image io.ReaderAt, size int64) error {
	d, err := disk.Open(image, size)
	if err != nil {
		return err
	}
	var opts []doctor.Option
	if r.p.OSCode != "" {
		opts = append(opts, doctor.WithOSCode(r.p.OSCode))
	}
	rep, err := doctor.Examine(ctx, d, opts...)
	if err != nil {
		return fmt.Errorf("e2e: examining the exported image: %w", err)
	}
	if r.p.OSCode != "" {
		if err := rep.CheckOSCode(r.p.OSCode); err != nil {
			return err
		}
	}
	if ie := (&ImageError{Report: rep, anyOS: r.p.AnyOSCode}); len(ie.failed()) > 0 {
		return ie
	}
	return nil
}
