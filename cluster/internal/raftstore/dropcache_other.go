//go:build !linux

package raftstore

import "github.com/cockroachdb/pebble/v2/vfs"

// dropPages does nothing where the OS has no FADV_DONTNEED.
func dropPages(vfs.File, int64, int64) {}
