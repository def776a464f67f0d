package cluster

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/stream"
)

// TestSnapshotRoundTrip applies every command type, snapshots, restores into
// a fresh store (and over a store with other state) and compares keyspaces
// and caches.
func TestSnapshotRoundTrip(t *testing.T) {
	mem := checkedMem(t)
	src := openMemStore(t, nil)
	a := newApplier(t, src)
	last := testSchema("last", stream.DuplicatesLast)
	sum := testSchema("sum", stream.DuplicatesSum)
	gone := testSchema("gone", "")
	rows := []row{{"p", "r", 1, 2, 3, "o"}, {"p", "r", 1, 4, math.NaN(), ""}, {"q", "s", 2, 5, 1, "o2"}}
	b := buildBatch(t, mem, &last, rows, 2, []stream.RowError{{Row: 4, Reason: "bad"}})
	defer b.Release()
	bs := buildBatch(t, mem, &sum, rows, 2, nil)
	defer bs.Release()
	del, _ := EncodeDeleteDataset("gone", testTime)
	a.batch(mustCreate(t, last), mustCreate(t, sum), mustCreate(t, gone))
	a.batch(mustIngest(t, meta("last", "tx1", "k"), &last, b, 0)...)
	a.batch(mustIngest(t, meta("sum", "tx2", ""), &sum, bs, 0)...)
	a.batch(mustIngest(t, meta("sum", "tx3", ""), &sum, bs, 0)...) // unresolved merge operands
	a.one(del)

	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Later applies do not leak into the snapshot.
	a.one(mustCreate(t, testSchema("later", "")))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.canceled {
		t.Fatalf("sink: closed %v canceled %v, want closed", sink.closed, sink.canceled)
	}
	// The source without "later", to compare against.
	del2, _ := EncodeDeleteDataset("later", testTime)
	a.one(del2)

	for _, tc := range []struct {
		name  string
		dirty bool
	}{{"fresh", false}, {"over other state", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openMemStore(t, nil)
			f := NewFSM(dst, testLogger(t))
			if tc.dirty {
				d := newApplier(t, dst)
				d.one(mustCreate(t, testSchema("other", "")))
				d.batch(mustIngest(t, meta("other", "tx9", ""), ptr(testSchema("other", "")), buildOther(t), 0)...)
			}
			if err := f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
				t.Fatal(err)
			}
			if got, want := dst.AppliedIndex(), uint64(7); got != want {
				t.Errorf("applied: got %d, want %d", got, want)
			}
			if _, ok := dst.Dataset("other"); ok {
				t.Error("old state survived restore")
			}
			// src applied 2 more entries (create+delete "later") after the
			// snapshot, so compare contents rather than the raw keyspace.
			gotDS, wantDS := dst.Datasets(), src.Datasets()
			if len(gotDS) != len(wantDS) {
				t.Fatalf("datasets: got %d, want %d", len(gotDS), len(wantDS))
			}
			for i := range gotDS {
				g, w := gotDS[i], wantDS[i]
				g.Schema, w.Schema = nil, nil
				if g != w {
					t.Errorf("dataset %d: got %+v, want %+v", i, g, w)
				}
			}
			for _, name := range []string{"last", "sum"} {
				sid := stream.SeriesID(name, []string{"p", "r"})
				g, err := dst.Observations(t.Context(), name, sid, math.MinInt32, math.MaxInt32)
				if err != nil {
					t.Fatal(err)
				}
				w, _ := src.Observations(t.Context(), name, sid, math.MinInt32, math.MaxInt32)
				if len(g) != 1 || g[0].Value != w[0].Value || g[0].ObjectID != w[0].ObjectID {
					t.Errorf("%s: got %+v, want %+v", name, g, w)
				}
			}
			if v, _ := dst.Observations(t.Context(), "sum", stream.SeriesID("sum", []string{"p", "r"}), 1, 1); v[0].Value != 12 {
				t.Errorf("sum after restore: got %v, want 12", v[0].Value)
			}
			rec, ok, err := dst.Transaction("last", "k")
			if err != nil || !ok || !rec.Complete() || rec.Rejected != 1 {
				t.Errorf("transaction after restore: got %+v %v %v", rec, ok, err)
			}
			// Snapshot of the restored store equals the original snapshot.
			snap2, _ := f.Snapshot()
			var sink2 memSink
			if err := snap2.Persist(&sink2); err != nil {
				t.Fatal(err)
			}
			snap2.Release()
			dst2 := openMemStore(t, nil)
			if err := NewFSM(dst2, nil).Restore(io.NopCloser(bytes.NewReader(sink2.Bytes()))); err != nil {
				t.Fatal(err)
			}
			if dumpKeyspace(t, dst2) != dumpKeyspace(t, dst) {
				t.Error("second round trip differs")
			}
		})
	}

	t.Run("corrupt", func(t *testing.T) {
		dst := openMemStore(t, nil)
		bad := bytes.Clone(sink.Bytes())
		bad[len(bad)/2] ^= 0xff
		if err := NewFSM(dst, nil).Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatal("restore of a corrupt snapshot succeeded")
		}
		if err := NewFSM(dst, nil).Restore(io.NopCloser(bytes.NewReader([]byte("nope")))); err == nil {
			t.Fatal("restore of garbage succeeded")
		}
	})
}

