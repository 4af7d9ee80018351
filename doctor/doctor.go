package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/importspec"
)

// MaxImportSize is the largest disk IBM imports, 100 GiB:
// importspec.MaxDiskSize, where its source and reading are given.
const MaxImportSize = importspec.MaxDiskSize

// ErrEncrypted is Examine's error for an encrypted VHD (a tapdisk key hash
// in its batmap, as vhdcrypt writes): its partitions and file systems are
// ciphertext, so nothing in it can be examined; examine the image it was
// encrypted from instead.
var ErrEncrypted = errors.New("doctor: the image is encrypted (its file systems are ciphertext); examine the image it was encrypted from")

// Option changes what Examine checks.
type Option func(*options)

type options struct {
	osCode string
}

// WithOSCode makes Examine check that an import's OS reference code (for
// instance UBUNTU_22_64) names the system the image holds: the report gets
// a CheckOSCode finding, failing when the code contradicts it.
func WithOSCode(code string) Option { return func(o *options) { o.osCode = strings.TrimSpace(code) } }

// Examine reads the partition table, the file systems and a few small
// files of the disk d, without mounting anything, and reports each of
// IBM's image requirements as passed, failed or not inspected, each with
// what to do about it. It returns an error only when the disk cannot be
// read at all (an I/O error, a cancelled ctx) or holds ciphertext (an
// encrypted VHD: an error matching ErrEncrypted, and no report); what is
// wrong with the image is in the Report.
func Examine(ctx context.Context, d *disk.Disk, opts ...Option) (*Report, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if d == nil {
		return nil, errors.New("doctor: no disk")
	}
	if img, ok := d.VHD(); ok {
		if _, encrypted := img.KeyHash(); encrypted {
			return nil, ErrEncrypted
		}
	}
	x := &examination{ctx: ctx, d: d, o: o, r: &Report{Format: d.Format(), Size: d.Size()}}
	if err := x.run(); err != nil {
		return nil, err
	}
	return x.r, nil
}

type examination struct {
	ctx context.Context
	d   *disk.Disk
	o   options
	r   *Report

	fss         map[int]fsys    // inspected file systems by partition index in r.Partitions
	budgets     map[int]*budget // their readers' budgets, by the same index
	uninspected []string        // what could not be read, for the details
}

func (x *examination) add(check string, v Verdict, detail, fix string) {
	// A file system whose reader stopped on a breach of its budget (a
	// crafted extent tree, an oversized directory) may hide what a check
	// looked for: what would fail is not inspected instead.
	if v == Fail && check != CheckPartitionTable && check != CheckSize && check != CheckOSCode {
		if err := x.breach(); err != nil {
			v, detail = NotInspected, detail+"; the file system was not read in full: "+err.Error()
		}
	}
	x.r.Findings = append(x.r.Findings, Finding{Check: check, Verdict: v, Detail: detail, Fix: fix})
}

// breach returns the first breach of a file system's budget, if any.
func (x *examination) breach() error {
	for i := range x.r.Partitions {
		if b := x.budgets[i]; b != nil && b.err != nil {
			return b.err
		}
	}
	return nil
}

// breaches marks the file systems whose readers breached their budget as
// not inspected, in their partition and in the file systems finding.
func (x *examination) breaches() {
	var not []string
	for i := range x.r.Partitions {
		p := &x.r.Partitions[i]
		b := x.budgets[i]
		if b == nil || b.err == nil || !p.Inspected {
			continue
		}
		p.Inspected = false
		p.Note = b.err.Error()
		not = append(not, fmt.Sprintf("the %s file system of %s (%v)", p.FileSystem, partName(p), b.err))
	}
	if len(not) == 0 {
		return
	}
	for i := range x.r.Findings {
		f := &x.r.Findings[i]
		if f.Check == CheckFileSystems {
			f.Verdict = NotInspected
			f.Detail += "; not read in full: " + strings.Join(not, "; ")
			f.Fix = "check these by hand, or use ext4 or XFS without LVM for the boot volume"
		}
	}
}

