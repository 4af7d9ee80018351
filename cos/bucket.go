package cos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/e2eimage/e2eimage/importspec"
)

// Errors of the bucket checks.
var (
	// ErrBucketNotFound: HeadBucket says the bucket does not exist.
	ErrBucketNotFound = errors.New("cos: bucket not found")
	// ErrBucketAccess: the credentials may not use the bucket.
	ErrBucketAccess = errors.New("cos: access to bucket denied")
	// ErrUnknownLocation: a LocationConstraint this package cannot classify
	// (empty, or not of the form <location>-<class>); it is
	// importspec.ErrUnknownLocation.
	ErrUnknownLocation = importspec.ErrUnknownLocation
	// ErrNotRegional: the bucket is Cross Region or Single Data Center;
	// E2E image import needs a Regional bucket.
	ErrNotRegional = errors.New("cos: bucket is not regional")
	// ErrRegionMismatch: the bucket's region differs from the one required
	// (the key service's region), or from the region of the client's
	// endpoint (see WrongRegionError).
	ErrRegionMismatch = errors.New("cos: bucket region does not match")
)

// WrongRegionError reports a bucket that exists, but in another location
// than the one the client's endpoint serves. COS answers requests for such
// a bucket with 404 NoSuchBucket ("subsequent requests to that bucket must
// be sent to the same corresponding endpoint", IBM Cloud Object Storage
// S3 API introduction, https://cloud.ibm.com/apidocs/cos/cos-compatibility;
// the NoSuchBucket answer is reported in IBM/ibm-cos-sdk-js issues #3 and
// #81), so this package asks ListBucketsExtended, which answers on any
// endpoint with every bucket's LocationConstraint, where the bucket is.
// It matches ErrRegionMismatch with errors.Is, and ErrNotRegional too when
// the bucket is Cross Region or Single Data Center.
type WrongRegionError struct {
	// Bucket is the bucket's name.
	Bucket string
	// Location is where the bucket is, from its LocationConstraint;
	// Location.Location is its actual region (or geography or site).
	Location Location
	// EndpointRegion is the client's region, whose endpoint answered that
	// the bucket does not exist.
	EndpointRegion string
	// Err is the endpoint's answer (404 NoSuchBucket).
	Err error
}

// Error names the bucket's actual location and the client's region.
func (e *WrongRegionError) Error() string {
	return fmt.Sprintf("cos: bucket %s is in %s (%s, %s), not in %s: the %s endpoint answers that it does not exist; use a client for %s",
		e.Bucket, e.Location.Location, e.Location.Constraint, e.Location.Resiliency, e.EndpointRegion, e.EndpointRegion, e.Location.Location)
}

// Unwrap returns the endpoint's answer.
func (e *WrongRegionError) Unwrap() error { return e.Err }

// Is matches ErrRegionMismatch, and ErrNotRegional for a bucket that is
// not Regional.
func (e *WrongRegionError) Is(target error) bool {
	return target == ErrRegionMismatch || (target == ErrNotRegional && e.Location.Resiliency != Regional)
}

// Resiliency is a bucket's resiliency class (importspec.Resiliency, where
// the rules and their sources are).
type Resiliency = importspec.Resiliency

// The resiliency classes.
const (
	UnknownResiliency = importspec.UnknownResiliency
	Regional          = importspec.Regional
	CrossRegion       = importspec.CrossRegion
	SingleSite        = importspec.SingleSite
)

// Location is a parsed bucket LocationConstraint.
type Location = importspec.Location

// ParseLocationConstraint classifies a LocationConstraint such as
// "us-south-standard", "eu-smart" or "ams03-vault":
// importspec.ParseLocationConstraint. Anything it cannot classify gives an
// error matching ErrUnknownLocation.
func ParseLocationConstraint(s string) (Location, error) {
	return importspec.ParseLocationConstraint(s)
}

// BucketInfo is what CheckBucket learned about a bucket.
type BucketInfo struct {
	Name     string
	Location Location
	// KeyProtect reports server-side encryption with a Key Protect or HPCS
	// root key (HeadBucket's ibm-sse-kp-enabled), RootKeyCRN the key.
	KeyProtect bool
	RootKeyCRN string
}

