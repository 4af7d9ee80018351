package e2e_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/secret"
)

// keysOf counts the API keys of the service ID called name with IAM's list
// API (0 when there is no such service ID).
func keysOf(t *testing.T, w *world, name string) int {
	t.Helper()
	sid, err := w.clients.IAM.FindServiceID(ctxFor(t), name)
	require.NoError(t, err)
	if sid == nil {
		return 0
	}
	keys, err := w.clients.IAM.APIKeys(ctxFor(t), sid.IAMID)
	require.NoError(t, err)
	return len(keys)
}

// A key the run creates and nobody saves is the run's: its id (never its
// value) is in the state; a resumed attempt, which no longer has the
// value, deletes it before making a replacement; the replacement is
// deleted once the import is done. A key that cannot be saved is deleted
// before the error is reported.
func TestRunOwnedAPIKeysNeverPileUp(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 43})
	const sidName = "run-owned-key-import"
	plan := w.plan(t, sample(t, 8<<20))
	plan.IAM, plan.Prepare = w.clients.IAM, true
	plan.ServiceID = iam.ServiceIDSpec{Name: sidName}
	plan.COSInstanceID = w.sim.Account.COSInstanceCRN
	plan.ImportAPIKey = nil
	before := keysOf(t, w, sidName)

	// The first attempt stops after the preparation made its key.
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	plan.OnStep = func(s e2e.Step) {
		if s.Name == e2e.StepKey {
			cancel()
		}
	}
	_, err := e2e.Run(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	st, err := e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	first := st.RunAPIKeyID
	require.NotEmpty(t, first, "the run's key is recorded by id")
	require.Equal(t, 1, keysOf(t, w, sidName))

	// The resumed attempt deletes it, makes one, imports, deletes that.
	plan.OnStep = nil
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.NotZero(t, res.Template.ID)
	st, err = e2e.LoadState(plan.StatePath)
	require.NoError(t, err)
	require.Empty(t, st.RunAPIKeyID)
	after := keysOf(t, w, sidName)

	// A new key that cannot be saved is deleted before the error.
	other := w.plan(t, sample(t, 8<<20))
	other.Name, other.Object = "unsaved-key", ""
	other.IAM, other.Prepare, other.ServiceID, other.COSInstanceID, other.ImportAPIKey = w.clients.IAM, true, plan.ServiceID, plan.COSInstanceID, nil
	errDisk := errors.New("disk full")
	other.SaveAPIKey = func(context.Context, iam.ServiceID, string, *secret.String) error { return errDisk }
	_, err = e2e.Run(ctxFor(t), other)
	require.ErrorIs(t, err, errDisk)
	require.Contains(t, err.Error(), "the key was deleted")
	last := keysOf(t, w, sidName)
	t.Logf("API keys of service ID %s: %d before, 1 after the interrupted attempt, %d after the resumed run, %d after a failed save",
		sidName, before, after, last)
	require.Zero(t, after, "the resumed run's keys are all deleted")
	require.Zero(t, last, "a key that could not be saved is deleted")
}
