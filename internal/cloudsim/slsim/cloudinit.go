package slsim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The cloud-init checks of the simulated backplane.
//
// What IBM documents (../../../docs/CLOUD.md section 7.2, from
// https://cloud.ibm.com/docs/image-templates?topic=image-templates-preparing-and-importing-images):
// an imported Linux image must have cloud-init 0.7.7 or later using the
// ConfigDrive data source (Windows: cloudbase-init); for an encrypted
// import cloud-init is forced on.
//
// What cloud-init documents (github.com/canonical/cloud-init): the
// configuration is /etc/cloud/cloud.cfg, then /etc/cloud/cloud.cfg.d/*.cfg
// in name order, a later file's top-level key replacing an earlier one's;
// datasource_list restricts the data sources cloud-init tries, and without
// it every built-in one is tried, ConfigDrive included. Its IBMCloud data
// source (cloudinit/sources/DataSourceIBMCloud.py, "IBMCloud is also known
// as SoftLayer") reads the classic infrastructure's config disk, so a list
// that names IBMCloud instead of ConfigDrive is accepted too.
//
// How the simulator finds cloud-init (its own choice, the way packaging
// records it): the "cloud-init" paragraph of dpkg's status file
// (/var/lib/dpkg/status: Package, Status, Version fields), else the Python
// metadata a package or pip installs
// (/usr/lib/python3*/{dist,site}-packages/cloud_init-VERSION.{dist,egg}-info,
// also under /usr/local/lib). What it does not read: the RPM database
// (RPM-based images carry the Python metadata too), ds-identify's
// configuration, the kernel command line.

// minCloudInit is the oldest cloud-init IBM accepts.
var minCloudInit = []int{0, 7, 7}

// Read bounds of the files the checks read.
const (
	maxDpkgStatus  = 32 << 20
	maxCloudCfg    = 1 << 20
	maxFstab       = 64 << 10
	maxCloudCfgDir = 256 // files of /etc/cloud/cloud.cfg.d read
)

// guestRoot is a Linux root file system the simulator can read. Paths are
// slash-separated and relative to the root ("." is the root).
type guestRoot interface {
	ReadDir(name string) ([]fs.DirEntry, error)
	ReadFile(name string, limit int64) (b []byte, truncated bool, err error)
	Open(name string) (io.ReadCloser, error)
}

// Open opens the regular file name for streaming; a panic of the reader
// while reading becomes errFSUnreadable.
func (x *extFS) Open(name string) (rc io.ReadCloser, err error) {
	e, err := x.lookup(name)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return nil, fs.ErrNotExist
	}
	defer recoverReader(&err)
	f, err := x.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &safeFile{f: f}, nil
}

type safeFile struct{ f fs.File }

func (s *safeFile) Read(p []byte) (n int, err error) {
	defer recoverReader(&err)
	return s.f.Read(p)
}

func (s *safeFile) Close() error { return s.f.Close() }

// cloudInitFound is the cloud-init installation the checks found.
type cloudInitFound struct {
	version string // as recorded
	where   string // the record: a file or directory path
}

// findCloudInit looks for cloud-init's package records. It returns nil
// when there is none, and an error when a record could not be read.
func findCloudInit(root guestRoot) (*cloudInitFound, error) {
	found, derr := dpkgCloudInit(root)
	if found != nil {
		return found, nil
	}
	found, perr := pythonCloudInit(root)
	switch {
	case found != nil:
		return found, nil
	case derr != nil && !errors.Is(derr, fs.ErrNotExist):
		return nil, derr
	case perr != nil && !errors.Is(perr, fs.ErrNotExist):
		return nil, perr
	}
	return nil, fs.ErrNotExist
}

