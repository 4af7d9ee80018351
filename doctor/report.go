package doctor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/e2eimage/e2eimage/disk"
)

// Verdict is the outcome of one check.
type Verdict int

// Verdicts. NotInspected means the doctor could not look (a layout or
// file system it does not read), never that the requirement holds.
const (
	Pass Verdict = iota + 1
	Fail
	NotInspected
)

// String returns "pass", "FAIL" or "not inspected".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	case NotInspected:
		return "not inspected"
	}
	return "unknown"
}

// The checks, in the order a Report lists them. Each names one of IBM's
// requirements for an image to import (ibm-cloud-docs/image-templates,
// import-image.md "Supported operating systems" and "Configuring a custom
// Linux image", create-encrypted-image.md "Encrypted VHD image
// requirements", image_cloud-init.md "Linux requirements").
const (
	CheckPartitionTable = "partition table"
	CheckFileSystems    = "file systems"
	CheckBoot           = "boot files"
	CheckSize           = "disk size"
	CheckOneVolume      = "one boot volume"
	CheckOS             = "operating system"
	CheckOSSupported    = "supported OS"
	CheckOSCode         = "OS reference code"
	CheckArch           = "64-bit x86"
	CheckCloudInit      = "cloud-init"
	CheckConfigDrive    = "ConfigDrive datasource"
	CheckXenBlkfront    = "Xen block driver"
	CheckCloudbaseInit  = "cloudbase-init"
)

// Finding is the outcome of one check.
type Finding struct {
	Check   string  // one of the Check constants
	Verdict Verdict // Pass, Fail or NotInspected
	Detail  string  // what was found, and where
	Fix     string  // what to do when Verdict is not Pass
}

// OSRelease is what /etc/os-release says about the operating system.
type OSRelease struct {
	ID         string // "ubuntu", "rhel", "debian", "centos"...
	VersionID  string // "22.04", "9.4", "12"...
	Name       string // NAME
	PrettyName string // PRETTY_NAME
	Path       string // the file read, e.g. "/usr/lib/os-release"
	// Code is the classic infrastructure OS reference code for this
	// system (e.g. UBUNTU_22_64), or "" when none is known.
	Code string
	// E2E reports whether Code is on IBM's list of systems an import
	// (and so an encrypted import) supports.
	E2E bool
}

// CloudInit is what the doctor found of cloud-init.
type CloudInit struct {
	Version string // the upstream version, e.g. "23.4.4"
	Source  string // where the version was read, e.g. "/var/lib/dpkg/status"
}

// Report is the outcome of Examine.
type Report struct {
	Format     disk.Format
	Size       int64          // the virtual disk's size in bytes
	Table      disk.TableKind // the partition table
	Partitions []Partition
	// Root is the partition whose file system holds the operating
	// system, or nil when none was found or read.
	Root      *Partition
	OS        *OSRelease // nil when no os-release was read
	CloudInit *CloudInit // nil when no cloud-init version was read
	Findings  []Finding
}

// OK reports whether no check failed. Checks that were not inspected do
// not fail the report, but they prove nothing either: see Complete.
func (r *Report) OK() bool {
	for _, f := range r.Findings {
		if f.Verdict == Fail {
			return false
		}
	}
	return true
}

// Complete reports whether every check passed, none left uninspected.
func (r *Report) Complete() bool {
	for _, f := range r.Findings {
		if f.Verdict != Pass {
			return false
		}
	}
	return len(r.Findings) > 0
}

// Finding returns the finding of a check.
func (r *Report) Finding(check string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Check == check {
			return f, true
		}
	}
	return Finding{}, false
}

// OSCode returns the OS reference code the image's operating system maps
// to (a suggestion for an import that names none), or "" when the system
// was not identified or has no known code.
func (r *Report) OSCode() string {
	if r.OS == nil {
		return ""
	}
	return r.OS.Code
}

// ErrOSCodeMismatch matches *OSCodeMismatchError.
var ErrOSCodeMismatch = errors.New("doctor: the OS reference code contradicts the image")

// OSCodeMismatchError is returned by CheckOSCode for a code that names
// another system than the image holds.
type OSCodeMismatchError struct {
	Given    string // the code asked for
	Detected string // the code of the system found in the image
	OS       string // the system found, e.g. "Ubuntu 22.04.4 LTS"
}

func (e *OSCodeMismatchError) Error() string {
	return fmt.Sprintf("doctor: the OS reference code %s does not match the image, which holds %s (%s)", e.Given, e.OS, e.Detected)
}

// Is matches ErrOSCodeMismatch.
func (e *OSCodeMismatchError) Is(target error) bool { return target == ErrOSCodeMismatch }

// CheckOSCode returns an *OSCodeMismatchError when code contradicts the
// system found in the image, and nil when it matches or when the image's
// system is unknown (nothing to contradict).
func (r *Report) CheckOSCode(code string) error {
	if r.OS == nil || r.OS.Code == "" {
		return nil
	}
	if !strings.EqualFold(strings.TrimSpace(code), r.OS.Code) {
		return &OSCodeMismatchError{Given: code, Detected: r.OS.Code, OS: r.OS.display()}
	}
	return nil
}

func (o *OSRelease) display() string {
	if o.PrettyName != "" {
		return o.PrettyName
	}
	return strings.TrimSpace(o.Name + " " + o.VersionID)
}

// String renders the report for a terminal: the disk, its partitions, and
// one line per check with its detail and, when it did not pass, its fix.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image: %s, %s virtual disk, partition table %s\n", r.Format, humanSize(r.Size), r.Table)
	for _, p := range r.Partitions {
		name := fmt.Sprintf("partition %d", p.Number)
		if p.Number == 0 {
			name = "whole disk"
		}
		fmt.Fprintf(&b, "  %s: %s at %s, %s (%s)", name, humanSize(p.Size), humanSize(p.Start), p.FileSystem, p.TypeName)
		if p.Label != "" {
			fmt.Fprintf(&b, " label %q", p.Label)
		}
		if p.Note != "" {
			fmt.Fprintf(&b, ": %s", p.Note)
		}
		b.WriteString("\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "[%s] %s: %s\n", f.Verdict, f.Check, f.Detail)
		if f.Verdict != Pass && f.Fix != "" {
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
	}
	switch {
	case !r.OK():
		b.WriteString("result: the image does not meet the requirements\n")
	case !r.Complete():
		b.WriteString("result: nothing failed, but some requirements were not inspected\n")
	default:
		b.WriteString("result: the image meets every requirement checked\n")
	}
	return b.String()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