func (x *examination) run() error {
	err := x.examine()
	if err == nil {
		x.breaches()
	}
	return err
}

func (x *examination) examine() error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	if err := x.layout(); err != nil {
		return err
	}
	x.size()
	if err := x.ctx.Err(); err != nil {
		return err
	}
	root := x.findRoot()
	x.boot(root)
	if root < 0 {
		x.noRoot()
		return x.ctx.Err()
	}
	x.r.Root = &x.r.Partitions[root]
	f := x.fss[root]
	x.oneVolume(f)
	x.osChecks(f)
	if err := x.ctx.Err(); err != nil {
		return err
	}
	x.cloudInit(f)
	x.configDrive(f)
	x.xen(f)
	return x.ctx.Err()
}

// layout reads the partition table and identifies and opens each
// partition's file system.
func (x *examination) layout() error {
	kind, parts, note, err := readPartitions(x.ctx, x.d)
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	x.r.Table = kind
	switch {
	case err != nil:
		x.add(CheckPartitionTable, Fail, err.Error(), "rewrite the partition table (fdisk or sfdisk on the disk), then convert the disk again")
	case kind == disk.NoTable:
		detail := "neither an MBR nor a GPT"
		if note != "" {
			detail += "; the disk starts with " + note
		}
		x.add(CheckPartitionTable, Fail, detail, "give the whole disk with its partition table and boot loader, not a partition or volume image")
		// Still look at what the disk holds as one volume.
		parts = []Partition{{Number: 0, Start: 0, Size: x.d.Size(), TypeName: "whole disk"}}
	case len(parts) == 0:
		x.add(CheckPartitionTable, Fail, kind.String()+" with no partition", "partition the disk and install the operating system on it")
	default:
		detail := fmt.Sprintf("%s with %d partition(s)", kind, len(parts))
		if note != "" {
			detail += "; " + note
		}
		x.add(CheckPartitionTable, Pass, detail, "")
	}
	x.fss = map[int]fsys{}
	x.budgets = map[int]*budget{}
	buf := make([]byte, probeSize)
	var fsNames []string
	for i := range parts {
		p := &parts[i]
		if err := x.ctx.Err(); err != nil {
			return err
		}
		n, err := x.d.ReadAt(buf[:min(int64(len(buf)), p.Size)], p.Start)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("doctor: reading partition %d: %w", p.Number, err)
		}
		id := identify(buf[:n])
		p.FileSystem, p.UUID, p.Label = id.typ, id.uuid, id.label
		switch {
		case p.TypeName == "extended":
			p.FileSystem, p.Note = "extended", "an extended partition: its logical partitions are not read"
			x.uninspected = append(x.uninspected, fmt.Sprintf("the logical partitions inside partition %d", p.Number))
		case strings.HasPrefix(id.typ, "ext") || id.typ == "xfs":
			if err := x.openFS(i, p, id.typ); err != nil {
				return err
			}
		case id.typ == "lvm2":
			p.Note = "not inspected: an LVM physical volume (its logical volumes are not read; IBM states that the Linux boot volume does not support LVM)"
			x.uninspected = append(x.uninspected, fmt.Sprintf("the LVM volume of partition %d", p.Number))
		case id.typ == "btrfs":
			p.Note = "not inspected: Btrfs is not read"
			x.uninspected = append(x.uninspected, fmt.Sprintf("the Btrfs file system of partition %d", p.Number))
		case id.typ == "ntfs":
			p.Note = "not inspected: NTFS (Windows) is not read"
			x.uninspected = append(x.uninspected, fmt.Sprintf("the NTFS file system of partition %d", p.Number))
		case id.typ == "luks":
			p.Note = "not inspected: a LUKS encrypted volume"
			x.uninspected = append(x.uninspected, fmt.Sprintf("the LUKS volume of partition %d", p.Number))
		case id.typ == "vfat":
			p.Note = "FAT (an EFI system partition holds the UEFI boot loader); its files are not read"
		case id.typ == "swap", id.typ == "empty":
		default:
			p.Note = "not inspected: no known file system signature"
			x.uninspected = append(x.uninspected, fmt.Sprintf("partition %d (unrecognised content)", p.Number))
		}
		fsNames = append(fsNames, fmt.Sprintf("%s on %s", p.FileSystem, partName(p)))
	}
	x.r.Partitions = parts
	switch {
	case len(parts) == 0:
		x.add(CheckFileSystems, Fail, "no partition holds a file system", "install the operating system on the disk")
	case len(x.uninspected) > 0:
		x.add(CheckFileSystems, NotInspected, strings.Join(fsNames, ", ")+"; not read: "+strings.Join(x.uninspected, "; "),
			"check these by hand, or use ext4 or XFS without LVM for the boot volume")
	case len(x.fss) == 0:
		x.add(CheckFileSystems, Fail, strings.Join(fsNames, ", ")+": no ext2/3/4 or XFS file system",
			"install the operating system on an ext4 or XFS file system")
	default:
		x.add(CheckFileSystems, Pass, strings.Join(fsNames, ", "), "")
	}
	return nil
}

