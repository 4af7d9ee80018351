package e2e_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/secret"
)

// ExampleRun runs the whole flow: the account is prepared (authorization,
// service ID, API key, policies), the disk image is encrypted while it is
// uploaded, imported, and a server is started from it.
//
// It reads the account from the environment: IBMCLOUD_API_KEY, ROOT_KEY_CRN,
// COS_INSTANCE_CRN and COS_INSTANCE_ID (the COS instance), COS_BUCKET (a
// Regional bucket in the key's region) and IMAGE_FILE (a raw or VHD disk
// image). The *_URL variables, unset for IBM Cloud, point it at other
// endpoints, such as those of the local cloud simulator (go run
// ./examples/cloudsim prints them; ibmcloud.LoadEndpoints reads that line).
func ExampleRun() {
	ctx := context.Background()
	clients, err := ibmcloud.Connect(ibmcloud.Config{
		APIKey:      secret.NewString(os.Getenv("IBMCLOUD_API_KEY")),
		RootKeyCRN:  os.Getenv("ROOT_KEY_CRN"),
		COSInstance: os.Getenv("COS_INSTANCE_CRN"),
		Endpoints: ibmcloud.Endpoints{
			IAM: os.Getenv("IAM_URL"), KMS: os.Getenv("KMS_URL"), S3: os.Getenv("S3_URL"),
			SoftLayer: os.Getenv("SOFTLAYER_URL"), ActivityTracker: os.Getenv("ACTIVITY_TRACKER_URL"),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer clients.Close()
	disk, err := os.Open(os.Getenv("IMAGE_FILE"))
	if err != nil {
		log.Fatal(err)
	}
	defer disk.Close()

	res, err := e2e.Run(ctx, e2e.Plan{
		Image:      disk,
		Name:       "web-server",
		OSCode:     "UBUNTU_22_64",
		KeyService: clients.Keys,
		IAM:        clients.IAM, Prepare: true,
		ServiceID:     iam.ServiceIDSpec{Name: "image-import"},
		COSInstanceID: os.Getenv("COS_INSTANCE_ID"),
		COS:           clients.COS, Bucket: os.Getenv("COS_BUCKET"),
		Classic: clients.Classic,
		Server:  &classic.ServerSpec{Hostname: "web", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
		Audit:   clients.Audit,
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

	// On a fresh simulated account, this prints:
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
