package cli

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunWithSignalsCancelsOnSIGTERM(t *testing.T) {
	code := runWithSignals(func(ctx context.Context) int {
		require.NoError(t, ctx.Err())
		require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
		select {
		case <-ctx.Done():
			return 130
		case <-time.After(10 * time.Second):
			return 1
		}
	})
	require.Equal(t, 130, code)
}
