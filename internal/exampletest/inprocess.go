package exampletest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// StartSimulator starts the local cloud simulator in this process, stops it
// when the test ends, and returns its description: the JSON fields that
// examples/cloudsim prints (service URLs and the seeded account).
func StartSimulator(tb testing.TB, s Sim) map[string]string {
	tb.Helper()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{
		Seed: s.Seed, ClockSpeed: s.ClockSpeed, SeedAuthorizations: s.SeedAuthorizations,
	})
	if err != nil {
		tb.Fatalf("starting the simulator: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	b, err := json.Marshal(struct {
		cloudsim.URLs
		cloudsim.Account
	}{sim.URLs, sim.Account})
	if err != nil {
		tb.Fatal(err)
	}
	var info map[string]string
	if err := json.Unmarshal(b, &info); err != nil {
		tb.Fatalf("the simulator's description: %v", err)
	}
	return info
}

// SampleDisk writes a disk image the simulated import accepts to a new file
// in the test's temporary directory and returns its path: the disk
// examples/cloudsim -sample-disk writes (an MBR and an ext4 root laid out
// as Ubuntu 22.04's, with cloud-init recorded and ConfigDrive in its
// datasource_list), which the simulator's import checks after decryption.
func SampleDisk(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "sample-disk.raw")
	if err := sampleimage.WriteFile(p, sampleimage.Options{Size: sampleimage.MinSize}); err != nil {
		tb.Fatal(err)
	}
	return p
}
