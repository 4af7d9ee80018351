package doctor

import "github.com/e2eimage/e2eimage/importspec"

// SupportedOSCodes returns the OS reference codes of the Linux systems IBM
// supports for (encrypted) VHD imports (the Linux ones of
// importspec.SupportedOSCodes: the doctor does not read NTFS, so it never
// finds a Windows system).
func SupportedOSCodes() []string {
	var out []string
	for _, o := range importspec.SupportedOperatingSystems() {
		if o.OSReleaseID != "" {
			out = append(out, o.Code)
		}
	}
	return out
}

// OSCodeFor returns the OS reference code of the system an os-release file
// describes by its ID and VERSION_ID, and whether IBM supports that system
// for (encrypted) imports: importspec.OSCodeFor, where the table and its
// sources are. It returns "" for a system with no known code.
func OSCodeFor(id, versionID string) (code string, supported bool) {
	return importspec.OSCodeFor(id, versionID)
}
