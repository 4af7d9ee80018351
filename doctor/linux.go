package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// osReleasePaths are where os-release(5) says the file is: /etc/os-release
// first, /usr/lib/os-release when the former is missing.
var osReleasePaths = []string{"etc/os-release", "usr/lib/os-release"}

// readOSRelease reads the first os-release file found. When /etc/os-release
// is a link the reader cannot follow, it falls back to /usr/lib/os-release,
// the file such links point at on every distribution, and says so in note.
func readOSRelease(f fsys) (rel *OSRelease, note string, err error) {
	for i, p := range osReleasePaths {
		b, rp, err := readFile(f, p, 64<<10)
		switch {
		case errors.Is(err, iofs.ErrNotExist):
			continue
		case errors.Is(err, errLinkUnreadable) && i == 0:
			note = "/etc/os-release is a symbolic link this reader cannot follow; read the fallback os-release(5) names"
			continue
		case err != nil:
			return nil, note, err
		}
		kv := parseEnvFile(string(b))
		rel := &OSRelease{ID: kv["ID"], VersionID: kv["VERSION_ID"], Name: kv["NAME"], PrettyName: kv["PRETTY_NAME"], Path: "/" + rp}
		rel.Code, rel.E2E = OSCodeFor(rel.ID, rel.VersionID)
		return rel, note, nil
	}
	return nil, note, nil
}

// parseEnvFile parses os-release's shell-like KEY=value lines, with values
// optionally in double or single quotes (os-release(5)).
func parseEnvFile(s string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, "\\$", "$", "\\`", "`").Replace(v)
			}
		}
		kv[strings.TrimSpace(k)] = v
	}
	return kv
}

// MinCloudInit is the oldest cloud-init IBM accepts: "Linux images require
// Cloud-init version 0.7.7 or greater" (ibm-cloud-docs/image-templates,
// import-image.md and image_cloud-init.md).
const MinCloudInit = "0.7.7"

// cloudInitFound is what findCloudInit learned.
type cloudInitFound struct {
	version, source string
	binary          bool     // /usr/bin/cloud-init exists
	disabled        string   // the file that disables cloud-init, if any
	notes           []string // what could not be read
}

// findCloudInit looks for cloud-init without running anything, in the
// places a package manager or Python leaves it:
//
//  1. dpkg's database, /var/lib/dpkg/status: a "Package: cloud-init"
//     stanza whose Status is "install ok installed" gives its Version
//     (Debian, Ubuntu);
//  2. the Python distribution metadata the package installs:
//     cloud_init-VERSION*.egg-info/PKG-INFO or .dist-info/METADATA, whose
//     "Version:" line is the version, under /usr/lib/python3*/ and
//     /usr/local/lib/python3*/ {dist,site}-packages (every distribution's
//     cloud-init package ships one; RHEL's RPM too);
//  3. cloudinit/version.py in the same directories, whose __VERSION__ is
//     the version.
//
// The RPM database is not read (it is a SQLite or Berkeley DB file); on
// RHEL-like systems the Python metadata of step 2 gives the version.
func findCloudInit(f fsys) (cloudInitFound, error) {
	var out cloudInitFound
	// cloud-init's systemd generator skips cloud-init when this file exists.
	if ok, err := exists(f, "etc/cloud/cloud-init.disabled"); err == nil && ok {
		out.disabled = "/etc/cloud/cloud-init.disabled"
	}
	for _, p := range []string{"usr/bin/cloud-init", "bin/cloud-init"} {
		if ok, err := exists(f, p); err == nil && ok {
			out.binary = true
		}
	}
	if v, err := dpkgVersion(f, "cloud-init"); err != nil {
		out.notes = append(out.notes, err.Error())
	} else if v != "" {
		out.version, out.source = debianUpstream(v), "/var/lib/dpkg/status (package version "+v+")"
		return out, nil
	}
	dirs, err := pythonDirs(f)
	if err != nil {
		out.notes = append(out.notes, err.Error())
	}
	for _, dir := range dirs {
		ents, err := list(f, dir)
		if err != nil {
			out.notes = append(out.notes, err.Error())
			continue
		}
		for _, e := range ents {
			name := strings.ToLower(e.name)
			if !strings.HasPrefix(name, "cloud_init-") && !strings.HasPrefix(name, "cloud-init-") {
				continue
			}
			meta := ""
			switch {
			case strings.HasSuffix(name, ".dist-info"):
				meta = path.Join(dir, e.name, "METADATA")
			case strings.HasSuffix(name, ".egg-info") && e.mode.IsDir():
				meta = path.Join(dir, e.name, "PKG-INFO")
			case strings.HasSuffix(name, ".egg-info"):
				meta = path.Join(dir, e.name) // a single-file egg-info
			default:
				continue
			}
			b, _, err := readFile(f, meta, 256<<10)
			if err != nil {
				out.notes = append(out.notes, err.Error())
				continue
			}
			if v := headerField(string(b), "Version"); v != "" {
				out.version, out.source = v, "/"+meta
				return out, nil
			}
		}
		vp := path.Join(dir, "cloudinit", "version.py")
		b, _, err := readFile(f, vp, 64<<10)
		if err == nil {
			if m := versionPy.FindStringSubmatch(string(b)); m != nil {
				out.version, out.source = m[1], "/"+vp
				return out, nil
			}
		}
	}
	return out, nil
}

