//go:build unix

package nocore

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func disable() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("nocore: setting RLIMIT_CORE to 0: %w", err)
	}
	return nil
}
