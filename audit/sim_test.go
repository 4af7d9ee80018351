package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// run is one E2E run through the simulated cloud, and what it created.
type run struct {
	sim      *cloudsim.Sim
	apiKey   *secret.String
	cl       *classic.Client
	start    time.Time // simulated time before the run's first call
	end      time.Time // simulated time after its last
	template *classic.Template
	other    *classic.Template // a second template, of another run
	server   *classic.Server
}

// rawDisk is the sample Linux disk (internal/sampleimage: an MBR, an ext4
// root with cloud-init recorded), which the simulated backplane checks
// after decryption.
func rawDisk() []byte {
	d, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	if err != nil {
		panic(err) // the options are valid: a failure is a bug of sampleimage
	}
	return d
}

// doRun wraps a DEK before the window (an earlier run), then, inside the
// window: wraps the run's DEK, uploads the encrypted image, imports it,
// imports it a second time under another name, and orders a server from
// the first template.
func doRun(t *testing.T) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 11, ClockSpeed: 2000, SeedAuthorizations: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	r := &run{sim: sim, apiKey: secret.NewString(sim.Account.APIKey)}

	auth, err := iam.NewAuthenticator(r.apiKey, iam.WithURL(sim.URLs.IAM))
	require.NoError(t, err)
	kp, err := kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS))
	require.NoError(t, err)
	store, err := cos.New(cos.Config{Region: sim.Account.Region, Endpoint: sim.URLs.S3, APIKey: r.apiKey,
		IAMTokenURL: sim.URLs.TokenURL(), ServiceInstanceID: sim.Account.COSInstanceCRN})
	require.NoError(t, err)
	r.cl, err = classic.New(classic.IBMCloudAPIKey(r.apiKey), classic.WithEndpoint(sim.URLs.SoftLayer),
		classic.WithPollInterval(5*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)

	// An earlier run's wrap, an hour before this one.
	old, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	defer old.Zero()
	_, err = kp.Wrap(ctx, old)
	require.NoError(t, err)
	sim.Clock.Advance(time.Hour)

	r.start = sim.Clock.Now()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	defer dek.Zero()
	wrapped, err := kp.Wrap(ctx, dek)
	require.NoError(t, err)
	var enc bytes.Buffer
	require.NoError(t, vhdcrypt.EncryptImage(ctx, &enc, bytes.NewReader(rawDisk()), dek))
	const object = "audit-run.vhd-0.vhd"
	_, err = store.Upload(ctx, sim.Account.Bucket, object, bytes.NewReader(enc.Bytes()), int64(enc.Len()))
	require.NoError(t, err)

	req := classic.ImportRequest{
		URI:    fmt.Sprintf("cos://%s/%s/%s", sim.Account.Region, sim.Account.Bucket, object),
		APIKey: r.apiKey, OSCode: "UBUNTU_22_64", BucketLocation: sim.Account.Region + "-standard",
		Encryption: &classic.Encryption{RootKeyCRN: sim.Account.RootKeyCRN, WrappedDEK: wrapped.Ciphertext},
	}
	req.Name = "audit-run"
	r.template, err = r.cl.Import(ctx, req)
	require.NoError(t, err)
	req.Name = "someone-elses-run"
	r.other, err = r.cl.Import(ctx, req)
	require.NoError(t, err)
	r.template, err = r.cl.WaitTemplate(ctx, r.template.ID)
	require.NoError(t, err)
	_, err = r.cl.WaitTemplate(ctx, r.other.ID)
	require.NoError(t, err)
	r.server, err = r.cl.OrderServer(ctx, classic.ServerSpec{Hostname: "audit", Domain: "example.com", Datacenter: "dal13",
		CPUs: 1, MemoryMB: 2048, Template: classic.TemplateRef{ID: r.template.ID}})
	require.NoError(t, err)
	r.end = sim.Clock.Now().Add(time.Second)
	return r
}

func (r *run) reader(t *testing.T) *audit.Reader {
	t.Helper()
	auth, err := iam.NewAuthenticator(r.apiKey, iam.WithURL(r.sim.URLs.IAM))
	require.NoError(t, err)
	t.Cleanup(auth.CloseIdleConnections)
	at, err := audit.NewCloudLogs(r.sim.URLs.ActivityTracker, auth, audit.WithSecrets(r.apiKey), audit.WithQueryLimit(4))
	require.NoError(t, err)
	return audit.NewReader([]audit.Source{audit.NewEventLog(r.cl, audit.WithPageSize(3)), at}, audit.WithSlice(7*time.Minute))
}

