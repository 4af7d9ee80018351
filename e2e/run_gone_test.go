package e2e_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
)

// TestRunResumesUploadCompletedBeforeKill: the process completed the
// multipart upload and was killed before it could record that, so the
// state file still names the upload, which no longer exists. The re-run
// recognises the object as this image (Resume compares the multipart ETag
// of the re-encrypted bytes) and sends nothing again.
func TestRunResumesUploadCompletedBeforeKill(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 31, SeedAuthorizations: true})
	img := sample(t, 24<<20)
	plan := w.plan(t, img)

	// Keep the state file as it was on disk while the last part was being
	// acknowledged; end the run once the upload step is done.
	ctx, cancel := context.WithCancel(ctxFor(t))
	var onDisk []byte
	plan.OnProgress = func(p vhdcrypt.Progress) {
		if p.Phase != e2e.PhaseUpload {
			return
		}
		if st, err := e2e.LoadState(plan.StatePath); err == nil && st.Upload != nil && st.Uploaded == nil {
			onDisk, _ = os.ReadFile(plan.StatePath)
		}
	}
	plan.OnStep = func(s e2e.Step) {
		if s.Name == e2e.StepUpload && s.Status == e2e.StepDone {
			cancel()
		}
	}
	_, err := e2e.Run(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, onDisk)
	require.NoError(t, os.WriteFile(plan.StatePath, onDisk, 0o600))
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.NotNil(t, st.Upload, "the state names the upload, as a kill before recording its completion leaves it")
	puts, creates := w.puts(), w.creates()

	var log stepLog
	plan.OnStep, plan.OnProgress = log.add, nil
	plan.Image = bytes.NewReader(img)
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, e2e.StepDone, log.status()[e2e.StepUpload])
	require.Equal(t, puts, w.puts(), "no object data was sent again")
	require.Equal(t, creates, w.creates(), "no multipart upload was started again")
	require.Zero(t, res.Object.PartsSent)
	require.Equal(t, res.Object.Parts, res.Object.PartsSkipped)
	require.Len(t, w.templates(), 1)
	require.True(t, bytes.Equal(img, w.decrypt(t, ctxFor(t), res, w.download(t, ctxFor(t), res.Object.Key))))
}

// TestRunRestartsAnAbortedUpload: the upload the state file names was
// aborted (by a lifecycle rule, or by hand) and there is no object. The
// run starts a new upload from the same bytes at once instead of asking to
// be run again.
func TestRunRestartsAnAbortedUpload(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 32, SeedAuthorizations: true})
	img := sample(t, 32<<20)
	plan := w.plan(t, img)
	plan.Concurrency = 1

	st, _ := interruptUpload(t, plan)
	require.NoError(t, w.clients.COS.Abort(ctxFor(t), st.Upload.Bucket, st.Upload.Key, st.Upload.UploadID))

	plan.OnProgress = nil
	plan.Image = bytes.NewReader(img)
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.NotEqual(t, st.Upload.UploadID, res.Object.UploadID)
	require.Equal(t, 2, w.creates())
	require.Zero(t, w.sim.S3.PendingUploads(w.sim.Account.Bucket))
	require.True(t, bytes.Equal(img, w.decrypt(t, ctxFor(t), res, w.download(t, ctxFor(t), res.Object.Key))))
}
