package tracking

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

// txid returns a deterministic ULID with timestamp at and entropy n.
func txid(at time.Time, n uint64) string {
	var u [ulidLen]byte
	binary.BigEndian.PutUint64(u[:8], uint64(at.UnixMilli())<<16)
	binary.BigEndian.PutUint64(u[8:], n)
	return formatULID(u)
}

// newMemStore opens a standalone store on an in-memory file system.
func newMemStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.Dir = "tracking"
	if cfg.FS == nil {
		cfg.FS = vfs.NewMem()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func update(t testing.TB, s *Store, fn func(rec *Recorder) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// blk builds a block of stage st that ran from start for d.
func blk(st Stage, status BlockStatus, start time.Time, d time.Duration, in, out int64) Block {
	return Block{Stage: st, Status: status, Started: start, Finished: start.Add(d), RowsIn: in, RowsOut: out, Node: "n1"}
}

// dump returns every key/value of the store's keyspace (both prefixes).
func dump(t *testing.T, s *Store) [][2][]byte {
	t.Helper()
	var kvs [][2][]byte
	for _, p := range []byte{s.k.p, s.k.q} {
		err := scan(s.DB(), []byte{p}, []byte{p + 1}, false, func(it *pebble.Iterator) (bool, error) {
			v, err := it.ValueAndErr()
			if err != nil {
				return false, err
			}
			kvs = append(kvs, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(v)})
			return true, nil
		})
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
	}
	return kvs
}

func TestULID(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	id := txid(at, 42)
	u, err := parseULID(id)
	if err != nil {
		t.Fatalf("parse %s: %v", id, err)
	}
	if got := formatULID(u); got != id {
		t.Errorf("round trip: got %s, want %s", got, id)
	}
	if got, _ := IDTime(id); !got.Equal(at) {
		t.Errorf("IDTime: got %v, want %v", got, at)
	}
	// A known ULID from the spec's example alphabet.
	const known = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	u, err = parseULID("01arz3ndektsv4rrffq69g5fav")
	if err != nil || formatULID(u) != known {
		t.Errorf("lower case: got %s, %v; want %s", formatULID(u), err, known)
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"} {
		if _, err := parseID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("parse %q: got %v, want ErrInvalid", bad, err)
		}
	}
}

// recordSequence feeds a fixed mix of records through call, which decides
// how they are batched.
func recordSequence(t *testing.T, call func(fn func(rec *Recorder) error)) {
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 37 * time.Second)
		id := txid(at, uint64(i))
		ds := []string{"exports", "orders"}[i%2]
		call(func(rec *Recorder) error {
			return rec.RecordTransaction(Transaction{ID: id, Dataset: ds, Source: SourceHTTP, In: 3, Accepted: 2, Rejected: 1, Node: "n1"})
		})
		for j, st := range []Stage{StageIngress, StageValidate, StageCommit, StageApply} {
			if i%5 == 4 && st == StageApply {
				break // interrupted
			}
			b := blk(st, BlockSuccess, at.Add(time.Duration(j)*time.Millisecond), time.Duration(i+1)*time.Millisecond, 3, 3)
			call(func(rec *Recorder) error { return rec.RecordBlock(id, b) })
		}
		call(func(rec *Recorder) error {
			return rec.RecordRejections(id, []Rejection{{Row: 2, ObjectID: fmt.Sprint("o", i, "-2"), Field: "qty", Reason: "below min 0"}})
		})
		call(func(rec *Recorder) error {
			return rec.RecordObjects(id, ds, at, []ObjectEntry{
				{ObjectID: fmt.Sprint("o", i, "-1"), Row: 1, Stage: StageValidate, Outcome: OutcomeAccepted},
				{ObjectID: fmt.Sprint("o", i, "-2"), Row: 2, Stage: StageValidate, Outcome: OutcomeRejected, Field: "qty", Reason: "below min 0"},
				{ObjectID: "shared", Row: 3, Stage: StageApply, Outcome: OutcomeAccepted},
			})
		})
	}
}

