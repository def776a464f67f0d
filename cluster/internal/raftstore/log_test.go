package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// logOp is one step of a conformance case: a StoreLogs of indexes with
// term (one StoreLog call when there is one index), or a DeleteRange.
type logOp struct {
	store  []uint64
	term   uint64
	delete bool
	lo, hi uint64
}

func st(term uint64, indexes ...uint64) logOp { return logOp{store: indexes, term: term} }

func stRange(term, lo, hi uint64) logOp {
	var idx []uint64
	for i := lo; i <= hi; i++ {
		idx = append(idx, i)
	}
	return logOp{store: idx, term: term}
}

func del(lo, hi uint64) logOp { return logOp{delete: true, lo: lo, hi: hi} }

// TestLogStoreConformance runs every LogStore method through gaps,
// overwrites and DeleteRange at the head, tail and middle, and checks the
// result both on the open store and after a restart.
func TestLogStoreConformance(t *testing.T) {
	tests := []struct {
		name        string
		ops         []logOp
		first, last uint64
		present     map[uint64]uint64 // index -> term
		absent      []uint64
	}{
		{
			name:   "empty",
			absent: []uint64{0, 1, 2, math.MaxUint64},
		},
		{
			name:    "single StoreLog",
			ops:     []logOp{st(1, 5)},
			first:   5,
			last:    5,
			present: map[uint64]uint64{5: 1},
			absent:  []uint64{0, 4, 6},
		},
		{
			name:    "contiguous batch",
			ops:     []logOp{stRange(1, 1, 100)},
			first:   1,
			last:    100,
			present: map[uint64]uint64{1: 1, 50: 1, 100: 1},
			absent:  []uint64{0, 101},
		},
		{
			name:    "gap between batches",
			ops:     []logOp{stRange(1, 1, 5), stRange(2, 10, 12)},
			first:   1,
			last:    12,
			present: map[uint64]uint64{5: 1, 10: 2, 12: 2},
			absent:  []uint64{6, 7, 9, 13},
		},
		{
			name:    "gaps inside one unordered batch",
			ops:     []logOp{st(3, 9, 3, 7)},
			first:   3,
			last:    9,
			present: map[uint64]uint64{3: 3, 7: 3, 9: 3},
			absent:  []uint64{4, 5, 6, 8},
		},
		{
			name:    "store below first",
			ops:     []logOp{stRange(1, 100, 110), stRange(1, 50, 52)},
			first:   50,
			last:    110,
			present: map[uint64]uint64{50: 1, 52: 1, 100: 1},
			absent:  []uint64{53, 99},
		},
		{
			name:    "overwrite keeps bounds",
			ops:     []logOp{stRange(1, 1, 10), st(2, 5)},
			first:   1,
			last:    10,
			present: map[uint64]uint64{4: 1, 5: 2, 6: 1},
		},
		{
			name:    "empty StoreLogs",
			ops:     []logOp{stRange(1, 1, 3), {store: []uint64{}}},
			first:   1,
			last:    3,
			present: map[uint64]uint64{1: 1, 3: 1},
		},
		{
			name:    "delete head (truncation after snapshot)",
			ops:     []logOp{stRange(1, 1, 100), del(1, 60)},
			first:   61,
			last:    100,
			present: map[uint64]uint64{61: 1, 100: 1},
			absent:  []uint64{1, 30, 60},
		},
		{
			name:    "delete head from below first",
			ops:     []logOp{stRange(1, 10, 20), del(0, 14)},
			first:   15,
			last:    20,
			present: map[uint64]uint64{15: 1, 20: 1},
			absent:  []uint64{10, 14},
		},
		{
			name:    "delete tail then append (conflict truncation)",
			ops:     []logOp{stRange(1, 1, 100), del(61, 100), stRange(2, 61, 65)},
			first:   1,
			last:    65,
			present: map[uint64]uint64{60: 1, 61: 2, 65: 2},
			absent:  []uint64{66, 100},
		},
		{
			name:    "delete tail to MaxUint64",
			ops:     []logOp{stRange(1, 1, 10), del(4, math.MaxUint64)},
			first:   1,
			last:    3,
			present: map[uint64]uint64{3: 1},
			absent:  []uint64{4, 10},
		},
		{
			name:    "delete middle",
			ops:     []logOp{stRange(1, 1, 100), del(40, 60)},
			first:   1,
			last:    100,
			present: map[uint64]uint64{1: 1, 39: 1, 61: 1, 100: 1},
			absent:  []uint64{40, 50, 60},
		},
		{
			name:   "delete everything",
			ops:    []logOp{stRange(1, 1, 100), del(1, 100)},
			absent: []uint64{1, 50, 100},
		},
		{
			name:   "delete whole key space",
			ops:    []logOp{stRange(1, 1, 10), stRange(1, 1000, 1001), del(0, math.MaxUint64)},
			absent: []uint64{1, 10, 1000, 1001},
		},
		{
			name:    "append after deleting everything",
			ops:     []logOp{stRange(1, 1, 10), del(1, 10), stRange(3, 200, 201)},
			first:   200,
			last:    201,
			present: map[uint64]uint64{200: 3, 201: 3},
			absent:  []uint64{1, 10, 199},
		},
		{
			name:    "delete inside a gap",
			ops:     []logOp{stRange(1, 1, 5), stRange(1, 10, 12), del(6, 9)},
			first:   1,
			last:    12,
			present: map[uint64]uint64{5: 1, 10: 1},
		},
		{
			name:    "delete past the end",
			ops:     []logOp{stRange(1, 1, 5), del(10, 20)},
			first:   1,
			last:    5,
			present: map[uint64]uint64{1: 1, 5: 1},
		},
		{
			name:    "delete head ending in a gap",
			ops:     []logOp{stRange(1, 1, 5), stRange(1, 10, 12), del(1, 7)},
			first:   10,
			last:    12,
			present: map[uint64]uint64{10: 1, 12: 1},
			absent:  []uint64{1, 5},
		},
		{
			name:    "delete tail starting in a gap",
			ops:     []logOp{stRange(1, 1, 5), stRange(1, 10, 12), del(7, 12)},
			first:   1,
			last:    5,
			present: map[uint64]uint64{1: 1, 5: 1},
			absent:  []uint64{10, 12},
		},
		{
			name:    "inverted range is a no-op",
			ops:     []logOp{stRange(1, 1, 5), del(5, 1)},
			first:   1,
			last:    5,
			present: map[uint64]uint64{1: 1, 5: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, nil)
			s := openStore(t, cfg)
			for i, op := range tc.ops {
				var err error
				switch {
				case op.delete:
					err = s.DeleteRange(op.lo, op.hi)
				case len(op.store) == 1:
					err = s.StoreLog(mkLog(op.store[0], op.term))
				default:
					logs := make([]*raft.Log, 0, len(op.store))
					for _, idx := range op.store {
						logs = append(logs, mkLog(idx, op.term))
					}
					err = s.StoreLogs(logs)
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			check := func(t *testing.T, s *Store) {
				first, err := s.FirstIndex()
				if err != nil || first != tc.first {
					t.Errorf("FirstIndex: got %d, %v, want %d", first, err, tc.first)
				}
				last, err := s.LastIndex()
				if err != nil || last != tc.last {
					t.Errorf("LastIndex: got %d, %v, want %d", last, err, tc.last)
				}
				for idx, term := range tc.present {
					var got raft.Log
					if err := s.GetLog(idx, &got); err != nil {
						t.Errorf("GetLog(%d): %v", idx, err)
						continue
					}
					if d := diffLog(&got, mkLog(idx, term)); d != "" {
						t.Errorf("GetLog(%d): %s", idx, d)
					}
				}
				for _, idx := range tc.absent {
					var got raft.Log
					if err := s.GetLog(idx, &got); !errors.Is(err, raft.ErrLogNotFound) {
						t.Errorf("GetLog(%d): got %v, want %v", idx, err, raft.ErrLogNotFound)
					}
				}
			}
			t.Run("open", func(t *testing.T) { check(t, s) })
			s = reopen(t, s, cfg)
			t.Run("restart", func(t *testing.T) { check(t, s) })
		})
	}
}

// TestLogRoundTrip checks that every field of raft.Log survives a store,
// a read and a restart, including empty and 512 KiB payloads.
func TestLogRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), raft.SuggestedMaxDataSize/16)
	tests := []struct {
		name string
		log  raft.Log
	}{
		{"zero fields", raft.Log{Index: 1}},
		{"noop", raft.Log{Index: 2, Term: 7, Type: raft.LogNoop}},
		{"configuration", raft.Log{Index: 3, Term: 7, Type: raft.LogConfiguration, Data: []byte{1, 2, 3}}},
		{"barrier", raft.Log{Index: 4, Term: 7, Type: raft.LogBarrier}},
		{"extensions only", raft.Log{Index: 5, Term: 1, Extensions: []byte("trace=abc")}},
		{"appended at with nanos", raft.Log{Index: 6, Term: 1, AppendedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}},
		{"appended at before 1970", raft.Log{Index: 7, Term: 1, AppendedAt: time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC)}},
		{"max term and index", raft.Log{Index: math.MaxUint64, Term: math.MaxUint64, Data: []byte("x")}},
		{"512 KiB data", raft.Log{Index: 8, Term: 2, Data: big, Extensions: []byte("e"), AppendedAt: time.Unix(1, 2)}},
		{"unknown type", raft.Log{Index: 9, Term: 2, Type: raft.LogType(200), Data: []byte("future")}},
	}
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	for _, tc := range tests {
		if err := s.StoreLog(&tc.log); err != nil {
			t.Fatalf("StoreLog(%s): %v", tc.name, err)
		}
	}
	for _, phase := range []string{"open", "restart"} {
		if phase == "restart" {
			s = reopen(t, s, cfg)
		}
		for _, tc := range tests {
			t.Run(phase+"/"+tc.name, func(t *testing.T) {
				var got raft.Log
				if err := s.GetLog(tc.log.Index, &got); err != nil {
					t.Fatalf("GetLog: %v", err)
				}
				if d := diffLog(&got, &tc.log); d != "" {
					t.Error(d)
				}
				if len(tc.log.Data) == 0 && got.Data != nil {
					t.Errorf("data: got %q, want nil", got.Data)
				}
			})
		}
	}
}

