package classic_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/secret"
)

// Import an encrypted image from COS and wait until the template is Active.
// The simulated cloud stands in for IBM Cloud here; against the real one,
// use classic.New(classic.IBMCloudAPIKey(key)) and a real bucket.
func ExampleClient_Import() {
	w, err := buildWorld() // a local cloud with an encrypted VHD in a Regional bucket
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	tmpl, err := w.cl.Import(ctx, classic.ImportRequest{
		Name:          "ubuntu-encrypted",
		URI:           "cos://us-south/" + w.sim.Account.Bucket + "/e2e-test.vhd-0.vhd",
		APIKey:        w.apiKey, // a service ID key with access to the bucket and the root key
		OSCode:        "UBUNTU_22_64",
		BucketLocator: w.locator, // e.g. from the cos package; catches non-Regional buckets early
		Encryption: &classic.Encryption{
			RootKeyCRN: w.sim.Account.RootKeyCRN,
			WrappedDEK: w.wrapped.Ciphertext, // from kms: Wrap(ctx, dek)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tmpl, err = w.cl.WaitTemplate(ctx, tmpl.ID)
	var failed *classic.ImportFailedError
	if errors.As(err, &failed) {
		fmt.Println("import failed:", failed.Reason)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tmpl.Name, tmpl.Status)
	// Output: ubuntu-encrypted ACTIVE
}

// Order a server from an Active template: first a dry run that only
// verifies the order, then the order itself, waiting until it is provisioned.
func ExampleClient_OrderServer() {
	w, err := buildWorld()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.close()
	ctx := context.Background()
	tmpl, err := w.cl.Import(ctx, w.request("ubuntu-encrypted", w.object, w.wrapped.Ciphertext))
	if err == nil {
		tmpl, err = w.cl.WaitTemplate(ctx, tmpl.ID)
	}
	if err != nil {
		fmt.Println(err)
		return
	}

	spec := classic.ServerSpec{
		Hostname: "web1", Domain: "example.com", Datacenter: "dal13",
		CPUs: 2, MemoryMB: 4096, Template: classic.TemplateRef{ID: tmpl.ID},
	}
	if _, err := w.cl.VerifyServer(ctx, spec); err != nil { // no charge
		fmt.Println("the order would fail:", err)
		return
	}
	srv, err := w.cl.OrderServer(ctx, spec, classic.ServerProgress(func(s classic.Server) {
		// s.Transaction names the provisioning step in progress
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(srv.FQDN, "provisioned:", srv.Provisioned(), "has IPs:", srv.PrimaryIP != "" && srv.BackendIP != "")
	// Output: web1.example.com provisioned: true has IPs: true
}

// Requests the backplane would refuse are refused before any API call.
func ExampleClient_ValidateImport() {
	c, err := classic.New(classic.IBMCloudAPIKey(secret.NewString("an IBM Cloud API key")))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.ValidateImport(context.Background(), classic.ImportRequest{
		Name:           "img",
		URI:            "cos://us-south/images/img.vhd-0.vhd",
		APIKey:         secret.NewString("a service ID API key"),
		OSCode:         "UBUNTU_22_64",
		BucketLocation: "us-standard", // a Cross Region bucket
	})
	var invalid *classic.InvalidImportError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Field+":", invalid.Reason)
	}
	// Output: BucketLocation: bucket "images" is cross-region (us-standard); imports need a Regional bucket
}

func ExampleBucketResiliency() {
	for _, lc := range []string{"us-south-standard", "eu-cold", "ams03-smart"} {
		res, loc, _ := classic.BucketResiliency(lc)
		fmt.Println(lc, res, loc)
	}
	// Output:
	// us-south-standard regional us-south
	// eu-cold cross-region eu
	// ams03-smart single-site ams03
}
