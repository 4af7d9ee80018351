package cloudsimtest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/cloudsimtest"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// TestImportOnly: an image file is encrypted, uploaded and imported (no
// server) through the public fake, started for the test; the account's
// seeded authorizations make Prepare unnecessary for them.
func TestImportOnly(t *testing.T) {
	cloud := cloudsimtest.Start(t, cloudsimtest.Options{Seed: 7, SeedAuthorizations: true})
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e2e.Run(ctx, e2e.Plan{
		Image: img, Name: "imported", OSCode: "UBUNTU_22_64",
		KeyService: clients.Keys, IAM: clients.IAM, Prepare: true,
		ServiceID: iam.ServiceIDSpec{Name: "image-import"}, COSInstanceID: cloud.COSInstanceID,
		COS: clients.COS, Bucket: cloud.Bucket, Classic: clients.Classic,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Template == nil || res.Template.Status != "ACTIVE" || !strings.HasPrefix(res.Object.Key, "imported") {
		t.Fatalf("template %+v, object %+v", res.Template, res.Object)
	}
	if res.Server != nil {
		t.Fatalf("a server was ordered without Plan.Server: %+v", res.Server)
	}
	if res.IAM == nil || res.IAM.BlockStorageAuthorization == "" {
		t.Fatalf("no authorization in the result: %+v", res.IAM)
	}
	for _, c := range res.IAM.Created {
		if strings.Contains(c, "authorization") {
			t.Errorf("%s: created although the account was seeded with it", c)
		}
	}
	if !strings.Contains(cloud.RootKeyCRN, cloud.AccountID) || cloud.Region != "us-south" {
		t.Errorf("root key %s, account %s, region %s", cloud.RootKeyCRN, cloud.AccountID, cloud.Region)
	}
}

// TestTemplatesAndClock: a template given in Options is in the account
// next to SampleTemplate, and the clock can be moved forward.
func TestTemplatesAndClock(t *testing.T) {
	raw, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cloud := cloudsimtest.Start(t, cloudsimtest.Options{Templates: []cloudsimtest.Template{{Name: "mine", OSCode: "UBUNTU_22_64", Disk: raw}}})
	clients, err := ibmcloud.Connect(cloud.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	ctx := context.Background()
	for _, name := range []string{"mine", cloudsimtest.SampleTemplate} {
		tpl, err := clients.Classic.FindTemplateByName(ctx, name)
		if err != nil || tpl == nil || tpl.Name != name {
			t.Errorf("template %s: %+v, %v", name, tpl, err)
		}
	}
	before := cloud.Clock.Now()
	cloud.Clock.Advance(48 * time.Hour)
	if d := cloud.Clock.Now().Sub(before); d < 48*time.Hour {
		t.Errorf("the clock moved %v after Advance(48h)", d)
	}
}

// TestBadOptions: options New cannot honour are errors, before anything
// starts.
func TestBadOptions(t *testing.T) {
	for name, opts := range map[string]cloudsimtest.Options{
		"negative clock":   {ClockSpeed: -1},
		"template no name": {Templates: []cloudsimtest.Template{{OSCode: "UBUNTU_22_64", Disk: make([]byte, 512)}}},
		"template no disk": {Templates: []cloudsimtest.Template{{Name: "x", OSCode: "UBUNTU_22_64"}}},
		"template partial": {Templates: []cloudsimtest.Template{{Name: "x", OSCode: "UBUNTU_22_64", Disk: make([]byte, 1000)}}},
	} {
		if c, err := cloudsimtest.New(opts); err == nil || !strings.HasPrefix(err.Error(), "cloudsimtest: ") {
			if c != nil {
				_ = c.Close()
			}
			t.Errorf("%s: New: %v", name, err)
		}
	}
}

// TestClosedAtCleanup: the cloud a subtest started no longer answers once
// the subtest has ended.
func TestClosedAtCleanup(t *testing.T) {
	var iamURL string
	t.Run("user", func(t *testing.T) {
		cloud := cloudsimtest.Start(t, cloudsimtest.Options{})
		iamURL = cloud.Endpoints.IAM
		resp, err := http.Get(iamURL + "/identity/token")
		if err != nil {
			t.Fatalf("the running cloud does not answer: %v", err)
		}
		resp.Body.Close()
	})
	if iamURL == "" {
		t.Fatal("the subtest did not start a cloud")
	}
	resp, err := http.Get(iamURL + "/identity/token")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%s still answers after the test's cleanup", iamURL)
	}
	var op interface{ Timeout() bool }
	if !errors.As(err, &op) {
		t.Fatalf("unexpected error: %v", err)
	}
}