func TestSimTrailOfOneRun(t *testing.T) {
	t.Parallel()
	r := doRun(t)
	q := audit.Query{
		Start: r.start, End: r.end,
		KeyCRNs:       []string{r.sim.Account.RootKeyCRN},
		TemplateIDs:   []int{r.template.ID},
		TemplateGUIDs: []string{r.template.GlobalIdentifier},
		GuestIDs:      []int{r.server.ID},
	}
	evs, err := r.reader(t).Collect(context.Background(), q)
	require.NoError(t, err)
	require.Empty(t, r.sim.Events.Uncatalogued(), "every action the simulated services recorded has a provenance")

	type key struct {
		src    audit.SourceName
		action string
	}
	have := map[key][]audit.Event{}
	for i, e := range evs {
		t.Logf("%s %-18s %-40s %-8s %s", e.Time.Format(time.TimeOnly), e.Source, e.Action, e.Outcome, e.TargetID)
		have[key{e.Source, e.Action}] = append(have[key{e.Source, e.Action}], e)
		require.False(t, e.Time.Before(r.start), "event before the window: %+v", e)
		require.True(t, e.Time.Before(r.end), "event after the window: %+v", e)
		if i > 0 {
			require.False(t, e.Time.Before(evs[i-1].Time), "sorted by time")
		}
		require.NotEqual(t, fmt.Sprint(r.other.ID), e.TargetID, "another template's event")
		require.NotContains(t, e.TargetID, fmt.Sprintf(":%d", r.other.ID), "another template's event")
		require.NotEmpty(t, e.Raw)
	}

	// The wrap of this run's DEK, and only that one (the earlier run's wrap
	// is outside the window).
	wraps := have[key{audit.ActivityTracker, audit.ActionWrap}]
	require.Len(t, wraps, 1)
	require.Equal(t, r.sim.Account.RootKeyCRN, wraps[0].TargetID)
	require.Equal(t, audit.OutcomeSuccess, wraps[0].Outcome)

	// The template's creation, from both sources.
	created := have[key{audit.ActivityTracker, audit.ActionTemplateCreate}]
	require.NotEmpty(t, created)
	require.True(t, slices.ContainsFunc(created, func(e audit.Event) bool { return e.Outcome == audit.OutcomeSuccess }))
	require.NotEmpty(t, have[key{audit.ClassicEventLog, slsim.EventImportComplete}])
	require.Equal(t, fmt.Sprint(r.template.ID), have[key{audit.ClassicEventLog, slsim.EventImportComplete}][0].TargetID)

	// The server's provisioning, from both sources.
	prov := have[key{audit.ActivityTracker, audit.ActionProvision}]
	require.NotEmpty(t, prov)
	require.True(t, slices.ContainsFunc(prov, func(e audit.Event) bool { return e.Outcome == audit.OutcomeSuccess }))
	require.NotEmpty(t, have[key{audit.ClassicEventLog, slsim.EventGuestProvision}])

	// Only the actions asked for.
	q.Actions = []string{audit.ActionWrap, slsim.EventGuestProvision}
	evs, err = r.reader(t).Collect(context.Background(), q)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	for _, e := range evs {
		require.Contains(t, q.Actions, e.Action)
	}
}

func TestSimTrailOutsideTheWindowIsEmpty(t *testing.T) {
	t.Parallel()
	r := doRun(t)
	q := audit.Query{
		Start: r.start.Add(-30 * time.Minute), End: r.start, // ends before the run began; holds no wrap either
		KeyCRNs: []string{r.sim.Account.RootKeyCRN}, TemplateIDs: []int{r.template.ID}, GuestIDs: []int{r.server.ID},
	}
	evs, err := r.reader(t).Collect(context.Background(), q)
	require.NoError(t, err)
	require.Empty(t, evs)

	// The earlier run's wrap is there when the window covers it.
	q.Start = r.start.Add(-2 * time.Hour)
	evs, err = r.reader(t).Collect(context.Background(), q)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, audit.ActionWrap, evs[0].Action)
}
