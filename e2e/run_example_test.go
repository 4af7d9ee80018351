package e2e_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/secret"
)

// ExampleRun runs the whole flow against the local cloud simulator: a fresh
// account is prepared (authorization, service ID, API key, policies), a
// sample disk is encrypted and uploaded, imported, and a server is started
// from it. Against IBM Cloud, only Connect's Cloud changes: a real API key
// and root key CRN, and no Endpoints.
func ExampleRun() {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{ClockSpeed: 2000})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	clients, err := e2e.Connect(e2e.Cloud{
		APIKey:      secret.NewString(sim.Account.APIKey),
		RootKeyCRN:  sim.Account.RootKeyCRN,
		COSInstance: sim.Account.COSInstanceCRN,
		Endpoints: e2e.Endpoints{IAM: sim.URLs.IAM, KMS: sim.URLs.KMS, S3: sim.URLs.S3, SoftLayer: sim.URLs.SoftLayer,
			ActivityTracker: sim.URLs.ActivityTracker},
		PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer clients.Close()
	disk, err := sampleimage.Reader(sampleimage.Options{})
	if err != nil {
		log.Fatal(err)
	}

	res, err := e2e.Run(ctx, e2e.Plan{
		Image:      disk,
		Name:       "web-server",
		OSCode:     "UBUNTU_22_64",
		KeyService: clients.Keys,
		IAM:        clients.IAM, Prepare: true,
		ServiceID:     iam.ServiceIDSpec{Name: "image-import"},
		COSInstanceID: sim.Account.COSInstanceID,
		COS:           clients.COS, Bucket: sim.Account.Bucket,
		Classic: clients.Classic,
		Server:  &classic.ServerSpec{Hostname: "web", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
		Audit:   clients.Audit,
		Clock:   sim.Clock.Now,
		OnStep: func(s e2e.Step) {
			if s.Status != e2e.StepRunning {
				fmt.Println(s.Name, s.Status)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("object:", res.Object.Key)
	fmt.Println("template status:", res.Template.Status)
	fmt.Println("server provisioned:", !res.Server.ProvisionDate.IsZero())
	// Output:
	// prepare done
	// preflight done
	// key done
	// upload done
	// import done
	// wait-template done
	// order done
	// wait-server done
	// audit done
	// object: web-server.vhd-0.vhd
	// template status: ACTIVE
	// server provisioned: true
}
