package e2e_test

import (
	"testing"

	"example.com/extmod/internal/exampletest"
)

// ExampleRun runs against a fresh simulated account (fast clock) and prints
// what its comment says.
func TestExamplesAgainstTheSimulator(t *testing.T) {
	exampletest.Run(t, "run_example_test.go", exampletest.Sim{Seed: 1, ClockSpeed: 2000}, map[string]exampletest.Example{
		"ExampleRun": {F: ExampleRun, Prepare: writeExampleDisk},
	})
}

// writeExampleDisk gives ExampleRun the disk image it uploads (IMAGE_FILE):
// the simulator's sample disk, a small Linux disk with cloud-init that the
// simulated import accepts after decryption.
func writeExampleDisk(tb testing.TB, env map[string]string) {
	tb.Helper()
	env["IMAGE_FILE"] = exampletest.SampleDisk(tb)
}
