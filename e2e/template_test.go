package e2e_test

// The flow from an existing image template (Plan.SourceTemplate) on the
// local cloud simulator: export, stream encryption from COS to COS,
// import, order, and the plaintext export's removal.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// templatePlan is a plan from the sample template, without a name: the
// name, note and OS code come from the template.
func (w *world) templatePlan(t *testing.T, source string) e2e.Plan {
	p := w.plan(t, nil)
	p.Image, p.Name, p.Note, p.OSCode = nil, "", "", ""
	p.SourceTemplate = source
	return p
}

// exportLeft lists the bucket's objects named like the plan's export.
func (w *world) exportLeft(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	objs, err := w.clients.COS.List(ctx, w.sim.Account.Bucket, prefix)
	require.NoError(t, err)
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func TestRunFromTemplate(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 31, SeedAuthorizations: true})
	ctx := ctxFor(t)
	exports := w.sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceSoftLayer, Method: "POST", PathContains: "copyToIcos", Kind: faults.Latency})

	var log stepLog
	var doctorSize atomic.Int64
	var doctorHead []byte
	plan := w.templatePlan(t, cloudsim.SampleTemplate)
	plan.OnStep = log.add
	plan.Server = &classic.ServerSpec{Hostname: "from-template", Domain: "example.com", CPUs: 1, MemoryMB: 2048}
	plan.Doctor = func(_ context.Context, img io.ReaderAt, size int64) error {
		doctorSize.Store(size)
		doctorHead = make([]byte, 8)
		_, err := img.ReadAt(doctorHead, 0)
		return err
	}
	res, err := e2e.Run(ctx, plan)
	require.NoError(t, err)

	for _, name := range []e2e.StepName{e2e.StepPreflight, e2e.StepKey, e2e.StepExport, e2e.StepUpload, e2e.StepImport,
		e2e.StepWaitTemplate, e2e.StepCleanup, e2e.StepOrder, e2e.StepWaitServer} {
		require.Equal(t, e2e.StepDone, log.status()[name], "step %s", name)
	}
	require.Equal(t, 1, w.sim.Faults.Hits(exports), "one export")

	// Name, note and OS code come from the source template.
	require.Equal(t, cloudsim.SampleTemplate+e2e.SourceNameSuffix, res.Name)
	var tmpl *slsim.TemplateInfo
	for _, ti := range w.templates() {
		if ti.ID == res.Template.ID {
			tmpl = &ti
		}
	}
	require.NotNil(t, tmpl)
	require.True(t, tmpl.Encrypted)
	require.Equal(t, cloudsim.SampleTemplateOS, tmpl.OSReferenceCode)
	require.NotNil(t, res.Server)
	require.False(t, res.Server.ProvisionDate.IsZero(), "the server is provisioned")

	// The doctor hook saw the exported boot disk: a VHD of the export's size.
	require.Equal(t, "conectix", string(doctorHead))
	require.NotNil(t, res.Export)
	require.Len(t, res.Export.Objects, 1)
	boot := res.Export.Objects[0]
	require.Equal(t, boot.Size, doctorSize.Load())
	require.Equal(t, cloudsim.SampleTemplate+e2e.SourceNameSuffix+".export-0.vhd", boot.Key)

	// The encrypted object decrypts to the exported disk.
	raw := w.decrypt(t, ctx, res, w.download(t, ctx, res.Object.Key))
	want, err := sampleimage.Build(cloudsim.SampleImage)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, raw), "the encrypted object decrypts to the exported disk")

	// The export was read once (plus the metadata pages), and deleted.
	require.LessOrEqual(t, res.Export.ReadBytes, boot.Size+256<<10, "the export was not read twice")
	require.Greater(t, res.Export.ReadRequests, int64(1), "ranged GETs")
	require.True(t, res.Export.Objects[0].Deleted)
	require.Empty(t, res.Export.Left())
	require.Empty(t, w.exportLeft(t, ctx, res.Name+".export"), "no plaintext object is left")
	require.Contains(t, res.String(), "deleted")

	// The simulator's bucket has no Key Protect encryption: a warning.
	require.NotEmpty(t, res.Warnings)
	require.Contains(t, res.Warnings[0], "not encrypted with a Key Protect or HPCS root key")

	// A second run with the same state resumes everything.
	res2, err := e2e.Run(ctx, plan)
	require.NoError(t, err)
	require.True(t, res2.Resumed)
	require.Equal(t, 1, w.sim.Faults.Hits(exports), "no second export")
	require.Equal(t, res.Template.ID, res2.Template.ID)
}

