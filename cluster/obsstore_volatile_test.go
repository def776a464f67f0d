package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/demandflow/demandflow/stream"
)

// volatileFixture applies ingest entries of two datasets ("d" and "x",
// the "sum" policy so that a block staged twice would show) to a store
// that never folds by itself, and keeps the Raft logs for replays.
type volatileFixture struct {
	t    *testing.T
	fs   vfs.FS
	logs []*raft.Log
	sids []uint64 // series of "d" to compare
}

func newVolatileFixture(t *testing.T) *volatileFixture {
	mem := checkedMem(t)
	fx := &volatileFixture{t: t, fs: vfs.NewMem()}
	add := func(entries ...[]byte) {
		for _, e := range entries {
			fx.logs = append(fx.logs, &raft.Log{Index: uint64(len(fx.logs) + 1), Term: 1, Type: raft.LogCommand, Data: e})
		}
	}
	for _, name := range []string{"d", "x"} {
		sc := testSchema(name, stream.DuplicatesSum)
		add(mustCreate(t, sc))
		for part := range 6 {
			rows := benchRows(300, part%4) // parts 4 and 5 repeat 0 and 1: sums
			b := buildBatch(t, mem, &sc, rows, 100, nil)
			m := meta(name, fmt.Sprintf("%025d%d", len(fx.logs), part), "")
			m.Source = "http"
			add(mustIngest(t, m, &sc, b, 0)...)
			b.Release()
		}
	}
	for _, r := range benchRows(300, 0)[:20] {
		fx.sids = append(fx.sids, stream.SeriesID("d", []string{r.product, r.region}))
	}
	return fx
}

// open opens the fixture's store with folds only on request (fs nil:
// the fixture's own).
func (fx *volatileFixture) open(fs vfs.FS) *Store {
	fx.t.Helper()
	if fs == nil {
		fs = fx.fs
	}
	s, err := OpenStore(StoreConfig{Dir: "fsm", FS: fs, Logger: testLogger(fx.t), MemTableSize: 4 << 20,
		FoldRows: math.MaxInt32, FoldInterval: time.Hour, MaxStagedRows: math.MaxInt32})
	if err != nil {
		fx.t.Fatal(err)
	}
	return s
}

