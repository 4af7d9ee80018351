package importspec_test

import (
	"errors"
	"testing"

	"github.com/e2eimage/e2eimage/importspec"
)

func TestOSCodes(t *testing.T) {
	t.Parallel()
	sup := importspec.SupportedOperatingSystems()
	if len(sup) != 11 {
		t.Fatalf("%d supported systems, IBM lists 11", len(sup))
	}
	for _, o := range sup {
		if !importspec.IsSupportedOSCode(o.Code) {
			t.Errorf("%s: IsSupportedOSCode false", o.Code)
		}
	}
	if len(importspec.SupportedOSCodes()) != len(sup) {
		t.Error("SupportedOSCodes and SupportedOperatingSystems differ")
	}
	for _, c := range []string{"UBUNTU_18_64", "CENTOS_7_64", "", "WIN_2012-STD_64"} {
		if importspec.IsSupportedOSCode(c) {
			t.Errorf("%q reported supported", c)
		}
	}
	if !importspec.IsSupportedOSCode("ubuntu_22_64") {
		t.Error("codes are compared without case")
	}
	cases := []struct {
		id, version, code string
		supported         bool
	}{
		{"ubuntu", "22.04", "UBUNTU_22_64", true},
		{"Ubuntu ", "24.04", "UBUNTU_24_64", true},
		{"ubuntu", "18.04", "UBUNTU_18_64", false},
		{"ubuntu", "23.10", "", false},
		{"debian", "12", "DEBIAN_12_64", true},
		{"debian", "12.4", "DEBIAN_12_64", true},
		{"rhel", "9.3", "REDHAT_9_64", true},
		{"centos", "9", "CENTOS_STREAM_9_64", true},
		{"centos", "7", "CENTOS_7_64", false},
		{"rocky", "8.9", "ROCKYLINUX_8_64", false},
		{"", "", "", false},
		{"arch", "", "", false},
	}
	for _, c := range cases {
		code, ok := importspec.OSCodeFor(c.id, c.version)
		if code != c.code || ok != c.supported {
			t.Errorf("OSCodeFor(%q, %q) = %q, %v; want %q, %v", c.id, c.version, code, ok, c.code, c.supported)
		}
	}
}

func TestImportLocations(t *testing.T) {
	t.Parallel()
	if got := importspec.ImportRegionList(); got != "us-south, us-east, eu-gb, eu-de, jp-tok, au-syd" {
		t.Errorf("ImportRegionList() = %q", got)
	}
	for _, r := range importspec.ImportRegions() {
		if !importspec.IsImportRegion(r) {
			t.Errorf("%s: IsImportRegion false", r)
		}
	}
	if importspec.IsImportRegion("br-sao") || importspec.IsImportRegion("") {
		t.Error("br-sao or \"\" taken for an import region")
	}
	for region, want := range map[string]string{"us-south": "dal13", "us-east": "wdc07", "eu-gb": "lon02", "eu-de": "fra02", "jp-tok": "", "au-syd": "", "br-sao": ""} {
		dc, ok := importspec.ImportDatacenter(region)
		if dc != want || ok != (want != "") {
			t.Errorf("ImportDatacenter(%s) = %q, %v; want %q", region, dc, ok, want)
		}
	}
}

