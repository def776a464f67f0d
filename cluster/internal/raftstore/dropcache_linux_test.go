package raftstore

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// residentPages returns how many of the file's pages are in the page
// cache, and how many pages it has.
func residentPages(t *testing.T, path string) (resident, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0, 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix has no Mincore wrapper.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec)
}

// TestFlushedTablesLeavePageCache checks that the tables a flush writes
// are out of the page cache once Pebble synced them, and that the log
// reads back whole from disk.
func TestFlushedTablesLeavePageCache(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, vfs.Default)
	cfg.Dir = dir
	s := openStore(t, cfg)
	rng := rand.NewChaCha8([32]byte{3})
	const n, size = 64, 128 << 10 // 8 MiB of entries: one memtable
	for i := uint64(1); i <= n; i += 8 {
		if err := s.StoreLogs(randomLogs(rng, i, i+7, 1, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var resident, total int
	for _, p := range tables {
		r, n := residentPages(t, p)
		resident += r
		total += n
	}
	t.Logf("%d tables: %d of %d pages in the page cache", len(tables), resident, total)
	if total < n*size/os.Getpagesize() {
		t.Fatalf("tables hold %d pages, want >= %d: did the flush write the log?", total, n*size/os.Getpagesize())
	}
	// Pebble reads a table's footer and index after writing it.
	if resident > total/10 {
		t.Errorf("%d of %d table pages still cached, want <= %d", resident, total, total/10)
	}
	var l raft.Log
	for i := uint64(1); i <= n; i++ {
		if err := s.GetLog(i, &l); err != nil || l.Index != i || len(l.Data) != size {
			t.Fatalf("GetLog(%d): %v, index %d, %d bytes", i, err, l.Index, len(l.Data))
		}
	}
}
