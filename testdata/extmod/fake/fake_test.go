// Package fake tests code of this module against the public simulated IBM
// Cloud (github.com/e2eimage/e2eimage/cloudsimtest), the way another
// module's tests would: in this process, with no simulator process started.
package fake

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cloudsimtest"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
)

// run runs plan against cloud with the clients ibmcloud.Connect makes for it.
func run(t *testing.T, cloud *cloudsimtest.Cloud, plan e2e.Plan) *e2e.Result {
	t.Helper()
	clients, err := ibmcloud.Connect(cloud.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	img, err := os.Open(cloudsimtest.SampleImage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	plan.Image, plan.OSCode = img, "UBUNTU_22_64"
	plan.KeyService, plan.IAM, plan.Prepare = clients.Keys, clients.IAM, true
	plan.ServiceID = iam.ServiceIDSpec{Name: "image-import"}
	plan.COSInstanceID, plan.COS, plan.Bucket = cloud.COSInstanceID, clients.COS, cloud.Bucket
	plan.Classic, plan.Audit, plan.Clock = clients.Classic, clients.Audit, cloud.Clock.Now
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := e2e.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.Template == nil || res.Template.Status != "ACTIVE" {
		t.Fatalf("template: %+v", res.Template)
	}
	return res
}

// TestPublicFakeRun: the whole flow, from a disk image to a provisioned
// server and its audit trail.
func TestPublicFakeRun(t *testing.T) {
	cloud := cloudsimtest.Start(t, cloudsimtest.Options{Seed: 11})
	res := run(t, cloud, e2e.Plan{
		Name:   "web",
		Server: &classic.ServerSpec{Hostname: "web", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
	})
	if res.Server == nil || res.Server.ProvisionDate.IsZero() {
		t.Fatalf("server: %+v", res.Server)
	}
	if len(res.Audit) == 0 || len(res.AuditMissing) > 0 {
		t.Fatalf("%d audit events; expected ones not found: %v", len(res.Audit), res.AuditMissing)
	}
	t.Logf("template %d, server %d, %d audit events", res.Template.ID, res.Server.ID, len(res.Audit))
}

// TestPublicFakeImport: the import flow (what examples/import does):
// encrypt, upload and import, no server; the state file lets the same plan
// run again without uploading again.
func TestPublicFakeImport(t *testing.T) {
	cloud := cloudsimtest.Start(t, cloudsimtest.Options{Seed: 12, SeedAuthorizations: true})
	state := t.TempDir() + "/import.e2e-state.json"
	first := run(t, cloud, e2e.Plan{Name: "imported", StatePath: state})
	if first.Server != nil {
		t.Fatalf("a server was ordered: %+v", first.Server)
	}
	again := run(t, cloud, e2e.Plan{Name: "imported", StatePath: state})
	if !again.Resumed || again.Template.ID != first.Template.ID {
		t.Fatalf("the second run did not resume: resumed %v, template %d then %d", again.Resumed, first.Template.ID, again.Template.ID)
	}
	// The first run deleted the API key it made once the image was
	// imported; the second needs none and makes none.
	clients, err := ibmcloud.Connect(cloud.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	sid, err := clients.IAM.FindServiceID(context.Background(), "image-import")
	if err != nil || sid == nil {
		t.Fatalf("service ID image-import: %v, %v", sid, err)
	}
	keys, err := clients.IAM.APIKeys(context.Background(), sid.IAMID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("service ID image-import has %d API keys after two runs, want 0", len(keys))
	}
	t.Logf("template %d imported once, found again by the second run; %d API keys left", first.Template.ID, len(keys))
}
