package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// Ten runs of the command with -prepare and no -save-api-key against one
// account: each makes an API key for the import service ID, uses it and
// deletes it, so the service ID keeps at most one key (counted with IAM's
// list API before and after).
func TestRunsWithoutSavedKeyLeaveNoKeys(t *testing.T) {
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 66, ClockSpeed: 2000})
	a := sim.Account
	image := filepath.Join(sim.Dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	const sidName = "e2eimage-import"
	keys := func() int {
		ctx := context.Background()
		sid, err := sim.IAMClient(t).FindServiceID(ctx, sidName)
		require.NoError(t, err)
		if sid == nil {
			return 0
		}
		list, err := sim.IAMClient(t).APIKeys(ctx, sid.IAMID)
		require.NoError(t, err)
		return len(list)
	}
	before := keys()
	const runs = 10
	var most int
	for i := range runs {
		name := fmt.Sprintf("keys-%02d", i)
		code, _, stderr := runMain(t, map[string]string{"IBMCLOUD_API_KEY": a.APIKey},
			"-endpoints", sim.Endpoints, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-cos-instance", a.COSInstanceCRN,
			"-image", image, "-name", name, "-state", filepath.Join(sim.Dir, name+".json"), "-audit-wait", "0", "-prepare",
			"-service-id", sidName, "-q")
		require.Equal(t, exitOK, code, stderr)
		require.Contains(t, stderr, "API key")
		most = max(most, keys())
	}
	after := keys()
	t.Logf("%d runs: API keys of service ID %s: %d before, %d after, at most %d after any run", runs, sidName, before, after, most)
	require.LessOrEqual(t, after, 1)
	require.LessOrEqual(t, most, 1)
}