// openFS opens the ext2/3/4 or XFS file system of partition i (p), with
// a budget of its own. It returns only the context's error: a file system
// it cannot open is noted as not inspected.
func (x *examination) openFS(i int, p *Partition, typ string) error {
	var f fsys
	var err error
	b := newBudget(x.ctx, fmt.Sprintf("the %s file system of %s", typ, partName(p)))
	x.budgets[i] = b
	if typ == "xfs" {
		f, err = openXFS(x.d, b, p.Start, p.Size)
	} else {
		f, err = openExt4(x.d, b, p.Start, p.Size)
	}
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		p.Note = "not inspected: " + err.Error()
		if errors.Is(err, ErrLimit) {
			p.Note = err.Error()
		}
		x.uninspected = append(x.uninspected, fmt.Sprintf("the %s file system of partition %d (%v)", typ, p.Number, err))
		return nil
	}
	p.Inspected = true
	x.fss[i] = f
	return nil
}

func partName(p *Partition) string {
	if p.Number == 0 {
		return "the whole disk"
	}
	return fmt.Sprintf("partition %d", p.Number)
}

func (x *examination) size() {
	if s := x.d.Size(); s > MaxImportSize {
		x.add(CheckSize, Fail, fmt.Sprintf("the virtual disk holds %s (%d bytes), more than the 100 GB an import takes", humanSize(s), s),
			"shrink the file systems and the last partition (resize2fs; XFS cannot shrink: copy to a smaller disk), then the disk: qemu-img resize --shrink IN 100G; or move data to a second volume attached after provisioning")
		return
	}
	x.add(CheckSize, Pass, fmt.Sprintf("%s (%d bytes), within the 100 GB an import takes", humanSize(x.d.Size()), x.d.Size()), "")
}

// findRoot returns the index of the inspected file system that holds the
// operating system (an os-release file, else /etc), or -1.
func (x *examination) findRoot() int {
	withEtc := -1
	for i := range x.r.Partitions {
		f, ok := x.fss[i]
		if !ok {
			continue
		}
		for _, p := range osReleasePaths {
			if ok, err := exists(f, p); err == nil && ok {
				return i
			} else if errors.Is(err, errLinkUnreadable) {
				return i // a link at /etc/os-release: a root file system
			}
		}
		if ok, _ := exists(f, "etc"); ok && withEtc < 0 {
			withEtc = i
		}
	}
	return withEtc
}

