package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/units"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/iam"
)

// PreflightCheck is the outcome of one preflight check, as Result reports
// it (iam.CheckResult without the error value, so that it marshals).
type PreflightCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// PreflightError is the error of a run whose preflight found missing
// preparation steps. Nothing was uploaded or imported. It matches
// iam.ErrPreflight and each failed check's own error (kms.ErrKeyNotActive,
// cos.ErrNotRegional, ...) with errors.Is.
type PreflightError struct {
	Report *iam.Report
}

// Error names every failed check with what was found and the fix.
func (e *PreflightError) Error() string {
	var b strings.Builder
	failed := e.Report.Failed()
	fmt.Fprintf(&b, "e2e: preflight: %d of %d checks failed", len(failed), len(e.Report.Results))
	for _, f := range failed {
		fmt.Fprintf(&b, "; %s: %s", f.Name, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(&b, " (fix: %s)", f.Fix)
		}
	}
	return b.String()
}

// Unwrap returns the report's error, which matches iam.ErrPreflight and
// the failures' causes.
func (e *PreflightError) Unwrap() error { return e.Report.Err() }

// Preflight runs the checks of Run's preflight step without preparing or
// changing anything, and returns the report: the root key (exists, is a
// root key, is Active), with plan.IAM the Cloud Block Storage authorization
// and, with plan.ServiceID.Name, the service ID and its access policies;
// the bucket (exists, is Regional, in the key's region and an import
// location, in the COS client's region); when plan.Image can be read with
// random access, the image (a format the encryptor reads, not encrypted, at
// most classic.MaxImportDiskSize, and every requirement the image doctor
// checks: see package doctor; an empty plan.OSCode takes the doctor's
// suggestion); and the classic API (the credentials work and the OS
// reference code is one VHD imports accept). The error is for a plan that
// cannot be checked (ErrPlan); failed checks are in the report. With
// plan.SourceTemplate, the template is checked instead of the image (found,
// unencrypted, a boot disk within the import limit, an OS code).
func Preflight(ctx context.Context, plan Plan) (*iam.Report, error) {
	if plan.SourceTemplate != "" {
		var err error
		if plan, err = plan.resolveSource(ctx); err != nil {
			return nil, err
		}
	}
	r, err := newRunner(plan, modePrepare)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return iam.Preflight(ctx, r.checks()...), nil
}

// Prepare runs the first two steps of Run: the IAM preparation (when
// plan.Prepare is set) and the preflight. It is what an account's
// administrator runs once (examples/prepare); the plan needs no image, no
// template name and no import API key, and no state file is used.
// plan.SaveAPIKey receives a service ID API key that preparation creates.
func Prepare(ctx context.Context, plan Plan) (*Result, error) {
	plan.StatePath = ""
	r, err := newRunner(plan, modePrepare)
	if err != nil {
		return nil, err
	}
	defer r.close()
	err = r.runSteps(ctx, []stepFunc{
		{StepPrepare, r.prepare},
		{StepPreflight, r.preflight},
	})
	// A key nobody saved is of no use after this call: delete it.
	if _, rerr := r.releaseKey(context.WithoutCancel(ctx)); err == nil {
		err = rerr
	}
	return r.finish(), err
}

// checks returns the preflight checks of the plan, in the order the flow
// needs them.
func (r *runner) checks() []iam.Check {
	var checks []iam.Check
	if r.p.IAM != nil {
		checks = r.p.IAM.Checks(r.p.iamPlan(r.key), r.keyCheck())
		if r.st.TemplateActive {
			checks = keyNotNeeded(checks, r.p.ServiceID.Name)
		}
	} else {
		checks = []iam.Check{r.keyCheck()}
	}
	checks = append(checks, r.bucketCheck())
	// The image before the classic API: the doctor may supply the OS
	// reference code that the classic check validates.
	if r.p.OSCode == "" {
		r.p.OSCode = r.st.OSCode // suggested by the doctor in an earlier attempt
	}
	if r.p.source != nil {
		checks = append(checks, r.sourceCheck())
		if r.mode == modeRun {
			checks = append(checks, r.exportKeyCheck())
		}
	} else if c, ok := r.imageCheck(); ok {
		checks = append(checks, c)
	}
	if r.p.Classic != nil {
		checks = append(checks, r.classicCheck())
	}
	if r.p.Server != nil {
		checks = append(checks, r.placementCheck())
	}
	if r.mode == modeRun {
		checks = append(checks, r.importKeyCheck())
	}
	return checks
}