var versionPy = regexp.MustCompile(`(?m)^__VERSION__\s*=\s*["']([^"']+)["']`)

// pythonDirs lists the site and dist package directories of every Python 3
// installed under /usr/lib and /usr/local/lib.
func pythonDirs(f fsys) ([]string, error) {
	var dirs []string
	var firstErr error
	for _, base := range []string{"usr/lib", "usr/local/lib"} {
		ents, err := list(f, base)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.name, "python3") {
				continue
			}
			for _, sub := range []string{"dist-packages", "site-packages"} {
				dirs = append(dirs, path.Join(base, e.name, sub))
			}
		}
	}
	return dirs, firstErr
}

// headerField returns the value of an RFC 822 style "Name: value" line.
func headerField(s, name string) string {
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
		if strings.TrimSpace(line) == "" {
			break // the headers end at the first blank line
		}
	}
	return ""
}

// dpkgVersion scans dpkg's status file for an installed package and
// returns its version, "" when the package is not installed or there is
// no dpkg database.
func dpkgVersion(f fsys, pkg string) (string, error) {
	rp, err := resolve(f, "var/lib/dpkg/status")
	if err != nil {
		return "", err
	}
	r, err := f.open(rp)
	if errors.Is(err, iofs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	var name, status, version string
	found := ""
	flush := func() {
		if name == pkg && strings.HasSuffix(status, " installed") && strings.HasPrefix(status, "install ") {
			found = version
		}
		name, status, version = "", "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Package":
			name = strings.TrimSpace(v)
		case "Status":
			status = strings.TrimSpace(v)
		case "Version":
			version = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("doctor: reading /%s: %w", rp, err)
	}
	flush()
	return found, nil
}

// debianUpstream returns the upstream part of a Debian version: without
// its epoch ("1:") and its Debian revision (after the last "-").
func debianUpstream(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return v
}

// versionAtLeast compares the leading numeric components of a version
// ("23.4.4", "0.7.5~bzr", "19.1+git") with min.
func versionAtLeast(v, min string) (bool, error) {
	a, b := numericParts(v), numericParts(min)
	if len(a) == 0 {
		return false, fmt.Errorf("doctor: %q is not a version", v)
	}
	for i := range max(len(a), len(b)) {
		x, y := 0, 0
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y, nil
		}
	}
	return true, nil
}

func numericParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j == 0 {
			break
		}
		n, err := strconv.Atoi(p[:j])
		if err != nil {
			break
		}
		out = append(out, n)
		if j < len(p) {
			break // "5~bzr": what follows the digits ends the comparison
		}
	}
	return out
}

// datasources reads cloud-init's datasource_list as cloud-init does:
// /etc/cloud/cloud.cfg, then every /etc/cloud/cloud.cfg.d/*.cfg in lexical
// order, a later file's value replacing an earlier one's. It returns the
// list, the file that set it ("" when none did: cloud-init's built-in list
// then applies, which includes ConfigDrive), and the files read.
func datasources(f fsys) (list_ []string, from string, read []string, err error) {
	files := []string{"etc/cloud/cloud.cfg"}
	ents, err := list(f, "etc/cloud/cloud.cfg.d")
	if err != nil {
		return nil, "", nil, err
	}
	var extra []string
	for _, e := range ents {
		if strings.HasSuffix(e.name, ".cfg") && !e.mode.IsDir() {
			extra = append(extra, "etc/cloud/cloud.cfg.d/"+e.name)
		}
	}
	sort.Strings(extra)
	files = append(files, extra...)
	total := 0
	for _, p := range files {
		b, _, err := readFile(f, p, maxCloudCfgFile)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", read, err
		}
		read = append(read, "/"+p)
		if total += len(b); total > maxCloudCfgTotal {
			return nil, "", read, &LimitError{Structure: fmt.Sprintf("cloud-init's configuration (%d bytes in %d files)", total, len(read)), Limit: fmt.Sprintf("%d KiB", maxCloudCfgTotal>>10)}
		}
		v, found, err := topLevelValue(b, "datasource_list")
		if err != nil {
			return nil, "", read, fmt.Errorf("doctor: /%s %w (cloud-init would ignore it)", p, err)
		}
		if !found {
			continue
		}
		list_, from = toStrings(v), "/"+p
	}
	return list_, from, read, nil
}

// Budgets of cloud-init's configuration files: real ones hold a few KiB
// each. yaml.v3 checks a mapping's keys for duplicates against each other
// (quadratic: a 1 MiB file of short keys took minutes), so the files are
// parsed into nodes, which is linear, and only the value looked for is
// decoded.
const (
	maxCloudCfgFile  = 256 << 10
	maxCloudCfgTotal = 1 << 20
)

