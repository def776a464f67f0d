package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/demandflow/demandflow/stream"
)

// dirtyKeys counts the checkpointed marks, the dirty log records and the
// pending parts of dataset ds in Pebble.
func dirtyKeys(t *testing.T, s *Store, ds string) (marks, logs, pending int) {
	t.Helper()
	e := s.dataset(ds)
	lo, hi := dsRange(prefixDirty, e.id)
	if err := s.scan(t.Context(), lo, hi, func(k, _ []byte) (bool, error) {
		if len(k) == 13 {
			marks++
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	lo, hi = dsRange(prefixDirtyLog, e.id)
	if err := s.scan(t.Context(), lo, hi, func(_, _ []byte) (bool, error) { logs++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	lo, hi = dsRange(prefixDirtyPending, e.id)
	if err := s.scan(t.Context(), lo, hi, func(_, _ []byte) (bool, error) { pending++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	return marks, logs, pending
}

// fullMarks returns every mark of ds with its transaction.
func fullMarks(t *testing.T, s *Store, ds string) map[uint64]DirtyMark {
	t.Helper()
	got := map[uint64]DirtyMark{}
	if _, _, err := s.DirtySeries(t.Context(), ds, func(m DirtyMark) bool { got[m.SeriesID] = m; return true }); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDirtyLogCheckpointAndReplay feeds more parts than a checkpoint
// holds, some of them in mixed batches with forecast results, to a store
// that crashes and replays its Raft log half way and to one that does not:
// both hold the same marks as a model computed from the entries, the log
// and the pending parts never exceed dirtyCheckpointParts, and a snapshot
// restored into a fresh store gives the same marks again.
func TestDirtyLogCheckpointAndReplay(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	replica := openMemStore(t, nil)
	a, ra := newApplier(t, s), newApplier(t, replica)
	both := func(e ...[]byte) []any { ra.batch(e...); return a.batch(e...) }
	sc := testSchema("d", stream.DuplicatesLast)
	both(mustCreate(t, sc))

	// Parts touch 3 of 7 series each, rotating; the model tracks the
	// newest touch per series.
	products := []string{"a", "b", "c", "d", "e", "f", "g"}
	want := map[uint64]DirtyMark{}
	sid := func(p string) uint64 { return stream.SeriesID("d", []string{p, "EU"}) }
	part := func(i int) ([]byte, []uint64) {
		var rows []row
		var sids []uint64
		for j := range 3 {
			p := products[(i+j)%len(products)]
			rows = append(rows, row{p, "EU", stream.PeriodFromIndex(int64(600+i), stream.Month), float64(i), math.NaN(), ""})
			sids = append(sids, sid(p))
		}
		b := buildBatch(t, mem, &sc, rows, 100, nil)
		defer b.Release()
		es := mustIngest(t, meta("d", fmt.Sprintf("tx%04d", i), ""), &sc, b, 0)
		if len(es) != 1 {
			t.Fatalf("part %d: %d entries, want 1", i, len(es))
		}
		return es[0], sids
	}
	apply := func(i int) {
		e, sids := part(i)
		both(e)
		for _, x := range sids {
			want[x] = DirtyMark{SeriesID: x, Index: a.idx, TxID: fmt.Sprintf("tx%04d", i)}
		}
	}
	const after = 9 // parts after the checkpoint
	for i := range dirtyCheckpointParts + after {
		apply(i)
		if _, logs, pending := dirtyKeys(t, s, "d"); logs+pending >= dirtyCheckpointParts {
			t.Fatalf("after part %d: %d log records and %d pending parts, want < %d in all", i, logs, pending, dirtyCheckpointParts)
		}
	}
	if got := fullMarks(t, s, "d"); !reflect.DeepEqual(got, want) {
		t.Fatalf("marks: got %v, want %v", got, want)
	}
	// The 1024th part checkpointed; the 9 after it have pending keys,
	// their touches are in memory only.
	if marks, logs, pending := dirtyKeys(t, s, "d"); marks != len(products) || logs != 0 || pending != after {
		t.Errorf("pebble: %d checkpointed marks, %d log records, %d pending parts; want %d, 0 and %d",
			marks, logs, pending, len(products), after)
	}

	// A crash and the Raft replay mark the pending parts' series again.
	s, a = crashReplay(t, fs, s, a, "d")
	both = func(e ...[]byte) []any { ra.batch(e...); return a.batch(e...) }

	// A mixed batch: part i touches e, f, g; results for a (answering its
	// mark: cleared) and g (answering its mark from before part i: g stays
	// dirty at part i); part i+3 touches a, b, c again.
	i := dirtyCheckpointParts + after
	e1, sids1 := part(i)
	e2, sids2 := part(i + 3)
	first := a.idx + 1
	res := resultEntries(t, s, "d", testForecast(sid("a"), want[sid("a")].Index, 700, 1), testForecast(sid("g"), want[sid("g")].Index, 700, 2))
	batch := append(append([][]byte{e1}, res...), e2)
	for _, r := range both(batch...) {
		if err, ok := r.(error); ok {
			t.Fatalf("mixed batch: %v", err)
		}
	}
	if !slices.Contains(sids1, sid("g")) || slices.Contains(sids1, sid("a")) || !slices.Contains(sids2, sid("a")) {
		t.Fatalf("test setup: part %d should touch g but not a, part %d a", i, i+3)
	}
	for _, x := range sids1 {
		want[x] = DirtyMark{SeriesID: x, Index: first, TxID: fmt.Sprintf("tx%04d", i)}
	}
	delete(want, sid("a")) // cleared by its result, then touched again:
	for _, x := range sids2 {
		want[x] = DirtyMark{SeriesID: x, Index: a.idx, TxID: fmt.Sprintf("tx%04d", i+3)}
	}
	for name, st := range map[string]*Store{"reopened": s, "replica": replica} {
		if got := fullMarks(t, st, "d"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: marks after the mixed batch: got %v, want %v", name, got, want)
		}
	}
	if dumpKeyspace(t, s) != dumpKeyspace(t, replica) {
		t.Errorf("the reopened store and the replica hold different keys")
	}

	// A result clearing d is logged, not checkpointed: a crash replays
	// the clear, and the touch before it (a pending part, since the
	// comparison above checkpointed) stays answered.
	apply(i + 5)
	if _, _, pending := dirtyKeys(t, s, "d"); pending != 1 {
		t.Fatalf("%d pending parts before the clear, want 1", pending)
	}
	res = resultEntries(t, s, "d", testForecast(sid("d"), want[sid("d")].Index, 700, 3))
	if r := both(res...)[0].(*ForecastApplyResult); r.Cleared != 1 {
		t.Fatalf("clearing d: got %+v, want 1 cleared", r)
	}
	delete(want, sid("d"))
	if _, logs, _ := dirtyKeys(t, s, "d"); logs != 1 {
		t.Fatalf("%d dirty log records after the clear, want 1", logs)
	}
	s, a = crashReplay(t, fs, s, a, "d")
	for name, st := range map[string]*Store{"reopened": s, "replica": replica} {
		if got := fullMarks(t, st, "d"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: marks after a logged clear: got %v, want %v", name, got, want)
		}
	}
	// A clean restart checkpoints what memory holds instead.
	s, a = reopenWithMarks(t, fs, s, want)
	if marks, logs, pending := dirtyKeys(t, s, "d"); marks != len(want) || logs != 0 || pending != 0 {
		t.Errorf("after Close: %d marks, %d log records, %d pending parts; want %d, 0 and 0", marks, logs, pending, len(want))
	}

	// A snapshot restored into a fresh store rebuilds the same marks.
	restored := snapshotRoundTrip(t, s)
	if got := fullMarks(t, restored, "d"); !reflect.DeepEqual(got, want) {
		t.Errorf("marks after snapshot restore: got %v, want %v", got, want)
	}

	// Deleting the dataset drops the log and the marks.
	both(mustDelete(t, "d"))
	both(mustCreate(t, sc))
	if marks, logs, pending := dirtyKeys(t, s, "d"); marks != 0 || logs != 0 || pending != 0 {
		t.Errorf("re-created dataset: %d marks, %d log records, %d pending parts, want none", marks, logs, pending)
	}
}

// crashReplay crashes s (what it committed was flushed, nothing is
// persisted at close), opens the store on fs again and replays every
// entry a applied, in batches, as Raft does after a restart. It checks
// that the marks of dataset ds are back and returns the reopened store
// and an applier that continues the log.
func crashReplay(t *testing.T, fs vfs.FS, s *Store, a *applier, ds string) (*Store, *applier) {
	t.Helper()
	want := fullMarks(t, s, ds)
	if err := s.flushUnlogged(); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s = openMemStore(t, fs)
	f := NewFSM(s, testLogger(t))
	for lo := 0; lo < len(a.logs); lo += 7 {
		f.ApplyBatch(a.logs[lo:min(lo+7, len(a.logs))])
	}
	if got := fullMarks(t, s, ds); !reflect.DeepEqual(got, want) {
		t.Fatalf("marks after a crash and the replay: got %v, want %v", got, want)
	}
	return s, &applier{t: t, f: f, idx: a.idx, logs: a.logs}
}

func mustDelete(t *testing.T, name string) []byte {
	t.Helper()
	e, err := EncodeDeleteDataset(name, testTime)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// snapshotBytes returns an FSM snapshot of src, as Raft would persist it.
func snapshotBytes(t *testing.T, src *Store) []byte {
	t.Helper()
	snap, err := NewFSM(src, testLogger(t)).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

// snapshotRoundTrip snapshots src's FSM state and restores it into a fresh
// store.
func snapshotRoundTrip(t *testing.T, src *Store) *Store {
	t.Helper()
	dst := openMemStore(t, nil)
	if err := NewFSM(dst, testLogger(t)).Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, src)))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// reopenWithMarks closes s, opens the store on fs again and checks that
// dataset "d" has the marks want.
func reopenWithMarks(t *testing.T, fs vfs.FS, s *Store, want map[uint64]DirtyMark) (*Store, *applier) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMemStore(t, fs)
	if got := fullMarks(t, s, "d"); !reflect.DeepEqual(got, want) {
		t.Fatalf("marks after reopen: got %v, want %v", got, want)
	}
	return s, &applier{t: t, f: NewFSM(s, testLogger(t)), idx: s.AppliedIndex()}
}

// TestDirtyCheckpointAfterReopen: a checkpoint writes the marks changed
// since the last one, found from the in-memory marks (dirtyState.cpIndex);
// after a crash that rule is rebuilt from the log and the pending parts,
// empty or not. The checkpoints here verify their series against the log
// and the touches since the last checkpoint (verifyDirtyCheckpoints) and
// would panic on a wrong cpIndex.
func TestDirtyCheckpointAfterReopen(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	sc := testSchema("d", stream.DuplicatesLast)
	a.one(mustCreate(t, sc))
	n := 0
	touch := func(products ...string) {
		var rows []row
		for _, p := range products {
			rows = append(rows, row{p, "EU", stream.PeriodFromIndex(int64(600+n), stream.Month), 1, math.NaN(), ""})
		}
		b := buildBatch(t, mem, &sc, rows, 100, nil)
		a.batch(mustIngest(t, meta("d", fmt.Sprintf("tx%04d", n), ""), &sc, b, 0)...)
		b.Release()
		n++
	}
	reopen := func() {
		t.Helper()
		s, a = crashReplay(t, fs, s, a, "d")
	}
	logs := func() int { _, l, p := dirtyKeys(t, s, "d"); return l + p }
	all := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	touch(all...)
	for logs() != 0 {
		touch("p0") // up to the checkpoint: the log is empty after it
	}
	reopen() // empty log: nothing changed since the checkpoint
	for touch("p1"); logs() != 0; {
		touch("p1") // the next checkpoint: p1 only
	}
	touch("p2")
	touch("p2")
	reopen() // two records
	for logs() != 0 {
		touch("p3") // the next checkpoint: p2 and p3 only
	}
	if marks, _, _ := dirtyKeys(t, s, "d"); marks != len(all) {
		t.Errorf("%d checkpointed marks, want %d", marks, len(all))
	}
}

// TestDirtyReplayAfterCrash: after a crash the marks held only in memory
// come back from the Raft replay, and until then reads of them wait,
// snapshots are refused and Close keeps the pending parts for the next
// replay. A duplicate part (a retry Raft logged twice) and a part of an
// earlier incarnation of a re-created dataset mark nothing.
func TestDirtyReplayAfterCrash(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	ingest := func(ds, tx string, products ...string) [][]byte {
		sc := testSchema(ds, stream.DuplicatesLast)
		var rows []row
		for _, p := range products {
			rows = append(rows, row{p, "EU", stream.PeriodFromIndex(600, stream.Month), 1, math.NaN(), ""})
		}
		b := buildBatch(t, mem, &sc, rows, 100, nil)
		defer b.Release()
		return mustIngest(t, meta(ds, tx, ""), &sc, b, 0)
	}
	a.one(mustCreate(t, testSchema("d", stream.DuplicatesLast)))
	part := ingest("d", "tx1", "a", "b")
	a.batch(part...)
	if r := a.batch(part...)[0].(*IngestResult); !r.Duplicate {
		t.Fatalf("the part again: %+v, want a duplicate", r)
	}
	a.batch(ingest("d", "tx2", "c")...)
	a.one(mustCreate(t, testSchema("x", stream.DuplicatesLast)))
	a.batch(ingest("x", "tx3", "p")...)
	a.one(mustDelete(t, "x"))
	a.one(mustCreate(t, testSchema("x", stream.DuplicatesLast)))
	want := fullMarks(t, s, "d")
	if len(want) != 3 || want[stream.SeriesID("d", []string{"a", "EU"})].Index != 2 {
		t.Fatalf("marks before the crash: %v, want a and b at index 2 (not the duplicate's 3), and c", want)
	}
	if got := fullMarks(t, s, "x"); len(got) != 0 {
		t.Fatalf("re-created x has marks %v", got)
	}
	if err := s.flushUnlogged(); err != nil {
		t.Fatal(err)
	}
	crash(t, s)

	s = openMemStore(t, fs)
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, _, err := s.DirtySeries(short, "d", func(DirtyMark) bool { return true })
	cancel()
	if !errors.Is(err, ErrReplaying) {
		t.Fatalf("marks before the replay: %v, want ErrReplaying", err)
	}
	f := NewFSM(s, testLogger(t))
	if _, err := f.Snapshot(); !errors.Is(err, ErrReplaying) {
		t.Fatalf("snapshot before the replay: %v, want ErrReplaying", err)
	}
	// Half a replay, then a clean stop: the rest is still pending.
	f.ApplyBatch(a.logs[:2])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMemStore(t, fs)
	if _, _, pending := dirtyKeys(t, s, "d"); pending != 2 {
		t.Fatalf("%d pending parts after a Close during the replay, want 2", pending)
	}
	f = NewFSM(s, testLogger(t))
	f.ApplyBatch(a.logs)
	if got := fullMarks(t, s, "d"); !reflect.DeepEqual(got, want) {
		t.Errorf("marks after the replay: got %v, want %v", got, want)
	}
	if got := fullMarks(t, s, "x"); len(got) != 0 {
		t.Errorf("re-created x has marks %v after the replay, want none", got)
	}
	if _, err := f.Snapshot(); err != nil {
		t.Fatalf("snapshot after the replay: %v", err)
	}
	if marks, logs, pending := dirtyKeys(t, s, "d"); marks != 3 || logs != 0 || pending != 0 {
		t.Errorf("after the snapshot: %d marks, %d log records, %d pending parts; want 3, 0 and 0", marks, logs, pending)
	}
}

// TestDirtyLegacyTouchRecords: a store written before the pending parts
// logged touch records; they load in index order with the clears.
func TestDirtyLegacyTouchRecords(t *testing.T) {
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	a.one(mustCreate(t, testSchema("d", stream.DuplicatesLast)))
	id := s.dataset("d").id
	sa, sb := stream.SeriesID("d", []string{"a", "EU"}), stream.SeriesID("d", []string{"b", "EU"})
	b := s.db.NewBatch()
	for _, kv := range []struct {
		index uint64
		v     []byte
	}{
		{2, encodeDirtyLog("txA", []uint64{min(sa, sb), max(sa, sb)})},
		{3, encodeDirtyClear([]clearedMark{{sa, 2}})},
		{4, encodeDirtyLog("txB", []uint64{sb})},
	} {
		if err := b.Set(dirtyLogKey(id, kv.index), kv.v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		t.Fatal(err)
	}
	if err := s.flushUnlogged(); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s = openMemStore(t, fs)
	want := map[uint64]DirtyMark{sb: {SeriesID: sb, Index: 4, TxID: "txB"}}
	if got := fullMarks(t, s, "d"); !reflect.DeepEqual(got, want) {
		t.Errorf("marks from legacy records: got %v, want %v", got, want)
	}
}
