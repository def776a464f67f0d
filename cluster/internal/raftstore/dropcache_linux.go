package raftstore

import (
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// dropPages advises the kernel to drop the clean cached pages of f in
// [off, off+n) (n 0: to the end). It is advice: a failure changes nothing
// but the cache, so it is ignored.
func dropPages(f vfs.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
