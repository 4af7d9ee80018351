package exampletest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
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