// keyNotNeeded passes the check that the import service ID has an API key
// once the image is imported: the run deleted the key it owned then
// (releaseKey), and nothing left needs one.
func keyNotNeeded(checks []iam.Check, serviceID string) []iam.Check {
	name := "service ID " + serviceID
	for i, c := range checks {
		if c.Name == name {
			checks[i] = iam.Check{Name: name, Run: func(context.Context) iam.CheckResult {
				return iam.CheckResult{Name: name, OK: true, Detail: "not needed: the image is imported"}
			}}
		}
	}
	return checks
}

// keyCheck checks the root key (exists, root, Active, in its instance).
func (r *runner) keyCheck() iam.Check {
	return iam.KeyCheck(func(ctx context.Context) (string, string, error) { return kms.CheckKey(ctx, r.p.KeyService) })
}

// importKeyCheck checks that the import will have an API key: given, or
// made by the preparation.
func (r *runner) importKeyCheck() iam.Check {
	return iam.FuncCheck("import API key", func(context.Context) (string, error) {
		switch {
		case r.st.TemplateActive:
			return "not needed: the image is imported", nil
		case !r.importKey.Empty() && r.p.ServiceID.Name != "":
			return "given for service ID " + r.p.ServiceID.Name, nil
		case !r.importKey.Empty():
			return "given", nil
		case r.p.Prepare && r.p.ServiceID.Name != "":
			return "made by the preparation for service ID " + r.p.ServiceID.Name, nil
		}
		return "", errNotPrepared
	}, "give the service ID's API key (Plan.ImportAPIKey), or prepare the service ID (Plan.Prepare) to make one")
}

func (r *runner) bucketCheck() iam.Check {
	region := r.key.Region
	return iam.FuncCheck("bucket "+r.p.Bucket, func(ctx context.Context) (string, error) {
		info, err := r.p.COS.CheckBucket(ctx, r.p.Bucket, region)
		if err != nil {
			return "", err
		}
		loc := info.Location.Location
		if cr := r.p.COS.Region(); cr != loc {
			return "", fmt.Errorf("the bucket is in %s but the COS client is for %s, the region the import URI names", loc, cr)
		}
		if !classic.IsImportRegion(loc) {
			return "", fmt.Errorf("%s is not a region classic infrastructure imports images from", loc)
		}
		r.bucketLocation = info.Location.Constraint
		d := fmt.Sprintf("%s bucket in %s (%s), the root key's region", info.Location.Resiliency, loc, info.Location.Constraint)
		if r.p.SourceTemplate != "" && !info.KeyProtect {
			w := fmt.Sprintf("bucket %s is not encrypted with a Key Protect or HPCS root key: the plaintext export of the template rests there with COS's default encryption only until it is deleted", r.p.Bucket)
			r.res.Warnings = append(r.res.Warnings, w)
			r.p.Logger.Warn("e2e: "+w, "bucket", r.p.Bucket)
			d += "; warning: not encrypted with a Key Protect or HPCS key"
		} else if info.KeyProtect {
			d += ", encrypted with root key " + info.RootKeyCRN
		}
		return d, nil
	}, fmt.Sprintf("use a Regional bucket in %s (the root key's region, an import location) and a COS client for that region", region))
}

func (r *runner) classicCheck() iam.Check {
	return iam.FuncCheck("classic infrastructure API", func(ctx context.Context) (string, error) {
		code := r.p.OSCode // the plan's, or the doctor's suggestion (imageCheck runs first)
		codes, err := r.p.Classic.OSReferenceCodes(ctx)
		if err != nil {
			return "", err
		}
		if code == "" && r.mode == modeRun {
			return "", ErrNoOSCode
		}
		if code == "" {
			return fmt.Sprintf("credentials accepted; %d OS reference codes importable", len(codes)), nil
		}
		name, ok := codes[code]
		if !ok {
			return "", fmt.Errorf("%q is not an OS reference code VHD imports accept (%s)", code, someCodes(codes))
		}
		if !r.p.AnyOSCode && !classic.IsSupportedOSCode(code) {
			return "", fmt.Errorf("%q is not one of the systems IBM documents for imports and E2E images (set AnyOSCode to use it anyway)", code)
		}
		return fmt.Sprintf("credentials accepted; %s is %s", code, name), nil
	}, "check the classic credentials (SL_USERNAME and SL_API_KEY, or an IBM Cloud API key) and the OS reference code")
}

