package vhdcrypt

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, without waiting for it. Files are synced before they are renamed into
// place; starting the writeback as the data is produced overlaps the disk
// writes with the encryption, leaves the final fsync little to do, and keeps
// the page cache from filling with gigabytes of dirty pages. Errors are
// ignored: fsync reports any that matter.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
