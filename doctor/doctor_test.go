package doctor_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/imagetest"
)

// Trees of the systems the cases build. The files are what the
// distributions install, in our own words and sizes.

const ubuntuOSRelease = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
`

const rhelOSRelease = `NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
`

func dpkgStatus(cloudInitVersion string) string {
	s := "Package: adduser\nStatus: install ok installed\nVersion: 3.118ubuntu5\nDescription: add users\n multi-line description\n\n"
	if cloudInitVersion != "" {
		s += "Package: cloud-init\nStatus: install ok installed\nPriority: optional\nVersion: " + cloudInitVersion +
			"\nDescription: initialization for cloud instances\n\n"
	}
	// A removed package must not count.
	s += "Package: cloud-guest-utils\nStatus: deinstall ok config-files\nVersion: 0.32-22\n\n"
	return s
}

// hostELF is a real x86-64 executable for the trees' /usr/bin/env.
func hostELF(t *testing.T) string {
	b, err := os.ReadFile("/usr/bin/env")
	if err != nil || len(b) < 20 || string(b[:4]) != "\x7fELF" || b[18] != 62 {
		t.Skip("the tests need the host's /usr/bin/env as an x86-64 ELF executable")
	}
	return string(b)
}

type treeOpts struct {
	cloudInit  string // dpkg version, "" for none
	cfg        string // /etc/cloud/cloud.cfg, "" for none
	cfgd       map[string]string
	fstab      string
	noBlkfront bool
}

func ubuntuTree(t *testing.T, o treeOpts) []imagetest.Entry {
	const kver = "5.15.0-91-generic"
	es := []imagetest.Entry{
		imagetest.File("usr/lib/os-release", ubuntuOSRelease),
		imagetest.Link("etc/os-release", "../usr/lib/os-release"),
		imagetest.Link("lib", "usr/lib"),
		imagetest.Link("bin", "usr/bin"),
		imagetest.File("usr/bin/env", hostELF(t)),
		imagetest.File("boot/vmlinuz-"+kver, "kernel image placeholder\n"),
		imagetest.File("usr/lib/modules/"+kver+"/modules.builtin", "kernel/drivers/block/loop.ko\nkernel/fs/ext4/ext4.ko\n"),
		imagetest.File("var/lib/dpkg/status", dpkgStatus(o.cloudInit)),
		imagetest.File("etc/hostname", "ubuntu\n"),
	}
	if !o.noBlkfront {
		es = append(es, imagetest.File("usr/lib/modules/"+kver+"/kernel/drivers/block/xen-blkfront.ko", "\x7fELF module placeholder"))
	}
	if o.cloudInit != "" {
		es = append(es, imagetest.File("usr/bin/cloud-init", "#!/usr/bin/python3\n"))
	}
	if o.cfg != "" {
		es = append(es, imagetest.File("etc/cloud/cloud.cfg", o.cfg))
	}
	for name, body := range o.cfgd {
		es = append(es, imagetest.File("etc/cloud/cloud.cfg.d/"+name, body))
	}
	if o.fstab != "" {
		es = append(es, imagetest.File("etc/fstab", o.fstab))
	}
	return es
}

const ubuntuCfg = "users:\n  - default\ndisable_root: true\ncloud_init_modules:\n  - seed_random\n  - growpart\n"
const ubuntuFstab = "LABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\nLABEL=SWAP-xvdb1 none swap sw,nofail 0 0\n"

// ubuntuDisk builds an MBR disk with one ext4 root holding an Ubuntu 22.04
// like system.
func ubuntuDisk(t *testing.T, o treeOpts, size int64) string {
	fs := imagetest.Ext4(t, imagetest.WriteTree(t, ubuntuTree(t, o)), 16<<20, "cloudimg-rootfs")
	return imagetest.Disk(t, "dos", size, imagetest.Part{Type: "L", Image: fs, Bootable: true})
}

func goodUbuntu() treeOpts {
	return treeOpts{
		cloudInit: "23.4.4-0ubuntu0~22.04.1",
		cfg:       ubuntuCfg,
		cfgd:      map[string]string{"90_dpkg.cfg": "# from debconf\ndatasource_list: [ NoCloud, ConfigDrive, OpenStack, None ]\n"},
		fstab:     ubuntuFstab,
	}
}

// rhelDisk builds a GPT disk with an ext4 /boot and an XFS root holding a
// RHEL 9 like system (cloud-init from its Python metadata, the driver as
// a compressed module).
func rhelDisk(t *testing.T) string {
	const kver = "5.14.0-427.13.1.el9_4.x86_64"
	root := imagetest.WriteTree(t, []imagetest.Entry{
		imagetest.File("usr/lib/os-release", rhelOSRelease),
		imagetest.Link("etc/os-release", "../usr/lib/os-release"),
		imagetest.Link("lib", "usr/lib"),
		imagetest.Link("bin", "usr/bin"),
		imagetest.File("usr/bin/env", hostELF(t)),
		imagetest.File("usr/bin/cloud-init", "#!/usr/bin/python3\n"),
		imagetest.File("usr/lib/modules/"+kver+"/kernel/drivers/block/xen-blkfront.ko.xz", "xz module placeholder"),
		imagetest.File("usr/lib/python3.9/site-packages/cloud_init-23.4-py3.9.egg-info/PKG-INFO",
			"Metadata-Version: 2.1\nName: cloud-init\nVersion: 23.4\nSummary: Cloud instance initialisation magic\n\nlong text\n"),
		imagetest.File("usr/lib/python3.9/site-packages/cloudinit/version.py", "__VERSION__ = \"23.4\"\n"),
		imagetest.File("etc/cloud/cloud.cfg", "datasource_list: [ ConfigDrive, None ]\nuser: root\nssh_pwauth: True\n"),
		imagetest.File("etc/fstab", "LABEL=root / xfs defaults 0 0\nLABEL=boot /boot ext4 defaults 1 2\n"),
		imagetest.Dir("boot"),
	})
	boot := imagetest.WriteTree(t, []imagetest.Entry{
		imagetest.File("vmlinuz-"+kver, "kernel image placeholder\n"),
		imagetest.File("grub2/grub.cfg", "set default=0\n"),
	})
	bootFS := imagetest.Ext4(t, boot, 8<<20, "boot")
	rootFS := imagetest.XFS(t, root, 40<<20, "root")
	return imagetest.Disk(t, "gpt", 56<<20,
		imagetest.Part{Type: "L", Size: 8 << 20, Image: bootFS},
		imagetest.Part{Type: "L", Image: rootFS})
}

// lvmHead is the start of an LVM2 physical volume: the label in sector 1
// ("LABELONE", its sector number, CRC, offset, "LVM2 001", then the PV
// UUID), as pvcreate writes it.
func lvmHead() []byte {
	b := make([]byte, 4096)
	copy(b[512:], "LABELONE")
	b[512+8] = 1
	copy(b[512+24:], "LVM2 001")
	copy(b[512+32:], "Qd3yKm0p7nN2c1XwLrT9sVbZ4eGhJ6fA")
	return b
}

// ntfsHead is an NTFS boot sector: the OEM id "NTFS    " at byte 3 and the
// boot signature.
func ntfsHead() []byte {
	b := make([]byte, 512)
	copy(b, "\xeb\x52\x90NTFS    ")
	b[0x0b], b[0x0c] = 0x00, 0x02 // 512 bytes per sector
	b[510], b[511] = 0x55, 0xAA
	return b
}

// btrfsHead is a Btrfs superblock magic at 64 KiB + 64.
func btrfsHead() []byte {
	b := make([]byte, 68<<10)
	copy(b[0x10040:], "_BHRfS_M")
	return b
}

type want map[string]doctor.Verdict

const (
	P = doctor.Pass
	F = doctor.Fail
	N = doctor.NotInspected
)

func allPass(extra ...string) want {
	w := want{}
	for _, c := range []string{doctor.CheckPartitionTable, doctor.CheckFileSystems, doctor.CheckBoot, doctor.CheckSize,
		doctor.CheckOneVolume, doctor.CheckOS, doctor.CheckOSSupported, doctor.CheckArch, doctor.CheckCloudInit,
		doctor.CheckConfigDrive, doctor.CheckXenBlkfront} {
		w[c] = P
	}
	for _, c := range extra {
		w[c] = P
	}
	return w
}

func (w want) with(check string, v doctor.Verdict) want {
	out := want{}
	for k, x := range w {
		out[k] = x
	}
	out[check] = v
	return out
}

func examine(t *testing.T, path string, opts ...doctor.Option) *doctor.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	d, err := disk.Open(f, fi.Size(), disk.AllowNoPartitionTable())
	if err != nil {
		t.Fatalf("disk.Open: %v", err)
	}
	r, err := doctor.Examine(context.Background(), d, opts...)
	if err != nil {
		t.Fatalf("Examine: %v", err)
	}
	return r
}

func check(t *testing.T, r *doctor.Report, w want) {
	t.Helper()
	t.Log("\n" + r.String())
	got := map[string]doctor.Verdict{}
	for _, f := range r.Findings {
		if _, dup := got[f.Check]; dup {
			t.Errorf("check %q reported twice", f.Check)
		}
		got[f.Check] = f.Verdict
		if f.Verdict == doctor.Fail && f.Fix == "" {
			t.Errorf("%s: fails without a fix", f.Check)
		}
		if f.Detail == "" {
			t.Errorf("%s: no detail", f.Check)
		}
	}
	for c, v := range w {
		if got[c] != v {
			t.Errorf("%s: %v, want %v", c, got[c], v)
		}
	}
	for c, v := range got {
		if _, ok := w[c]; !ok {
			t.Errorf("unexpected check %s: %v", c, v)
		}
	}
	if ok := !slices.ContainsFunc(r.Findings, func(f doctor.Finding) bool { return f.Verdict == doctor.Fail }); r.OK() != ok {
		t.Errorf("OK() = %v with findings %v", r.OK(), r.Findings)
	}
}

func TestExamine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func(t *testing.T) string
		opts []doctor.Option
		want want
		also func(t *testing.T, r *doctor.Report)
	}{
		{
			name: "ubuntu-ext4-mbr",
			make: func(t *testing.T) string { return ubuntuDisk(t, goodUbuntu(), 24<<20) },
			want: allPass(),
			also: func(t *testing.T, r *doctor.Report) {
				if r.OSCode() != "UBUNTU_22_64" || r.OS.Path != "/usr/lib/os-release" || r.OS.VersionID != "22.04" {
					t.Errorf("OS %+v", r.OS)
				}
				if r.CloudInit == nil || r.CloudInit.Version != "23.4.4" || !strings.Contains(r.CloudInit.Source, "dpkg") {
					t.Errorf("cloud-init %+v", r.CloudInit)
				}
				if r.Table != disk.MBR || r.Root == nil || r.Root.FileSystem != "ext4" || r.Root.Label != "cloudimg-rootfs" {
					t.Errorf("layout: %v root %+v", r.Table, r.Root)
				}
				if !r.Complete() {
					t.Error("not Complete")
				}
				if err := r.CheckOSCode("REDHAT_9_64"); !errors.Is(err, doctor.ErrOSCodeMismatch) {
					t.Errorf("CheckOSCode(REDHAT_9_64): %v", err)
				}
				if err := r.CheckOSCode("ubuntu_22_64"); err != nil {
					t.Errorf("CheckOSCode(ubuntu_22_64): %v", err)
				}
			},
		},
		{
			name: "ubuntu-qcow2-compressed",
			make: func(t *testing.T) string {
				return imagetest.Convert(t, ubuntuDisk(t, goodUbuntu(), 24<<20), "qcow2", "-c")
			},
			want: allPass(),
		},
		{
			name: "os-code-matches",
			make: func(t *testing.T) string { return ubuntuDisk(t, goodUbuntu(), 24<<20) },
			opts: []doctor.Option{doctor.WithOSCode("UBUNTU_22_64")},
			want: allPass(doctor.CheckOSCode),
		},
		{
			name: "os-code-contradicts",
			make: func(t *testing.T) string { return ubuntuDisk(t, goodUbuntu(), 24<<20) },
			opts: []doctor.Option{doctor.WithOSCode("REDHAT_9_64")},
			want: allPass().with(doctor.CheckOSCode, F),
		},
		{
			name: "rhel-xfs-gpt",
			make: rhelDisk,
			want: allPass(),
			also: func(t *testing.T, r *doctor.Report) {
				if r.OSCode() != "REDHAT_9_64" || r.Table != disk.GPT || r.Root == nil || r.Root.FileSystem != "xfs" {
					t.Errorf("OS %+v table %v root %+v", r.OS, r.Table, r.Root)
				}
				if r.CloudInit == nil || r.CloudInit.Version != "23.4" || !strings.Contains(r.CloudInit.Source, "PKG-INFO") {
					t.Errorf("cloud-init %+v", r.CloudInit)
				}
				if f, _ := r.Finding(doctor.CheckBoot); !strings.Contains(f.Detail, "separate /boot") {
					t.Errorf("boot: %s", f.Detail)
				}
			},
		},
		{
			name: "cloud-init-too-old",
			make: func(t *testing.T) string {
				o := goodUbuntu()
				o.cloudInit = "0.7.5-0ubuntu1.22"
				return ubuntuDisk(t, o, 24<<20)
			},
			want: allPass().with(doctor.CheckCloudInit, F),
		},
		{
			name: "configdrive-excluded",
			make: func(t *testing.T) string {
				o := goodUbuntu()
				// The later file wins: ConfigDrive is excluded.
				o.cfgd = map[string]string{
					"10_ibm.cfg":   "datasource_list: [ ConfigDrive, None ]\n",
					"99_local.cfg": "datasource_list:\n  - NoCloud\n  - None\n",
				}
				return ubuntuDisk(t, o, 24<<20)
			},
			want: allPass().with(doctor.CheckConfigDrive, F),
		},
		{
			name: "no-cloud-init",
			make: func(t *testing.T) string {
				o := goodUbuntu()
				o.cloudInit, o.cfg, o.cfgd = "", "", nil
				return ubuntuDisk(t, o, 24<<20)
			},
			want: allPass().with(doctor.CheckCloudInit, F).with(doctor.CheckConfigDrive, F),
		},
		{
			name: "no-xen-blkfront",
			make: func(t *testing.T) string {
				o := goodUbuntu()
				o.noBlkfront = true
				return ubuntuDisk(t, o, 24<<20)
			},
			want: allPass().with(doctor.CheckXenBlkfront, F),
		},
		{
			name: "second-volume-in-fstab",
			make: func(t *testing.T) string {
				o := goodUbuntu()
				o.fstab = ubuntuFstab + "/dev/xvdc1 /srv/data ext4 defaults 0 2\nUUID=0b7c6f2e-6f7a-4b8e-9a51-4d8d1f3e2a10 /var/log xfs defaults 0 2\n"
				return ubuntuDisk(t, o, 24<<20)
			},
			want: allPass().with(doctor.CheckOneVolume, F),
		},
		{
			name: "larger-than-100GB",
			make: func(t *testing.T) string { return ubuntuDisk(t, goodUbuntu(), doctor.MaxImportSize+(1<<30)) },
			want: allPass().with(doctor.CheckSize, F),
		},
		{
			name: "lvm",
			make: func(t *testing.T) string {
				boot := imagetest.Ext4(t, imagetest.WriteTree(t, []imagetest.Entry{
					imagetest.File("vmlinuz-5.14.0-427.el9.x86_64", "kernel image placeholder\n"),
				}), 8<<20, "boot")
				return imagetest.Disk(t, "dos", 24<<20,
					imagetest.Part{Type: "L", Size: 8 << 20, Image: boot, Bootable: true},
					imagetest.Part{Type: "8e", Head: lvmHead()})
			},
			want: want{
				doctor.CheckPartitionTable: P, doctor.CheckFileSystems: N, doctor.CheckBoot: P, doctor.CheckSize: P,
				doctor.CheckOneVolume: N, doctor.CheckOS: N, doctor.CheckOSSupported: N, doctor.CheckArch: N, doctor.CheckCloudInit: N,
				doctor.CheckConfigDrive: N, doctor.CheckXenBlkfront: N,
			},
		},
		{
			name: "btrfs",
			make: func(t *testing.T) string {
				return imagetest.Disk(t, "gpt", 8<<20, imagetest.Part{Type: "L", Head: btrfsHead()})
			},
			want: want{
				doctor.CheckPartitionTable: P, doctor.CheckFileSystems: N, doctor.CheckBoot: N, doctor.CheckSize: P,
				doctor.CheckOneVolume: N, doctor.CheckOS: N, doctor.CheckOSSupported: N, doctor.CheckArch: N, doctor.CheckCloudInit: N,
				doctor.CheckConfigDrive: N, doctor.CheckXenBlkfront: N,
			},
		},
		{
			name: "ntfs-windows",
			make: func(t *testing.T) string {
				return imagetest.Disk(t, "dos", 8<<20, imagetest.Part{Type: "7", Head: ntfsHead(), Bootable: true})
			},
			opts: []doctor.Option{doctor.WithOSCode("WIN_2022-STD_64")},
			want: want{
				doctor.CheckPartitionTable: P, doctor.CheckFileSystems: N, doctor.CheckBoot: N, doctor.CheckSize: P,
				doctor.CheckOneVolume: N, doctor.CheckOS: N, doctor.CheckOSSupported: N, doctor.CheckOSCode: N, doctor.CheckCloudbaseInit: N,
			},
		},
		{
			name: "bare-ext4-no-table",
			make: func(t *testing.T) string {
				return imagetest.Ext4(t, imagetest.WriteTree(t, ubuntuTree(t, goodUbuntu())), 16<<20, "cloudimg-rootfs")
			},
			want: allPass().with(doctor.CheckPartitionTable, F),
		},
		{
			name: "no-os",
			make: func(t *testing.T) string {
				data := imagetest.Ext4(t, imagetest.WriteTree(t, []imagetest.Entry{imagetest.File("data/file.txt", "data\n")}), 8<<20, "data")
				return imagetest.Disk(t, "gpt", 16<<20, imagetest.Part{Type: "L", Image: data})
			},
			want: want{
				doctor.CheckPartitionTable: P, doctor.CheckFileSystems: P, doctor.CheckBoot: F, doctor.CheckSize: P,
				doctor.CheckOneVolume: N, doctor.CheckOS: F, doctor.CheckOSSupported: N, doctor.CheckArch: N, doctor.CheckCloudInit: N,
				doctor.CheckConfigDrive: N, doctor.CheckXenBlkfront: N,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := examine(t, c.make(t), c.opts...)
			check(t, r, c.want)
			if c.also != nil {
				c.also(t, r)
			}
		})
	}
}

func TestOSCodeFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id, version, code string
		e2e               bool
	}{
		{"ubuntu", "22.04", "UBUNTU_22_64", true},
		{"ubuntu", "24.04", "UBUNTU_24_64", true},
		{"ubuntu", "22.10", "", false},
		{"ubuntu", "18.04", "UBUNTU_18_64", false},
		{"rhel", "9.4", "REDHAT_9_64", true},
		{"rhel", "8", "REDHAT_8_64", true},
		{"debian", "12", "DEBIAN_12_64", true},
		{"centos", "9", "CENTOS_STREAM_9_64", true},
		{"centos", "7", "CENTOS_7_64", false},
		{"rocky", "9.3", "ROCKYLINUX_9_64", false},
		{"arch", "", "", false},
	} {
		code, e2e := doctor.OSCodeFor(c.id, c.version)
		if code != c.code || e2e != c.e2e {
			t.Errorf("OSCodeFor(%s, %s) = %s, %v; want %s, %v", c.id, c.version, code, e2e, c.code, c.e2e)
		}
	}
}

func TestCancelled(t *testing.T) {
	t.Parallel()
	p := ubuntuDisk(t, goodUbuntu(), 24<<20)
	f, _ := os.Open(p)
	defer f.Close()
	fi, _ := f.Stat()
	d, err := disk.Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := doctor.Examine(ctx, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("Examine: %v", err)
	}
}

// TestDamagedFileSystems damages the root file system of a good disk in
// ways a truncated copy or a crafted image would, and checks that the
// doctor neither panics nor passes what it could not read.
func TestDamagedFileSystems(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(ubuntuDisk(t, goodUbuntu(), 24<<20))
	if err != nil {
		t.Fatal(err)
	}
	const part, sb = 1 << 20, 1<<20 + 1024
	put32 := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	for _, c := range []struct {
		name         string
		damage       func(b []byte)
		notInspected bool // the file system must be reported not inspected
	}{
		{"huge-block-size", func(b []byte) { put32(b, sb+24, 20) }, true},
		{"huge-block-count", func(b []byte) { put32(b, sb+4, 0xFFFFFFF0) }, true},
		{"zero-blocks-per-group", func(b []byte) { put32(b, sb+32, 0) }, true},
		{"group-descriptors-garbage", func(b []byte) {
			for i := part + 4096; i < part+8192; i++ {
				b[i] = byte(i * 7)
			}
		}, false},
		{"inode-tables-garbage", func(b []byte) {
			for i := part + 64<<10; i < part+1<<20; i++ {
				b[i] = byte(i*13 + 5)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := slices.Clone(good)
			c.damage(b)
			p := t.TempDir() + "/damaged.raw"
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			r := examine(t, p)
			t.Log("\n" + r.String())
			if len(r.Findings) == 0 {
				t.Fatal("no findings")
			}
			if c.notInspected {
				if f, _ := r.Finding(doctor.CheckFileSystems); f.Verdict != doctor.NotInspected {
					t.Fatalf("file systems: %v", f.Verdict)
				}
				if f, _ := r.Finding(doctor.CheckOS); f.Verdict == doctor.Pass {
					t.Fatal("the OS passed on a file system that was not read")
				}
			}
		})
	}
}

// cancellingReader reads an image and cancels a context at its cancelAt'th
// read, then counts the reads that still come.
type cancellingReader struct {
	r        io.ReaderAt
	cancel   context.CancelFunc
	cancelAt int
	reads    int // in all
	after    int // after the cancelling read
}

func (c *cancellingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	switch {
	case c.cancelAt > 0 && c.reads == c.cancelAt:
		c.cancel()
	case c.cancelAt > 0 && c.reads > c.cancelAt:
		c.after++
	}
	return c.r.ReadAt(p, off)
}

// TestCancelDuringExamine cancels the context at every k-th read of an
// examination (of an ext4 and an XFS disk) and checks that Examine
// returns context.Canceled and reads nothing more: the doctor and its
// readers check the context at each structure they read.
func TestCancelDuringExamine(t *testing.T) {
	t.Parallel()
	for _, p := range []string{ubuntuDisk(t, goodUbuntu(), 24<<20), rhelDisk(t)} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		count := &cancellingReader{r: f}
		d, err := disk.Open(count, fi.Size())
		if err != nil {
			t.Fatal(err)
		}
		opened := count.reads
		if _, err := doctor.Examine(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		total := count.reads - opened
		if total < 10 {
			t.Fatalf("an examination made %d reads: too few to test", total)
		}
		tried := 0
		for k := 1; k <= total; k += max(1, total/40) {
			ctx, cancel := context.WithCancel(context.Background())
			c := &cancellingReader{r: f, cancel: cancel}
			d, err := disk.Open(c, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			c.cancelAt = c.reads + k
			_, err = doctor.Examine(ctx, d)
			cancel()
			tried++
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled at read %d of %d: Examine returned %v", k, total, err)
			}
			if c.after > 0 {
				t.Errorf("cancelled at read %d of %d: %d reads after", k, total, c.after)
			}
		}
		t.Logf("%s: %d reads in an examination, cancelled at %d points", filepath.Base(p), total, tried)
	}
}
