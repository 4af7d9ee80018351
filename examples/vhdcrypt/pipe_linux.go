package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the buffer asked for a pipe on standard input or output: the
// default 64 KiB makes every 2 MiB block write 32 round trips through the
// scheduler; 1 MiB is the default limit for unprivileged processes
// (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// growPipe enlarges f's pipe buffer when f is a pipe. Failure is harmless
// (the pipe keeps its size), so it is ignored.
func growPipe(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	_, _ = unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, pipeSize)
}
