package classic

import (
	"strings"

	"github.com/e2eimage/e2eimage/importspec"
)

// OperatingSystem is an operating system that IBM supports for VHD image
// imports, and so for End to End encrypted images. The list and its
// sources are package importspec's.
type OperatingSystem = importspec.OperatingSystem

// SupportedOperatingSystems returns the operating systems IBM documents for
// VHD imports and E2E encrypted images, with their reference codes
// (importspec.SupportedOperatingSystems). ImportRequest.AnyOSCode accepts
// a code outside this list.
func SupportedOperatingSystems() []OperatingSystem { return importspec.SupportedOperatingSystems() }

// IsSupportedOSCode reports whether code is one of
// SupportedOperatingSystems (importspec.IsSupportedOSCode).
func IsSupportedOSCode(code string) bool { return importspec.IsSupportedOSCode(code) }

func supportedOSList() string { return strings.Join(importspec.SupportedOSCodes(), ", ") }