func TestRunFromTemplateKeepsAndCleansUp(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 32, SeedAuthorizations: true})
	ctx := ctxFor(t)
	raw0, err := sampleimage.Build(sampleimage.Options{Size: 8 << 20, Seed: 3})
	require.NoError(t, err)
	vhd0, err := cloudsim.DynamicVHD(raw0)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{7}, 1<<20)
	_, err = w.sim.SoftLayer.SeedTemplate(w.sim.Account.AccountID, slsim.SeedSpec{
		Name: "two-disks", OSCode: "UBUNTU_22_64",
		Disks: []slsim.SeedDisk{{Export: vhd0, VirtualSize: int64(len(raw0))}, {Export: data, VirtualSize: int64(len(data))}},
	})
	require.NoError(t, err)

	// A run stopped after the export: the boot disk's object is left,
	// recorded in the state file; the second disk's is deleted at once.
	plan := w.templatePlan(t, "two-disks")
	stopCtx, stop := context.WithCancel(ctx)
	var exportDetail string
	plan.OnStep = func(s e2e.Step) {
		if s.Name == e2e.StepExport && s.Status == e2e.StepDone {
			exportDetail = s.Detail
			stop()
		}
	}
	_, err = e2e.Run(stopCtx, plan)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, exportDetail, "1 more disk(s) not imported")
	require.Contains(t, exportDetail, "deleted: two-disks-encrypted.export-1.vhd")
	require.Equal(t, []string{"two-disks-encrypted.export-0.vhd"}, w.exportLeft(t, ctx, "two-disks-encrypted.export"))
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.True(t, st.ExportDone)
	require.Len(t, st.Exported, 2)

	// The explicit cleanup removes it and the state forgets the export.
	cres, err := e2e.Cleanup(ctx, e2e.Plan{COS: w.clients.COS, Bucket: w.sim.Account.Bucket, StatePath: plan.StatePath, Classic: w.clients.Classic})
	require.NoError(t, err)
	require.Equal(t, []string{"two-disks-encrypted.export-0.vhd"}, cres.Deleted)
	require.Empty(t, w.exportLeft(t, ctx, "two-disks-encrypted.export"))

	// The next run exports again and, with KeepExport, leaves the export.
	plan.OnStep = nil
	plan.KeepExport = true
	res, err := e2e.Run(ctx, plan)
	require.NoError(t, err)
	require.True(t, res.Export.Kept)
	require.ElementsMatch(t, []string{"two-disks-encrypted.export-0.vhd", "two-disks-encrypted.export-1.vhd"}, res.Export.Left())
	require.ElementsMatch(t, res.Export.Left(), w.exportLeft(t, ctx, "two-disks-encrypted.export"))
	raw := w.decrypt(t, ctx, res, w.download(t, ctx, res.Object.Key))
	require.True(t, bytes.Equal(raw0, raw), "the boot disk is what was encrypted")
	cres, err = e2e.Cleanup(ctx, e2e.Plan{COS: w.clients.COS, Bucket: w.sim.Account.Bucket, StatePath: plan.StatePath})
	require.NoError(t, err)
	require.Len(t, cres.Deleted, 2)
	require.Empty(t, w.exportLeft(t, ctx, "two-disks-encrypted.export"))
}

