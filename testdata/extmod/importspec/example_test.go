package importspec_test

import (
	"fmt"

	"github.com/e2eimage/e2eimage/importspec"
)

func ExampleParseLocationConstraint() {
	for _, lc := range []string{"us-south-standard", "eu-cold", "ams03-smart"} {
		loc, _ := importspec.ParseLocationConstraint(lc)
		fmt.Println(lc, loc.Resiliency, loc.Location)
	}
	// Output:
	// us-south-standard Regional us-south
	// eu-cold Cross Region eu
	// ams03-smart Single Data Center ams03
}

func ExampleOSCodeFor() {
	code, supported := importspec.OSCodeFor("ubuntu", "22.04")
	fmt.Println(code, supported)
	code, supported = importspec.OSCodeFor("centos", "7")
	fmt.Println(code, supported)
	// Output:
	// UBUNTU_22_64 true
	// CENTOS_7_64 false
}

func ExampleExportedObjectName() {
	fmt.Println(importspec.ExportedObjectName("image.vhd", 0))
	fmt.Println(importspec.ExportedObjectName("image.vhd", 1))
	// Output:
	// image-0.vhd
	// image-1.vhd
}