// placementCheck says where the server will be ordered: in the import's
// data center, or elsewhere after a copy of the template (addLocations).
// It reads the template when an earlier attempt imported it.
func (r *runner) placementCheck() iam.Check {
	return iam.FuncCheck("server placement", func(ctx context.Context) (string, error) {
		if r.p.Classic != nil && r.st.TemplateID != 0 {
			p, err := r.p.Classic.Placement(ctx, classic.ServerSpec{Datacenter: r.p.Server.Datacenter,
				Template: classic.TemplateRef{ID: r.st.TemplateID}})
			if err == nil {
				return p.String(), nil
			}
		}
		return classic.PlanPlacement(r.p.COS.Region(), r.p.Server.Datacenter).String(), nil
	}, "set Server.Datacenter to order elsewhere (the template is copied there first)")
}

// someCodes lists a few codes, for a message.
func someCodes(codes map[string]string) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 8 {
		return "e.g. " + strings.Join(keys[:8], ", ") + ", ..."
	}
	return "one of " + strings.Join(keys, ", ")
}

// imageCheck checks the image when it can be read without consuming it
// (random access): its format (package disk), that it is not encrypted and
// at most classic.MaxImportDiskSize, and what the image doctor finds inside
// it (package doctor). A failing requirement fails the check (an
// *ImageError), and so does an OS reference code that contradicts the
// image's system (doctor.ErrOSCodeMismatch); an empty Plan.OSCode takes the
// doctor's suggestion. A run whose upload is done needs no image.
func (r *runner) imageCheck() (iam.Check, bool) {
	if r.mode == modePrepare && r.p.Image == nil || r.st.Uploaded != nil {
		return iam.Check{}, false
	}
	const name = "image"
	return iam.Check{Name: name, Run: func(ctx context.Context) iam.CheckResult {
		if r.imageResult != nil { // examined before the preparation
			return *r.imageResult
		}
		detail, fix, err := r.examineImage(ctx)
		if err != nil {
			if fix == "" {
				fix = fmt.Sprintf("give an unencrypted raw, VHD or qcow2 image of a whole disk, at most %d GiB", classic.MaxImportDiskSize>>30)
			}
			return iam.CheckResult{Name: name, Detail: cmp.Or(detail, err.Error()), Fix: fix, Err: err}
		}
		res := iam.CheckResult{Name: name, OK: true, Detail: detail}
		r.imageResult = &res
		return res
	}}, true
}

// examineImage is the body of the image check.
func (r *runner) examineImage(ctx context.Context) (detail, fix string, err error) {
	if r.p.Image == nil {
		return "", "", ErrNoImage
	}
	ra, n, ok, err := vhdcrypt.RandomAccess(r.p.Image)
	if err != nil {
		return "", "", err
	}
	if !ok {
		if r.p.ImageSize > classic.MaxImportDiskSize {
			return "", "", fmt.Errorf("the declared size, %d bytes, is more than an import accepts", r.p.ImageSize)
		}
		return "a stream: checked as it is encrypted (the image doctor reads files only)", "", nil
	}
	d, err := disk.Open(io.NewSectionReader(ra, 0, n), n)
	if err != nil {
		return "", "", err
	}
	if img, ok := d.VHD(); ok {
		if _, encrypted := img.KeyHash(); encrypted {
			return "", "", vhdcrypt.ErrAlreadyEncrypted
		}
	}
	if d.Size() > classic.MaxImportDiskSize {
		return "", "", fmt.Errorf("the virtual disk is %d bytes, more than an import accepts", d.Size())
	}
	r.st.DiskSize = d.Size()
	var opts []doctor.Option
	if r.p.OSCode != "" {
		opts = append(opts, doctor.WithOSCode(r.p.OSCode))
	}
	rep, err := doctor.Examine(ctx, d, opts...)
	if err != nil {
		return "", "", fmt.Errorf("e2e: examining the image: %w", err)
	}
	if r.p.OSCode != "" {
		if err := rep.CheckOSCode(r.p.OSCode); err != nil {
			return "", fmt.Sprintf("give OSCode %s, or leave it empty for the image's own", rep.OSCode()), err
		}
	}
	ie := &ImageError{Report: rep, anyOS: r.p.AnyOSCode}
	if len(ie.failed()) > 0 {
		return "", ie.fix(), ie
	}
	detail = fmt.Sprintf("%s, %s virtual disk; %s", d.Format(), units.Bytes(d.Size()), doctorSummary(rep))
	if r.p.OSCode == "" {
		code := rep.OSCode()
		if code == "" {
			return "", "give Plan.OSCode (the -os-code flag of the examples)", fmt.Errorf("%w (the doctor found no known system in it)", ErrNoOSCode)
		}
		r.p.OSCode, r.st.OSCode = code, code
		detail += "; OS reference code " + code + " (from the image)"
	}
	return detail, "", nil
}

