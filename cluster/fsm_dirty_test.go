package cluster

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/demandflow/demandflow/stream"
)

// dirtyKeys counts the checkpointed marks and the dirty log records of
// dataset ds in Pebble.
func dirtyKeys(t *testing.T, s *Store, ds string) (marks, logs int) {
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
	return marks, logs
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
// that is reopened half way and to one that is not: both hold the same
// marks as a model computed from the entries, the log never exceeds
// dirtyCheckpointParts records, and a snapshot restored into a fresh store
// gives the same marks again.
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
		es := mustIngest(t, meta("d", fmt.Sprintf("tx%03d", i), ""), &sc, b, 0)
		if len(es) != 1 {
			t.Fatalf("part %d: %d entries, want 1", i, len(es))
		}
		return es[0], sids
	}
	apply := func(i int) {
		e, sids := part(i)
		both(e)
		for _, x := range sids {
			want[x] = DirtyMark{SeriesID: x, Index: a.idx, TxID: fmt.Sprintf("tx%03d", i)}
		}
	}
	for i := range dirtyCheckpointParts + 10 {
		apply(i)
		if _, logs := dirtyKeys(t, s, "d"); logs >= dirtyCheckpointParts {
			t.Fatalf("after part %d: %d log records, want < %d", i, logs, dirtyCheckpointParts)
		}
	}
	if got := fullMarks(t, s, "d"); !reflect.DeepEqual(got, want) {
		t.Fatalf("marks: got %v, want %v", got, want)
	}
	// The 64th part checkpointed; the 10 after it are in the log.
	if marks, logs := dirtyKeys(t, s, "d"); marks != len(products) || logs != 10 {
		t.Errorf("pebble: %d checkpointed marks, %d log records; want %d and 10", marks, logs, len(products))
	}

	// A restart replays the log over the checkpoint.
	s, a = reopenWithMarks(t, fs, s, want)

	// A mixed batch: part i touches e, f, g; results for a (answering its
	// mark: cleared) and g (answering its mark from before part i: g stays
	// dirty at part i); part i+3 touches a, b, c again.
	i := dirtyCheckpointParts + 10
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
		want[x] = DirtyMark{SeriesID: x, Index: first, TxID: fmt.Sprintf("tx%03d", i)}
	}
	delete(want, sid("a")) // cleared by its result, then touched again:
	for _, x := range sids2 {
		want[x] = DirtyMark{SeriesID: x, Index: a.idx, TxID: fmt.Sprintf("tx%03d", i+3)}
	}
	for name, st := range map[string]*Store{"reopened": s, "replica": replica} {
		if got := fullMarks(t, st, "d"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: marks after the mixed batch: got %v, want %v", name, got, want)
		}
	}
	if dumpKeyspace(t, s) != dumpKeyspace(t, replica) {
		t.Errorf("the reopened store and the replica hold different keys")
	}

	// A result clearing d is logged, not checkpointed: a restart replays
	// the clear.
	res = resultEntries(t, s, "d", testForecast(sid("d"), want[sid("d")].Index, 700, 3))
	if r := both(res...)[0].(*ForecastApplyResult); r.Cleared != 1 {
		t.Fatalf("clearing d: got %+v, want 1 cleared", r)
	}
	delete(want, sid("d"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMemStore(t, fs)
	a = &applier{t: t, f: NewFSM(s, testLogger(t)), idx: s.AppliedIndex()}
	for name, st := range map[string]*Store{"reopened": s, "replica": replica} {
		if got := fullMarks(t, st, "d"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: marks after a logged clear: got %v, want %v", name, got, want)
		}
	}

	// A snapshot restored into a fresh store rebuilds the same marks.
	restored := snapshotRoundTrip(t, s)
	if got := fullMarks(t, restored, "d"); !reflect.DeepEqual(got, want) {
		t.Errorf("marks after snapshot restore: got %v, want %v", got, want)
	}

	// Deleting the dataset drops the log and the marks.
	both(mustDelete(t, "d"))
	both(mustCreate(t, sc))
	if marks, logs := dirtyKeys(t, s, "d"); marks != 0 || logs != 0 {
		t.Errorf("re-created dataset: %d marks, %d log records, want none", marks, logs)
	}
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
// after a restart that rule is rebuilt from the log, empty or not. The
// checkpoints here verify their series against the log
// (verifyDirtyCheckpoints) and would panic on a wrong cpIndex.
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
		s, a = reopenWithMarks(t, fs, s, fullMarks(t, s, "d"))
	}
	logs := func() int { _, l := dirtyKeys(t, s, "d"); return l }
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
	if marks, _ := dirtyKeys(t, s, "d"); marks != len(all) {
		t.Errorf("%d checkpointed marks, want %d", marks, len(all))
	}
}