// topLevelValue parses a YAML document and decodes the value of key in its
// top-level mapping (the last one, as PyYAML, which cloud-init uses, keeps
// the last of duplicate keys).
func topLevelValue(b []byte, key string) (any, bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, false, fmt.Errorf("is not valid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, false, nil // an empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
			return nil, false, nil
		}
		return nil, false, errors.New("is not a YAML mapping")
	}
	var val *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			val = m.Content[i+1]
		}
	}
	if val == nil {
		return nil, false, nil
	}
	var v any
	if err := val.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("is not valid YAML: %w", err)
	}
	return v, true, nil
}

func toStrings(v any) []string {
	switch t := v.(type) {
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, strings.TrimSpace(fmt.Sprint(x)))
		}
		return out
	case string:
		return strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == '[' || r == ']' || r == ' ' })
	case nil:
		return nil
	}
	return []string{fmt.Sprint(v)}
}

// xenBlkfront looks, for each kernel under /lib/modules (or /usr/lib/modules
// when /lib is a link the reader cannot follow), for the Xen block
// front-end driver: built in (a line ending in /xen-blkfront.ko in
// modules.builtin) or as a module file (kernel/drivers/block/xen-blkfront.ko,
// possibly compressed). It returns the kernels that have it and those that
// do not.
func xenBlkfront(f fsys) (with, without []string, note string, err error) {
	base := "lib/modules"
	ents, err := list(f, base)
	if errors.Is(err, errLinkUnreadable) {
		base, note = "usr/lib/modules", "/lib is a symbolic link this reader cannot follow; read /usr/lib/modules"
		ents, err = list(f, base)
	}
	if err != nil {
		return nil, nil, note, err
	}
	for _, e := range ents {
		if !e.mode.IsDir() {
			continue
		}
		dir := path.Join(base, e.name)
		ok, err := hasBlkfront(f, dir)
		if err != nil {
			return with, without, note, err
		}
		if ok {
			with = append(with, e.name)
		} else {
			without = append(without, e.name)
		}
	}
	return with, without, note, nil
}

func hasBlkfront(f fsys, dir string) (bool, error) {
	for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
		ok, err := exists(f, path.Join(dir, "kernel/drivers/block/xen-blkfront.ko"+ext))
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	b, _, err := readFile(f, path.Join(dir, "modules.builtin"), 4<<20)
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(strings.TrimSpace(line), "/xen-blkfront.ko") {
			return true, nil
		}
	}
	return false, nil
}

// elfPaths are executables every Linux has; the first found tells the
// system's architecture.
var elfPaths = []string{"usr/bin/env", "usr/bin/true", "bin/sh", "usr/bin/sh", "usr/lib/systemd/systemd", "sbin/init", "usr/bin/bash"}

// arch reads the ELF header of a system executable: its class (32 or 64
// bit) and machine (x86-64 is 62).
func arch(f fsys) (bits int, machine uint16, from string, err error) {
	for _, p := range elfPaths {
		rp, err := resolve(f, p)
		if errors.Is(err, errLinkUnreadable) {
			continue
		}
		if err != nil {
			return 0, 0, "", err
		}
		mode, _, err := f.lstat(rp)
		if errors.Is(err, iofs.ErrNotExist) || (err == nil && !mode.IsRegular()) {
			continue
		}
		if err != nil {
			return 0, 0, "", err
		}
		r, err := f.open(rp)
		if err != nil {
			return 0, 0, "", err
		}
		var h [20]byte
		_, err = io.ReadFull(r, h[:])
		r.Close()
		if err != nil || string(h[:4]) != "\x7fELF" {
			continue
		}
		bits = 32
		if h[4] == 2 {
			bits = 64
		}
		if h[5] == 1 {
			machine = uint16(h[18]) | uint16(h[19])<<8
		} else {
			machine = uint16(h[19]) | uint16(h[18])<<8
		}
		return bits, machine, "/" + rp, nil
	}
	return 0, 0, "", nil
}

// fstabEntry is one line of /etc/fstab.
type fstabEntry struct {
	spec, file, vfstype, opts string
}

func readFstab(f fsys) ([]fstabEntry, bool, error) {
	b, _, err := readFile(f, "etc/fstab", maxFileSize)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out []fstabEntry
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 3 {
			continue
		}
		e := fstabEntry{spec: fs[0], file: fs[1], vfstype: fs[2]}
		if len(fs) > 3 {
			e.opts = fs[3]
		}
		out = append(out, e)
	}
	return out, true, nil
}

// bootKernels lists the kernel images (vmlinuz-*, vmlinux-*) in dir.
func bootKernels(f fsys, dir string) ([]string, error) {
	ents, err := list(f, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if (strings.HasPrefix(e.name, "vmlinuz") || strings.HasPrefix(e.name, "vmlinux")) && !e.mode.IsDir() {
			out = append(out, e.name)
		}
	}
	return out, nil
}
