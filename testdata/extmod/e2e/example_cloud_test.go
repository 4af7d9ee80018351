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

// writeExampleDisk writes the disk image ExampleRun uploads (IMAGE_FILE):
// the sample disk of the flow's demonstrations, an Ubuntu-like ext4 disk
// that the image doctor passes (examples/cloudsim -sample-image writes the
// same), with the MBR the simulated backplane looks for after decryption.
func writeExampleDisk(tb testing.TB, env map[string]string) {
	tb.Helper()
	env["IMAGE_FILE"] = exampletest.SampleImage(tb)
}