// CheckBucket runs the preflight checks of a bucket that will receive an
// image for E2E import: it exists and is accessible (HeadBucket), it is
// Regional (GetBucketLocation), and, when region is not "", it is in that
// region (the key service's). A bucket that the client's endpoint does not
// know is looked up with ListBucketsExtended: one that exists in another
// location gives a *WrongRegionError naming it, one that does not exist
// ErrBucketNotFound. The returned info is filled as far as the checks got,
// also when an error is returned.
func (c *Client) CheckBucket(ctx context.Context, bucket, region string) (*BucketInfo, error) {
	info := &BucketInfo{Name: bucket}
	hb, err := c.s3.HeadBucketWithContext(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		switch statusCode(err) {
		case http.StatusNotFound:
			err = c.explainNoSuchBucket(ctx, bucket, err)
			var wr *WrongRegionError
			if errors.As(err, &wr) {
				info.Location = wr.Location
			}
			return info, fmt.Errorf("cos: checking bucket %s: %w", bucket, err)
		case http.StatusForbidden:
			return info, fmt.Errorf("cos: checking bucket %s: %w: %w", bucket, ErrBucketAccess, err)
		}
		return info, fmt.Errorf("cos: checking bucket %s: %w", bucket, err)
	}
	info.KeyProtect = aws.BoolValue(hb.IBMSSEKPEnabled)
	info.RootKeyCRN = aws.StringValue(hb.IBMSSEKPCrkId)

	gl, err := c.s3.GetBucketLocationWithContext(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return info, fmt.Errorf("cos: getting location of bucket %s: %w", bucket, err)
	}
	loc, err := ParseLocationConstraint(aws.StringValue(gl.LocationConstraint))
	info.Location = loc
	if err != nil {
		return info, fmt.Errorf("cos: bucket %s: %w", bucket, err)
	}
	if loc.Resiliency != Regional {
		return info, fmt.Errorf("cos: bucket %s is %s (%s): %w", bucket, loc.Resiliency, loc.Constraint, ErrNotRegional)
	}
	if region != "" && loc.Location != region {
		return info, fmt.Errorf("cos: bucket %s is in %s, not %s: %w", bucket, loc.Location, region, ErrRegionMismatch)
	}
	return info, nil
}

// explainNoSuchBucket turns the 404 of a request for bucket into a
// *WrongRegionError when ListBucketsExtended finds the bucket in another
// location, and into ErrBucketNotFound (wrapping err) otherwise, also when
// the listing fails (its error is joined).
func (c *Client) explainNoSuchBucket(ctx context.Context, bucket string, err error) error {
	loc, found, lerr := c.locateBucket(ctx, bucket)
	switch {
	case lerr != nil:
		return errors.Join(fmt.Errorf("%w: %w", ErrBucketNotFound, err), fmt.Errorf("looking the bucket up in the instance's listing: %w", lerr))
	case !found:
		return fmt.Errorf("%w: %w", ErrBucketNotFound, err)
	}
	l, perr := ParseLocationConstraint(loc)
	if perr != nil || l.Location == strings.ToLower(c.region) {
		// Listed, and in the endpoint's own region (or in a location this
		// package cannot read): the 404 stands as it is.
		return fmt.Errorf("%w: %w", ErrBucketNotFound, err)
	}
	return &WrongRegionError{Bucket: bucket, Location: l, EndpointRegion: c.region, Err: err}
}

// locateBucket finds bucket in the instance's extended listing (GET
// /?extended with prefix=<bucket>) and returns its LocationConstraint.
func (c *Client) locateBucket(ctx context.Context, bucket string) (string, bool, error) {
	var loc string
	found := false
	err := c.s3.ListBucketsExtendedPagesWithContext(ctx, &s3.ListBucketsExtendedInput{Prefix: aws.String(bucket)},
		func(out *s3.ListBucketsExtendedOutput, _ bool) bool {
			for _, b := range out.Buckets {
				if aws.StringValue(b.Name) == bucket {
					loc, found = aws.StringValue(b.LocationConstraint), true
					return false
				}
			}
			return true
		})
	return loc, found, err
}

// BucketSpec describes a bucket to create.
type BucketSpec struct {
	// LocationConstraint is the provisioning code, <location>-<class>.
	// Default: "<client region>-standard".
	LocationConstraint string
	// RootKeyCRN, when set, encrypts the bucket with this Key Protect or
	// HPCS root key (ibm-sse-kp-encryption-algorithm AES256 and
	// ibm-sse-kp-customer-root-key-crn; ../docs/CLOUD.md §4.4). COS needs an
	// authorization from the COS instance to the key service for this.
	RootKeyCRN string
}

// CreateBucket creates a bucket. With API-key credentials the client's
// Config.ServiceInstanceID names the COS instance it is created in.
func (c *Client) CreateBucket(ctx context.Context, bucket string, spec BucketSpec) error {
	lc := spec.LocationConstraint
	if lc == "" {
		lc = c.region + "-standard"
	}
	in := &s3.CreateBucketInput{
		Bucket:                    aws.String(bucket),
		CreateBucketConfiguration: &s3.CreateBucketConfiguration{LocationConstraint: aws.String(lc)},
	}
	if spec.RootKeyCRN != "" {
		in.IBMSSEKPEncryptionAlgorithm = aws.String("AES256")
		in.IBMSSEKPCustomerRootKeyCrn = aws.String(spec.RootKeyCRN)
	}
	if _, err := c.s3.CreateBucketWithContext(ctx, in); err != nil {
		return fmt.Errorf("cos: creating bucket %s in %s: %w", bucket, lc, err)
	}
	return nil
}
