package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/simscript"
)

// The tests start simulators, each with a data directory that must be
// gone once it is closed.
// TestMain runs the tests, or, as testdata/script's scripts run it, the
// order command itself (see internal/simscript).
func TestMain(m *testing.M) { simscript.Main(m, map[string]func(){"order": main}) }

// TestScripts runs testdata/script/*.txtar against simulators started by
// the scripts.
func TestScripts(t *testing.T) { simscript.Run(t, "testdata/script") }

// imported starts a simulator and imports a sample image with e2e.Run
// (recording it in a state file), as examples/import would.
func imported(t *testing.T) (sim *cloudsim.Sim, endpoints, state string, res *e2e.Result) {
	t.Helper()
	s := clitest.StartSim(t, cloudsim.Options{Seed: 61, ClockSpeed: 2000, SeedAuthorizations: true})
	state, res = s.Run(t, "order-test", nil)
	return s.Sim, s.Endpoints, state, res
}

func runOrder(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, clitest.Lookup(vars))
	return code, stdout.String(), stderr.String()
}

func TestOrderFromState(t *testing.T) {
	sim, endpoints, state, res := imported(t)
	vars := map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}
	base := []string{"-endpoints", endpoints, "-hostname", "web", "-domain", "example.com", "-datacenter", "dal13"}

	code, stdout, stderr := runOrder(t, vars, append(base, "-template-name", "order-test", "-dry-run")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "verified: template")
	require.Empty(t, sim.SoftLayer.Guests(), "a dry run orders nothing")

	code, stdout, stderr = runOrder(t, vars, append(base, "-state", state)...)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `server \d+ \S+ web.example.com dal13 from template \d+, public \S+, private \S+, provisioned `, stdout)
	require.Len(t, sim.SoftLayer.Guests(), 1)
	g := sim.SoftLayer.Guests()[0]
	require.Equal(t, res.Template.ID, g.TemplateID)
	require.False(t, g.ProvisionDate.IsZero())

	// Again: the server exists, no second order.
	code, stdout, stderr = runOrder(t, vars, append(base, "-template-id", "1", "-json")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "exists already")
	var out output
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	require.True(t, out.Existing)
	require.Equal(t, g.ID, out.Server.ID)
	require.Len(t, sim.SoftLayer.Guests(), 1)
}

func TestHelpAndUsage(t *testing.T) {
	code, _, stderr := runOrder(t, nil, "-help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "Usage: order")
	code, _, stderr = runOrder(t, nil, "-hostname", "h", "-domain", "d", "-datacenter", "dal13")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "exactly one")
	code, _, stderr = runOrder(t, map[string]string{}, "-template-id", "1", "-hostname", "h", "-domain", "d", "-datacenter", "dal13")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "no credentials")
}