// TestGetLogOwnership checks that the caller owns the returned slices.
func TestGetLogOwnership(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	want := mkLog(1, 1)
	if err := s.StoreLog(want); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); err != nil {
		t.Fatal(err)
	}
	ext := bytes.Clone(got.Extensions)
	got.Data = append(got.Data, "appended"...)
	if !bytes.Equal(got.Extensions, ext) {
		t.Errorf("appending to Data changed Extensions: got %q, want %q", got.Extensions, ext)
	}
	got.Data[0] = 'X'
	var again raft.Log
	if err := s.GetLog(1, &again); err != nil {
		t.Fatal(err)
	}
	if d := diffLog(&again, want); d != "" {
		t.Errorf("after modifying a returned log: %s", d)
	}
}

// TestStoreLogsInvalid checks that a bad entry fails the whole batch.
func TestStoreLogsInvalid(t *testing.T) {
	tests := []struct {
		name string
		logs []*raft.Log
	}{
		{"nil entry", []*raft.Log{mkLog(1, 1), nil}},
		{"index 0", []*raft.Log{mkLog(1, 1), {Index: 0, Term: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, testConfig(t, nil))
			if err := s.StoreLogs(tc.logs); err == nil {
				t.Fatal("StoreLogs: got nil error, want one")
			}
			if last, _ := s.LastIndex(); last != 0 {
				t.Errorf("LastIndex: got %d, want 0", last)
			}
			var got raft.Log
			if err := s.GetLog(1, &got); !errors.Is(err, raft.ErrLogNotFound) {
				t.Errorf("GetLog(1): got %v, want %v", err, raft.ErrLogNotFound)
			}
		})
	}
}

