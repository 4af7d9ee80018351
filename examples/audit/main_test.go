package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/simscript"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
// TestMain runs the tests, or, as testdata/script's scripts run it, the
// audit command itself (see internal/simscript).
func TestMain(m *testing.M) { simscript.Main(m, map[string]func(){"audit": main}) }

// TestScripts runs testdata/script/*.txtar against simulators started by
// the scripts.
func TestScripts(t *testing.T) { simscript.Run(t, "testdata/script") }

// wholeRun starts a simulator and runs the whole flow with e2e.Run.
func wholeRun(t *testing.T) (sim *cloudsim.Sim, endpoints, state string, res *e2e.Result) {
	t.Helper()
	s := clitest.StartSim(t, cloudsim.Options{Seed: 71, ClockSpeed: 2000, SeedAuthorizations: true})
	state, res = s.Run(t, "audit-test", &classic.ServerSpec{Hostname: "a", Domain: "example.com", Datacenter: "dal13", CPUs: 1, MemoryMB: 1024})
	return s.Sim, s.Endpoints, state, res
}

func runAudit(t *testing.T, sim *cloudsim.Sim, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	now := time.Now
	if sim != nil {
		now = sim.Clock.Now // the simulator's clock runs fast
	}
	code := run(context.Background(), args, &stdout, &stderr, clitest.Lookup(vars), now)
	return code, stdout.String(), stderr.String()
}

func TestAuditTrailOfARun(t *testing.T) {
	sim, endpoints, state, res := wholeRun(t)
	vars := map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}

	code, stdout, stderr := runAudit(t, sim, vars, "-endpoints", endpoints, "-state", state)
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{audit.ActionWrap, audit.ActionTemplateCreate, audit.ActionProvision, "classic-event-log", "activity-tracker"} {
		require.Contains(t, stdout, want)
	}

	// By resource ids, one action, as JSON.
	code, stdout, stderr = runAudit(t, sim, vars, "-endpoints", endpoints, "-json", "-since", res.Started.Format(time.RFC3339),
		"-root-key-crn", res.Key.RootKeyCRN, "-action", audit.ActionWrap)
	require.Equal(t, 0, code, stderr)
	var evs []audit.Event
	require.NoError(t, json.Unmarshal([]byte(stdout), &evs))
	require.Len(t, evs, 1)
	require.Equal(t, audit.ActionWrap, evs[0].Action)
	require.Equal(t, res.Key.RootKeyCRN, evs[0].TargetID)

}

func TestClassicEventLogOnly(t *testing.T) {
	sim, endpoints, state, _ := wholeRun(t)
	ep, err := ibmcloud.LoadEndpoints(endpoints)
	require.NoError(t, err)
	only := filepath.Join(t.TempDir(), "sl.json")
	b, err := json.Marshal(ibmcloud.Endpoints{SoftLayer: ep.SoftLayer})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(only, b, 0o600))
	code, stdout, stderr := runAudit(t, sim, map[string]string{"SL_USERNAME": "apikey", "SL_API_KEY": sim.Account.APIKey},
		"-endpoints", only, "-state", state)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "classic event log only")
	require.Contains(t, stdout, "classic-event-log")
	require.NotContains(t, stdout, "activity-tracker")
}

func TestHelpAndUsage(t *testing.T) {
	code, _, stderr := runAudit(t, nil, nil, "-help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "Usage: audit")
	code, _, stderr = runAudit(t, nil, map[string]string{}, "-since", "1h")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "no credentials")
	code, _, _ = runAudit(t, nil, map[string]string{"IBMCLOUD_API_KEY": "k"}, "-since", "yesterday")
	require.Equal(t, 2, code)
	code, _, stderr = runAudit(t, nil, map[string]string{"IBMCLOUD_API_KEY": "k"}, "-since", "1h", "-until", "2h")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "window is empty")
}
