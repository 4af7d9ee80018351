package classic

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/importspec"
)

// MaxImportDiskSize is the largest virtual disk an image import accepts
// (importspec.MaxDiskSize, where its source is given).
const MaxImportDiskSize int64 = importspec.MaxDiskSize

// IsImportRegion reports whether images can be imported from a bucket in
// the COS region (importspec.IsImportRegion).
func IsImportRegion(region string) bool { return importspec.IsImportRegion(region) }

var bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// COSURI is a parsed cos://<region>/<bucket>/<object> URI, the form
// createFromIcos and copyToIcos take (../docs/CLOUD.md section 5.1).
type COSURI struct {
	Region string
	Bucket string
	Object string
}

// String formats the URI.
func (u COSURI) String() string { return "cos://" + u.Region + "/" + u.Bucket + "/" + u.Object }

// ParseCOSURI parses a cos://<region>/<bucket>/<object> URI. The object may
// contain slashes.
func ParseCOSURI(s string) (COSURI, error) {
	rest, ok := strings.CutPrefix(s, "cos://")
	if !ok {
		return COSURI{}, fmt.Errorf("classic: %q is not a cos://<region>/<bucket>/<object> URI", s)
	}
	region, rest, ok1 := strings.Cut(rest, "/")
	bucket, object, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || region == "" || bucket == "" || object == "" {
		return COSURI{}, fmt.Errorf("classic: %q is not a cos://<region>/<bucket>/<object> URI", s)
	}
	if !importspec.IsRegion(region) {
		return COSURI{}, fmt.Errorf("classic: %q: %q is not a COS region name", s, region)
	}
	if !bucketRe.MatchString(bucket) {
		return COSURI{}, fmt.Errorf("classic: %q: %q is not a valid bucket name (3-63 lower-case letters, digits, '.', '-')", s, bucket)
	}
	return COSURI{Region: region, Bucket: bucket, Object: object}, nil
}

