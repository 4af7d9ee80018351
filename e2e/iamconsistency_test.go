package e2e_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/secret"
)

// iamDelay is how long (simulated) the simulator's IAM takes to make a new
// access policy effective in these tests: an hour is 1.8 s of real time
// at the worlds' clock speed.
const iamDelay = time.Hour

// preparedPlan is a plan that creates the import service ID, its key and
// its policies in the same run, as a first run with Prepare does.
func preparedPlan(t *testing.T, w *world) e2e.Plan {
	plan := w.plan(t, sample(t, 8<<20))
	plan.IAM, plan.Prepare = w.clients.IAM, true
	plan.ServiceID = iam.ServiceIDSpec{Name: "e2e-iam-delay"}
	plan.COSInstanceID = w.sim.Account.COSInstanceCRN
	plan.ImportAPIKey = nil
	plan.SaveAPIKey = func(context.Context, iam.ServiceID, string, *secret.String) error { return nil }
	return plan
}

// A service ID made in the same run is refused until IAM makes its
// policies effective: Run proves the import key (IAM token, root key, COS
// object) and imports only once it works, so the first import succeeds.
func TestRunWaitsUntilTheImportKeyWorks(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 31, SeedAuthorizations: true, PolicyDelay: iamDelay})
	var proofs, refused atomic.Int64
	plan := preparedPlan(t, w)
	plan.ImportKeyWait = 20 * time.Second
	plan.ProveImportKey = func(ctx context.Context, key *secret.String, bucket, object string) error {
		proofs.Add(1)
		err := w.clients.ProveImportKey(ctx, key, bucket, object)
		if errors.Is(err, e2e.ErrImportKeyRefused) {
			refused.Add(1)
		}
		return err
	}
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Positive(t, refused.Load(), "the new key was never refused: the simulator's IAM delay did not apply")
	require.Equal(t, refused.Load()+1, proofs.Load(), "one successful proof after the refusals")
	require.Len(t, w.templates(), 1, "one import, sent once the key worked")
	require.Empty(t, res.Template.Failed)
}

// Without the proof the same run imports at once and the backplane is
// refused access: what users of the real cloud met after Prepare.
func TestRunWithoutProofFailsOnIAMDelay(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 32, SeedAuthorizations: true, PolicyDelay: iamDelay})
	plan := preparedPlan(t, w)
	_, err := e2e.Run(ctxFor(t), plan)
	require.Error(t, err)
	require.Contains(t, err.Error(), "no access")
}

// A key that proves fine but whose import is still refused access is
// imported again within the run, without uploading again.
func TestRunImportsAgainAfterAnAccessFailure(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 33, SeedAuthorizations: true, PolicyDelay: iamDelay})
	plan := preparedPlan(t, w)
	plan.ImportKeyWait = 20 * time.Second
	plan.ProveImportKey = func(context.Context, *secret.String, string, string) error { return nil } // proves nothing
	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.NotEmpty(t, res.Template.Failed, "the first import was not refused: the test proves nothing")
	require.Len(t, w.templates(), len(res.Template.Failed)+1)
	require.Equal(t, 1, w.creates(), "one multipart upload: the import was sent again, the image was not")
}

// A refusal that outlasts ImportKeyWait ends the run before any import.
func TestRunGivesUpWhenTheImportKeyStaysRefused(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 34, SeedAuthorizations: true})
	plan := w.plan(t, sample(t, 8<<20))
	plan.ImportKeyWait = 200 * time.Millisecond
	var proofs atomic.Int64
	plan.ProveImportKey = func(context.Context, *secret.String, string, string) error {
		proofs.Add(1)
		return errors.Join(e2e.ErrImportKeyRefused, errors.New("simulated refusal"))
	}
	_, err := e2e.Run(ctxFor(t), plan)
	require.ErrorIs(t, err, e2e.ErrImportKeyRefused)
	require.Greater(t, proofs.Load(), int64(1), "retried before giving up")
	require.Empty(t, w.templates(), "no import after the key was refused")
}
