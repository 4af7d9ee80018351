package classic_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/secret"
)

// The examples that talk to the classic API read the account from the
// environment: IBMCLOUD_API_KEY, and SOFTLAYER_URL when the endpoint is not
// IBM Cloud's (such as the local cloud simulator's: go run ./examples/cloudsim
// prints it). The import reads the encrypted image's IMAGE_URI
// (cos://<region>/<bucket>/<object>, uploaded by package cos), the
// IMPORT_API_KEY of a service ID that may read it and unwrap its DEK,
// ROOT_KEY_CRN and the WRAPPED_DEK (from package kms).

// Import an encrypted image from COS and wait until the template is Active.
func ExampleClient_Import() {
	cl, err := classic.New(classic.IBMCloudAPIKey(secret.NewString(os.Getenv("IBMCLOUD_API_KEY"))),
		classic.WithEndpoint(os.Getenv("SOFTLAYER_URL")))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	tmpl, err := cl.Import(ctx, classic.ImportRequest{
		Name:           "ubuntu-encrypted",
		URI:            os.Getenv("IMAGE_URI"),
		APIKey:         secret.NewString(os.Getenv("IMPORT_API_KEY")),
		OSCode:         "UBUNTU_22_64",
		BucketLocation: "us-south-standard", // a Regional bucket (cos.Client.CheckBucket tells)
		Encryption: &classic.Encryption{
			RootKeyCRN: os.Getenv("ROOT_KEY_CRN"),
			WrappedDEK: os.Getenv("WRAPPED_DEK"), // from kms: Wrap(ctx, dek)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tmpl, err = cl.WaitTemplate(ctx, tmpl.ID)
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

	// On a fresh simulated account, this prints:
	// ubuntu-encrypted ACTIVE
}

// Order a server from the Active template named ubuntu-encrypted: first a
// dry run that only verifies the order, then the order itself, waiting until
// it is provisioned.
func ExampleClient_OrderServer() {
	cl, err := classic.New(classic.IBMCloudAPIKey(secret.NewString(os.Getenv("IBMCLOUD_API_KEY"))),
		classic.WithEndpoint(os.Getenv("SOFTLAYER_URL")))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	tmpl, err := cl.FindTemplateByName(ctx, "ubuntu-encrypted")
	if err != nil {
		fmt.Println(err)
		return
	}

	spec := classic.ServerSpec{
		Hostname: "web1", Domain: "example.com", Datacenter: "dal13",
		CPUs: 2, MemoryMB: 4096, Template: classic.TemplateRef{ID: tmpl.ID},
	}
	if _, err := cl.VerifyServer(ctx, spec); err != nil { // no charge
		fmt.Println("the order would fail:", err)
		return
	}
	srv, err := cl.OrderServer(ctx, spec, classic.ServerProgress(func(s classic.Server) {
		// s.Transaction names the provisioning step in progress
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(srv.FQDN, "provisioned:", srv.Provisioned(), "has IPs:", srv.PrimaryIP != "" && srv.BackendIP != "")

	// On a fresh simulated account, this prints:
	// web1.example.com provisioned: true has IPs: true
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
	// Output: BucketLocation: bucket "images" is Cross Region (us-standard); imports need a Regional bucket
}