func ptr[T any](v T) *T { return &v }

func buildOther(t *testing.T) *stream.Batch {
	sc := testSchema("other", "")
	b := buildBatch(t, checkedMem(t), &sc, []row{{"z", "z", 1, 1, 1, "z"}}, 10, nil)
	t.Cleanup(b.Release)
	return b
}

// TestCrashKeepsSnapshottedState: under Raft the FSM store has no WAL
// (StoreConfig.Sync false), so a crash loses what was applied since its
// last flush, and Raft replays that; but it never loses what a completed
// snapshot covers, since Raft deletes those entries from its log.
func TestCrashKeepsSnapshottedState(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewCrashableMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	// "sum" makes an entry applied twice visible in the values.
	sc := testSchema("d", stream.DuplicatesSum)
	create := mustCreate(t, sc)
	var entries [][][]byte
	for i := range 3 {
		b := buildBatch(t, mem, &sc, []row{{"p", "EU", 1, 1, 2, ""}, {"q", "US", int32(1 + i), 10, 2, ""}}, 2, nil)
		m := meta("d", fmt.Sprintf("%026d", i+1), "")
		m.Source = "http"
		entries = append(entries, mustIngest(t, m, &sc, b, 0))
		b.Release()
	}
	a.one(create)
	a.batch(entries[0]...)
	a.batch(entries[1]...)

	// Nothing is flushed yet: a crash now loses every apply.
	if got := openMemStore(t, fs.CrashClone(vfs.CrashCloneCfg{})).AppliedIndex(); got != 0 {
		t.Fatalf("crash before any flush: applied index %d, want 0 (the store should have no WAL)", got)
	}
	snapIndex := s.AppliedIndex()
	snapshotBytes(t, s) // as Raft persists one
	a.batch(entries[2]...)

	crashed := openMemStore(t, fs.CrashClone(vfs.CrashCloneCfg{}))
	if got := crashed.AppliedIndex(); got != snapIndex {
		t.Fatalf("crash after a snapshot: applied index %d, want the snapshot's %d", got, snapIndex)
	}
	sum := func(s *Store) (n int, total float64) {
		for _, dims := range [][]string{{"p", "EU"}, {"q", "US"}} {
			obs, err := s.Observations(t.Context(), "d", stream.SeriesID("d", dims), math.MinInt32, math.MaxInt32)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range obs {
				n++
				total += o.Value
			}
		}
		return n, total
	}
	if n, total := sum(crashed); n != 3 || total != 22 {
		t.Errorf("after the crash: %d observations summing to %v, want the snapshot's 3 summing to 22", n, total)
	}
	// Raft replays its whole log; the FSM skips what it holds.
	r := &applier{t: t, f: NewFSM(crashed, testLogger(t))}
	r.one(create)
	for _, e := range entries {
		r.batch(e...)
	}
	wantN, wantTotal := sum(s)
	if n, total := sum(crashed); n != wantN || total != wantTotal || wantN != 4 || wantTotal != 33 {
		t.Errorf("after the replay: %d observations summing to %v, want %d summing to %v (and 4, 33)", n, total, wantN, wantTotal)
	}
}
