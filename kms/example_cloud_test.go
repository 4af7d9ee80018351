package kms_test

import (
	"testing"

	"github.com/e2eimage/e2eimage/internal/exampletest"
)

// The examples that need a key service run against a fresh simulated
// account each and print what their comment says.
func TestExamplesAgainstTheSimulator(t *testing.T) {
	exampletest.Run(t, "example_test.go", exampletest.Sim{Seed: 1}, map[string]exampletest.Example{
		"Example":                       {F: Example},
		"ExampleClient_GenerateDEK":     {F: ExampleClient_GenerateDEK},
		"ExampleClient_Unwrap_rotation": {F: ExampleClient_Unwrap_rotation},
		"ExampleError":                  {F: ExampleError},
	})
}