// boot looks for kernels in the root's /boot and at the top of any other
// inspected file system (a separate /boot partition).
func (x *examination) boot(root int) {
	var found []string
	for i := range x.r.Partitions {
		f, ok := x.fss[i]
		if !ok {
			continue
		}
		dir := ""
		if i == root {
			dir = "boot"
		}
		ks, err := bootKernels(f, dir)
		if err != nil {
			x.uninspected = append(x.uninspected, fmt.Sprintf("/%s on %s (%v)", dir, partName(&x.r.Partitions[i]), err))
			continue
		}
		for _, k := range ks {
			where := partName(&x.r.Partitions[i])
			if i != root {
				where += ", a separate /boot"
			}
			found = append(found, fmt.Sprintf("%s (%s)", path.Join("/", dir, k), where))
		}
	}
	switch {
	case len(found) > 0:
		x.add(CheckBoot, Pass, "kernel "+strings.Join(found, ", "), "")
	case len(x.uninspected) > 0:
		x.add(CheckBoot, NotInspected, "no kernel found in what was read; not read: "+strings.Join(x.uninspected, "; "),
			"make sure the disk holds /boot with a kernel and a boot loader")
	default:
		x.add(CheckBoot, Fail, "no kernel (vmlinuz-*) in /boot or on a boot partition",
			"install a kernel and a boot loader (grub) on the disk before capturing the image")
	}
}

// noRoot reports the system-level checks when no root file system was
// read.
func (x *examination) noRoot() {
	windows := slices.ContainsFunc(x.r.Partitions, func(p Partition) bool { return p.FileSystem == "ntfs" })
	switch {
	case windows:
		const why = "the disk holds NTFS (Windows), which is not read"
		x.add(CheckOneVolume, NotInspected, why, "check that Windows needs no second disk")
		x.add(CheckOS, NotInspected, why, "check that it is Windows Server 2016, 2019 or 2022 Standard, 64-bit")
		x.add(CheckOSSupported, NotInspected, why, "IBM supports Windows Server Standard 2016, 2019 and 2022 for imports")
		x.osCodeFinding()
		x.add(CheckCloudbaseInit, NotInspected, why,
			"install cloudbase-init with IBM's metadata service and the ConfigDrive data source (see IBM's \"Configuring a custom Windows image\")")
	case len(x.uninspected) > 0:
		why := "no root file system was read; not read: " + strings.Join(x.uninspected, "; ")
		for _, c := range []string{CheckOneVolume, CheckOS, CheckOSSupported} {
			x.add(c, NotInspected, why, "check by hand, or put the root file system on a plain ext4 or XFS partition")
		}
		x.osCodeFinding()
		for _, c := range []string{CheckArch, CheckCloudInit, CheckConfigDrive, CheckXenBlkfront} {
			x.add(c, NotInspected, why, "check by hand")
		}
	default:
		const why = "no file system on the disk holds an operating system (/etc/os-release or /etc)"
		x.add(CheckOS, Fail, why, "install a supported operating system on the disk")
		x.osCodeFinding()
		for _, c := range []string{CheckOneVolume, CheckOSSupported, CheckArch, CheckCloudInit, CheckConfigDrive, CheckXenBlkfront} {
			x.add(c, NotInspected, why, "")
		}
	}
}