// validateStatic checks everything about an ImportRequest that needs no
// network call.
func validateStatic(req *ImportRequest) (COSURI, error) {
	bad := func(field, format string, a ...any) (COSURI, error) {
		return COSURI{}, &InvalidImportError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if strings.TrimSpace(req.Name) == "" {
		return bad("Name", "empty")
	}
	if strings.IndexFunc(req.Name, unicode.IsControl) >= 0 {
		return bad("Name", "contains control characters")
	}
	u, err := ParseCOSURI(req.URI)
	if err != nil {
		return bad("URI", "%v", strings.TrimPrefix(err.Error(), "classic: "))
	}
	if !IsImportRegion(u.Region) {
		return bad("URI", "region %q is not an image import location (one of %s)", u.Region, importspec.ImportRegionList())
	}
	obj := strings.ToLower(u.Object)
	if req.Encryption != nil {
		if !strings.HasSuffix(obj, ".vhd") {
			return bad("URI", "object %q: an encrypted image must be a VHD whose name ends in .vhd (IBM's example: filename.vhd-0.vhd)", u.Object)
		}
	} else if !strings.HasSuffix(obj, ".vhd") && !strings.HasSuffix(obj, ".vmdk") && !strings.HasSuffix(obj, ".iso") {
		return bad("URI", "object %q: the name must end in .vhd, .vmdk or .iso", u.Object)
	}
	if req.APIKey.Empty() {
		return bad("APIKey", "empty: the import needs a service ID API key with access to the bucket (and the key service)")
	}
	if req.DiskSize < 0 {
		return bad("DiskSize", "negative")
	}
	if req.DiskSize > MaxImportDiskSize {
		return bad("DiskSize", "the virtual disk is %d bytes; imports are limited to 100 GB disks (%d bytes)", req.DiskSize, MaxImportDiskSize)
	}
	if req.OSCode == "" {
		return bad("OSCode", "empty (an operating system reference code such as UBUNTU_22_64)")
	}
	if !req.AnyOSCode && !IsSupportedOSCode(req.OSCode) {
		return bad("OSCode", "%q is not one of the systems IBM documents for imports and E2E images (%s); set AnyOSCode to ask the API instead",
			req.OSCode, supportedOSList())
	}
	if err := checkEncryption(req, u); err != nil {
		return COSURI{}, err
	}
	if req.BucketLocation != "" {
		if err := checkBucketLocation(req.BucketLocation, u); err != nil {
			return COSURI{}, err
		}
	} else if req.BucketLocator == nil && !req.SkipBucketCheck {
		return bad("BucketLocation", "unknown: set BucketLocation or BucketLocator (or SkipBucketCheck) so a non-Regional bucket is caught before the import")
	}
	return u, nil
}

// checkEncryption checks what an encrypted import adds: the root key's CRN
// and region, the wrapped DEK, and no BYOL for Windows.
func checkEncryption(req *ImportRequest, u COSURI) error {
	e := req.Encryption
	if e == nil {
		return nil
	}
	bad := func(field, format string, a ...any) error {
		return &InvalidImportError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if req.BYOL && importspec.IsWindows(req.OSCode) {
		// import-image.md: "For Windows images, you cannot select Cloud Init
		// if you specify that you use your own license", and an encrypted
		// image must be cloud-init enabled (create-encrypted-image.md).
		return bad("BYOL", "an encrypted Windows image (%s) cannot bring its own licence: IBM's import allows no cloud-init with BYOL for Windows, and an encrypted image must be cloud-init enabled", req.OSCode)
	}
	k, err := crn.ParseKey(e.RootKeyCRN)
	if err != nil {
		return bad("Encryption.RootKeyCRN", "%v", strings.TrimPrefix(err.Error(), "crn: "))
	}
	if k.Region != u.Region {
		return bad("Encryption.RootKeyCRN", "the key service is in %q but the bucket is in %q; E2E needs a Regional bucket in the key service's region", k.Region, u.Region)
	}
	if e.WrappedDEK == "" {
		return bad("Encryption.WrappedDEK", "empty")
	}
	if _, err := base64.StdEncoding.DecodeString(e.WrappedDEK); err != nil {
		return bad("Encryption.WrappedDEK", "not base64 (the ciphertext the key service returned from wrap)")
	}
	return nil
}

func checkBucketLocation(lc string, u COSURI) error {
	loc, err := importspec.ParseLocationConstraint(lc)
	if err != nil {
		return &InvalidImportError{Field: "BucketLocation", Reason: err.Error()}
	}
	if loc.Resiliency != importspec.Regional {
		return &InvalidImportError{Field: "BucketLocation", Reason: fmt.Sprintf("bucket %q is %s (%s); imports need a Regional bucket", u.Bucket, loc.Resiliency, lc)}
	}
	if loc.Location != u.Region {
		return &InvalidImportError{Field: "BucketLocation", Reason: fmt.Sprintf("bucket %q is in %s but the URI names region %s", u.Bucket, loc.Location, u.Region)}
	}
	return nil
}

// ValidateImport runs every check Import runs before it calls
// createFromIcos: the request's fields, the bucket's location (through
// BucketLocator when set) and the operating system reference code (against
// getVhdImportSoftwareDescriptions, cached per Client). It creates nothing.
func (c *Client) ValidateImport(ctx context.Context, req ImportRequest) error {
	_, err := c.validate(ctx, &req)
	return err
}

func (c *Client) validate(ctx context.Context, req *ImportRequest) (COSURI, error) {
	u, err := validateStatic(req)
	if err != nil {
		return u, err
	}
	if req.BucketLocation == "" && req.BucketLocator != nil {
		lc, err := req.BucketLocator(ctx, u.Region, u.Bucket)
		if err != nil {
			return u, fmt.Errorf("classic: looking up the location of bucket %q: %w", u.Bucket, err)
		}
		if err := checkBucketLocation(lc, u); err != nil {
			return u, err
		}
	}
	codes, err := c.OSReferenceCodes(ctx)
	if err != nil {
		return u, err
	}
	if _, ok := codes[req.OSCode]; !ok {
		return u, &InvalidImportError{Field: "OSCode", Reason: fmt.Sprintf("%q is not an operating system that VHD imports accept (see Client.OSReferenceCodes)", req.OSCode)}
	}
	if !req.AnyOSCode && !IsSupportedOSCode(req.OSCode) {
		return u, &InvalidImportError{Field: "OSCode", Reason: fmt.Sprintf(
			"%q is accepted by the API but is not one of the systems IBM documents for imports and E2E images (%s); set AnyOSCode to import it anyway",
			req.OSCode, supportedOSList())}
	}
	return u, nil
}