func TestParseLocationConstraint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, loc, class string
		res            importspec.Resiliency
	}{
		{"us-south-standard", "us-south", "standard", importspec.Regional},
		{"\n  eu-de-smart\n", "eu-de", "smart", importspec.Regional},
		{"jp-tok-onerate_active", "jp-tok", "onerate_active", importspec.Regional},
		{"us-south", "us-south", "", importspec.Regional},
		{"us-standard", "us", "standard", importspec.CrossRegion},
		{"EU-cold", "eu", "cold", importspec.CrossRegion},
		{"ams03-vault", "ams03", "vault", importspec.SingleSite},
		{"sng01-smart", "sng01", "smart", importspec.SingleSite},
		{"US-SOUTH-VAULT", "us-south", "vault", importspec.Regional},
		{"ap-flex", "ap", "flex", importspec.CrossRegion},
	}
	for _, c := range cases {
		l, err := importspec.ParseLocationConstraint(c.in)
		if err != nil || l.Location != c.loc || l.Class != c.class || l.Resiliency != c.res {
			t.Errorf("ParseLocationConstraint(%q) = %+v, %v", c.in, l, err)
		}
	}
	for _, bad := range []string{"", "  ", "mars", "us-south-standard-x", "u-s", "standard", "x", "us-south-east-1-standard"} {
		if _, err := importspec.ParseLocationConstraint(bad); !errors.Is(err, importspec.ErrUnknownLocation) {
			t.Errorf("ParseLocationConstraint(%q): %v, want ErrUnknownLocation", bad, err)
		}
	}
	if importspec.Regional.String() != "Regional" || importspec.SingleSite.String() != "Single Data Center" {
		t.Error("resiliency names")
	}
}

func TestExportNames(t *testing.T) {
	t.Parallel()
	if got := importspec.ExportedObjectName("image.vhd", 0); got != "image-0.vhd" {
		t.Errorf("ExportedObjectName(image.vhd, 0) = %q; IBM documents image-0.vhd", got)
	}
	if got := importspec.ExportedObjectName("image.VHD", 1); got != "image-1.vhd" {
		t.Errorf("ExportedObjectName(image.VHD, 1) = %q", got)
	}
	if got := importspec.ExportStem("a/img.VHD"); got != "a/img" {
		t.Errorf("ExportStem(a/img.VHD) = %q", got)
	}
	if got := importspec.ExportedObjectName("backup", 2); got != "backup-2.vhd" {
		t.Errorf("ExportedObjectName(backup, 2) = %q", got)
	}
	cases := []struct {
		file, key string
		n         int
		ok        bool
	}{
		{"image.vhd", "image-0.vhd", 0, true},
		{"image.vhd", "image-1.VHD", 1, true},
		{"image.vhd", "image.vhd-0.vhd", 0, true},
		{"image.vhd", "image.vhd", 0, false},
		{"image.vhd", "image-x.vhd", 0, false},
		{"image.vhd", "image2-0.vhd", 0, false},
		{"image.vhd", "image-99999999999999999999.vhd", 0, false},
		{"a.b.vhd", "a.b-3.vhd", 3, true},
		{"dir/image.vhd", "dir/image-12.vhd", 12, true},
		{"dir/image.vhd", "dir/imagery-0.vhd", 0, false},
		{"dir/image.vhd", "other/image-0.vhd", 0, false},
		{"a/img.VHD", "a/img-0.vhd", 0, true},
		{"a.b.vhd", "axb-3.vhd", 0, false},
	}
	for _, c := range cases {
		n, ok := importspec.ParseExportedName(c.file, c.key)
		if n != c.n || ok != c.ok {
			t.Errorf("ParseExportedName(%q, %q) = %d, %v; want %d, %v", c.file, c.key, n, ok, c.n, c.ok)
		}
	}
}

func TestIsWindows(t *testing.T) {
	for code, want := range map[string]bool{
		"WIN_2019-STD_64": true, "win_2022-std_64": true, "UBUNTU_22_64": false, "": false, "WINDOWS": false,
	} {
		if got := importspec.IsWindows(code); got != want {
			t.Errorf("importspec.IsWindows(%q) = %v, want %v", code, got, want)
		}
	}
	for _, sys := range importspec.SupportedOperatingSystems() {
		if got, want := importspec.IsWindows(sys.Code), sys.OSReleaseID == ""; got != want {
			t.Errorf("%s: IsWindows = %v, but the table says os-release ID %q", sys.Code, got, sys.OSReleaseID)
		}
	}
}