func (x *examination) osChecks(f fsys) {
	rel, note, err := readOSRelease(f)
	switch {
	case err != nil:
		x.add(CheckOS, NotInspected, "reading os-release: "+err.Error(), "check /etc/os-release by hand")
		x.add(CheckOSSupported, NotInspected, "the operating system was not identified", "")
	case rel == nil:
		detail := "no /etc/os-release or /usr/lib/os-release on the root file system"
		if note != "" {
			detail += " (" + note + ")"
		}
		x.add(CheckOS, Fail, detail, "use a distribution that ships os-release (every supported one does)")
		x.add(CheckOSSupported, NotInspected, "the operating system was not identified", "")
	default:
		x.r.OS = rel
		detail := fmt.Sprintf("%s (ID=%s VERSION_ID=%s) from %s", rel.display(), rel.ID, rel.VersionID, rel.Path)
		if note != "" {
			detail += "; " + note
		}
		x.add(CheckOS, Pass, detail, "")
		switch {
		case rel.Code != "" && rel.E2E:
			x.add(CheckOSSupported, Pass, fmt.Sprintf("%s, OS reference code %s, is on IBM's list for imports", rel.display(), rel.Code), "")
		case rel.Code != "":
			x.add(CheckOSSupported, Fail, fmt.Sprintf("%s (%s) is not on IBM's list for imports", rel.display(), rel.Code),
				"use one of: "+strings.Join(SupportedOSCodes(), ", ")+", or Windows Server 2016/2019/2022")
		default:
			x.add(CheckOSSupported, Fail, fmt.Sprintf("%s has no known OS reference code and is not on IBM's list for imports", rel.display()),
				"use CentOS Stream 9, Debian 11 or 12, RHEL 8 or 9, Ubuntu 20.04, 22.04 or 24.04, or Windows Server 2016/2019/2022")
		}
	}
	x.osCodeFinding()

	bits, machine, from, err := arch(f)
	switch {
	case err != nil:
		x.add(CheckArch, NotInspected, "reading a system executable: "+err.Error(), "")
	case from == "":
		x.add(CheckArch, NotInspected, "no system executable (/usr/bin/env, /bin/sh...) could be read", "check that the system is 64-bit x86")
	case bits == 64 && machine == 62:
		x.add(CheckArch, Pass, "64-bit x86 (ELF header of "+from+")", "")
	default:
		x.add(CheckArch, Fail, fmt.Sprintf("%d-bit ELF for machine %d (%s); classic virtual servers run 64-bit x86", bits, machine, from),
			"use the x86-64 (amd64) edition of the distribution")
	}
}

func (x *examination) osCodeFinding() {
	if x.o.osCode == "" {
		return
	}
	if x.r.OS == nil || x.r.OS.Code == "" {
		x.add(CheckOSCode, NotInspected, fmt.Sprintf("%s was given, but the image's system was not identified", x.o.osCode),
			"check that the code names the system on the disk")
		return
	}
	if err := x.r.CheckOSCode(x.o.osCode); err != nil {
		x.add(CheckOSCode, Fail, err.Error(), "import with OS reference code "+x.r.OS.Code+" (-os-code "+x.r.OS.Code+")")
		return
	}
	x.add(CheckOSCode, Pass, fmt.Sprintf("%s matches %s", x.o.osCode, x.r.OS.display()), "")
}

func (x *examination) cloudInit(f fsys) {
	ci, err := findCloudInit(f)
	fix := "install cloud-init " + MinCloudInit + " or later from the distribution (apt-get install cloud-init, dnf install cloud-init) and keep it enabled"
	switch {
	case err != nil:
		x.add(CheckCloudInit, NotInspected, err.Error(), fix)
	case ci.version != "":
		x.r.CloudInit = &CloudInit{Version: ci.version, Source: ci.source}
		ok, verr := versionAtLeast(ci.version, MinCloudInit)
		switch {
		case verr != nil:
			x.add(CheckCloudInit, NotInspected, fmt.Sprintf("version %q from %s could not be compared", ci.version, ci.source), fix)
		case !ok:
			x.add(CheckCloudInit, Fail, fmt.Sprintf("cloud-init %s (from %s) is older than %s", ci.version, ci.source, MinCloudInit), fix)
		case ci.disabled != "":
			x.add(CheckCloudInit, Fail, fmt.Sprintf("cloud-init %s is installed but disabled by %s", ci.version, ci.disabled), "remove "+ci.disabled)
		default:
			x.add(CheckCloudInit, Pass, fmt.Sprintf("cloud-init %s (from %s)", ci.version, ci.source), "")
		}
	case ci.binary:
		x.add(CheckCloudInit, NotInspected, "/usr/bin/cloud-init exists but no package or Python metadata gives its version"+notes(ci.notes),
			"check its version with cloud-init --version on the running system")
	default:
		x.add(CheckCloudInit, Fail, "cloud-init is not installed (no dpkg record, no Python metadata, no /usr/bin/cloud-init)"+notes(ci.notes), fix)
	}
}