// TestGetLogCorrupt checks that a damaged value is an error, not a panic or
// a wrong entry.
func TestGetLogCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	good := make([]byte, encodedLogLen(mkLog(2, 1)))
	encodeLog(good, mkLog(2, 1))
	for _, v := range [][]byte{nil, {9}, good[:len(good)-1], good} {
		if err := s.db.Set(logKey(1), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		var got raft.Log
		if err := s.GetLog(1, &got); !errors.Is(err, errCorrupt) {
			t.Errorf("GetLog of %x: got %v, want %v", v, err, errCorrupt)
		}
	}
}

// TestConcurrentAppendTruncate runs raft's access pattern (appends from one
// goroutine, head truncation from another, reads from several) under the
// race detector and checks that the bounds stay ordered.
func TestConcurrentAppendTruncate(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	const total, batch = 2000, 20
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := uint64(1); i <= total; i += batch {
			if err := s.StoreLogs(mkLogs(i, i+batch-1, 1)); err != nil {
				t.Errorf("StoreLogs: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			last, _ := s.LastIndex()
			if last > 100 {
				if err := s.DeleteRange(0, last-100); err != nil {
					t.Errorf("DeleteRange: %v", err)
					return
				}
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				if first > last && last != 0 {
					t.Errorf("bounds: got first %d > last %d", first, last)
				}
				var l raft.Log
				if err := s.GetLog(last, &l); err != nil && !errors.Is(err, raft.ErrLogNotFound) {
					t.Errorf("GetLog(%d): %v", last, err)
				}
			}
		})
	}
	wg.Wait()
	if last, _ := s.LastIndex(); last != total {
		t.Errorf("LastIndex: got %d, want %d", last, total)
	}
}

