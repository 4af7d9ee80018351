package kms_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No test may leave a goroutine behind (the retry transport's waits, the
// simulator's servers, idle connections).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
