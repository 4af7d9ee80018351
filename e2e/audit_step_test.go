package e2e_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// emptyTrail is an audit source that finds nothing, like Activity Tracker
// before a run's events have arrived.
type emptyTrail struct{ reads atomic.Int32 }

func (e *emptyTrail) Window(context.Context, audit.Query, time.Time, time.Time) ([]audit.Event, error) {
	e.reads.Add(1)
	return nil, nil
}

// The audit step expects only the events IBM documents for what the run
// did (the DEK's wrap, the server's provisioning; none for the image
// import), reports the absent ones as not found, and by default reads the
// trail once instead of waiting for them.
func TestRunAuditReportsDocumentedEventsNotFound(t *testing.T) {
	w := newWorld(t, cloudsim.Options{Seed: 41, SeedAuthorizations: true})
	plan := w.plan(t, sample(t, sampleimage.MinSize))
	plan.Server = &classic.ServerSpec{Hostname: "e2e-audit", Domain: "example.com", Datacenter: "dal13", CPUs: 1, MemoryMB: 2048}
	trail := &emptyTrail{}
	plan.Audit = audit.NewReader([]audit.Source{trail}, audit.WithSlice(1000*time.Hour))

	res, err := e2e.Run(ctxFor(t), plan)
	require.NoError(t, err)
	require.Equal(t, []string{audit.ActionWrap, audit.ActionProvision}, res.AuditMissing)
	for _, a := range res.AuditMissing {
		_, ok := audit.Documented(a)
		require.True(t, ok, "%s is documented", a)
	}
	var step *e2e.Step
	for i := range res.Steps {
		if res.Steps[i].Name == e2e.StepAudit {
			step = &res.Steps[i]
		}
	}
	require.NotNil(t, step)
	require.Contains(t, step.Detail, "not found: "+audit.ActionWrap+", "+audit.ActionProvision)
	require.NotContains(t, step.Detail, audit.ActionTemplateCreate)
	require.EqualValues(t, 1, trail.reads.Load(), "read once: the default wait is 0")
}
