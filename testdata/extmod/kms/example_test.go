package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// The examples that use a key service read the account from the
// environment: IBMCLOUD_API_KEY, ROOT_KEY_CRN (a Key Protect root key) and
// HPCS_ROOT_KEY_CRN (an HPCS one). IAM_URL, KMS_URL and HPCS_URL, when set,
// replace the public endpoints, for example with those of the local cloud
// simulator (go run ./examples/cloudsim prints them).

// Check the root key, make a 64-byte DEK wrapped by it, and unwrap it again.
func Example() {
	ctx := context.Background()
	apiKey := secret.NewString(os.Getenv("IBMCLOUD_API_KEY")) // or from a 0600 file
	auth, err := iam.NewAuthenticator(apiKey, iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	ks, err := kms.New(os.Getenv("ROOT_KEY_CRN"), auth, kms.WithURL(os.Getenv("KMS_URL")))
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

	// On a fresh simulated account, this prints:
	// Key Protect root Active
	// 64 bytes: [REDACTED]
	// same DEK: true rewrapped: false
}

// Have the key service generate a 32-byte DEK, as IBM's procedure does.
func ExampleClient_GenerateDEK() {
	ctx := context.Background()
	auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	ks, err := kms.New(os.Getenv("HPCS_ROOT_KEY_CRN"), auth, kms.WithURL(os.Getenv("HPCS_URL")))
	if err != nil {
		log.Fatal(err)
	}
	dek, wrapped, err := ks.GenerateDEK(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer dek.Zero()
	fmt.Println(ks.CRN().Service, dek.Len(), wrapped.Ciphertext != "")

	// On a fresh simulated account, this prints:
	// hs-crypto 32 true
}

// After a rotation of the root key, Unwrap also returns the DEK re-wrapped
// with the newest key version; store it in place of the old ciphertext.
func ExampleClient_Unwrap_rotation() {
	ctx := context.Background()
	auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	ks, err := kms.New(os.Getenv("ROOT_KEY_CRN"), auth, kms.WithURL(os.Getenv("KMS_URL")))
	if err != nil {
		log.Fatal(err)
	}
	dek, wrapped, err := ks.GenerateDEK(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dek.Zero()

	// An operator rotates the root key (here with keyprotect-go-client; this
	// package does not manage keys).
	op, err := kp.New(kp.ClientConfig{BaseURL: ks.Endpoint(), APIKey: os.Getenv("IBMCLOUD_API_KEY"),
		TokenURL: auth.URL() + "/identity/token", InstanceID: ks.CRN().InstanceID}, kp.DefaultTransport())
	if err != nil {
		log.Fatal(err)
	}
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

	// On a fresh simulated account, this prints:
	// re-wrapped with a newer key version: true
}

// Errors match sentinels with errors.Is and say what to do. Here the CRN
// names a key that the instance does not hold.
func ExampleError() {
	ctx := context.Background()
	auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(os.Getenv("IAM_URL")))
	if err != nil {
		log.Fatal(err)
	}
	key, err := crn.ParseKey(os.Getenv("ROOT_KEY_CRN"))
	if err != nil {
		log.Fatal(err)
	}
	key.KeyID = "00000000-0000-4000-8000-000000000000" // no such key
	ks, err := kms.New(key.String(), auth, kms.WithURL(os.Getenv("KMS_URL")))
	if err != nil {
		log.Fatal(err)
	}

	_, err = ks.Check(ctx)
	var e *kms.Error
	if errors.Is(err, kms.ErrKeyNotFound) && errors.As(err, &e) {
		fmt.Println("operation:", e.Op, "status:", e.Status)
		fmt.Println("fix:", e.Fix())
	}

	// On a fresh simulated account, this prints:
	// operation: describe status: 404
	// fix: check the key ID in the crn.Key and that the key is in this instance and region
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
