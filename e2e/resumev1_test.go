package e2e_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// A run resumes from the version 1 state files of testdata/state-v1 written
// before the key step (after the IAM preparation, after preflight), against
// a simulator account like the one they were captured on (seed 7: the same
// key CRN, bucket and names), and finishes. The later files hold a DEK
// wrapped by that simulator's root key, whose material is random, so a new
// simulator cannot unwrap it; TestStateV1FilesStillLoad reads them.
func TestRunResumesVersion1StateFiles(t *testing.T) {
	for _, name := range []string{"1-prepared.json", "2-preflight-done.json"} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, cloudsim.Options{Seed: 7})
			plan := w.plan(t, sample(t, 8<<20))
			plan.IAM, plan.Prepare = w.clients.IAM, true
			plan.ServiceID = iam.ServiceIDSpec{Name: "e2e-run-test-import"}
			plan.COSInstanceID = w.sim.Account.COSInstanceCRN
			plan.ImportAPIKey = nil
			plan.SaveAPIKey = func(context.Context, iam.ServiceID, string, *secret.String) error { return nil }
			b, err := os.ReadFile(filepath.Join("testdata/state-v1", name))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(plan.StatePath, b, 0o600))
			res, err := e2e.Run(ctxFor(t), plan)
			require.NoError(t, err)
			require.True(t, res.Resumed)
			require.NotZero(t, res.Template.ID)
			st, err := e2e.LoadState(plan.StatePath)
			require.NoError(t, err)
			require.True(t, st.TemplateActive)
		})
	}
}

// A state file holding a 64-byte DEK (made with Plan.DEKSize AES256XTS)
// resumes with it under a plan that asks for the default 32-byte one: the
// DEK of a run never changes between its attempts.
func TestRunResumesWithTheDEKOfItsState(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 8, SeedAuthorizations: true})
	img := sample(t, 8<<20)
	plan := w.plan(t, img)
	plan.DEKSize = vhdcrypt.AES256XTS
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	plan.OnStep = func(s e2e.Step) { // stop once the key step is done
		if s.Name == e2e.StepUpload {
			cancel()
		}
	}
	_, err := e2e.Run(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	plan.OnStep = nil
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.Equal(t, vhdcrypt.AES256XTS, st.DEKSize)

	plan.DEKSize = 0 // the default, 32 bytes
	plan.Image = bytes.NewReader(img)
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, vhdcrypt.AES256XTS, res.Key.DEKSize)
	require.Equal(t, e2e.DEKLocal, res.Key.DEKSource)
	require.Equal(t, e2e.StepResumed, res.Steps[2].Status, "the key step: %+v", res.Steps[2])
}
