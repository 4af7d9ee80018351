// Package flock takes advisory, exclusive, non-blocking file locks with
// flock(2), for the state file of a run (package e2e) and the partial
// outputs of an encryption (package vhdcrypt), and the simulator's S3 data
// directories (internal/cloudsim/s3sim).
//
// The kernel drops a lock when the last descriptor of its open file closes,
// also when the holding process dies, so a dead holder never keeps a lock.
// Where the system has no flock(2) (Windows, Plan 9, wasm) Try returns
// ErrUnsupported and each caller decides what that means for it.
package flock

import "errors"

// ErrUnsupported is Try's error where the system has no flock(2).
var ErrUnsupported = errors.New("flock: file locks are not supported on this system")
