package cloudsim_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
)

// Start a simulated cloud and have its Key Protect generate and wrap a DEK
// through the official client, then find the audit event.
func ExampleStart() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{ClockSpeed: 600})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	c, err := kp.New(kp.ClientConfig{
		BaseURL:    sim.URLs.KMS,
		APIKey:     sim.Account.APIKey, // a fake credential of the simulator
		TokenURL:   sim.URLs.TokenURL(),
		InstanceID: sim.Account.KMSInstanceID,
	}, kp.DefaultTransport())
	if err != nil {
		fmt.Println(err)
		return
	}
	keyID := sim.Account.RootKeyCRN[strings.LastIndexByte(sim.Account.RootKeyCRN, ':')+1:]
	dek, _, err := c.WrapCreateDEK(ctx, keyID, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, _ := base64.StdEncoding.DecodeString(string(dek))
	fmt.Println("DEK bytes:", len(raw))
	fmt.Println("wrap events:", len(sim.Events.Find(atsim.Filter{Action: "kms.secrets.wrap", TargetID: sim.Account.RootKeyCRN})))
	// Output:
	// DEK bytes: 32
	// wrap events: 1
}
