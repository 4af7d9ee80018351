package iam_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// The examples read the account from the environment: IBMCLOUD_API_KEY,
// ROOT_KEY_CRN (the root key, whose CRN names the account), COS_INSTANCE_ID
// and COS_BUCKET (where images are uploaded). IAM_URL, IAM_IDENTITY_URL,
// IAM_POLICY_URL and KMS_URL, when set, replace the public endpoints, for
// example with those of the local cloud simulator (go run ./examples/cloudsim
// prints them).

// Prepare the IAM side of the E2E flow, then check it.
func Example() {
	ctx := context.Background()
	auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	key, err := crn.ParseKey(os.Getenv("ROOT_KEY_CRN"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := iam.NewClient(auth, key.AccountID,
		iam.WithIdentityURL(os.Getenv("IAM_IDENTITY_URL")), iam.WithPolicyURL(os.Getenv("IAM_POLICY_URL")))
	if err != nil {
		log.Fatal(err)
	}
	plan := iam.Plan{
		Key:           key,
		ServiceID:     iam.ServiceIDSpec{Name: "e2e-image-import"},
		COSInstanceID: os.Getenv("COS_INSTANCE_ID"),
		Bucket:        os.Getenv("COS_BUCKET"),
	}
	res, err := client.Setup(ctx, plan)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", len(res.Created()), "objects; API key shown once:", res.ServiceID.APIKey)

	// Running it again with the kept API key creates nothing.
	plan.ServiceID.KnownAPIKey = res.ServiceID.APIKey
	again, err := client.Setup(ctx, plan)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second run created", len(again.Created()))

	ks, err := kms.New(key.String(), auth, kms.WithURL(os.Getenv("KMS_URL")))
	if err != nil {
		log.Fatal(err)
	}
	keyCheck := iam.KeyCheck(func(ctx context.Context) (string, string, error) { return kms.CheckKey(ctx, ks) })
	report := iam.Preflight(ctx, client.Checks(plan, keyCheck)...)
	fmt.Println("preflight ok:", report.OK(), "checks:", len(report.Results))

	// On a fresh simulated account, this prints:
	// created 5 objects; API key shown once: [REDACTED]
	// second run created 0
	// preflight ok: true checks: 5
}

// A preflight names each missing step and how to fix it. Checks from other
// packages (here a stand-in for the bucket check) join with FuncCheck.
func ExamplePreflight() {
	ctx := context.Background()
	auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	key, err := crn.ParseKey(os.Getenv("ROOT_KEY_CRN"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := iam.NewClient(auth, key.AccountID,
		iam.WithIdentityURL(os.Getenv("IAM_IDENTITY_URL")), iam.WithPolicyURL(os.Getenv("IAM_POLICY_URL")))
	if err != nil {
		log.Fatal(err)
	}

	bucket := iam.FuncCheck("bucket", func(context.Context) (string, error) {
		return "Regional, us-south", nil
	}, "use a Regional bucket in the key's region")
	report := iam.Preflight(ctx, client.AuthorizationCheck(iam.BlockStorageAuthorization(key)), bucket)
	for _, r := range report.Failed() {
		fmt.Println("missing:", r.Name)
	}
	fmt.Println(errors.Is(report.Err(), iam.ErrPreflight))

	// On a fresh simulated account, this prints:
	// missing: authorization server-protect -> kms
	// true
}
