package e2e_test

import (
	"os"
	"path/filepath"
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
// 8 MiB with an MBR (a boot signature and one Linux partition), which the
// simulated backplane looks for after decryption, and a little data.
func writeExampleDisk(tb testing.TB, env map[string]string) {
	tb.Helper()
	d := make([]byte, 8<<20)
	d[446+4] = 0x83                  // partition type: Linux
	d[446+8], d[446+12] = 0x08, 0x40 // start LBA 8, 16384 sectors
	d[510], d[511] = 0x55, 0xAA
	copy(d[1<<20:], "some file system bytes")
	path := filepath.Join(tb.TempDir(), "disk.raw")
	if err := os.WriteFile(path, d, 0o600); err != nil {
		tb.Fatal(err)
	}
	env["IMAGE_FILE"] = path
}
