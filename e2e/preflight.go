package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

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
// location, in the COS client's region); the classic API (the credentials
// work and plan.OSCode is a code VHD imports accept); and, when plan.Image
// can be read with random access, the image (not encrypted, at most
// classic.MaxImportDiskSize); with plan.SourceTemplate, the template
// (found, unencrypted, a boot disk within that limit, an OS code). The error is for a plan that cannot be
// checked (ErrPlan); failed checks are in the report.
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
	return r.finish(), err
}

// checks returns the preflight checks of the plan, in the order the flow
// needs them.
func (r *runner) checks() []iam.Check {
	var checks []iam.Check
	if r.p.IAM != nil {
		checks = r.p.IAM.Checks(r.p.iamPlan(r.key), r.keyCheck())
	} else {
		checks = []iam.Check{r.keyCheck()}
	}
	checks = append(checks, r.bucketCheck())
	if r.p.Classic != nil {
		checks = append(checks, r.classicCheck())
	}
	if r.p.Server != nil {
		checks = append(checks, r.placementCheck())
	}
	if r.p.source != nil {
		checks = append(checks, r.sourceCheck())
		if r.mode == modeRun {
			checks = append(checks, r.exportKeyCheck())
		}
	} else if c, ok := r.imageCheck(); ok {
		checks = append(checks, c)
	}
	if r.mode == modeRun {
		checks = append(checks, r.importKeyCheck())
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
	code := r.p.OSCode
	return iam.FuncCheck("classic infrastructure API", func(ctx context.Context) (string, error) {
		codes, err := r.p.Classic.OSReferenceCodes(ctx)
		if err != nil {
			return "", err
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

// imageCheck checks the image when it can be inspected without consuming
// it (random access). A run whose upload is done needs no image.
func (r *runner) imageCheck() (iam.Check, bool) {
	if r.mode == modePrepare && r.p.Image == nil || r.st.Uploaded != nil {
		return iam.Check{}, false
	}
	const name = "image"
	fix := fmt.Sprintf("give an unencrypted raw or VHD image of at most %d GiB", classic.MaxImportDiskSize>>30)
	return iam.FuncCheck(name, func(ctx context.Context) (string, error) {
		if r.p.Image == nil {
			return "", ErrNoImage
		}
		ra, n, ok, err := vhdcrypt.RandomAccess(r.p.Image)
		if err != nil {
			return "", err
		}
		if !ok {
			if r.p.ImageSize > classic.MaxImportDiskSize {
				return "", fmt.Errorf("the declared size, %d bytes, is more than an import accepts", r.p.ImageSize)
			}
			return "a stream: checked as it is encrypted", nil
		}
		info, err := vhdcrypt.Inspect(ctx, io.NewSectionReader(ra, 0, n))
		if err != nil {
			return "", err
		}
		if info.Encrypted {
			return "", vhdcrypt.ErrAlreadyEncrypted
		}
		if info.VirtualSize > classic.MaxImportDiskSize {
			return "", fmt.Errorf("the virtual disk is %d bytes, more than an import accepts", info.VirtualSize)
		}
		r.st.DiskSize = info.VirtualSize
		return fmt.Sprintf("%s, %s virtual disk", info.Format, units.Bytes(info.VirtualSize)), nil
	}, fix), true
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

// errNotPrepared explains a missing import key.
var errNotPrepared = errors.New("e2e: no API key for the import: give ImportAPIKey, or Prepare with a ServiceID")
