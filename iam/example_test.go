package iam_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// The examples run against the local cloud simulator; with a real account,
// leave out the URL options.

// Prepare the IAM side of the E2E flow, then check it.
func Example() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	auth, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	if err != nil {
		log.Fatal(err)
	}
	client, err := iam.NewClient(auth, sim.Account.AccountID,
		iam.WithIdentityURL(sim.URLs.IAMIdentity), iam.WithPolicyURL(sim.URLs.IAMPolicy))
	if err != nil {
		log.Fatal(err)
	}
	key, err := crn.ParseKey(sim.Account.RootKeyCRN)
	if err != nil {
		log.Fatal(err)
	}
	plan := iam.Plan{
		Key:           key,
		ServiceID:     iam.ServiceIDSpec{Name: "e2e-image-import"},
		COSInstanceID: sim.Account.COSInstanceID,
		Bucket:        sim.Account.Bucket,
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

	ks, err := kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS))
	if err != nil {
		log.Fatal(err)
	}
	report := iam.Preflight(ctx, client.Checks(plan, iam.KeyCheck(func(ctx context.Context) (string, string, error) { return kms.CheckKey(ctx, ks) }))...)
	fmt.Println("preflight ok:", report.OK(), "checks:", len(report.Results))
	// Output:
	// created 5 objects; API key shown once: [REDACTED]
	// second run created 0
	// preflight ok: true checks: 5
}

// A preflight names each missing step and how to fix it. Checks from other
// packages (here a stand-in for the bucket check) join with FuncCheck.
func ExamplePreflight() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	auth, _ := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	client, _ := iam.NewClient(auth, sim.Account.AccountID,
		iam.WithIdentityURL(sim.URLs.IAMIdentity), iam.WithPolicyURL(sim.URLs.IAMPolicy))
	key, _ := crn.ParseKey(sim.Account.RootKeyCRN)

	bucket := iam.FuncCheck("bucket", func(context.Context) (string, error) {
		return "Regional, us-south", nil
	}, "use a Regional bucket in the key's region")
	report := iam.Preflight(ctx, client.AuthorizationCheck(iam.BlockStorageAuthorization(key)), bucket)
	for _, r := range report.Failed() {
		fmt.Println("missing:", r.Name)
	}
	fmt.Println(errors.Is(report.Err(), iam.ErrPreflight))
	// Output:
	// missing: authorization server-protect -> kms
	// true
}