func TestRunFromTemplateResumesUpload(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 33, SeedAuthorizations: true})
	ctx := ctxFor(t)
	// A 24 MiB sample disk whose blocks after the first are all allocated:
	// five parts of 5 MiB.
	raw0, err := sampleimage.Build(sampleimage.Options{Size: 24 << 20, Seed: 8})
	require.NoError(t, err)
	copy(raw0[2<<20:], bytes.Repeat([]byte("full disk "), 22<<20/10+1)[:22<<20])
	vhd0, err := cloudsim.DynamicVHD(raw0)
	require.NoError(t, err)
	_, err = w.sim.SoftLayer.SeedTemplate(w.sim.Account.AccountID, slsim.SeedSpec{
		Name: "full", OSCode: "UBUNTU_22_64", Disks: []slsim.SeedDisk{{Export: vhd0, VirtualSize: int64(len(raw0))}},
	})
	require.NoError(t, err)
	exports := w.sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceSoftLayer, Method: "POST", PathContains: "copyToIcos", Kind: faults.Latency})
	plan := w.templatePlan(t, "full")
	plan.Concurrency = 1
	stopCtx, stop := context.WithCancel(ctx)
	plan.OnProgress = func(p vhdcrypt.Progress) {
		if p.Phase == e2e.PhaseUpload && p.Done >= 2*plan.PartSize {
			stop()
		}
	}
	_, err = e2e.Run(stopCtx, plan)
	require.ErrorIs(t, err, context.Canceled)
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.NotNil(t, st.Upload, "the multipart upload is recorded")
	require.NotEmpty(t, st.WrappedDEK)
	require.True(t, st.ExportDone)

	puts := w.puts()
	plan.OnProgress = nil
	res, err := e2e.Run(ctx, plan)
	require.NoError(t, err)
	require.Equal(t, 1, w.sim.Faults.Hits(exports), "the export is not repeated")
	require.Positive(t, res.Object.PartsSkipped, "parts of the first attempt are kept")
	require.Equal(t, res.Object.Parts-res.Object.PartsSkipped, w.puts()-puts, "only the missing parts are sent")
	raw := w.decrypt(t, ctx, res, w.download(t, ctx, res.Object.Key))
	require.True(t, bytes.Equal(raw0, raw))
	require.Empty(t, w.exportLeft(t, ctx, res.Name+".export"))
}

func TestRunFromTemplateRefusals(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 34, SeedAuthorizations: true})
	ctx := ctxFor(t)
	_, err := w.sim.SoftLayer.SeedTemplate(w.sim.Account.AccountID, slsim.SeedSpec{
		Name: "already-encrypted", OSCode: "UBUNTU_22_64", Encrypted: true,
		Disks: []slsim.SeedDisk{{Export: []byte("x"), VirtualSize: 1 << 20}},
	})
	require.NoError(t, err)
	exports := w.sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceSoftLayer, Method: "POST", PathContains: "copyToIcos", Kind: faults.Latency})

	_, err = e2e.Run(ctx, w.templatePlan(t, "already-encrypted"))
	var pe *e2e.PreflightError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, e2e.ErrSourceTemplate)

	_, err = e2e.Run(ctx, w.templatePlan(t, "no-such-template"))
	require.ErrorIs(t, err, e2e.ErrSourceTemplate)
	require.ErrorIs(t, err, classic.ErrNotFound)

	p := w.templatePlan(t, cloudsim.SampleTemplate)
	p.Image = bytes.NewReader([]byte("image"))
	_, err = e2e.Run(ctx, p)
	require.ErrorIs(t, err, e2e.ErrPlan)

	// The doctor's refusal stops the run before anything is uploaded.
	p = w.templatePlan(t, cloudsim.SampleTemplate)
	refused := errors.New("the doctor refuses")
	p.Doctor = func(context.Context, io.ReaderAt, int64) error { return refused }
	res, err := e2e.Run(ctx, p)
	require.ErrorIs(t, err, refused)
	require.Nil(t, res.Object)
	st, err := e2e.LoadState(p.StatePath)
	require.NoError(t, err)
	require.Nil(t, st.Upload, "no upload started")
	require.Zero(t, st.ImageSize, "nothing was encrypted")
	require.Equal(t, 1, w.sim.Faults.Hits(exports))
	require.True(t, strings.HasSuffix(res.Export.Objects[0].Key, ".export-0.vhd"))
	require.Len(t, res.Export.Left(), 1, "the export stays recorded for the next run or Cleanup")
}
