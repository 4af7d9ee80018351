package crn_test

import (
	"fmt"
	"log"

	"github.com/e2eimage/e2eimage/crn"
)

func ExampleParseKey() {
	c, err := crn.ParseKey("crn:v1:bluemix:public:hs-crypto:eu-de:a/0123456789abcdef0123456789abcdef:" +
		"11111111-2222-3333-4444-555555555555:key:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Service.DisplayName(), c.Region, c.InstanceID, c.KeyID)

	_, err = crn.ParseKey("crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:" +
		"11111111-2222-3333-4444-555555555555::")
	fmt.Println(err)
	// Output:
	// Hyper Protect Crypto Services eu-de 11111111-2222-3333-4444-555555555555 aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
	// crn: invalid key CRN: resource-type: want "key": this is not a key CRN
}
