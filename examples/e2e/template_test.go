package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's template demo: the simulator's sample template encrypted
// (with the account prepared first, as the demo always does), the
// plaintext export deleted.
func TestFromTemplateDemo(t *testing.T) {
	code, _, stderr := runMain(t, nil, "-from-template", "e2e-sample", "-q", "-hostname", "")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "[1] prepare       done")
	require.Contains(t, stderr, "deleted the plaintext export")
}
