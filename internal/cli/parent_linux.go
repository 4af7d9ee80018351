package cli

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// startPPID is the parent process when the program started, to notice a
// parent that ended before StopWithParent asked to be told.
var startPPID = os.Getppid()

// StopWithParent makes the kernel send this process SIGTERM when the
// process that started it ends (prctl PR_SET_PDEATHSIG), and sends it at
// once when that process has already ended. A command that holds a
// simulator calls it after installing its SIGTERM handler, so that the
// simulator stops with its parent: `go run` runs the program as a child and
// ends on SIGTERM without passing the signal on, which would leave the
// program serving with nobody to stop it. Linux only; elsewhere it does
// nothing.
func StopWithParent() error {
	// The kernel keeps the setting per thread and drops it when that
	// thread ends; Go ends a thread when a goroutine locked to it ends. A
	// goroutine of its own, locked to its thread for the life of the
	// process, keeps it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		errc <- unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0)
		select {}
	}()
	if err := <-errc; err != nil {
		return err
	}
	if os.Getppid() != startPPID {
		return unix.Kill(os.Getpid(), unix.SIGTERM)
	}
	return nil
}
