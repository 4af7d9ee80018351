package importspec

import "strings"

// OperatingSystem is an operating system with its classic infrastructure
// operating system reference code.
type OperatingSystem struct {
	// Name is the system as IBM's documentation names it.
	Name string
	// Code is its operating system reference code
	// (operatingSystemReferenceCode of createFromIcos).
	Code string
	// OSReleaseID and OSReleaseVersion are the os-release ID and the
	// major part of VERSION_ID (the whole of it for Ubuntu, whose codes
	// name LTS releases only) that identify the system inside an image;
	// both empty for Windows, which has no os-release file.
	OSReleaseID, OSReleaseVersion string
	// Supported says IBM lists the system for VHD imports, and so for
	// End to End encrypted images.
	Supported bool
}

// operatingSystems is the one table of operating systems and their codes.
//
// Supported rows: the 64-bit systems VHD and VMDK imports "are restricted
// to" (IBM Cloud docs, image-templates import-image.md, "Supported
// operating systems", last updated 2024-10-28); the E2E requirements
// (create-encrypted-image.md, "Provisioned with a supported OS") point to
// that list. The docs give names, not reference codes: UBUNTU_20_64,
// WIN_2016-STD_64 and WIN_2022-STD_64 appear in softlayer-python's
// fixtures and tests, UBUNTU_22_64, REDHAT_9_64, DEBIAN_12_64,
// CENTOS_STREAM_9_64 and ROCKYLINUX_8_64 in IBM's classic Terraform and CLI
// examples; the other codes follow the same <OS>_<major>_64 naming and are
// an inference.
//
// Unsupported rows (Supported false) let the image doctor name a system IBM
// no longer lists, or never listed, for imports; their codes are the same
// inference.
var operatingSystems = []OperatingSystem{
	{"CentOS Stream 9", "CENTOS_STREAM_9_64", "centos", "9", true}, // CentOS 9 exists only as CentOS Stream
	{"Debian 11", "DEBIAN_11_64", "debian", "11", true},
	{"Debian 12", "DEBIAN_12_64", "debian", "12", true},
	{"Windows Server Standard 2016", "WIN_2016-STD_64", "", "", true},
	{"Windows Server Standard 2019", "WIN_2019-STD_64", "", "", true},
	{"Windows Server Standard 2022", "WIN_2022-STD_64", "", "", true},
	{"Red Hat Enterprise Linux 8", "REDHAT_8_64", "rhel", "8", true},
	{"Red Hat Enterprise Linux 9", "REDHAT_9_64", "rhel", "9", true},
	{"Ubuntu 20.04", "UBUNTU_20_64", "ubuntu", "20.04", true},
	{"Ubuntu 22.04", "UBUNTU_22_64", "ubuntu", "22.04", true},
	{"Ubuntu 24.04", "UBUNTU_24_64", "ubuntu", "24.04", true},

	{"Ubuntu 18.04", "UBUNTU_18_64", "ubuntu", "18.04", false},
	{"Ubuntu 16.04", "UBUNTU_16_64", "ubuntu", "16.04", false},
	{"Debian 10", "DEBIAN_10_64", "debian", "10", false},
	{"Debian 9", "DEBIAN_9_64", "debian", "9", false},
	{"Red Hat Enterprise Linux 7", "REDHAT_7_64", "rhel", "7", false},
	{"CentOS 7", "CENTOS_7_64", "centos", "7", false},
	{"Rocky Linux 8", "ROCKYLINUX_8_64", "rocky", "8", false},
	{"Rocky Linux 9", "ROCKYLINUX_9_64", "rocky", "9", false},
}

// SupportedOperatingSystems returns the operating systems IBM documents for
// VHD imports and E2E encrypted images, with their reference codes, in the
// order of IBM's list.
func SupportedOperatingSystems() []OperatingSystem {
	var out []OperatingSystem
	for _, o := range operatingSystems {
		if o.Supported {
			out = append(out, o)
		}
	}
	return out
}

// SupportedOSCodes returns the reference codes of SupportedOperatingSystems.
func SupportedOSCodes() []string {
	var out []string
	for _, o := range operatingSystems {
		if o.Supported {
			out = append(out, o.Code)
		}
	}
	return out
}

// IsSupportedOSCode reports whether code (in any case) is the reference
// code of one of SupportedOperatingSystems.
func IsSupportedOSCode(code string) bool {
	for _, o := range operatingSystems {
		if o.Supported && strings.EqualFold(o.Code, code) {
			return true
		}
	}
	return false
}

// OSCodeFor returns the reference code of the system an os-release file
// describes by its ID and VERSION_ID, and whether IBM supports that system
// for (encrypted) imports. It returns "" for a system with no known code.
func OSCodeFor(id, versionID string) (code string, supported bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	version := strings.TrimSpace(versionID)
	if id != "ubuntu" {
		version, _, _ = strings.Cut(version, ".")
	}
	if id == "" {
		return "", false
	}
	for _, o := range operatingSystems {
		if o.OSReleaseID == id && o.OSReleaseVersion == version {
			return o.Code, o.Supported
		}
	}
	return "", false
}

// IsWindows reports whether code is the reference code of a Windows system:
// the codes IBM's examples give for Windows all start with WIN_ (see
// operatingSystems).
func IsWindows(code string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(code)), "WIN_")
}