// TestOnStoreLogs: the hook sees every StoreLogs that writes, with its
// entry count and a duration, and none that fails validation.
func TestOnStoreLogs(t *testing.T) {
	cfg := testConfig(t, nil)
	var calls []int
	var total time.Duration
	cfg.OnStoreLogs = func(n int, d time.Duration) { calls = append(calls, n); total += d }
	s := openStore(t, cfg)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 4, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 0}}); err == nil {
		t.Fatal("StoreLogs of index 0: no error")
	}
	if fmt.Sprint(calls) != "[3 1]" || total <= 0 {
		t.Fatalf("hook calls: got %v (total %v), want [3 1] with a positive time", calls, total)
	}
}

// TestStoreLogsReusesBatch stores batches that alternate between small
// ones, which reuse StoreLogs' kept buffer, and ones larger than half the
// memtable, which Pebble commits as flushables that hold on to their
// buffer. Every entry must read back intact, before and after a restart:
// reusing a buffer Pebble still holds would overwrite the earlier entries.
func TestStoreLogsReusesBatch(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.MemTableSize = minMemTableSize // flushables from 128 KiB
	s := openStore(t, cfg)
	rng := rand.NewChaCha8([32]byte{7})
	var want []*raft.Log
	next := uint64(1)
	for i := range 24 {
		n, size := uint64(1+i%3), 4<<10
		if i%4 == 3 {
			size = 96 << 10 // n*size crosses 128 KiB: a flushable batch
		}
		logs := randomLogs(rng, next, next+n-1, 1, size)
		if err := s.StoreLogs(logs); err != nil {
			t.Fatalf("StoreLogs %d-%d: %v", next, next+n-1, err)
		}
		want = append(want, logs...)
		next += n
	}
	if !s.spare.Kept() {
		t.Error("StoreLogs kept no batch for the next call")
	}
	for _, phase := range []string{"open", "restart"} {
		if phase == "restart" {
			s = reopen(t, s, cfg)
		}
		for _, w := range want {
			var got raft.Log
			if err := s.GetLog(w.Index, &got); err != nil {
				t.Fatalf("%s: GetLog(%d): %v", phase, w.Index, err)
			}
			if d := diffLog(&got, w); d != "" {
				t.Fatalf("%s: entry %d: %s", phase, w.Index, d)
			}
		}
	}
}
