package slsim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/imagetest"
)

// Disk images as users have them, built with the tools distributions use
// (mkfs.ext4 -d, mkfs.xfs -p, sfdisk; see internal/imagetest), encrypted
// with the module's encryptor and imported through the simulator, whose
// checks read them with a reader of their own.

const ubuntuOSRelease = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
ID_LIKE=debian
`

// ubuntuCloudCfg is the part of Ubuntu's /etc/cloud/cloud.cfg that matters
// here, plus a few of its usual keys.
const ubuntuCloudCfg = `# The top level settings are used as module
# and base configuration.
users:
  - default
disable_root: true
preserve_hostname: false
datasource_list: [ ConfigDrive, IBMCloud, NoCloud, None ]
cloud_init_modules:
  - seed_random
  - growpart
  - resizefs
system_info:
  distro: ubuntu
  default_user:
    name: ubuntu
`

// dpkgParagraph is one package's record in /var/lib/dpkg/status.
func dpkgParagraph(pkg, status, version string) string {
	return fmt.Sprintf("Package: %s\nStatus: %s\nPriority: optional\nSection: admin\nInstalled-Size: 1024\n"+
		"Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>\nArchitecture: all\nVersion: %s\n"+
		"Description: %s\n %s\n .\n %s\n\n",
		pkg, status, version, pkg+" package", strings.Repeat("filler text of a long description ", 12),
		strings.Repeat("more of it ", 20))
}

// dpkgStatus returns a status file listing, in name order as dpkg writes
// it, before packages, then cloud-init (when version is not empty), then
// after packages.
func dpkgStatus(before, after int, cloudInitStatus, version string) string {
	var b strings.Builder
	for i := range before {
		b.WriteString(dpkgParagraph(fmt.Sprintf("a-package-%03d", i), "install ok installed", "1.0-1"))
	}
	if version != "" {
		b.WriteString(dpkgParagraph("cloud-init", cloudInitStatus, version))
	}
	for i := range after {
		b.WriteString(dpkgParagraph(fmt.Sprintf("z-package-%03d", i), "install ok installed", "2.0-1"))
	}
	return b.String()
}

// ubuntuTree is an Ubuntu-like root: os-release, fstab, dpkg's status file
// and cloud-init's configuration, with extra entries added or replacing.
func ubuntuTree(dpkg, cloudCfg string, extra ...imagetest.Entry) []imagetest.Entry {
	e := []imagetest.Entry{
		imagetest.File("usr/lib/os-release", ubuntuOSRelease),
		imagetest.Link("etc/os-release", "../usr/lib/os-release"),
		imagetest.Link("lib", "usr/lib"),
		imagetest.Link("bin", "usr/bin"),
		imagetest.File("usr/bin/cloud-init", "#!/usr/bin/python3\n"),
		imagetest.File("etc/hostname", "ubuntu\n"),
		imagetest.File("etc/fstab", "LABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n"),
		imagetest.Dir("home"),
		imagetest.Dir("var/log"),
	}
	if dpkg != "" {
		e = append(e, imagetest.File("var/lib/dpkg/status", dpkg))
	}
	if cloudCfg != "" {
		e = append(e, imagetest.File("etc/cloud/cloud.cfg", cloudCfg))
	}
	return append(e, extra...)
}

// rhelTree is a Red Hat-like root: no dpkg, cloud-init's Python metadata
// (as its RPM installs it) and a cloud.cfg without datasource_list.
func rhelTree() []imagetest.Entry {
	return []imagetest.Entry{
		imagetest.File("etc/os-release", "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"9.4\"\nID=\"rhel\"\n"),
		imagetest.File("etc/fstab", "UUID=0b1e1f55-0000-4000-8000-000000000001 / ext4 defaults 0 0\n"),
		imagetest.File("usr/lib/python3.9/site-packages/cloud_init-23.4-py3.9.egg-info/PKG-INFO",
			"Metadata-Version: 2.1\nName: cloud-init\nVersion: 23.4\n"),
		imagetest.File("usr/lib/python3.9/site-packages/cloudinit/__init__.py", ""),
		imagetest.File("etc/cloud/cloud.cfg", "users:\n  - default\ndisable_root: true\n"),
		imagetest.Dir("var/lib/rpm"),
	}
}

// diskOf makes a whole disk of the partition-table kind ("dos" or "gpt")
// with a root file system ("ext4" or "xfs") holding the tree; a GPT disk
// gets an EFI system partition first, as cloud images have.
func diskOf(t *testing.T, table, fsType string, tree []imagetest.Entry) []byte {
	t.Helper()
	dir := imagetest.WriteTree(t, tree)
	const rootSize = 24 << 20
	var root string
	switch fsType {
	case "ext4":
		root = imagetest.Ext4(t, dir, rootSize, "cloudimg-rootfs")
	case "ext4-4k":
		// 4 KiB blocks, as on a cloud image (mkfs.ext4 picks 1 KiB for a
		// file system this small).
		root = filepath.Join(t.TempDir(), "ext4-4k.img")
		require.NoError(t, os.WriteFile(root, nil, 0o644))
		require.NoError(t, os.Truncate(root, rootSize))
		imagetest.Run(t, nil, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "cloudimg-rootfs", "-d", dir, root)
	case "xfs":
		root = imagetest.XFS(t, dir, rootSize, "root")
	default:
		t.Fatalf("file system %q", fsType)
	}
	var parts []imagetest.Part
	size := int64(rootSize + 2<<20)
	if table == "gpt" {
		parts = append(parts, imagetest.Part{Type: "U", Size: 4 << 20})
		size += 4 << 20
	}
	parts = append(parts, imagetest.Part{Type: "L", Size: rootSize, Image: root, Bootable: table == "dos"})
	return readFile(t, imagetest.Disk(t, table, size, parts...))
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// importRaw encrypts raw with a new DEK of the module's encryptor, puts it
// in the bucket under name and starts an encrypted import of it.
func (w *world) importRaw(t *testing.T, name string, raw []byte, os string) int {
	t.Helper()
	dek := randomDEK(32)
	w.s3.put("images", name, encryptWith(t, raw, dek))
	return w.createImport(t, importSpec{name: name, uri: "cos://us-south/images/" + name, os: os,
		crk: w.keyCRN("kms", kpInstance, "root-1"), wdek: w.kms.wrap(t, "root-1", dek)})
}

// templateInfo returns the simulator's record of template id.
func (w *world) templateInfo(t *testing.T, id int) slsim.TemplateInfo {
	t.Helper()
	for _, ti := range w.srv.Templates() {
		if ti.ID == id {
			return ti
		}
	}
	t.Fatalf("no template %d", id)
	return slsim.TemplateInfo{}
}

// TestImportChecksTheGuest imports images of each kind and checks the
// outcome: Active with what the checks found, or the reason a user sees.
func TestImportChecksTheGuest(t *testing.T) {
	t.Parallel()
	status := dpkgStatus(40, 40, "install ok installed", "23.1.2-0ubuntu0~22.04.1")
	sample := linuxDisk(t)
	cases := []struct {
		name string
		disk func(t *testing.T) []byte
		os   string
		// want is slsim.TemplateStatusActive or a failure reason.
		want string
		// check is what ImageCheck must start with (Active imports).
		check string
		// has are substrings of ImageCheck or of the failure's detail.
		has []string
	}{
		{"ubuntu-like, cloud-init from dpkg", func(t *testing.T) []byte { return diskOf(t, "dos", "ext4", ubuntuTree(status, ubuntuCloudCfg)) },
			"UBUNTU_22_64", slsim.TemplateStatusActive, "checked: ",
			[]string{"partition 1 (ext4)", "cloud-init 23.1.2-0ubuntu0~22.04.1 (/var/lib/dpkg/status)", "datasource_list [ConfigDrive, IBMCloud, NoCloud, None] (/etc/cloud/cloud.cfg)"}},
		{"ubuntu-like, 4 KiB blocks, on GPT", func(t *testing.T) []byte { return diskOf(t, "gpt", "ext4-4k", ubuntuTree(status, ubuntuCloudCfg)) },
			"UBUNTU_22_64", slsim.TemplateStatusActive, "checked: ", []string{"partition 2 (ext4)", "cloud-init 23.1.2"}},
		{"the sample disk (go-diskfs, 1 KiB blocks)", func(*testing.T) []byte { return sample },
			"UBUNTU_22_64", slsim.TemplateStatusActive, "checked: ", []string{"cloud-init 23.4.4-0ubuntu0~22.04.1"}},
		{"red hat-like on GPT, cloud-init from its Python metadata", func(t *testing.T) []byte { return diskOf(t, "gpt", "ext4", rhelTree()) },
			"REDHAT_9_64", slsim.TemplateStatusActive, "checked: ",
			[]string{"partition 2 (ext4)", "cloud-init 23.4 (/usr/lib/python3.9/site-packages/cloud_init-23.4-py3.9.egg-info)", "no datasource_list"}},
		{"no cloud-init", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", ubuntuTree(dpkgStatus(40, 40, "", ""), ""))
		}, "UBUNTU_22_64", slsim.ReasonNoCloudInit, "", []string{"/var/lib/dpkg/status", "0.7.7"}},
		{"cloud-init removed, its configuration kept", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", ubuntuTree(dpkgStatus(40, 40, "deinstall ok config-files", "22.4.2-0ubuntu0~22.04.1"), ubuntuCloudCfg))
		}, "UBUNTU_22_64", slsim.ReasonNoCloudInit, "", nil},
		{"cloud-init 0.7.5", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", ubuntuTree(dpkgStatus(3, 3, "install ok installed", "0.7.5-0ubuntu1.23"), ubuntuCloudCfg))
		}, "UBUNTU_22_64", slsim.ReasonCloudInitTooOld, "", []string{"0.7.5-0ubuntu1.23"}},
		{"ConfigDrive excluded by cloud.cfg.d", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", ubuntuTree(status, ubuntuCloudCfg,
				imagetest.File("etc/cloud/cloud.cfg.d/90_dpkg.cfg", "# to update this file, run dpkg-reconfigure cloud-init\ndatasource_list: [ NoCloud, ConfigDrive, None ]\n"),
				imagetest.File("etc/cloud/cloud.cfg.d/99-ec2-only.cfg", "datasource_list: [ Ec2, None ]\n")))
		}, "UBUNTU_22_64", slsim.ReasonNoConfigDrive, "", []string{"[Ec2, None]", "/etc/cloud/cloud.cfg.d/99-ec2-only.cfg"}},
		{"no partition table (a file system image)", func(t *testing.T) []byte {
			return readFile(t, imagetest.Ext4(t, imagetest.WriteTree(t, ubuntuTree(status, ubuntuCloudCfg)), 24<<20, "cloudimg-rootfs"))
		}, "UBUNTU_22_64", slsim.ReasonNoPartitionTable, "", []string{"after decryption"}},
		{"a partition with no file system", func(*testing.T) []byte { return tableOnlyDisk(8 << 20) },
			"UBUNTU_22_64", slsim.ReasonNoRootFS, "", []string{"partition 1: no file system the simulator recognises"}},
		{"ext4 without /etc (a data disk)", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", []imagetest.Entry{imagetest.File("data/report.csv", "a,b\n1,2\n")})
		}, "UBUNTU_22_64", slsim.ReasonNoRootFS, "", []string{"partition 1: ext4 without /etc"}},
		{"XFS root", func(t *testing.T) []byte { return diskOf(t, "dos", "xfs", ubuntuTree(status, ubuntuCloudCfg)) },
			"REDHAT_9_64", slsim.TemplateStatusActive, "not checked: ", []string{"partition 1 (XFS)"}},
		{"/var on another file system", func(t *testing.T) []byte {
			return diskOf(t, "dos", "ext4", ubuntuTree("", ubuntuCloudCfg,
				imagetest.File("etc/fstab", "LABEL=cloudimg-rootfs / ext4 defaults 0 1\nLABEL=var /var ext4 defaults 0 2\n")))
		}, "UBUNTU_22_64", slsim.TemplateStatusActive, "not checked: ", []string{"mounts /var"}},
		{"root on LVM", func(*testing.T) []byte {
			d := tableOnlyDisk(8 << 20)
			copy(d[1<<20+512:], "LABELONE")
			copy(d[1<<20+512+24:], "LVM2 001")
			return d
		}, "DEBIAN_12_64", slsim.TemplateStatusActive, "not checked: ", []string{"partition 1 (LVM2 physical volume)"}},
		{"Windows (NTFS signature)", func(*testing.T) []byte {
			d := tableOnlyDisk(8 << 20)
			copy(d[1<<20+3:], "NTFS    ")
			return d
		}, "WIN_2022-STD_64", slsim.TemplateStatusActive, "not checked: ", []string{"cloudbase-init"}},
	}
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	ids := make([]int, len(cases))
	for i, tc := range cases {
		ids[i] = w.importRaw(t, fmt.Sprintf("case-%d.vhd", i), tc.disk(t), tc.os)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := w.waitImport(t, ids[i])
			desc := deref(g.Status.Description)
			ti := w.templateInfo(t, ids[i])
			if tc.want == slsim.TemplateStatusActive {
				require.Equal(t, tc.want, *g.Status.KeyName, "reason: %s", desc)
				require.True(t, strings.HasPrefix(ti.ImageCheck, tc.check), "image check %q, want prefix %q", ti.ImageCheck, tc.check)
				for _, s := range tc.has {
					require.Contains(t, ti.ImageCheck, s)
				}
				t.Logf("image check: %s", ti.ImageCheck)
				return
			}
			require.Equal(t, slsim.TemplateStatusError, *g.Status.KeyName, "image check: %s", ti.ImageCheck)
			require.True(t, strings.HasPrefix(desc, tc.want+": "), "reason %q, want prefix %q", desc, tc.want)
			for _, s := range tc.has {
				require.Contains(t, desc, s)
			}
			require.Empty(t, ti.ImageCheck)
			t.Logf("reason: %s", desc)
		})
	}
}

// TestImageChecksReadLittle imports an Ubuntu-like disk whose dpkg status
// file is several MiB (thousands of packages after cloud-init, as dpkg
// keeps them in name order) and counts what the checks read: they stop at
// cloud-init's record, so they read less than that one file, and the COS
// stand-in served what the checks counted plus the VHD's metadata.
func TestImageChecksReadLittle(t *testing.T) {
	t.Parallel()
	status := dpkgStatus(60, 4000, "install ok installed", "23.4.4-0ubuntu0~22.04.1")
	tree := ubuntuTree(status, ubuntuCloudCfg)
	raw := diskOf(t, "dos", "ext4", tree)
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	id := w.importRaw(t, "big-status.vhd", raw, "UBUNTU_22_64")
	g := w.waitImport(t, id)
	require.Equal(t, slsim.TemplateStatusActive, *g.Status.KeyName, deref(g.Status.Description))
	ti := w.templateInfo(t, id)
	require.True(t, strings.HasPrefix(ti.ImageCheck, "checked: "), ti.ImageCheck)
	served := w.s3.served.Load()
	t.Logf("the checks read %d bytes of a %d-byte disk whose dpkg status file is %d bytes; COS served %d bytes",
		ti.ImageCheckRead, len(raw), len(status), served)
	require.Positive(t, ti.ImageCheckRead)
	require.Less(t, ti.ImageCheckRead, int64(len(status)), "the checks read the whole status file")
	require.GreaterOrEqual(t, served, ti.ImageCheckRead, "COS served less than the checks counted")
	require.Less(t, served, ti.ImageCheckRead+256<<10, "COS served much more than the checks counted")
	require.Zero(t, w.s3.fullReads.Load(), "the image must be read with ranged GETs")
}
