package doctor_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// TestExamineRefusesAnEncryptedVHD: disk.Open accepts an encrypted VHD (a
// VHD's first sector means nothing), but Examine must not read its
// ciphertext as a disk without a partition table and advise giving the
// whole disk: it returns ErrEncrypted and no report. The same disk before
// encryption is examined.
func TestExamineRefusesAnEncryptedVHD(t *testing.T) {
	raw, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	if err != nil {
		t.Fatal(err)
	}
	defer dek.Zero()
	ctx := context.Background()
	var enc bytes.Buffer
	if err := vhdcrypt.EncryptImage(ctx, &enc, bytes.NewReader(raw), dek); err != nil {
		t.Fatal(err)
	}
	d, err := disk.Open(bytes.NewReader(enc.Bytes()), int64(enc.Len()))
	if err != nil {
		t.Fatalf("disk.Open of the encrypted VHD: %v", err)
	}
	rep, err := doctor.Examine(ctx, d)
	if !errors.Is(err, doctor.ErrEncrypted) || rep != nil {
		t.Fatalf("Examine of an encrypted VHD: report %v, error %v; want ErrEncrypted and no report", rep, err)
	}

	plain, err := disk.Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := doctor.Examine(ctx, plain); err != nil || rep == nil || !rep.OK() {
		t.Fatalf("Examine of the same disk unencrypted: %v, %v", rep, err)
	}
}

// TestOSCodeFixNamesTheFlag: the fix for a contradicting OS code names the
// code and the commands' flag as it is spelled (-os-code, not --os-code).
func TestOSCodeFixNamesTheFlag(t *testing.T) {
	raw, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	d, err := disk.Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := doctor.Examine(context.Background(), d, doctor.WithOSCode("DEBIAN_12_64"))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := rep.Finding(doctor.CheckOSCode)
	if !ok || f.Verdict != doctor.Fail {
		t.Fatalf("OS code finding: %+v (found %v)", f, ok)
	}
	if want := "import with OS reference code UBUNTU_22_64 (-os-code UBUNTU_22_64)"; f.Fix != want {
		t.Fatalf("fix %q, want %q", f.Fix, want)
	}
}