// dpkgCloudInit reads the cloud-init paragraph of dpkg's status file
// (deb-control(5) syntax: "Field: value" lines, paragraphs separated by
// blank lines, continuation lines starting with a space). It stops at
// that paragraph.
func dpkgCloudInit(root guestRoot) (*cloudInitFound, error) {
	const status = "var/lib/dpkg/status"
	f, err := root.Open(status)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxDpkgStatus))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var pkg, st, ver string
	end := func() *cloudInitFound {
		defer func() { pkg, st, ver = "", "", "" }()
		if pkg != "cloud-init" || ver == "" {
			return nil
		}
		// "want flag status": not-installed and config-files mean the
		// package's files are gone (dpkg-query(1)).
		if w := strings.Fields(st); len(w) == 3 && (w[2] == "not-installed" || w[2] == "config-files") {
			return nil
		}
		return &cloudInitFound{version: ver, where: "/" + status}
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if c := end(); c != nil {
				return c, nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch v = strings.TrimSpace(v); strings.ToLower(k) {
		case "package":
			pkg = v
		case "status":
			st = v
		case "version":
			ver = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if c := end(); c != nil {
		return c, nil
	}
	return nil, fs.ErrNotExist
}

// pythonDistInfo matches the metadata directory (or file) of an installed
// Python distribution of cloud-init: NAME-VERSION.dist-info (PEP 376/427)
// or NAME-VERSION[-pyX.Y].egg-info (setuptools).
var pythonDistInfo = regexp.MustCompile(`(?i)^cloud[_-]init-([0-9][^-]*)(-py[0-9.]+)?\.(dist|egg)-info$`)

// pythonCloudInit looks for cloud-init's Python metadata.
func pythonCloudInit(root guestRoot) (*cloudInitFound, error) {
	var firstErr error
	for _, base := range []string{"usr/lib", "usr/local/lib"} {
		ents, err := root.ReadDir(base)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, py := range ents {
			if !py.IsDir() || !strings.HasPrefix(py.Name(), "python3") {
				continue
			}
			for _, sub := range []string{"dist-packages", "site-packages"} {
				dir := path.Join(base, py.Name(), sub)
				pk, err := root.ReadDir(dir)
				if err != nil {
					if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
						firstErr = err
					}
					continue
				}
				for _, e := range pk {
					if m := pythonDistInfo.FindStringSubmatch(e.Name()); m != nil {
						return &cloudInitFound{version: m[1], where: "/" + path.Join(dir, e.Name())}, nil
					}
				}
			}
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fs.ErrNotExist
}

// upstreamVersion returns the numeric components of a package version:
// a Debian epoch ("1:") and revision (after the last "-") are dropped,
// and the components stop at the first that does not start with a digit
// or that has other characters after its digits ("23.4.4-0ubuntu1" ->
// [23 4 4], "0.7.9~bzr1" -> [0 7 9]). ok is false when there is none.
func upstreamVersion(v string) (nums []int, ok bool) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		if _, err := strconv.Atoi(v[:i]); err == nil {
			v = v[i+1:]
		}
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	for _, c := range strings.Split(v, ".") {
		j := 0
		for j < len(c) && c[j] >= '0' && c[j] <= '9' {
			j++
		}
		if j == 0 {
			break
		}
		n, err := strconv.Atoi(c[:j])
		if err != nil {
			break
		}
		nums = append(nums, n)
		if j < len(c) {
			break
		}
	}
	return nums, len(nums) > 0
}

// versionLess compares numeric versions, missing components counting as 0.
func versionLess(a, b []int) bool {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// datasourceSetting is the datasource_list in effect and the file that
// set it; list is nil when no file sets it.
type datasourceSetting struct {
	list    []string
	from    string
	skipped []string // files that could not be read or parsed
}

// cloudCfgFiles lists cloud-init's configuration files in the order it
// reads them.
func cloudCfgFiles(root guestRoot) ([]string, error) {
	files := []string{"etc/cloud/cloud.cfg"}
	ents, err := root.ReadDir("etc/cloud/cloud.cfg.d")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".cfg") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) > maxCloudCfgDir {
		return nil, fmt.Errorf("/etc/cloud/cloud.cfg.d holds %d files; the simulator reads at most %d", len(names), maxCloudCfgDir)
	}
	for _, n := range names {
		files = append(files, "etc/cloud/cloud.cfg.d/"+n)
	}
	return files, nil
}

// effectiveDatasources reads datasource_list from cloud-init's
// configuration files; the last file that sets it wins.
func effectiveDatasources(root guestRoot) (*datasourceSetting, error) {
	files, err := cloudCfgFiles(root)
	if err != nil {
		return nil, err
	}
	ds := &datasourceSetting{}
	for _, name := range files {
		b, truncated, err := root.ReadFile(name, maxCloudCfg)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case errors.Is(err, errSymlinkInPath):
			ds.skipped = append(ds.skipped, "/"+name+" (a symbolic link)")
			continue
		case err != nil:
			return nil, err
		case truncated:
			ds.skipped = append(ds.skipped, "/"+name+" (larger than the simulator reads)")
			continue
		}
		list, set, err := parseDatasourceList(b)
		if err != nil {
			ds.skipped = append(ds.skipped, "/"+name+" (not YAML: "+err.Error()+")")
			continue
		}
		if set {
			ds.list, ds.from = list, "/"+name
		}
	}
	return ds, nil
}

