package classic_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"example.com/extmod/internal/exampletest"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// The examples that talk to the classic API run against a fresh simulated
// account each (fast clock, authorizations in place) and print what their
// comment says. Their preparation uses public API only, as the examples do.
func TestExamplesAgainstTheSimulator(t *testing.T) {
	exampletest.Run(t, "example_test.go", exampletest.Sim{Seed: 7, ClockSpeed: 2000, SeedAuthorizations: true},
		map[string]exampletest.Example{
			"ExampleClient_Import":      {F: ExampleClient_Import, Prepare: uploadEncryptedImage},
			"ExampleClient_OrderServer": {F: ExampleClient_OrderServer, Prepare: importEncryptedImage},
		})
}

// exampleDisk is the simulator's sample disk, a small Linux disk with
// cloud-init that the simulated import accepts after decryption.
func exampleDisk(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(exampletest.SampleImage(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// uploadEncryptedImage encrypts exampleDisk with a new DEK, uploads it to
// the account's bucket and wraps the DEK with the root key: what
// ExampleClient_Import expects to find (IMAGE_URI, WRAPPED_DEK,
// IMPORT_API_KEY).
func uploadEncryptedImage(tb testing.TB, env map[string]string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	apiKey := secret.NewString(env["IBMCLOUD_API_KEY"])
	key, err := crn.ParseKey(env["ROOT_KEY_CRN"])
	if err != nil {
		tb.Fatal(err)
	}
	auth, err := iam.NewAuthenticator(apiKey, iam.WithURL(env["IAM_URL"]))
	if err != nil {
		tb.Fatal(err)
	}
	ks, err := kms.New(key.String(), auth, kms.WithURL(env["KMS_URL"]))
	if err != nil {
		tb.Fatal(err)
	}
	defer ks.CloseIdleConnections()
	store, err := cos.New(cos.Config{Region: key.Region, Endpoint: env["S3_URL"], Tokens: auth})
	if err != nil {
		tb.Fatal(err)
	}
	defer store.CloseIdleConnections()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	if err != nil {
		tb.Fatal(err)
	}
	defer dek.Zero()
	var enc bytes.Buffer
	if err := vhdcrypt.EncryptImage(ctx, &enc, bytes.NewReader(exampleDisk(tb)), dek); err != nil {
		tb.Fatal(err)
	}
	object := "ubuntu.vhd-0.vhd"
	if _, err := store.Upload(ctx, env["COS_BUCKET"], object, bytes.NewReader(enc.Bytes()), int64(enc.Len())); err != nil {
		tb.Fatal(err)
	}
	wrapped, err := ks.Wrap(ctx, dek)
	if err != nil {
		tb.Fatal(err)
	}
	env["IMAGE_URI"] = "cos://" + key.Region + "/" + env["COS_BUCKET"] + "/" + object
	env["WRAPPED_DEK"] = wrapped.Ciphertext
	env["IMPORT_API_KEY"] = env["IBMCLOUD_API_KEY"] // the account owner's key may read and unwrap
}

// importEncryptedImage makes the Active template named ubuntu-encrypted
// that ExampleClient_OrderServer orders from.
func importEncryptedImage(tb testing.TB, env map[string]string) {
	tb.Helper()
	uploadEncryptedImage(tb, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := classic.New(classic.IBMCloudAPIKey(secret.NewString(env["IBMCLOUD_API_KEY"])),
		classic.WithEndpoint(env["SOFTLAYER_URL"]))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.CloseIdleConnections()
	tmpl, err := cl.Import(ctx, classic.ImportRequest{
		Name: "ubuntu-encrypted", URI: env["IMAGE_URI"], APIKey: secret.NewString(env["IMPORT_API_KEY"]),
		OSCode: "UBUNTU_22_64", BucketLocation: "us-south-standard",
		Encryption: &classic.Encryption{RootKeyCRN: env["ROOT_KEY_CRN"], WrappedDEK: env["WRAPPED_DEK"]},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := cl.WaitTemplate(ctx, tmpl.ID, classic.PollEvery(5*time.Millisecond, 50*time.Millisecond)); err != nil {
		tb.Fatal(err)
	}
}
