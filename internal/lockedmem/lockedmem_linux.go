package lockedmem

import "golang.org/x/sys/unix"

func protect(page []byte) Protection {
	return Protection{
		Locked:        unix.Mlock(page) == nil,
		NotInCoreDump: unix.Madvise(page, unix.MADV_DONTDUMP) == nil,
	}
}

func unprotect(page []byte) { _ = unix.Munlock(page) }
