package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// The examples run against the local cloud simulator; with a real account,
// leave out the URL options.

// Check the root key, make a 64-byte DEK wrapped by it, and unwrap it again.
func Example() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	apiKey := secret.NewString(sim.Account.APIKey) // in a program: from an env var or a 0600 file
	auth, err := iam.NewAuthenticator(apiKey, iam.WithURL(sim.URLs.IAM))
	if err != nil {
		log.Fatal(err)
	}
	ks, err := kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS))
	if err != nil {
		log.Fatal(err)
	}
	info, err := ks.Check(ctx)
	if err != nil {
		log.Fatal(err) // says what is wrong with the key and what to do
	}
	fmt.Println(info.CRN.Service.DisplayName(), info.Type, info.State)

	dek, wrapped, err := kms.NewDEK(ctx, ks, secret.DEK512)
	if err != nil {
		log.Fatal(err)
	}
	defer dek.Zero()
	fmt.Println(dek.Len(), "bytes:", dek) // a DEK never prints

	back, rewrapped, err := ks.Unwrap(ctx, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	defer back.Zero()
	fmt.Println("same DEK:", bytes.Equal(back.Bytes(), dek.Bytes()), "rewrapped:", rewrapped != nil)
	// Output:
	// Key Protect root Active
	// 64 bytes: [REDACTED]
	// same DEK: true rewrapped: false
}

// Have the key service generate a 32-byte DEK, as IBM's procedure does.
func ExampleClient_GenerateDEK() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	auth, _ := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	ks, err := kms.New(sim.Account.HPCSRootKeyCRN, auth, kms.WithURL(sim.URLs.HPCS))
	if err != nil {
		log.Fatal(err)
	}
	dek, wrapped, err := ks.GenerateDEK(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dek.Zero()
	fmt.Println(ks.CRN().Service, dek.Len(), wrapped.Ciphertext != "")
	// Output: hs-crypto 32 true
}

// After a rotation of the root key, Unwrap also returns the DEK re-wrapped
// with the newest key version; store it in place of the old ciphertext.
func ExampleClient_Unwrap_rotation() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	auth, _ := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	ks, _ := kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS))
	dek, wrapped, err := ks.GenerateDEK(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dek.Zero()

	// An operator rotates the root key (here with keyprotect-go-client).
	op, _ := kp.New(kp.ClientConfig{BaseURL: sim.URLs.KMS, APIKey: sim.Account.APIKey,
		TokenURL: sim.URLs.TokenURL(), InstanceID: sim.Account.KMSInstanceID}, kp.DefaultTransport())
	if err := op.Rotate(ctx, ks.CRN().KeyID, ""); err != nil {
		log.Fatal(err)
	}

	back, rewrapped, err := ks.Unwrap(ctx, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	back.Zero()
	if rewrapped != nil {
		// Persist *rewrapped in place of wrapped.
		fmt.Println("re-wrapped with a newer key version:", rewrapped.KeyVersion != wrapped.KeyVersion)
	}
	// Output: re-wrapped with a newer key version: true
}

// Errors match sentinels with errors.Is and say what to do.
func ExampleError() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	auth, _ := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	ks, _ := kms.New(sim.Account.RootKeyCRN, auth, kms.WithURL(sim.URLs.KMS))

	op, _ := kp.New(kp.ClientConfig{BaseURL: sim.URLs.KMS, APIKey: sim.Account.APIKey,
		TokenURL: sim.URLs.TokenURL(), InstanceID: sim.Account.KMSInstanceID}, kp.DefaultTransport())
	if err := op.DisableKey(ctx, ks.CRN().KeyID); err != nil {
		log.Fatal(err)
	}

	_, _, err = ks.GenerateDEK(ctx)
	var e *kms.Error
	if errors.Is(err, kms.ErrKeyNotActive) && errors.As(err, &e) {
		fmt.Println("state:", e.State)
		fmt.Println("fix:", e.Fix())
	}
	// Output:
	// state: Suspended
	// fix: enable the key (kp key enable, or the console) or use an active root key
}

func ExampleEndpointURL() {
	c, _ := crn.ParseKey("crn:v1:bluemix:public:hs-crypto:eu-de:a/0123456789abcdef0123456789abcdef:" +
		"11111111-2222-3333-4444-555555555555:key:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
	public, _ := kms.EndpointURL(c, false, 0)
	private, _ := kms.EndpointURL(c, true, 0)
	port, _ := kms.EndpointURL(c, false, 9730)
	fmt.Println(public)
	fmt.Println(private)
	fmt.Println(port)
	// Output:
	// https://11111111-2222-3333-4444-555555555555.api.eu-de.hs-crypto.appdomain.cloud
	// https://11111111-2222-3333-4444-555555555555.api.private.eu-de.hs-crypto.appdomain.cloud
	// https://api.eu-de.hs-crypto.cloud.ibm.com:9730
}
