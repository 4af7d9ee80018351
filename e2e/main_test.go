package e2e

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// verb must stop its pipeline before it returns.
func TestMain(m *testing.M) {
	if path := os.Getenv("E2E_HOLD_LOCK"); path != "" {
		holdStateLock(path)
	}
	goleak.VerifyTestMain(m)
}
