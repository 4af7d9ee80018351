package lockedmem

import "golang.org/x/sys/unix"

func protect(page []byte) Protection {
	return Protection{
		Locked:        unix.Mlock(page) == nil,
		NotInCoreDump: unix.Madvise(page, unix.MADV_DONTDUMP) == nil,
	}
}

// unprotect gives the page back the heap's flags, so that the kernel can
// merge its mapping with its neighbours again: every locked or advised
// page splits the heap's mapping, and a process has a limited number of
// mappings (vm.max_map_count).
func unprotect(page []byte) {
	_ = unix.Munlock(page)
	_ = unix.Madvise(page, unix.MADV_DODUMP)
}