// observations returns the observations of fx.sids in s.
func (fx *volatileFixture) observations(s *Store) [][]Observation {
	fx.t.Helper()
	var out [][]Observation
	for _, sid := range fx.sids {
		obs, err := s.Observations(fx.t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
		if err != nil {
			fx.t.Fatal(err)
		}
		out = append(out, obs)
	}
	return out
}

// crash closes s the way a crash leaves it: what was flushed stays,
// nothing is persisted at close.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	s.closeFolder()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

func stagedRows(s *Store) int {
	s.stage.pubMu.Lock()
	defer s.stage.pubMu.Unlock()
	return s.stage.rows
}

// TestVolatileBlocksRestagedAfterCrash: applied blocks stay in memory
// (only pending keys on disk); after a crash that kept the applies but no
// fold, the replayed entries stage them again, once, in order, and a fold
// then clears the pending keys. The deleted dataset's entries are skipped.
func TestVolatileBlocksRestagedAfterCrash(t *testing.T) {
	fx := newVolatileFixture(t)
	ref := fx.open(vfs.NewMem())
	t.Cleanup(func() { _ = ref.Close() })
	NewFSM(ref, testLogger(t)).ApplyBatch(fx.logs)
	want := fx.observations(ref)
	if len(want[0]) == 0 {
		t.Fatal("no observations to compare")
	}

	s := fx.open(nil)
	f := NewFSM(s, testLogger(t))
	f.ApplyBatch(fx.logs)
	del := &raft.Log{Index: uint64(len(fx.logs) + 1), Term: 1, Type: raft.LogCommand, Data: mustDelete(t, "x")}
	f.ApplyBatch([]*raft.Log{del})
	if got := countKeys(t, s, prefixStaged); got != 0 {
		t.Fatalf("%d staged blocks written to Pebble, want none (they stay in memory)", got)
	}
	if got := countKeys(t, s, prefixStagedPending); got != 12 {
		t.Fatalf("%d pending keys, want one per ingest entry (12)", got)
	}
	// A memtable flush made the applies durable; then the node dies.
	if err := s.flushUnlogged(); err != nil {
		t.Fatal(err)
	}
	crash(t, s)

	s = fx.open(nil)
	t.Cleanup(func() { _ = s.Close() })
	if got := stagedRows(s); got != 0 {
		t.Fatalf("%d rows staged after the crash before any replay, want 0", got)
	}
	if got := s.AppliedIndex(); got != del.Index {
		t.Fatalf("applied index %d after the crash, want %d", got, del.Index)
	}
	// Until the replay has staged the rows again, reads say so instead of
	// answering without them.
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := s.Observations(short, "d", fx.sids[0], math.MinInt32, math.MaxInt32)
	cancel()
	if !errors.Is(err, ErrReplaying) {
		t.Fatalf("read before the replay: %v, want ErrReplaying", err)
	}
	f = NewFSM(s, testLogger(t))
	// Raft replays everything (the same entries, in batches); a reader
	// that asked meanwhile gets the full answer once the replay is done.
	waited := make(chan error, 1)
	go func() {
		_, err := s.Observations(t.Context(), "d", fx.sids[0], math.MinInt32, math.MaxInt32)
		waited <- err
	}()
	for lo := 0; lo < len(fx.logs); lo += 5 {
		f.ApplyBatch(fx.logs[lo:min(lo+5, len(fx.logs))])
	}
	if err := <-waited; err != nil {
		t.Fatalf("read waiting for the replay: %v", err)
	}
	f.ApplyBatch([]*raft.Log{del})
	if got := stagedRows(s); got != 6*300 {
		t.Fatalf("%d rows staged again, want the 1800 of dataset d (x is deleted)", got)
	}
	if got := fx.observations(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("observations after the crash and replay differ from the node that did not crash:\n%v\nwant\n%v", got[0], want[0])
	}
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	// The fold deleted the pending keys up to its newest entry; those of
	// the deleted dataset's later entries wait for a later fold (or a
	// snapshot), and a replay skips them.
	if got := countKeys(t, s, prefixStagedPending); got != 6 {
		t.Errorf("%d pending keys after the fold, want the deleted dataset's 6", got)
	}
	if got := fx.observations(s); !reflect.DeepEqual(got, want) {
		t.Errorf("observations after the fold differ")
	}
	// A second replay (another restart) stages nothing: the fold cleared
	// the pending keys.
	f.ApplyBatch(fx.logs)
	if got := stagedRows(s); got != 0 {
		t.Errorf("%d rows staged by a replay after the fold, want 0", got)
	}
}

// TestVolatileBlocksPersisted: Close and Raft snapshots write the blocks
// held in memory into the staged table (and drop the pending keys), so a
// reopened store has them without a replay and a snapshot carries them.
func TestVolatileBlocksPersisted(t *testing.T) {
	fx := newVolatileFixture(t)
	s := fx.open(nil)
	NewFSM(s, testLogger(t)).ApplyBatch(fx.logs)
	want := fx.observations(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = fx.open(nil)
	t.Cleanup(func() { _ = s.Close() })
	// Nothing to replay: reads answer at once.
	if err := s.waitReplayed(t.Context()); err != nil {
		t.Fatalf("reads after a clean reopen: %v", err)
	}
	if got, pend := countKeys(t, s, prefixStaged), countKeys(t, s, prefixStagedPending); got != 12*3 || pend != 0 {
		t.Fatalf("after Close: %d staged blocks, %d pending keys; want 36 (3 records x 12 entries) and 0", got, pend)
	}
	if got := fx.observations(s); !reflect.DeepEqual(got, want) {
		t.Fatal("observations after a reopen differ")
	}
	// A replay after the reopen stages nothing twice.
	f := NewFSM(s, testLogger(t))
	f.ApplyBatch(fx.logs)
	if got := stagedRows(s); got != 12*300 {
		t.Fatalf("%d rows pending after the replay, want 3600", got)
	}

	// New applies are volatile again; a snapshot persists them.
	sc := testSchema("d", stream.DuplicatesSum)
	b := buildBatch(t, checkedMem(t), &sc, benchRows(300, 7), 300, nil)
	m := meta("d", fmt.Sprintf("%026d", 7777), "")
	m.Source = "http"
	e := mustIngest(t, m, &sc, b, 0)
	b.Release()
	f.ApplyBatch([]*raft.Log{{Index: uint64(len(fx.logs) + 1), Term: 1, Type: raft.LogCommand, Data: e[0]}})
	if got := countKeys(t, s, prefixStagedPending); got != 1 {
		t.Fatalf("%d pending keys after a new apply, want 1", got)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if got, pend := countKeys(t, s, prefixStaged), countKeys(t, s, prefixStagedPending); got != 37 || pend != 0 {
		t.Fatalf("after a snapshot: %d staged blocks, %d pending keys; want 37 and 0", got, pend)
	}
	// The fold deletes what was persisted.
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	if got := countKeys(t, s, prefixStaged); got != 0 {
		t.Errorf("%d staged blocks after the fold, want 0", got)
	}
}

// TestSnapshotWaitsForObjectReplay: a clean Close leaves the object
// index's pending keys (its staged calls are rebuilt from the Raft log),
// so after a reopen a snapshot waits for the replay: taken before it, the
// snapshot would carry neither the calls nor a log to restage them from.
func TestSnapshotWaitsForObjectReplay(t *testing.T) {
	fx := newVolatileFixture(t)
	s := fx.open(nil)
	NewFSM(s, testLogger(t)).ApplyBatch(fx.logs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = fx.open(nil)
	t.Cleanup(func() { _ = s.Close() })
	pending := countKeys(t, s, prefixTrackPending)
	if pending == 0 {
		t.Fatal("no object pending keys after Close: the test would test nothing")
	}
	// Reads do not wait for the object calls ...
	if err := s.waitReplayed(t.Context()); err != nil {
		t.Fatalf("reads after a clean reopen: %v", err)
	}
	// ... but a snapshot does.
	f := NewFSM(s, testLogger(t))
	if _, err := f.Snapshot(); !errors.Is(err, ErrReplaying) {
		t.Fatalf("snapshot before the replay: %v, want ErrReplaying", err)
	}
	f.ApplyBatch(fx.logs)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("snapshot after the replay: %v", err)
	}
	snap.Release()
	if got := countKeys(t, s, prefixTrackPending); got != 0 {
		t.Errorf("%d object pending keys after the snapshot, want 0 (of %d)", got, pending)
	}
}
