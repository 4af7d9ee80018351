package slsim_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/softlayer/softlayer-go/filter"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// exampleIdentity knows API keys only.
type exampleIdentity map[string]simcore.Principal

func (e exampleIdentity) LookupAPIKey(k string) (simcore.Principal, bool) {
	p, ok := e[k]
	return p, ok
}
func (exampleIdentity) LookupToken(string) (simcore.Principal, bool) {
	return simcore.Principal{}, false
}

// exampleAuthz grants nothing: encrypted imports would fail with
// slsim.ReasonNoAuthorization.
type exampleAuthz struct{}

func (exampleAuthz) HasAuthorization(string, string, string, string) bool { return false }
func (exampleAuthz) HasAccess(string, string, string, string) bool        { return false }

// Serve the simulated SoftLayer API and call it with softlayer-go, exactly as
// code written for api.softlayer.com does.
func Example() {
	srv, err := slsim.New(slsim.Config{
		Identity: exampleIdentity{"my-ibm-cloud-api-key": {AccountID: "0123abcd", IAMID: "IBMid-100", Name: "me@example.com"}},
		Authz:    exampleAuthz{},
		// IAMTokenURL, S3URL, KMSURL and HPCSURL point the import backplane
		// at IAM, COS and Key Protect (cloudsim.Start wires them).
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	api := httptest.NewServer(srv.Handler())
	defer api.Close()

	sess := &session.Session{UserName: "apikey", APIKey: "my-ibm-cloud-api-key", Endpoint: api.URL + "/rest/v3.1"}
	descs, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(sess).
		Mask("referenceCode").
		Filter(filter.Build(filter.Path("referenceCode").StartsWith("UBUNTU"))).
		GetVhdImportSoftwareDescriptions()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range descs {
		fmt.Println(*d.ReferenceCode)
	}
	// Output:
	// UBUNTU_20_64
	// UBUNTU_22_64
	// UBUNTU_24_64
}