// doctorSummary counts the doctor's verdicts and names the system found.
func doctorSummary(rep *doctor.Report) string {
	var pass, skipped int
	for _, f := range rep.Findings {
		switch f.Verdict {
		case doctor.Pass:
			pass++
		case doctor.NotInspected:
			skipped++
		}
	}
	s := fmt.Sprintf("doctor: %d of %d requirements met", pass, len(rep.Findings))
	if skipped > 0 {
		s += fmt.Sprintf(", %d not inspected", skipped)
	}
	if rep.OS != nil && rep.OS.PrettyName != "" {
		s += ", " + rep.OS.PrettyName
	}
	return s
}

// ErrImageNotImportable is matched by an *ImageError.
var ErrImageNotImportable = errors.New("e2e: the image does not meet IBM Cloud's import requirements")

// ImageError is the preflight error of an image the doctor (package doctor)
// found a failing requirement in: nothing is uploaded or imported. Report
// is the doctor's whole report (Report.String renders it). With
// Plan.AnyOSCode, a system that is not on IBM's list (the doctor's
// CheckOSSupported) does not count as a failure.
type ImageError struct {
	Report *doctor.Report
	anyOS  bool
}

// failed returns the findings that fail the run.
func (e *ImageError) failed() []doctor.Finding {
	var out []doctor.Finding
	for _, f := range e.Report.Findings {
		if f.Verdict == doctor.Fail && !(e.anyOS && f.Check == doctor.CheckOSSupported) {
			out = append(out, f)
		}
	}
	return out
}

// Error names each failed requirement and what was found.
func (e *ImageError) Error() string {
	var failed []string
	for _, f := range e.failed() {
		failed = append(failed, f.Check+": "+f.Detail)
	}
	return "e2e: the image does not meet IBM Cloud's import requirements: " + strings.Join(failed, "; ")
}

// Is matches ErrImageNotImportable.
func (e *ImageError) Is(target error) bool { return target == ErrImageNotImportable }

// fix joins the fixes of the failed requirements.
func (e *ImageError) fix() string {
	var fixes []string
	for _, f := range e.failed() {
		if f.Fix != "" && !slices.Contains(fixes, f.Fix) {
			fixes = append(fixes, f.Fix)
		}
	}
	return strings.Join(fixes, "; ")
}

// preflightResults converts a report for Result.
func preflightResults(rep *iam.Report) []PreflightCheck {
	out := make([]PreflightCheck, 0, len(rep.Results))
	for _, c := range rep.Results {
		pc := PreflightCheck{Name: c.Name, OK: c.OK, Detail: c.Detail}
		if !c.OK {
			pc.Fix = c.Fix
		}
		out = append(out, pc)
	}
	return out
}

// ErrNoOSCode is the preflight error of a run that has no OS reference
// code: Plan.OSCode is empty and the image doctor could not tell the
// image's system (an image it cannot read, or a system with no known code).
var ErrNoOSCode = errors.New("e2e: no OS reference code: give Plan.OSCode, or an image file whose system the image doctor identifies")

// errNotPrepared explains a missing import key.
var errNotPrepared = errors.New("e2e: no API key for the import: give ImportAPIKey, or Prepare with a ServiceID")
