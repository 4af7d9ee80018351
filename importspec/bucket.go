package importspec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrUnknownLocation is matched by the error of a LocationConstraint
// ParseLocationConstraint cannot classify.
var ErrUnknownLocation = errors.New("unrecognised bucket location constraint")

// Resiliency is a bucket's resiliency class.
type Resiliency int

// The resiliency classes (cloud-object-storage classes.md and
// endpoints.md: Regional, Cross Region and Single Data Center buckets).
const (
	// UnknownResiliency is the zero value.
	UnknownResiliency Resiliency = iota
	// Regional buckets live in one multi-zone region (us-south, eu-de, ...).
	// The E2E page asks to "create the COS instance in the region where
	// your key management service is provisioned"; that the bucket must be
	// Regional and in the key's region is this module's reading of it
	// (inferred), which classic and cos check before an import.
	Regional
	// CrossRegion buckets span a geography (us, eu, ap).
	CrossRegion
	// SingleSite buckets live in one data center (ams03, che01, ...).
	SingleSite
)

// String names the class as the IBM docs do.
func (r Resiliency) String() string {
	switch r {
	case Regional:
		return "Regional"
	case CrossRegion:
		return "Cross Region"
	case SingleSite:
		return "Single Data Center"
	}
	return "unknown"
}

// Location is a parsed bucket LocationConstraint.
type Location struct {
	// Constraint is the string as the server gave it, without surrounding
	// whitespace.
	Constraint string
	// Location is its location part: a region, a cross-region geography or
	// a data-center code.
	Location string
	// Class is the storage class part ("standard", "vault", "cold",
	// "smart", "flex", "onerate_active"), or "" when the constraint has none.
	Class string
	// Resiliency follows from Location.
	Resiliency Resiliency
}

// storageClasses are the class suffixes of COS provisioning codes
// (cloud-object-storage classes.md, "Locations and provisioning codes";
// onerate_active: the One Rate plan's code).
var storageClasses = map[string]bool{
	"standard": true, "vault": true, "cold": true, "smart": true, "flex": true,
	"onerate_active": true,
}

var (
	// A region is <2 letters>-<word>: us-south, eu-de, jp-tok, in-che.
	regionShape = regexp.MustCompile(`^[a-z]{2}-[a-z]+$`)
	// A single data center is <3 letters><2 digits>: ams03, sjc04.
	siteShape = regexp.MustCompile(`^[a-z]{3}[0-9]{2}$`)
)

// crossRegions are the cross-region geographies (cloud-object-storage
// endpoints.md, "Cross Region endpoints").
var crossRegions = map[string]bool{"us": true, "eu": true, "ap": true}

// ParseLocationConstraint classifies a LocationConstraint of the form
// <location>-<class> ("us-south-standard", "eu-smart", "ams03-vault",
// "jp-tok-onerate_active") or a bare location ("us-south", as S3-compatible
// servers answer). Surrounding whitespace is ignored: IBM's own example
// answer to GET ?location is pretty-printed XML, the constraint on a line
// of its own ("\n  us-south-standard\n"), and the SDK hands over the
// element's text as it is. Location names are recognised by shape: a
// region is two letters, a hyphen and a word; us, eu and ap are
// cross-region; three letters and two digits are a data center. Anything
// else, including "", gives an error matching ErrUnknownLocation.
func ParseLocationConstraint(s string) (Location, error) {
	s = strings.TrimSpace(s)
	loc := Location{Constraint: s, Location: strings.ToLower(s)}
	if i := strings.LastIndexByte(loc.Location, '-'); i >= 0 && storageClasses[loc.Location[i+1:]] {
		loc.Location, loc.Class = loc.Location[:i], loc.Location[i+1:]
	}
	switch {
	case crossRegions[loc.Location]:
		loc.Resiliency = CrossRegion
	case siteShape.MatchString(loc.Location):
		loc.Resiliency = SingleSite
	case regionShape.MatchString(loc.Location):
		loc.Resiliency = Regional
	default:
		return Location{Constraint: s}, fmt.Errorf("%w: %q", ErrUnknownLocation, s)
	}
	return loc, nil
}

// IsRegion reports whether s has the shape of a COS region name
// (us-south, eu-de, jp-tok), as ParseLocationConstraint recognises one.
func IsRegion(s string) bool { return regionShape.MatchString(s) }
