package doctor

import "strings"

// osCode is one operating system's classic infrastructure reference code.
//
// The codes are the operatingSystemReferenceCode values of the classic API
// (SoftLayer_Virtual_Guest_Block_Device_Template_Group
// getVhdImportSoftwareDescriptions lists the valid ones per account; IBM's
// classic Terraform and CLI examples use UBUNTU_22_64, REDHAT_9_64,
// DEBIAN_12_64, CENTOS_STREAM_9_64, ROCKYLINUX_8_64). e2e marks the
// systems IBM lists as supported for VHD imports, and so for encrypted
// ones: "CentOS Stream 9, Debian 11 and 12, Windows Server Standard 2016,
// 2019, and 2022, RHEL 8 and 9, Ubuntu 20.04, 22.04 and 24.04"
// (ibm-cloud-docs/image-templates, import-image.md, "Supported operating
// systems"). Windows is not listed here: the doctor does not read NTFS.
type osCode struct {
	// id is the os-release ID; version the major part of VERSION_ID, or
	// the whole of it for Ubuntu, whose codes name LTS releases only.
	id, version string
	code        string
	e2e         bool
}

var osCodes = []osCode{
	{"ubuntu", "20.04", "UBUNTU_20_64", true},
	{"ubuntu", "22.04", "UBUNTU_22_64", true},
	{"ubuntu", "24.04", "UBUNTU_24_64", true},
	{"ubuntu", "18.04", "UBUNTU_18_64", false},
	{"ubuntu", "16.04", "UBUNTU_16_64", false},
	{"debian", "11", "DEBIAN_11_64", true},
	{"debian", "12", "DEBIAN_12_64", true},
	{"debian", "10", "DEBIAN_10_64", false},
	{"debian", "9", "DEBIAN_9_64", false},
	{"rhel", "8", "REDHAT_8_64", true},
	{"rhel", "9", "REDHAT_9_64", true},
	{"rhel", "7", "REDHAT_7_64", false},
	{"centos", "9", "CENTOS_STREAM_9_64", true}, // CentOS 9 exists only as CentOS Stream
	{"centos", "7", "CENTOS_7_64", false},
	{"rocky", "8", "ROCKYLINUX_8_64", false},
	{"rocky", "9", "ROCKYLINUX_9_64", false},
}

// SupportedOSCodes returns the OS reference codes of the Linux systems IBM
// supports for (encrypted) VHD imports, as listed in import-image.md.
func SupportedOSCodes() []string {
	var out []string
	for _, c := range osCodes {
		if c.e2e {
			out = append(out, c.code)
		}
	}
	return out
}

// OSCodeFor returns the OS reference code of the system an os-release file
// describes by its ID and VERSION_ID, and whether IBM supports that system
// for (encrypted) imports. It returns "" for a system with no known code.
func OSCodeFor(id, versionID string) (code string, supported bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	version := strings.TrimSpace(versionID)
	if id != "ubuntu" {
		version, _, _ = strings.Cut(version, ".")
	}
	for _, c := range osCodes {
		if c.id == id && c.version == version {
			return c.code, c.e2e
		}
	}
	return "", false
}