// TestDeterminism feeds the same record sequence to two stores, one in a
// single batch and one in a batch per call, and compares the keyspaces
// byte for byte.
func TestDeterminism(t *testing.T) {
	one := newMemStore(t, Config{})
	b := one.DB().NewBatch()
	rec := one.NewRecorder(one.DB(), b)
	recordSequence(t, func(fn func(rec *Recorder) error) {
		if err := fn(rec); err != nil {
			t.Fatalf("record: %v", err)
		}
	})
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	many := newMemStore(t, Config{})
	recordSequence(t, func(fn func(rec *Recorder) error) { update(t, many, fn) })

	a, c := dump(t, one), dump(t, many)
	if len(a) != len(c) {
		t.Fatalf("got %d keys in one batch, %d in many batches, want equal", len(a), len(c))
	}
	for i := range a {
		if !bytes.Equal(a[i][0], c[i][0]) || !bytes.Equal(a[i][1], c[i][1]) {
			t.Fatalf("entry %d: got %x=%x and %x=%x, want equal", i, a[i][0], a[i][1], c[i][0], c[i][1])
		}
	}
	if len(a) == 0 {
		t.Fatal("got empty keyspace, want records")
	}
}

func TestWriteErrorsCounted(t *testing.T) {
	var seen []error
	s := newMemStore(t, Config{OnWriteError: func(err error) { seen = append(seen, err) }})
	err := s.Update(func(rec *Recorder) error {
		if err := rec.RecordBlock("not-a-ulid", Block{Stage: StageIngress, Status: BlockSuccess}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad id: got %v, want ErrInvalid", err)
		}
		if err := rec.RecordBlock(txid(t0, 1), Block{Stage: "nope", Status: BlockSuccess}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad stage: got %v, want ErrInvalid", err)
		}
		return rec.RecordTransaction(Transaction{ID: txid(t0, 2), Source: SourceFile})
	})
	if err != nil {
		t.Fatalf("valid record: %v", err)
	}
	if got := s.WriteErrors(); got != 2 {
		t.Errorf("WriteErrors: got %d, want 2", got)
	}
	if len(seen) != 2 {
		t.Errorf("OnWriteError calls: got %d, want 2", len(seen))
	}
}

func TestConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Prefix != 't' || cfg.Retention != 7*24*time.Hour || len(cfg.RequiredStages) != 4 {
		t.Errorf("defaults: got prefix %q retention %v required %v", cfg.Prefix, cfg.Retention, cfg.RequiredStages)
	}
	for _, bad := range []Config{{Prefix: 0xff}, {Retention: -1}, {RequiredStages: []Stage{"x"}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v): got nil, want error", bad)
		}
	}
	s, err := New(Config{Prefix: 'T'}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transaction(t.Context(), nil, txid(t0, 1)); err == nil {
		t.Error("query without reader: got nil error, want error")
	}
	if got := s.Cutoff(t0); !got.Equal(t0.Add(-7 * 24 * time.Hour)) {
		t.Errorf("Cutoff: got %v, want %v", got, t0.Add(-7*24*time.Hour))
	}
}

// TestEmbeddedPrefix checks that an embedded store writes only below its
// prefix and reads through the caller's Reader.
func TestEmbeddedPrefix(t *testing.T) {
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(Config{Prefix: 'x'}, db)
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	_ = b.Set([]byte("a-fsm-key"), []byte("v"), nil)
	rec := s.NewRecorder(db, b)
	id := txid(t0, 7)
	if err := rec.RecordTransaction(Transaction{ID: id, Dataset: "d", Source: SourceHTTP}); err != nil {
		t.Fatal(err)
	}
	if err := rec.RecordBlock(id, blk(StageIngress, BlockSuccess, t0, time.Millisecond, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	it, _ := db.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		if k := it.Key(); k[0] != 'x' && string(k) != "a-fsm-key" {
			t.Errorf("key %q outside prefix 'x'", k)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := s.Transaction(t.Context(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(v.Blocks); got != 1 {
		t.Errorf("blocks: got %d, want 1", got)
	}
}
