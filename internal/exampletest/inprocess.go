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

// SampleImage writes the sample disk of the flow's demonstrations (the one
// examples/cloudsim -sample-image writes: an Ubuntu-like ext4 disk that the
// image doctor passes) to a new file in a temporary directory of the test
// and returns its path.
func SampleImage(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "disk.raw")
	if err := sampleimage.WriteFile(path, sampleimage.Options{Seed: 1}); err != nil {
		tb.Fatalf("writing the sample disk: %v", err)
	}
	return path
}
