package vhdcrypt

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// verb must stop its pipeline before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
