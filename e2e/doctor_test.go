package e2e_test

// The image doctor in Run's preflight: an image that fails it, or an OS
// reference code that contradicts it, stops the run before anything is
// uploaded or imported; an empty OS code takes the doctor's suggestion.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/imagetest"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// ubuntuDisk is a whole Ubuntu-like disk, written by mkfs.ext4 -d and
// sfdisk: an MBR, one ext4 root with the os-release of Ubuntu version, a
// kernel and the Xen block driver's module, an x86-64 ELF header at
// /usr/bin/true, an fstab and, when cloudInit is set, cloud-init's dpkg
// record and configuration (the ConfigDrive data source listed).
func ubuntuDisk(t *testing.T, version string, cloudInit bool) string {
	t.Helper()
	const kernel = "5.15.0-91-generic"
	elf := make([]byte, 64)
	copy(elf, "\x7fELF\x02\x01\x01") // 64-bit, little-endian, version 1
	elf[18] = 62                     // e_machine: x86-64
	entries := []imagetest.Entry{
		imagetest.File("usr/lib/os-release", "NAME=\"Ubuntu\"\nVERSION_ID=\""+version+"\"\nID=ubuntu\nPRETTY_NAME=\"Ubuntu "+version+" LTS\"\n"),
		imagetest.Link("etc/os-release", "../usr/lib/os-release"),
		imagetest.Link("lib", "usr/lib"),
		imagetest.File("etc/fstab", "LABEL=root / ext4 defaults 0 1\n"),
		imagetest.File("boot/vmlinuz-"+kernel, "a kernel\n"),
		imagetest.File("usr/lib/modules/"+kernel+"/kernel/drivers/block/xen-blkfront.ko", "a module\n"),
		imagetest.File("usr/bin/true", string(elf)),
	}
	if cloudInit {
		entries = append(entries,
			imagetest.File("var/lib/dpkg/status", "Package: cloud-init\nStatus: install ok installed\nVersion: 23.4.4-0ubuntu0~"+version+".1\n\n"),
			imagetest.File("etc/cloud/cloud.cfg", "datasource_list: [ ConfigDrive, None ]\n"))
	}
	fs := imagetest.Ext4(t, imagetest.WriteTree(t, entries), 12<<20, "root")
	return imagetest.Disk(t, "dos", 16<<20, imagetest.Part{Type: "L", Image: fs, Bootable: true})
}

// bareExt4 is an ext4 file system image with no partition table around it.
func bareExt4(t *testing.T) string {
	t.Helper()
	tree := imagetest.WriteTree(t, []imagetest.Entry{imagetest.File("etc/hostname", "bare\n")})
	return imagetest.Ext4(t, tree, 8<<20, "bare")
}

// sampleFile writes the sample disk to a file and returns its path.
func sampleFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sample.raw")
	require.NoError(t, sampleimage.WriteFile(p, sampleimage.Options{Size: sampleimage.MinSize, Seed: 5}))
	return p
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRunRefusesWhatTheDoctorRefuses(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 40, SeedAuthorizations: true})
	sample := sampleFile(t)
	for _, c := range []struct {
		name   string
		image  func(*testing.T) string
		osCode string
		want   error
		check  func(t *testing.T, err error)
	}{
		{"no cloud-init", func(t *testing.T) string { return ubuntuDisk(t, "22.04", false) }, "", e2e.ErrImageNotImportable, func(t *testing.T, err error) {
			var ie *e2e.ImageError
			require.ErrorAs(t, err, &ie)
			f, ok := ie.Report.Finding(doctor.CheckCloudInit)
			require.True(t, ok)
			require.Equal(t, doctor.Fail, f.Verdict, ie.Report.String())
			require.Equal(t, "UBUNTU_22_64", ie.Report.OSCode(), "the system was identified")
		}},
		{"raw disk without a partition table", func(t *testing.T) string { return bareExt4(t) }, "UBUNTU_22_64", disk.ErrNoPartitionTable, nil},
		{"qcow2 without a partition table", func(t *testing.T) string { return imagetest.Convert(t, bareExt4(t), "qcow2") }, "UBUNTU_22_64", disk.ErrNoPartitionTable, nil},
		{"VHDX", func(t *testing.T) string { return imagetest.Convert(t, sample, "vhdx") }, "UBUNTU_22_64", disk.ErrUnsupportedFormat, nil},
		{"OS code of another system", func(t *testing.T) string { return sample }, "DEBIAN_12_64", doctor.ErrOSCodeMismatch, func(t *testing.T, err error) {
			var me *doctor.OSCodeMismatchError
			require.ErrorAs(t, err, &me)
			require.Equal(t, "UBUNTU_22_64", me.Detected)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := w.plan(t, nil)
			plan.Image, plan.OSCode = openFile(t, c.image(t)), c.osCode
			var log stepLog
			plan.OnStep = log.add
			res, err := e2e.Run(ctxFor(t), plan)
			require.ErrorIs(t, err, c.want)
			var pe *e2e.PreflightError
			require.ErrorAs(t, err, &pe)
			if c.check != nil {
				c.check(t, err)
			}
			img, ok := pe.Report.Result("image")
			require.True(t, ok)
			require.False(t, img.OK)
			require.NotEmpty(t, img.Fix)
			t.Logf("image check: %s (fix: %s)", img.Detail, img.Fix)
			require.Equal(t, e2e.StepFailed, log.status()[e2e.StepPreflight])
			require.NotContains(t, log.status(), e2e.StepKey)
			require.NotContains(t, log.status(), e2e.StepUpload)
			require.Len(t, res.Steps, 2)
		})
	}
	require.Zero(t, w.puts(), "no object data was sent")
	require.Zero(t, w.creates(), "no multipart upload was started")
	require.Zero(t, w.sim.S3.PendingUploads(w.sim.Account.Bucket))
	require.Empty(t, w.templates(), "nothing was imported")
}