func notes(ns []string) string {
	if len(ns) == 0 {
		return ""
	}
	return "; could not read: " + strings.Join(ns, "; ")
}

func (x *examination) configDrive(f fsys) {
	const fix = "let cloud-init use ConfigDrive: in /etc/cloud/cloud.cfg or a file of /etc/cloud/cloud.cfg.d, set datasource_list: [ ConfigDrive, None ] (later files override earlier ones)"
	ds, from, read, err := datasources(f)
	switch {
	case errors.Is(err, ErrLimit):
		x.add(CheckConfigDrive, NotInspected, err.Error(), "check datasource_list in /etc/cloud/cloud.cfg and /etc/cloud/cloud.cfg.d by hand")
	case err != nil:
		x.add(CheckConfigDrive, Fail, err.Error(), fix)
	case len(read) == 0:
		x.add(CheckConfigDrive, Fail, "no /etc/cloud/cloud.cfg", "reinstall cloud-init, which provides /etc/cloud/cloud.cfg")
	case from == "":
		x.add(CheckConfigDrive, Pass, "datasource_list is not set in "+strings.Join(read, ", ")+": cloud-init's built-in list, which includes ConfigDrive, applies", "")
	case slices.Contains(ds, "ConfigDrive"):
		x.add(CheckConfigDrive, Pass, fmt.Sprintf("datasource_list %v (set by %s) includes ConfigDrive", ds, from), "")
	default:
		x.add(CheckConfigDrive, Fail, fmt.Sprintf("datasource_list %v (set by %s, the last of %s to set it) leaves ConfigDrive out", ds, from, strings.Join(read, ", ")), fix)
	}
}

func (x *examination) xen(f fsys) {
	with, without, note, err := xenBlkfront(f)
	const fix = "boot a kernel with the Xen block front-end driver (CONFIG_XEN_BLKDEV_FRONTEND): every supported distribution's generic kernel has it; install that kernel (e.g. linux-image-generic, kernel-core)"
	extra := ""
	if note != "" {
		extra = "; " + note
	}
	switch {
	case err != nil:
		x.add(CheckXenBlkfront, NotInspected, "reading the kernel modules: "+err.Error(), fix)
	case len(with) == 0 && len(without) == 0:
		x.add(CheckXenBlkfront, Fail, "no kernel modules directory under /lib/modules"+extra, fix)
	case len(with) == 0:
		x.add(CheckXenBlkfront, Fail, "no installed kernel has xen-blkfront (kernels: "+strings.Join(without, ", ")+")"+extra, fix)
	case len(without) > 0:
		x.add(CheckXenBlkfront, Pass, "xen-blkfront in kernel "+strings.Join(with, ", ")+"; not in "+strings.Join(without, ", ")+" (boot one that has it)"+extra, "")
	default:
		x.add(CheckXenBlkfront, Pass, "xen-blkfront in kernel "+strings.Join(with, ", ")+extra, "")
	}
}

// oneVolume checks that every file system /etc/fstab needs at boot is on
// this disk: IBM imports the boot volume only.
func (x *examination) oneVolume(f fsys) {
	entries, ok, err := readFstab(f)
	switch {
	case err != nil:
		x.add(CheckOneVolume, NotInspected, "reading /etc/fstab: "+err.Error(), "check /etc/fstab by hand")
		return
	case !ok:
		x.add(CheckOneVolume, Pass, "no /etc/fstab: nothing but the root is mounted at boot", "")
		return
	}
	var here, elsewhere, unknown []string
	for _, e := range entries {
		if skipMount(e) {
			continue
		}
		switch x.locate(e.spec) {
		case onDisk:
			here = append(here, e.file)
		case offDisk:
			elsewhere = append(elsewhere, fmt.Sprintf("%s (%s)", e.file, e.spec))
		default:
			unknown = append(unknown, fmt.Sprintf("%s (%s)", e.file, e.spec))
		}
	}
	const fix = "only the boot volume is imported: move these file systems onto the boot disk, or mark their /etc/fstab lines nofail and attach the volumes after provisioning"
	switch {
	case len(elsewhere) > 0:
		x.add(CheckOneVolume, Fail, "/etc/fstab mounts file systems that are not on this disk: "+strings.Join(elsewhere, ", "), fix)
	case len(unknown) > 0:
		x.add(CheckOneVolume, NotInspected, "/etc/fstab mounts devices the doctor cannot place: "+strings.Join(unknown, ", "), fix)
	default:
		x.add(CheckOneVolume, Pass, fmt.Sprintf("every file system /etc/fstab mounts at boot is on this disk (%s)", strings.Join(here, ", ")), "")
	}
}

