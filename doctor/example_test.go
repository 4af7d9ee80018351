package doctor_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
)

// Examine a disk that has a partition table but nothing installed on it:
// the checks that need an operating system fail or cannot look.
func ExampleExamine() {
	img := make([]byte, 8<<20)
	entry := img[446:462]                                                // partition entry 1
	entry[0], entry[4] = 0x80, 0x83                                      // bootable, Linux
	binary.LittleEndian.PutUint32(entry[8:], 2048)                       // first sector: 1 MiB
	binary.LittleEndian.PutUint32(entry[12:], uint32(len(img)/512-2048)) // sectors
	img[510], img[511] = 0x55, 0xAA                                      // MBR signature

	d, err := disk.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		log.Fatal(err)
	}
	rep, err := doctor.Examine(context.Background(), d)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range rep.Findings {
		fmt.Printf("%-22s %s\n", f.Check, f.Verdict)
	}
	fmt.Println("importable:", rep.OK())
	// Output:
	// partition table        pass
	// file systems           FAIL
	// disk size              pass
	// boot files             FAIL
	// operating system       FAIL
	// one boot volume        not inspected
	// supported OS           not inspected
	// 64-bit x86             not inspected
	// cloud-init             not inspected
	// ConfigDrive datasource not inspected
	// Xen block driver       not inspected
	// importable: false
}

// Check an image file before encrypting and importing it, with the OS
// reference code the import will name; with none, the report suggests one.
// Nothing is printed here, since the file is the reader's own.
func ExampleReport_CheckOSCode() {
	f, err := os.Open("disk.raw")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	d, err := disk.Open(f, fi.Size()) // raw, VHD or qcow2
	if err != nil {
		log.Fatal(err)
	}
	code := os.Getenv("OS_CODE") // e.g. UBUNTU_22_64, or empty
	var opts []doctor.Option
	if code != "" {
		opts = append(opts, doctor.WithOSCode(code))
	}
	rep, err := doctor.Examine(context.Background(), d, opts...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(rep) // every check, with the fix of those that did not pass
	if err := rep.CheckOSCode(code); errors.Is(err, doctor.ErrOSCodeMismatch) {
		log.Fatal(err) // the code names another system than the image holds
	}
	if code == "" {
		code = rep.OSCode() // "" when the system was not identified
	}
	if !rep.OK() || code == "" {
		log.Fatal("not importable as it is")
	}
	fmt.Println("import it as", code)
}

// The OS reference code of a system, from its os-release ID and VERSION_ID,
// and whether IBM supports that system for (encrypted) imports.
func ExampleOSCodeFor() {
	for _, sys := range [][2]string{{"ubuntu", "22.04"}, {"debian", "12"}, {"rhel", "9.4"}, {"centos", "7"}, {"arch", ""}} {
		code, supported := doctor.OSCodeFor(sys[0], sys[1])
		fmt.Printf("%s %s: %q supported=%v\n", sys[0], sys[1], code, supported)
	}
	// Output:
	// ubuntu 22.04: "UBUNTU_22_64" supported=true
	// debian 12: "DEBIAN_12_64" supported=true
	// rhel 9.4: "REDHAT_9_64" supported=true
	// centos 7: "CENTOS_7_64" supported=false
	// arch : "" supported=false
}
