package importspec

import "strings"

// MaxDiskSize is the largest virtual disk an image import accepts. IBM:
// "Imports are limited to 100 GB disks. Only the boot volume is imported"
// (image-templates import-image.md). The page does not say whether GB is
// decimal or binary; classic infrastructure sizes its disks in binary
// gigabytes (a "100 GB" boot disk holds 100 GiB), so the limit is read as
// 100 GiB, the larger reading: an image is refused before the import only
// when the backplane would certainly refuse it, and a stream's part size
// always reaches it.
const MaxDiskSize = 100 << 30

// importLocation is a COS region an image can be imported from and the data
// center IBM names for it.
type importLocation struct{ region, datacenter string }

// importLocations are the regions an image can be imported from and the
// data centers it lands in: "US-South (DAL13), US-East (WDC07), EU-Great
// Britain (LON02), EU-Germany (FRA02), AP-Japan, and AU-Sydney. After the
// image is imported to one of the data centers that are listed, you can
// move it to another data center" (image-templates import-image.md,
// Table 1 "Location", last updated 2024-10-28). The page names the regions
// by their display names; the COS region codes (us-south, ..., au-syd) are
// COS's (cloud-object-storage endpoints.md). It names no data center for
// AP-Japan and AU-Sydney: for those it is read from the template once it
// exists.
var importLocations = []importLocation{
	{"us-south", "dal13"},
	{"us-east", "wdc07"},
	{"eu-gb", "lon02"},
	{"eu-de", "fra02"},
	{"jp-tok", ""},
	{"au-syd", ""},
}

// ImportRegions returns the COS regions images can be imported from.
func ImportRegions() []string {
	out := make([]string, len(importLocations))
	for i, l := range importLocations {
		out[i] = l.region
	}
	return out
}

// IsImportRegion reports whether images can be imported from a bucket in
// the COS region.
func IsImportRegion(region string) bool {
	for _, l := range importLocations {
		if l.region == region {
			return true
		}
	}
	return false
}

// ImportDatacenter returns the data center IBM documents for imports from a
// bucket in the COS region, and false when IBM names none (jp-tok, au-syd,
// or a region that is not an import location).
func ImportDatacenter(region string) (string, bool) {
	for _, l := range importLocations {
		if l.region == region && l.datacenter != "" {
			return l.datacenter, true
		}
	}
	return "", false
}

// ImportRegionList is ImportRegions joined by ", ", for messages.
func ImportRegionList() string { return strings.Join(ImportRegions(), ", ") }
