package raftstore

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"defaults with dir", Config{Dir: "d"}, ""},
		{"missing dir", Config{}, "dir is required"},
		{"negative cache", Config{Dir: "d", CacheSize: -1}, "cache size"},
		{"memtable too small", Config{Dir: "d", MemTableSize: 1024}, "memtable size"},
		{"memtable too big", Config{Dir: "d", MemTableSize: 2 << 30}, "memtable size"},
		{"compactions disabled", Config{Dir: "d", CompactMinEntries: -1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate: got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.FS == nil || c.Logger == nil || c.CacheSize != defaultCacheSize ||
		c.MemTableSize != defaultMemTableSize || c.CompactMinEntries != defaultCompactMinEntries {
		t.Errorf("DefaultConfig: got %+v, want every default set", c)
	}
	if _, err := Open(Config{}); err == nil {
		t.Error("Open without Dir: got nil error, want one")
	}
}

// TestClosed checks that Close is idempotent and that every method fails
// with ErrClosed afterwards instead of reaching a closed Pebble.
func TestClosed(t *testing.T) {
	s, err := Open(testConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	var l raft.Log
	calls := map[string]func() error{
		"FirstIndex":  func() error { _, err := s.FirstIndex(); return err },
		"LastIndex":   func() error { _, err := s.LastIndex(); return err },
		"GetLog":      func() error { return s.GetLog(1, &l) },
		"StoreLog":    func() error { return s.StoreLog(mkLog(1, 1)) },
		"StoreLogs":   func() error { return s.StoreLogs(mkLogs(1, 2, 1)) },
		"DeleteRange": func() error { return s.DeleteRange(1, 2) },
		"Set":         func() error { return s.Set([]byte("k"), []byte("v")) },
		"Get":         func() error { _, err := s.Get([]byte("k")); return err },
		"SetUint64":   func() error { return s.SetUint64([]byte("k"), 1) },
		"GetUint64":   func() error { _, err := s.GetUint64([]byte("k")); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want %v", name, err, ErrClosed)
		}
	}
}

// TestOpenTwice checks that Pebble's directory lock keeps a second store
// (say, a second node process on the same data dir) out.
func TestOpenTwice(t *testing.T) {
	cfg := Config{Dir: t.TempDir()}
	openStore(t, cfg)
	if s, err := Open(cfg); err == nil {
		s.Close()
		t.Fatal("second Open of the same dir: got nil error, want one")
	}
}

// TestOpenRejectsUnknownFormat checks that a store written with another
// key layout is refused rather than misread.
func TestOpenRejectsUnknownFormat(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(t, fs)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(metaVersionKey, []byte{formatVersion + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "unsupported format version") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open: got %v, want unsupported format version", err)
	}
}

// TestTruncationReclaimsSpace checks that a large head truncation, as raft
// does after a snapshot, removes the entries from Pebble's tables (not only
// hides them behind a tombstone) once the background compaction has run.
func TestTruncationReclaimsSpace(t *testing.T) {
	const n, keep = 20000, 1000
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	rng := rand.NewChaCha8([32]byte{1})
	for i := uint64(1); i <= n; i += 500 {
		if err := s.StoreLogs(randomLogs(rng, i, i+499, 1, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	before := s.db.Metrics().Total().TablesSize
	if before < n*1024 {
		t.Fatalf("tables before truncation: got %d bytes, want >= %d", before, n*1024)
	}

	if err := s.DeleteRange(1, n-keep); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if got := s.compactions.Load(); got == 0 {
			return errors.New("no background compaction yet")
		}
		return nil
	})
	after := s.db.Metrics().Total().TablesSize
	if after > before/4 {
		t.Errorf("tables after truncation: got %d bytes, want <= %d (before %d)", after, before/4, before)
	}
	t.Logf("sstables: %d bytes before, %d after truncating %d of %d entries", before, after, n-keep, n)

	// Count the log keys Pebble still holds.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for valid := it.First(); valid; valid = it.Next() {
		count++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if count != keep {
		t.Errorf("log keys: got %d, want %d", count, keep)
	}
	if first, _ := s.FirstIndex(); first != n-keep+1 {
		t.Errorf("FirstIndex: got %d, want %d", first, n-keep+1)
	}
}

// TestSmallTruncationSkipsCompaction checks that truncations below
// CompactMinEntries and tail truncations do not compact.
func TestSmallTruncationSkipsCompaction(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.CompactMinEntries = 100
	s := openStore(t, cfg)
	if err := s.StoreLogs(mkLogs(1, 300, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 50); err != nil { // 50 < 100
		t.Fatal(err)
	}
	if err := s.DeleteRange(101, 300); err != nil { // tail
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // waits for the compactor
		t.Fatal(err)
	}
	if got := s.compactions.Load(); got != 0 {
		t.Errorf("compactions: got %d, want 0", got)
	}
}
