// Command preflight examines an image file as e2e's preflight does (the
// disk opened by disk.Open without options, then doctor.Examine), so that
// test/hostile can run the doctor in a process of its own and measure it
// (peak RSS, time, signals) on hostile images.
//
// Usage: preflight IMAGE
//
// It prints the report and exits 0 when every requirement passed, 5 when
// one failed, 6 when some were not inspected, 1 when the image could not
// be opened or read, and 130 on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: preflight IMAGE")
		return 2
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := disk.Open(io.NewSectionReader(f, 0, fi.Size()), fi.Size())
	if err != nil {
		fmt.Fprintln(os.Stderr, "preflight:", err)
		return 1
	}
	rep, err := doctor.Examine(ctx, d)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "preflight: interrupted")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, "preflight:", err)
		return 1
	}
	fmt.Print(rep.String())
	switch {
	case !rep.OK():
		return 5
	case !rep.Complete():
		return 6
	}
	return 0
}
