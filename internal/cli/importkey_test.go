package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/secret"
)

// The tests start a simulator, whose data directory must be gone once it
// is closed.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m, testenv.NoStrayTemp(testenv.SimTempPattern)) }

// ImportKey's decisions that need no preparation to run: each refusal
// happens before anything is created, and what is allowed says why.
func TestImportKeyDecides(t *testing.T) {
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 71})
	ep, err := ibmcloud.LoadEndpoints(sim.Endpoints)
	require.NoError(t, err)
	cl, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(sim.Account.APIKey), RootKeyCRN: sim.Account.RootKeyCRN, Endpoints: ep})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	dir := t.TempDir()
	newFile := filepath.Join(dir, "new.key")
	savedFile := filepath.Join(dir, "saved.key")
	_, sidIAM := sim.IAM.CreateServiceID("sid")
	sidKey := sim.IAM.CreateAPIKey(sidIAM, "k")
	require.NoError(t, ibmcloud.WriteSecretFile(savedFile, secret.NewString(sidKey)))

	// No service ID yet.
	known, note, err := ImportKey(ctx, cl.IAM, cl.Auth, "missing", newFile, nil)
	require.NoError(t, err)
	require.Nil(t, known)
	require.Contains(t, note, "will be created")
	_, _, err = ImportKey(ctx, cl.IAM, cl.Auth, "missing", "", nil)
	require.ErrorIs(t, err, ErrKeyRefused)
	_, _, err = ImportKey(ctx, cl.IAM, cl.Auth, "missing", savedFile, nil)
	require.ErrorIs(t, err, ErrKeyRefused)
	require.Contains(t, err.Error(), "no service ID missing")

	// The service ID exists.
	known, note, err = ImportKey(ctx, cl.IAM, cl.Auth, "sid", savedFile, nil)
	require.NoError(t, err)
	require.Equal(t, sidKey, known.Reveal())
	require.Contains(t, note, "saved in "+savedFile)
	known, _, err = ImportKey(ctx, cl.IAM, cl.Auth, "sid", "", secret.NewString(sidKey))
	require.NoError(t, err)
	require.Equal(t, sidKey, known.Reveal())
	_, _, err = ImportKey(ctx, cl.IAM, cl.Auth, "sid", savedFile, secret.NewString(sim.Account.APIKey))
	require.ErrorIs(t, err, ErrKeyRefused, "the file and the variable disagree")
	_, _, err = ImportKey(ctx, cl.IAM, cl.Auth, "sid", "", nil)
	require.ErrorIs(t, err, ErrKeyRefused, "a new key could not be kept")
	known, note, err = ImportKey(ctx, cl.IAM, cl.Auth, "sid", newFile, secret.NewString(sim.Account.APIKey))
	require.NoError(t, err)
	require.Nil(t, known, "the owner's key is not the service ID's: a new one will be made and saved")
	require.Contains(t, note, "belongs to")
	require.NoFileExists(t, newFile, "ImportKey itself writes nothing")

	owner, err := KeyOwner(ctx, cl.Auth.URL(), secret.NewString(sidKey))
	require.NoError(t, err)
	require.Equal(t, sidIAM, owner)
	_, err = os.Stat(savedFile)
	require.NoError(t, err)
}
