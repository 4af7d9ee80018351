package iam_test

import (
	"testing"

	"github.com/e2eimage/e2eimage/internal/exampletest"
)

// The examples run against a fresh simulated account each and print what
// their comment says.
func TestExamplesAgainstTheSimulator(t *testing.T) {
	exampletest.Run(t, "example_test.go", exampletest.Sim{Seed: 1}, map[string]exampletest.Example{
		"Example":          {F: Example},
		"ExamplePreflight": {F: ExamplePreflight},
	})
}
