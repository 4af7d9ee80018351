package classic

import (
	"testing"
)

// FuzzParseCOSURI: no panic, and what parses prints back as itself.
func FuzzParseCOSURI(f *testing.F) {
	for _, s := range []string{"cos://us-south/bucket/obj.vhd-0.vhd", "cos://eu-de/b.b-b/a/b/c", "cos://", "cos://x//", "s3://a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseCOSURI(s)
		if err != nil {
			return
		}
		if u.String() != s {
			t.Fatalf("ParseCOSURI(%q).String() = %q", s, u.String())
		}
		if _, err := ParseCOSURI(u.String()); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// FuzzValidateStatic: no panic on any request fields.
func FuzzValidateStatic(f *testing.F) {
	f.Add("img", "cos://us-south/images/a.vhd", "UBUNTU_22_64", int64(1<<30), "us-south-standard",
		"crn:v1:bluemix:public:kms:us-south:a/x:i:key:k", "d2Rlaw==")
	f.Fuzz(func(t *testing.T, name, uri, os string, size int64, loc, crn, wdek string) {
		req := ImportRequest{Name: name, URI: uri, OSCode: os, DiskSize: size, BucketLocation: loc,
			Encryption: &Encryption{RootKeyCRN: crn, WrappedDEK: wdek}}
		_, _ = validateStatic(&req)
	})
}
