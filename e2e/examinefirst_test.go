package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
)

// mutations counts, at the simulator, every request that can change the
// account: any method but GET and HEAD, to every service except the IAM
// token endpoint (a token exchange changes nothing).
type mutations struct {
	sim *cloudsim.Sim
	ids map[string]int
}

func countMutations(sim *cloudsim.Sim) *mutations {
	m := &mutations{sim: sim, ids: map[string]int{}}
	for _, svc := range []string{cloudsim.ServiceIAMIdentity, cloudsim.ServiceIAMPolicy, cloudsim.ServiceKMS,
		cloudsim.ServiceHPCS, cloudsim.ServiceS3, cloudsim.ServiceSoftLayer, cloudsim.ServiceActivityTracker} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			m.ids[svc+" "+method] = sim.Faults.Add(faults.Rule{Service: svc, Method: method, Kind: faults.Latency})
		}
	}
	return m
}

func (m *mutations) counts() (total int, by string) {
	var parts []string
	for name, id := range m.ids {
		if n := m.sim.Faults.Hits(id); n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s=%d", name, n))
		}
	}
	return total, strings.Join(parts, " ")
}

// An image the doctor refuses, or cannot read, stops a run that prepares
// the account before the preparation: no authorization, service ID, API
// key or policy is made, and nothing else changes (issue 22 item 6).
func TestRefusedImageChangesNothingInTheAccount(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 41}) // a fresh account: the preparation would create things
	m := countMutations(w.sim)
	for _, c := range []struct {
		name   string
		image  func() string
		osCode string
	}{
		{"refused (no cloud-init)", func() string { return ubuntuDisk(t, "22.04", false) }, ""},
		{"unreadable (no partition table)", func() string { return bareExt4(t) }, "UBUNTU_22_64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := w.plan(t, nil)
			plan.Image, plan.OSCode = openFile(t, c.image()), c.osCode
			plan.IAM, plan.Prepare = w.clients.IAM, true
			plan.ServiceID = iam.ServiceIDSpec{Name: "refused-image-import"}
			plan.COSInstanceID = w.sim.Account.COSInstanceCRN
			plan.ImportAPIKey = nil
			var log stepLog
			plan.OnStep = log.add
			_, err := e2e.Run(ctxFor(t), plan)
			var pe *e2e.PreflightError
			require.ErrorAs(t, err, &pe)
			img, ok := pe.Report.Result("image")
			require.True(t, ok)
			require.False(t, img.OK)
			require.Equal(t, e2e.StepFailed, log.status()[e2e.StepPrepare])
		})
	}
	total, by := m.counts()
	t.Logf("mutating requests at the simulator: %d (%s)", total, by)
	require.Zero(t, total, "a refused image changes nothing in the account")
	sid, err := w.clients.IAM.FindServiceID(ctxFor(t), "refused-image-import")
	require.NoError(t, err)
	require.Nil(t, sid, "no service ID was made")
}
