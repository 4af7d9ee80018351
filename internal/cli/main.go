package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/e2eimage/e2eimage/internal/nocore"
)

// Main is the whole main function of an example command: it disables core
// files (no core file may hold a DEK or an API key), runs run with a
// context that SIGINT and SIGTERM cancel, and exits with run's code.
func Main(run func(ctx context.Context) int) {
	_ = nocore.Disable()
	os.Exit(runWithSignals(run))
}

// runWithSignals runs run with a context cancelled by SIGINT or SIGTERM;
// the signals are handled normally again once run returns.
func runWithSignals(run func(ctx context.Context) int) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx)
}
