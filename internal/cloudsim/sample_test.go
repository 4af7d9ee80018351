package cloudsim

import (
	"bytes"
	"context"
	"testing"

	"github.com/e2eimage/e2eimage/vhd"
)

// DynamicVHD, written without package vhd, is a dynamic VHD that package
// vhd (and so the encryptor) reads back to the same disk, zero blocks
// unallocated.
func TestDynamicVHDReadsBack(t *testing.T) {
	raw := make([]byte, 5<<20+3*512) // 3 blocks, the last partial
	copy(raw[100:], "first block")
	copy(raw[4<<20+7:], "third block")
	img, err := DynamicVHD(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vhd.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if v.Type() != vhd.Dynamic || v.Size() != int64(len(raw)) {
		t.Fatalf("type %v size %d, want dynamic %d", v.Type(), v.Size(), len(raw))
	}
	rep, err := v.Check(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %v", rep, err)
	}
	allocated := 0
	for i := range vhd.NumBlocks(v.Size()) {
		b, err := v.Block(i)
		if err != nil {
			t.Fatal(err)
		}
		if b.Bitmap != nil {
			allocated++
		}
	}
	if allocated != 2 {
		t.Errorf("%d blocks allocated, want 2 (the zero block unallocated)", allocated)
	}
	got := make([]byte, len(raw))
	if _, err := v.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Error("the VHD does not read back to the disk")
	}
	if _, err := DynamicVHD(raw[:1000]); err == nil {
		t.Error("a size that is not whole sectors was accepted")
	}
}