// parseDatasourceList returns the datasource_list a cloud-config document
// sets. A list of names is what cloud-init expects; a single string is
// read as comma-separated names.
func parseDatasourceList(b []byte) (list []string, set bool, err error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, false, err
	}
	v, ok := doc["datasource_list"]
	if !ok || v == nil {
		return nil, false, nil
	}
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			list = append(list, strings.TrimSpace(fmt.Sprint(x)))
		}
	case string:
		for _, x := range strings.Split(strings.Trim(v, "[] "), ",") {
			if x = strings.TrimSpace(x); x != "" {
				list = append(list, x)
			}
		}
	default:
		return nil, false, fmt.Errorf("datasource_list is a %T", v)
	}
	return list, true, nil
}

// allowsClassicConfigDisk reports whether a datasource_list lets
// cloud-init read the classic infrastructure's config disk.
func allowsClassicConfigDisk(list []string) bool {
	for _, n := range list {
		if strings.EqualFold(n, "ConfigDrive") || strings.EqualFold(n, "IBMCloud") {
			return true
		}
	}
	return false
}

// separateMounts returns the mount points of /etc/fstab under which
// cloud-init's records would be (/var, /usr and below): a root that mounts
// one of them from elsewhere does not hold them.
func separateMounts(root guestRoot) []string {
	b, _, err := root.ReadFile("etc/fstab", maxFstab)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		mp := path.Clean(f[1])
		for _, p := range []string{"/var", "/usr"} {
			if mp == p || strings.HasPrefix(mp, p+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// checkCloudInit runs the cloud-init checks on a Linux root. It returns a
// summary of what it found (checked true), or of why it could not tell
// (checked false: the records may be on a file system the simulator does
// not assemble), or an *importFailure, or an error reading the root.
func checkCloudInit(root guestRoot) (summary string, checked bool, err error) {
	found, err := findCloudInit(root)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", false, err
	case found == nil:
		if mounts := separateMounts(root); len(mounts) > 0 {
			return fmt.Sprintf("no cloud-init record on the root file system, whose /etc/fstab mounts %s from another file system the simulator does not assemble",
				strings.Join(mounts, ", ")), false, nil
		}
		return "", false, failf(ReasonNoCloudInit,
			"no installed \"cloud-init\" package in /var/lib/dpkg/status and no cloud_init-VERSION.dist-info or .egg-info under /usr/lib/python3*/{dist,site}-packages; IBM requires cloud-init 0.7.7 or later with the ConfigDrive data source")
	}
	summary = fmt.Sprintf("cloud-init %s (%s)", found.version, found.where)
	if v, ok := upstreamVersion(found.version); !ok {
		summary += ", version not compared"
	} else if versionLess(v, minCloudInit) {
		return "", false, failf(ReasonCloudInitTooOld, "cloud-init %s (%s); IBM requires 0.7.7 or later", found.version, found.where)
	}
	ds, err := effectiveDatasources(root)
	if err != nil {
		return "", false, err
	}
	switch {
	case ds.list == nil:
		summary += ", no datasource_list (every data source, ConfigDrive included)"
	case !allowsClassicConfigDisk(ds.list):
		return "", false, failf(ReasonNoConfigDrive, "datasource_list [%s] in %s names neither ConfigDrive nor IBMCloud",
			strings.Join(ds.list, ", "), ds.from)
	default:
		summary += fmt.Sprintf(", datasource_list [%s] (%s)", strings.Join(ds.list, ", "), ds.from)
	}
	if len(ds.skipped) > 0 {
		summary += "; not read: " + strings.Join(ds.skipped, ", ")
	}
	return summary, true, nil
}
