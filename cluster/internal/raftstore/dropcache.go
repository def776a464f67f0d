package raftstore

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/demandflow/demandflow/cluster/internal/yield"
)

// dropCacheFS returns fs whose table files, written by flushes and
// compactions, leave the operating system's page cache as soon as their
// bytes are on disk (dropPages; a no-op where the OS has no such advice).
//
// Why: the raft log is written once and read back only by a follower that
// fell behind the memtable or at a restart, so its tables' pages in the
// page cache only evict the state store's. Dropping them also lets the
// next flush reuse those pages instead of faulting in new ones, which
// costs about 10 us a page on a VM whose free memory goes back to the
// host (bench/RESULTS.md, session 2026-12-06 23:00).
func dropCacheFS(fs vfs.FS) vfs.FS { return dropFS{fs} }

type dropFS struct{ vfs.FS }

// Create wraps the files of flushes and compactions.
func (fs dropFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	if yield.Background(category) && f.Fd() != vfs.InvalidFd {
		return &dropFile{File: f}, nil
	}
	return f, nil
}

// Unwrap returns the wrapped FS (vfs.Root follows it).
func (fs dropFS) Unwrap() vfs.FS { return fs.FS }

// dropFile drops the pages of a table file once they are written back.
type dropFile struct {
	vfs.File
	// clean is the offset below which SyncTo's earlier calls made every
	// page clean: Pebble's SyncTo waits for the write-back it started the
	// call before (sync_file_range with SYNC_FILE_RANGE_WAIT_BEFORE).
	// Pebble calls SyncTo from the table's writes, one at a time; atomic
	// all the same, as Sync may come from another goroutine.
	clean atomic.Int64
}

// SyncTo syncs as the file does, then drops the pages it knows are clean.
func (f *dropFile) SyncTo(length int64) (fullSync bool, err error) {
	fullSync, err = f.File.SyncTo(length)
	if err != nil {
		return fullSync, err
	}
	if fullSync {
		dropPages(f.File, 0, 0)
		return true, nil
	}
	if clean := f.clean.Swap(length); clean > 0 {
		dropPages(f.File, 0, clean)
	}
	return false, nil
}

// Sync syncs the file and drops all its pages.
func (f *dropFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	dropPages(f.File, 0, 0)
	return nil
}

// SyncData syncs the file's data and drops all its pages.
func (f *dropFile) SyncData() error {
	if err := f.File.SyncData(); err != nil {
		return err
	}
	dropPages(f.File, 0, 0)
	return nil
}