// TestRunTakesTheDoctorsOSCode: with no OS code in the plan, a qcow2 image
// of an Ubuntu 22.04 disk is imported as UBUNTU_22_64, the code its
// os-release maps to, which the state file keeps; the object decrypts to
// the disk qemu-img reads from the qcow2 image.
func TestRunTakesTheDoctorsOSCode(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 41, SeedAuthorizations: true})
	raw := sampleFile(t)
	q := imagetest.Convert(t, raw, "qcow2", "-c")
	plan := w.plan(t, nil)
	plan.Image, plan.OSCode = openFile(t, q), ""
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)

	tmpl := w.templates()
	require.Len(t, tmpl, 1)
	require.Equal(t, sampleimage.OSCode, tmpl[0].OSReferenceCode)
	require.Equal(t, slsim.TemplateStatusActive, tmpl[0].Status)
	img, ok := preflightCheck(res, "image")
	require.True(t, ok)
	require.Contains(t, img.Detail, "qcow2")
	require.Contains(t, img.Detail, sampleimage.OSCode+" (from the image)")
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.Equal(t, sampleimage.OSCode, st.OSCode)

	want, err := os.ReadFile(raw)
	require.NoError(t, err)
	got := w.decrypt(t, ctxFor(t), res, w.download(t, ctxFor(t), res.Object.Key))
	require.True(t, bytes.Equal(want, got), "the imported disk is not the qcow2 image's")
}

func preflightCheck(res *e2e.Result, name string) (e2e.PreflightCheck, bool) {
	for _, c := range res.Preflight {
		if c.Name == name {
			return c, true
		}
	}
	return e2e.PreflightCheck{}, false
}

// TestRunNeedsAnOSCodeTheDoctorCannotGive: a stream is refused as a plan
// error before any request; a Windows (NTFS) disk, which the doctor does
// not read, fails the preflight with ErrNoOSCode; both without a PUT.
func TestRunNeedsAnOSCodeTheDoctorCannotGive(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 42, SeedAuthorizations: true})
	img := sample(t, sampleimage.MinSize)

	plan := w.plan(t, nil)
	plan.Image, plan.OSCode = struct{ io.Reader }{bytes.NewReader(img)}, ""
	_, err := e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, e2e.ErrPlan)
	require.Contains(t, err.Error(), "OSCode")

	ntfs := imagetest.Disk(t, "dos", 16<<20, imagetest.Part{Type: "7", Head: append([]byte{0xEB, 0x52, 0x90}, "NTFS    "...)})
	plan = w.plan(t, nil)
	plan.Image, plan.OSCode = openFile(t, ntfs), ""
	_, err = e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, e2e.ErrNoOSCode)
	var pe *e2e.PreflightError
	require.ErrorAs(t, err, &pe)
	c, ok := pe.Report.Result("image")
	require.True(t, ok)
	require.False(t, c.OK)
	require.True(t, strings.Contains(c.Fix, "OSCode"), c.Fix)
	require.False(t, errors.Is(err, e2e.ErrImageNotImportable), "nothing failed: the doctor could not look")

	require.Zero(t, w.puts())
	require.Zero(t, w.creates())
	require.Empty(t, w.templates())
}

// TestPreflightAnyOSCode: a system the doctor finds but IBM does not list
// (Ubuntu 18.04) fails the image check, unless the plan accepts any OS
// code, as it then does for the code itself.
func TestPreflightAnyOSCode(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 43, SeedAuthorizations: true})
	img := ubuntuDisk(t, "18.04", true)
	for _, anyOS := range []bool{false, true} {
		plan := w.plan(t, nil)
		plan.Image, plan.OSCode, plan.AnyOSCode = openFile(t, img), "", anyOS
		rep, err := e2e.Preflight(ctxFor(t), plan)
		require.NoError(t, err)
		c, ok := rep.Result("image")
		require.True(t, ok)
		if !anyOS {
			require.False(t, c.OK)
			require.ErrorIs(t, c.Err, e2e.ErrImageNotImportable)
			require.Contains(t, c.Detail, doctor.CheckOSSupported)
			continue
		}
		require.True(t, c.OK, "%s: %s", c.Detail, c.Fix)
		require.Contains(t, c.Detail, "UBUNTU_18_64 (from the image)")
	}
	require.Zero(t, w.puts())
}
