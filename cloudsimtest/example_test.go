package cloudsimtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cloudsimtest"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
)

// Run the whole E2E flow against a simulated IBM Cloud in this process:
// prepare the account, encrypt and upload a disk image, import it, order a
// server from it and read the audit trail. In a test, cloudsimtest.Start(t,
// opts) starts the cloud and closes it when the test ends, and
// cloudsimtest.SampleImage(t) writes a disk image the simulated import
// accepts.
func ExampleNew() {
	cloud, err := cloudsimtest.New(cloudsimtest.Options{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer cloud.Close()

	clients, err := ibmcloud.Connect(cloud.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer clients.Close()

	// The simulated account holds a standard image template: encrypt it
	// (Plan.Image would take a disk image file instead, such as the one
	// cloudsimtest.SampleImage writes).
	res, err := e2e.Run(context.Background(), e2e.Plan{
		SourceTemplate: cloudsimtest.SampleTemplate,
		KeyService:     clients.Keys,
		IAM:            clients.IAM, Prepare: true,
		ServiceID:     iam.ServiceIDSpec{Name: "image-import"},
		COSInstanceID: cloud.COSInstanceID,
		COS:           clients.COS, Bucket: cloud.Bucket,
		Classic: clients.Classic,
		Server:  &classic.ServerSpec{Hostname: "web", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
		Audit:   clients.Audit,
		Clock:   cloud.Clock.Now, // the audit window in the cloud's (fast) time
		OnStep: func(s e2e.Step) {
			if s.Status != e2e.StepRunning {
				fmt.Println(s.Name, s.Status)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("template:", res.Template.Name, res.Template.Status)
	fmt.Println("server provisioned:", !res.Server.ProvisionDate.IsZero())
	fmt.Println("expected audit events not found:", len(res.AuditMissing))
	// Output:
	// prepare done
	// preflight done
	// key done
	// export done
	// upload done
	// import done
	// wait-template done
	// cleanup-export done
	// order done
	// wait-server done
	// audit done
	// template: e2e-sample-encrypted ACTIVE
	// server provisioned: true
	// expected audit events not found: 0
}
