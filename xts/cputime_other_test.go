//go:build !linux

package xts

import "time"

// threadUserTime is unavailable outside Linux; benchmarks then report
// wall-clock throughput only.
func threadUserTime() (time.Duration, bool) { return 0, false }
