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

// noCloudInitDisk is a whole Ubuntu 22.04-like disk (MBR, one ext4 root
// with os-release, a kernel, the Xen block driver and an fstab) without
// cloud-init, written by mkfs.ext4 -d and sfdisk.
func noCloudInitDisk(t *testing.T) string {
	t.Helper()
	const kernel = "5.15.0-91-generic"
	tree := imagetest.WriteTree(t, []imagetest.Entry{
		imagetest.File("usr/lib/os-release", "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n"),
		imagetest.Link("etc/os-release", "../usr/lib/os-release"),
		imagetest.File("etc/fstab", "LABEL=root / ext4 defaults 0 1\n"),
		imagetest.File("boot/vmlinuz-"+kernel, "a kernel\n"),
		imagetest.File("usr/lib/modules/"+kernel+"/kernel/drivers/block/xen-blkfront.ko", "a module\n"),
	})
	fs := imagetest.Ext4(t, tree, 12<<20, "root")
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
		image  func() string
		osCode string
		want   error
		check  func(t *testing.T, err error)
	}{
		{"no cloud-init", func() string { return noCloudInitDisk(t) }, "", e2e.ErrImageNotImportable, func(t *testing.T, err error) {
			var ie *e2e.ImageError
			require.ErrorAs(t, err, &ie)
			f, ok := ie.Report.Finding(doctor.CheckCloudInit)
			require.True(t, ok)
			require.Equal(t, doctor.Fail, f.Verdict, ie.Report.String())
			require.Equal(t, "UBUNTU_22_64", ie.Report.OSCode(), "the system was identified")
		}},
		{"raw disk without a partition table", func() string { return bareExt4(t) }, "UBUNTU_22_64", disk.ErrNoPartitionTable, nil},
		{"qcow2 without a partition table", func() string { return imagetest.Convert(t, bareExt4(t), "qcow2") }, "UBUNTU_22_64", disk.ErrNoPartitionTable, nil},
		{"VHDX", func() string { return imagetest.Convert(t, sample, "vhdx") }, "UBUNTU_22_64", disk.ErrUnsupportedFormat, nil},
		{"OS code of another system", func() string { return sample }, "DEBIAN_12_64", doctor.ErrOSCodeMismatch, func(t *testing.T, err error) {
			var me *doctor.OSCodeMismatchError
			require.ErrorAs(t, err, &me)
			require.Equal(t, "UBUNTU_22_64", me.Detected)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := w.plan(t, nil)
			plan.Image, plan.OSCode = openFile(t, c.image()), c.osCode
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
