package xts

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD (Linux, getrusage(2)): the calling
// thread's usage only.
const rusageThread = 1

// threadUserTime returns the user CPU time of the calling OS thread, the
// divisor `openssl speed` uses by default, so that bench/xts.sh can compare
// like with like on a shared machine. ok is false when it is unavailable.
func threadUserTime() (d time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano()), true
}
