// Command doctor is the driver of bench/doctor.sh: it opens one image with
// package disk, runs doctor.Examine on it, prints the report, and exits 0
// when no check failed, 1 when one did, 2 on an error, so that the
// script can time one examination and measure its peak memory on its own.
//
//	doctor IMAGE
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: doctor IMAGE")
		os.Exit(2)
	}
	code, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "doctor:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 2, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 2, err
	}
	d, err := disk.Open(f, fi.Size())
	if err != nil {
		return 2, err
	}
	r, err := doctor.Examine(context.Background(), d)
	if err != nil {
		return 2, err
	}
	fmt.Print(r)
	if !r.OK() {
		return 1, nil
	}
	return 0, nil
}
