package importspec

import (
	"regexp"
	"strconv"
	"strings"
)

// An export (copyToIcos) writes one object per block device. IBM: "if your
// image file is named image.vhd, the first block device is exported as
// image-0.vhd. The second block device is exported as image-1.vhd, and so
// on" (image-templates export-image-ibm-cos.md). The docs say nothing of a
// file name that does not end in .vhd; reading the rule as "the name
// without .vhd, then -<n>.vhd" is an inference.
//
// Import objects have their own documented example, "filename.vhd-0.vhd"
// (import-image.md: "Imported images must be named according to the
// following example"), which is not the export rule. ParseExportedName
// accepts that form too, <file name>-<n>.vhd (image.vhd-0.vhd), as a
// tolerance: an object an export of image.vhd did not write is not named
// so unless the user named it so, and Export refuses to start when objects
// with either name already exist.

// ExportStem is the part of an export's file name that every object it
// writes starts with: the name without a trailing ".vhd" (in any case).
func ExportStem(fileName string) string {
	if len(fileName) > 4 && strings.EqualFold(fileName[len(fileName)-4:], ".vhd") {
		return fileName[:len(fileName)-4]
	}
	return fileName
}

// ExportedObjectName is the name IBM documents for the object an export of
// fileName writes for block device n: image.vhd, 0 -> image-0.vhd.
func ExportedObjectName(fileName string, n int) string {
	return ExportStem(fileName) + "-" + strconv.Itoa(n) + ".vhd"
}

// ParseExportedName reports whether key is the name of an object an export
// of fileName may have written, and for which block device: the documented
// <stem>-<n>.vhd, or the tolerated <file name>-<n>.vhd.
func ParseExportedName(fileName, key string) (blockDevice int, ok bool) {
	m := exportedNameRe(fileName).FindStringSubmatch(key)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, false
	}
	return n, true
}

func exportedNameRe(fileName string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(ExportStem(fileName)) + `(?i:\.vhd)?-([0-9]{1,6})\.(?i:vhd)$`)
}
