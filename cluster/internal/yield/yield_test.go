package yield

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestFSWrapsBackgroundFiles checks that only the files of flushes and
// compactions yield, and that what they write arrives unchanged.
func TestFSWrapsBackgroundFiles(t *testing.T) {
	mem := vfs.NewMem()
	fs := FS(mem)
	if fs.Unwrap() != mem {
		t.Fatal("Unwrap does not return the wrapped FS")
	}
	for _, tc := range []struct {
		cat    vfs.DiskWriteCategory
		yields bool
	}{
		{"pebble-memtable-flush", true},
		{"pebble-compaction", true},
		{"pebble-wal", false},
		{vfs.WriteCategoryUnspecified, false},
	} {
		name := fmt.Sprintf("f-%s", tc.cat)
		f, err := fs.Create(name, tc.cat)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.(yieldFile); ok != tc.yields {
			t.Errorf("category %q: yielding file %v, want %v", tc.cat, ok, tc.yields)
		}
		want := bytes.Repeat([]byte("demand"), 1000)
		// vfs.File.Write may scribble over its argument (MemFS does
		// under the race detector): write a copy.
		if n, err := f.Write(bytes.Clone(want)); err != nil || n != len(want) {
			t.Fatalf("category %q: Write = %d, %v", tc.cat, n, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := mem.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("category %q: read back %d bytes, %v; want %d", tc.cat, len(got), err, len(want))
		}
	}
	if _, err := fs.Create("missing/dir/f", "pebble-compaction"); err == nil {
		t.Fatal("Create in a missing directory: no error")
	}
}

// TestPebbleOnFS runs Pebble through flushes and a manual compaction on
// the wrapped FS, checks that their tables were yielding files (Pebble
// still names the categories as FS expects), and reads everything back
// after a reopen.
func TestPebbleOnFS(t *testing.T) {
	fs := FS(vfs.NewMem())
	wrapped0 := wrapped.Load()
	open := func() *pebble.DB {
		db, err := pebble.Open("db", &pebble.Options{FS: fs, MemTableSize: 256 << 10, Logger: quiet{}})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	const n = 20000
	val := bytes.Repeat([]byte("v"), 100)
	// Two rounds over the same keys, so the compaction rewrites tables
	// instead of moving them.
	for round := range 2 {
		for i := range n {
			if err := db.Set(fmt.Appendf(nil, "k%06d", i), val[round:], pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	val = val[1:]
	if err := db.Compact(t.Context(), []byte("k"), []byte("l"), true); err != nil {
		t.Fatal(err)
	}
	m := db.Metrics()
	if m.Flush.Count == 0 || m.Compact.DefaultCount == 0 {
		t.Fatalf("flushes %d, rewriting compactions %d: want both", m.Flush.Count, m.Compact.DefaultCount)
	}
	if got, want := wrapped.Load()-wrapped0, m.Flush.Count+m.Compact.DefaultCount; got < want {
		t.Errorf("%d yielding files for %d flushes and rewriting compactions: has Pebble renamed its write categories?", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open()
	defer db.Close()
	for _, i := range []int{0, n / 2, n - 1} {
		v, c, err := db.Get(fmt.Appendf(nil, "k%06d", i))
		if err != nil || !bytes.Equal(v, val) {
			t.Fatalf("key %d after reopen: %q, %v", i, v, err)
		}
		_ = c.Close()
	}
}

// TestCounterConcurrent ticks one Counter from several goroutines (run
// with -race) and checks the count.
func TestCounterConcurrent(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Tick(7)
			}
		})
	}
	wg.Wait()
	if got := c.n.Load(); got != 4000 {
		t.Fatalf("count %d, want 4000", got)
	}
	var n uint32
	for range 10 {
		Every(&n, 3)
	}
	if n != 10 {
		t.Fatalf("Every counted %d, want 10", n)
	}
}

// quiet is a Pebble logger that keeps the test output clean.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