// skipMount reports whether an fstab entry needs no disk of its own: swap
// (IBM attaches a swap disk itself, LABEL=SWAP-xvdb1), pseudo and network
// file systems, and entries that do not stop the boot (noauto, nofail).
func skipMount(e fstabEntry) bool {
	switch e.vfstype {
	case "swap", "proc", "sysfs", "tmpfs", "devpts", "devtmpfs", "nfs", "nfs4", "cifs", "smbfs", "none", "efivarfs", "securityfs", "cgroup", "cgroup2", "bind", "fuse", "9p":
		return true
	}
	if e.file == "none" || e.file == "swap" {
		return true
	}
	for _, o := range strings.Split(e.opts, ",") {
		if o == "noauto" || o == "nofail" || o == "bind" {
			return true
		}
	}
	return false
}

type place int

const (
	unplaced place = iota
	onDisk
	offDisk
)

// locate tells whether an fstab device spec names a file system of this
// disk.
func (x *examination) locate(spec string) place {
	key, val := "", ""
	switch {
	case strings.Contains(spec, "="):
		key, val, _ = strings.Cut(spec, "=")
		val = strings.Trim(val, `"`)
	case strings.HasPrefix(spec, "/dev/disk/by-uuid/"):
		key, val = "UUID", strings.TrimPrefix(spec, "/dev/disk/by-uuid/")
	case strings.HasPrefix(spec, "/dev/disk/by-label/"):
		key, val = "LABEL", strings.TrimPrefix(spec, "/dev/disk/by-label/")
	case strings.HasPrefix(spec, "/dev/disk/by-partuuid/"):
		key, val = "PARTUUID", strings.TrimPrefix(spec, "/dev/disk/by-partuuid/")
	case strings.HasPrefix(spec, "/dev/disk/by-partlabel/"):
		key, val = "PARTLABEL", strings.TrimPrefix(spec, "/dev/disk/by-partlabel/")
	case strings.HasPrefix(spec, "/dev/"):
		return x.locateDevice(strings.TrimPrefix(spec, "/dev/"))
	default:
		return unplaced
	}
	for _, p := range x.r.Partitions {
		var have string
		switch strings.ToUpper(key) {
		case "UUID":
			have = p.UUID
		case "LABEL":
			have = p.Label
		case "PARTUUID":
			have = p.PartUUID
		case "PARTLABEL":
			have = p.Name
		default:
			return unplaced
		}
		if have != "" && strings.EqualFold(have, val) {
			return onDisk
		}
	}
	if len(x.uninspected) > 0 {
		return unplaced // it may be on a volume that was not read (LVM...)
	}
	return offDisk
}

// locateDevice places a kernel device name: the first disk (sda, vda,
// xvda, hda) is this one; another disk is not; a device mapper name (LVM)
// cannot be placed.
func (x *examination) locateDevice(dev string) place {
	for _, prefix := range []string{"xvd", "sd", "vd", "hd"} {
		if rest, ok := strings.CutPrefix(dev, prefix); ok && rest != "" {
			if rest[0] == 'a' && (len(rest) == 1 || (rest[1] >= '0' && rest[1] <= '9')) {
				return onDisk
			}
			if rest[0] >= 'b' && rest[0] <= 'z' {
				return offDisk
			}
		}
	}
	return unplaced
}
