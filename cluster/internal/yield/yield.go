package yield

import (
	"runtime"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Background write categories: Pebble names the files of flushes and
// compactions with these when it creates them.
const (
	categoryFlush      vfs.DiskWriteCategory = "pebble-memtable-flush"
	categoryCompaction vfs.DiskWriteCategory = "pebble-compaction"
)

// FS returns fs whose files created for flushes and compactions yield the
// processor after every Write. Other files (a WAL, ingested tables,
// reads) are fs's own.
func FS(fs vfs.FS) vfs.FS { return yieldFS{fs} }

type yieldFS struct{ vfs.FS }

// Create wraps the files of background categories.
func (fs yieldFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	if Background(category) {
		wrapped.Add(1)
		return yieldFile{f}, nil
	}
	return f, nil
}

// Background reports whether Pebble creates files of category for its
// flushes and compactions (the tables they write).
func Background(category vfs.DiskWriteCategory) bool {
	return category == categoryFlush || category == categoryCompaction
}

// wrapped counts the files FS wrapped, so a test can tell when Pebble
// stops naming its background files with the categories above (they are
// not exported constants).
var wrapped atomic.Int64

// Unwrap returns the wrapped FS (vfs.Root follows it).
func (fs yieldFS) Unwrap() vfs.FS { return fs.FS }

type yieldFile struct{ vfs.File }

// Write writes p and then yields.
func (f yieldFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	runtime.Gosched()
	return n, err
}

// Every counts one unit of background work in *n and yields after every
// period units. It is for a loop's own counter, not shared between
// goroutines.
func Every(n *uint32, period uint32) {
	*n++
	if *n%period == 0 {
		runtime.Gosched()
	}
}

// Counter is Every for work spread over goroutines and calls that keep no
// state of their own (a Pebble merge operator): safe for concurrent use.
type Counter struct{ n atomic.Uint32 }

// Tick counts one unit and yields after every period units.
func (c *Counter) Tick(period uint32) {
	if c.n.Add(1)%period == 0 {
		runtime.Gosched()
	}
}
