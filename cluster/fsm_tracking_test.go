package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/oklog/ulid/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/tracking"
)

var ulidEntropy = rand.NewChaCha8([32]byte{1})

// txAt returns a ULID transaction id with timestamp at.
func txAt(at time.Time) string {
	return ulid.MustNew(ulid.Timestamp(at), ulidEntropy).String()
}

// trackMeta is an ingest meta with a ULID and stage timings, as the node
// sends it.
func trackMeta(ds string, at time.Time) IngestMeta {
	return IngestMeta{TxID: txAt(at), Dataset: ds, Source: "http", ContentType: "csv", Node: "n1",
		ReceivedAt: at, ValidateStart: at.Add(time.Millisecond), ValidateEnd: at.Add(3 * time.Millisecond),
		ValidateCPU: 2 * time.Millisecond, CommitStart: at.Add(3 * time.Millisecond), Bytes: 1000}
}

// logApplier applies the same entries to several FSMs with hand-made logs
// whose AppendedAt is the entry's own time (as the leader would set it).
type logApplier struct {
	t    testing.TB
	fsms []*FSM
	idx  uint64
}

func (a *logApplier) apply(at time.Time, entries ...[]byte) []any {
	a.t.Helper()
	var first []any
	start := a.idx
	for i, f := range a.fsms {
		logs := make([]*raft.Log, len(entries))
		for j, e := range entries {
			logs[j] = &raft.Log{Index: start + uint64(j) + 1, Term: 1, Type: raft.LogCommand, Data: e,
				AppendedAt: at.Add(time.Duration(j) * time.Millisecond)}
		}
		resps := f.ApplyBatch(logs)
		if i == 0 {
			first = resps
		}
	}
	a.idx = start + uint64(len(entries))
	return first
}

// trackingAnswers runs every tracking query against s and returns the JSON
// answers, one per line.
func trackingAnswers(t *testing.T, s *Store, txIDs []string, objects []string, from, to time.Time) []byte {
	t.Helper()
	ctx := t.Context()
	ts := s.Tracking()
	var buf bytes.Buffer
	add := func(name string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(&buf, "%s %s\n", name, b)
	}
	r, _, release := s.TrackingReader()
	defer release()
	for _, id := range txIDs {
		v, err := ts.Transaction(ctx, r, id)
		add("tx "+id, v, err)
		rj, next, err := ts.Rejections(ctx, r, id, "", 2)
		add("rejections "+id, []any{rj, next}, err)
	}
	txs, next, err := ts.Transactions(ctx, r, tracking.Filter{})
	add("list", []any{txs, next}, err)
	txs, next, err = ts.Transactions(ctx, r, tracking.Filter{Dataset: "exports", Status: tracking.StatusPartiallyFailed})
	add("list filtered", []any{txs, next}, err)
	for _, o := range objects {
		evs, next, err := ts.Object(ctx, r, o, 0, "")
		add("object "+o, []any{evs, next}, err)
	}
	for _, by := range []string{"stage", "dataset", "source", "node"} {
		res, err := ts.Stats(ctx, r, tracking.StatsQuery{From: from, To: to, Bucket: time.Minute, By: by})
		add("stats "+by, res, err)
	}
	return buf.Bytes()
}

// TestTrackingIdenticalOnEveryNode feeds the same entries to three FSMs
// and checks that every tracking query answers byte for byte the same, on
// the three and on a fourth restored from a snapshot; and that the answers
// describe what happened.
func TestTrackingIdenticalOnEveryNode(t *testing.T) {
	mem := checkedMem(t)
	stores := make([]*Store, 3)
	a := &logApplier{t: t}
	for i := range stores {
		stores[i] = openMemStore(t, vfs.NewMem())
		a.fsms = append(a.fsms, NewFSM(stores[i], testLogger(t)))
	}
	sc := testSchema("exports", "")
	a.apply(testTime, mustCreate(t, sc))

	// tx1: three rows accepted, two rejected (one row with two errors).
	m1 := trackMeta("exports", testTime)
	m1.RowsIn = 5
	b1 := buildBatch(t, mem, &sc, []row{{"p1", "EU", 100, 1, 2, "o-1"}, {"p1", "EU", 101, 2, 2, "o-2"}, {"p2", "US", 100, 3, math.NaN(), "o-3"}}, 10,
		[]stream.RowError{{Row: 4, ObjectID: "o-bad", Field: "qty", Reason: "below min 0"},
			{Row: 5, ObjectID: "o-worse", Field: "qty", Reason: "not a number"}, {Row: 5, ObjectID: "o-worse", Field: "region", Reason: "not allowed"}})
	defer b1.Release()
	for _, r := range a.apply(testTime.Add(10*time.Millisecond), mustIngest(t, m1, &sc, b1, 0)...) {
		if _, ok := r.(*IngestResult); !ok {
			t.Fatalf("ingest tx1: got %v", r)
		}
	}
	// tx2: 300 rows in several parts, one of them re-sent (a duplicate).
	at2 := testTime.Add(time.Minute)
	m2 := trackMeta("exports", at2)
	rows := benchRows(300, 1)
	m2.RowsIn = len(rows)
	b2 := buildBatch(t, mem, &sc, rows, 100, nil)
	defer b2.Release()
	parts := mustIngest(t, m2, &sc, b2, 2048)
	if len(parts) < 3 {
		t.Fatalf("tx2: got %d parts, want >= 3", len(parts))
	}
	a.apply(at2.Add(10*time.Millisecond), parts...)
	a.apply(at2.Add(20*time.Millisecond), parts[1])
	// A forecast block proposed later through CmdTrackBlocks.
	tb, err := EncodeTrackBlocks([]TrackBlock{{TxID: m1.TxID, Block: tracking.Block{Stage: tracking.StageForecast,
		Status: tracking.BlockSuccess, Started: testTime.Add(time.Second), Finished: testTime.Add(1500 * time.Millisecond),
		RowsIn: 3, RowsOut: 3, Node: "n2", CPUTime: 40 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	a.apply(testTime.Add(2*time.Second), tb)

	ids := []string{m1.TxID, m2.TxID}
	objs := []string{"o-1", "o-bad", "o-worse", rows[0].obj, "unknown"}
	from, to := testTime.Add(-time.Hour), testTime.Add(time.Hour)
	want := trackingAnswers(t, stores[0], ids, objs, from, to)
	for i := 1; i < len(stores); i++ {
		if got := trackingAnswers(t, stores[i], ids, objs, from, to); !bytes.Equal(got, want) {
			t.Errorf("node %d answers differ from node 0:\ngot  %s\nwant %s", i, got, want)
		}
	}
	// Snapshot -> restore carries the tracking records.
	dst := snapshotRoundTrip(t, stores[0])
	if got := trackingAnswers(t, dst, ids, objs, from, to); !bytes.Equal(got, want) {
		t.Errorf("restored answers differ:\ngot  %s\nwant %s", got, want)
	}
	t.Logf("answers:\n%s", want)

	// The answers are right, not only equal.
	ctx := t.Context()
	ts := stores[0].Tracking()
	v, err := ts.Transaction(ctx, nil, m1.TxID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Transaction.Status != tracking.StatusPartiallyFailed || v.Transaction.Accepted != 3 || v.Transaction.Rejected != 3 ||
		v.Transaction.Source != tracking.SourceHTTP || v.Transaction.Node != "n1" || !v.Transaction.Created.Equal(testTime) {
		t.Errorf("tx1: got %+v, want partially_failed, 3 accepted, 3 rejected, http, n1, created %v", v.Transaction, testTime)
	}
	var stages []string
	for _, b := range v.Blocks {
		stages = append(stages, string(b.Stage))
		if b.Stage == tracking.StageValidate && (b.RowsIn != 5 || b.RowsOut != 3 || b.CPUTime != 2*time.Millisecond) {
			t.Errorf("tx1 validate: got %+v, want 5 in, 3 out, 2ms CPU", b)
		}
		if b.Stage == tracking.StageCommit && !b.Finished.Equal(testTime.Add(10*time.Millisecond)) {
			t.Errorf("tx1 commit: finished %v, want the AppendedAt %v", b.Finished, testTime.Add(10*time.Millisecond))
		}
	}
	if fmt.Sprint(stages) != "[ingress validate commit apply forecast]" {
		t.Errorf("tx1 blocks: got %v", stages)
	}
	v2, err := ts.Transaction(ctx, nil, m2.TxID)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Transaction.Status != tracking.StatusSucceeded || v2.Transaction.Accepted != 300 {
		t.Errorf("tx2: got %+v, want succeeded with 300 accepted", v2.Transaction)
	}
	for _, b := range v2.Blocks {
		if b.Stage == tracking.StageCommit && (b.Parts != len(parts) || b.RowsOut != 300) {
			t.Errorf("tx2 commit: got %d parts %d rows, want %d parts 300 rows (duplicate not counted)", b.Parts, b.RowsOut, len(parts))
		}
	}
	evs, _, err := ts.Object(ctx, nil, "o-worse", 0, "")
	if err != nil || len(evs) != 1 || evs[0].Outcome != tracking.OutcomeRejected || evs[0].Reason == "" || evs[0].TxID != m1.TxID {
		t.Errorf("object o-worse: got %+v (%v), want one rejected event of tx1 with a reason", evs, err)
	}
}

// TestTrackingInterruptedTransaction: a 3-part transaction whose part 2
// never arrives (the receiving node crashed) shows in_progress, stopped
// after commit; once the part arrives (a retry) it completes.
func TestTrackingInterruptedTransaction(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := &logApplier{t: t, fsms: []*FSM{NewFSM(s, testLogger(t))}}
	sc := testSchema("exports", "")
	a.apply(testTime, mustCreate(t, sc))
	m := trackMeta("exports", testTime)
	rows := benchRows(300, 2)
	m.RowsIn = len(rows)
	b := buildBatch(t, mem, &sc, rows, 100, nil)
	defer b.Release()
	parts := mustIngest(t, m, &sc, b, 2048)
	if len(parts) < 3 {
		t.Fatalf("got %d parts, want >= 3", len(parts))
	}
	a.apply(testTime.Add(5*time.Millisecond), parts[0])
	a.apply(testTime.Add(6*time.Millisecond), parts[2:]...)

	ts := s.Tracking()
	v, err := ts.Transaction(t.Context(), nil, m.TxID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Transaction.Status != tracking.StatusInProgress || v.Progress.LastCompleted != tracking.StageCommit ||
		v.Progress.CurrentStage != tracking.StageApply {
		t.Fatalf("interrupted: got status %s progress %+v, want in_progress, last completed commit, current apply",
			v.Transaction.Status, v.Progress)
	}
	a.apply(testTime.Add(time.Second), parts[1])
	v, err = ts.Transaction(t.Context(), nil, m.TxID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Transaction.Status != tracking.StatusSucceeded || v.Progress.LastCompleted != tracking.StageApply {
		t.Fatalf("completed: got status %s progress %+v, want succeeded after apply", v.Transaction.Status, v.Progress)
	}
	for _, blk := range v.Blocks {
		if blk.Stage == tracking.StageApply && (blk.RowsOut != 300 || !blk.Started.Equal(testTime.Add(5*time.Millisecond)) ||
			!blk.Finished.Equal(testTime.Add(time.Second))) {
			t.Errorf("apply block: got %+v, want 300 rows from the first part's append to the last's", blk)
		}
	}
}

// failWriter fails every tracking write.
type failWriter struct{}

var errInjected = errors.New("injected tracking write failure")

func (failWriter) Set(_, _ []byte, _ *pebble.WriteOptions) error         { return errInjected }
func (failWriter) Delete(_ []byte, _ *pebble.WriteOptions) error         { return errInjected }
func (failWriter) DeleteRange(_, _ []byte, _ *pebble.WriteOptions) error { return errInjected }

// TestTrackingWriteErrorKeepsIngest: failing tracking writes are counted
// and the ingest succeeds with all its rows.
func TestTrackingWriteErrorKeepsIngest(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	f := NewFSM(s, testLogger(t))
	f.trackWriter = func(tracking.Writer) tracking.Writer { return failWriter{} }
	a := &logApplier{t: t, fsms: []*FSM{f}}
	sc := testSchema("exports", "")
	a.apply(testTime, mustCreate(t, sc))
	m := trackMeta("exports", testTime)
	b := buildBatch(t, mem, &sc, []row{{"p1", "EU", 100, 1, 2, "o-1"}}, 10, []stream.RowError{{Row: 2, ObjectID: "o-2", Reason: "bad"}})
	defer b.Release()
	res, ok := a.apply(testTime, mustIngest(t, m, &sc, b, 0)...)[0].(*IngestResult)
	if !ok || res.Accepted != 1 || res.Rejected != 1 {
		t.Fatalf("ingest: got %+v, want 1 accepted, 1 rejected", res)
	}
	if n := s.TrackingWriteErrors(); n == 0 {
		t.Errorf("tracking write errors: got 0, want > 0")
	}
	if rec, ok, err := s.Transaction("exports", m.TxID); !ok || err != nil || rec.Accepted != 1 {
		t.Errorf("transaction record: got %+v %v %v, want 1 accepted", rec, ok, err)
	}
	obs, err := s.Observations(t.Context(), "exports", stream.SeriesID("exports", []string{"p1", "EU"}), math.MinInt32, math.MaxInt32)
	if err != nil || len(obs) != 1 {
		t.Errorf("observations: got %v %v, want 1", obs, err)
	}
	if _, err := s.Tracking().Transaction(t.Context(), nil, m.TxID); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("tracking transaction: got %v, want not found (writes failed)", err)
	}
}

// TestTrackingOffDataset: a dataset created with tracking: false stores its
// rows, keeps idempotency, and leaves no tracking record of any kind.
func TestTrackingOffDataset(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := &logApplier{t: t, fsms: []*FSM{NewFSM(s, testLogger(t))}}
	sc := testSchema("quiet", "")
	sc.Tracking = ptr(false)
	a.apply(testTime, mustCreate(t, sc))
	m := trackMeta("quiet", testTime)
	m.RowsIn = 2
	b := buildBatch(t, mem, &sc, []row{{"p1", "EU", 100, 1, 2, "o-1"}}, 10, []stream.RowError{{Row: 2, ObjectID: "o-2", Field: "qty", Reason: "below min 0"}})
	defer b.Release()
	parts := mustIngest(t, m, &sc, b, 0)
	res, ok := a.apply(testTime, parts...)[0].(*IngestResult)
	if !ok || res.Accepted != 1 || res.Rejected != 1 {
		t.Fatalf("ingest: got %+v, want 1 accepted, 1 rejected", res)
	}
	if again, ok := a.apply(testTime, parts...)[0].(*IngestResult); !ok || !again.Duplicate {
		t.Fatalf("re-sent part: got %+v, want a duplicate", again)
	}
	ts := s.Tracking()
	if _, err := ts.Transaction(t.Context(), nil, m.TxID); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("tracking transaction: got %v, want not found", err)
	}
	for _, id := range []string{"o-1", "o-2"} {
		if evs, _, err := ts.Object(t.Context(), nil, id, 10, ""); err == nil && len(evs) > 0 {
			t.Errorf("object %s: got %d events, want none", id, len(evs))
		}
	}
	var marks []DirtyMark
	if _, _, err := s.DirtySeries(t.Context(), "quiet", func(m DirtyMark) bool { marks = append(marks, m); return true }); err != nil {
		t.Fatal(err)
	}
	if len(marks) != 1 || marks[0].TxID != "" {
		t.Errorf("dirty marks %+v, want one without a transaction (no forecast block)", marks)
	}
}

// TestMonitorTrackingAlarm: a rise of the tracking write error count
// raises tracking_write:<node>, which is cleared after a quiet period.
func TestMonitorTrackingAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fr := newFakeRaft()
		var errs int64
		cfg := fr.config(t)
		cfg.TrackingWriteErrors = func() int64 { fr.mu.Lock(); defer fr.mu.Unlock(); return errs }
		cfg.TrackingClearAfter = time.Minute
		startMonitor(t, cfg)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check(t, "no errors", fr.take(), "")
		fr.set(func(*fakeRaft) { errs = 3 })
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check(t, "errors", fr.take(), "raise tracking_write:n1")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		check(t, "quiet 30s", fr.take(), "")
		time.Sleep(40 * time.Second)
		synctest.Wait()
		check(t, "quiet 70s", fr.take(), "clear tracking_write:n1")
	})
}

// TestTrackingExpireReclaimsSpace ingests ten days of transactions on disk,
// applies CmdTrackExpire with an eight-day cutoff, compacts, and checks
// that the tracking records are gone and their space reclaimed.
func TestTrackingExpireReclaimsSpace(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ten days of tracking records")
	}
	const days, txPerDay, rowsPerTx = 10, 8, 120
	mem := checkedMem(t)
	s, err := OpenStore(StoreConfig{Dir: t.TempDir(), Logger: testLogger(t), TrackingRetention: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := &logApplier{t: t, fsms: []*FSM{NewFSM(s, testLogger(t))}}
	sc := testSchema("exports", "")
	start := testTime.Truncate(24 * time.Hour)
	a.apply(start, mustCreate(t, sc))
	ids := make([][]string, days)
	for d := range days {
		for i := range txPerDay {
			at := start.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute)
			m := trackMeta("exports", at)
			rows := benchRows(rowsPerTx, d*txPerDay+i)
			m.RowsIn = rowsPerTx + 1
			b := buildBatch(t, mem, &sc, rows, rowsPerTx, []stream.RowError{{Row: rowsPerTx + 1, ObjectID: fmt.Sprint("bad-", d, "-", i), Reason: "bad"}})
			a.apply(at.Add(5*time.Millisecond), mustIngest(t, m, &sc, b, 0)...)
			b.Release()
			ids[d] = append(ids[d], m.TxID)
		}
	}
	// Both tracking ranges: the records, and the object index's runs
	// (ingested as sstables; tracking/keys.go, "Where runs go").
	usage := func() (n uint64, runs uint64) {
		t.Helper()
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []byte{prefixTracking, prefixTrackingRuns} {
			lo, hi := []byte{p}, []byte{p + 1}
			if err := s.db.Compact(t.Context(), lo, hi, false); err != nil {
				t.Fatal(err)
			}
			u, err := s.db.EstimateDiskUsage(lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			n += u
			if p == prefixTrackingRuns {
				runs = u
			}
		}
		return n, runs
	}
	before, runsBefore := usage()
	if runsBefore == 0 {
		t.Fatal("object index runs on disk before expiry: got 0 bytes, want the folded days'")
	}
	cutoff := s.Tracking().Cutoff(start.Add(days * 24 * time.Hour)) // start of day 8
	exp, err := EncodeTrackExpire(cutoff, "n1")
	if err != nil {
		t.Fatal(err)
	}
	a.apply(start.Add(days*24*time.Hour), exp)
	after, runsAfter := usage()
	t.Logf("tracking bytes on disk: %d before expiry, %d after (object index runs: %d, %d)", before, after, runsBefore, runsAfter)
	if after >= before/2 {
		t.Errorf("tracking bytes after expiring 80%%: got %d, want < %d", after, before/2)
	}
	if runsAfter >= runsBefore/2 {
		t.Errorf("object index run bytes after expiring 80%%: got %d, want < %d", runsAfter, runsBefore/2)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		d    int
		gone bool
	}{{0, true}, {7, true}, {8, false}, {9, false}} {
		_, err := s.Tracking().Transaction(ctx, nil, ids[tc.d][3])
		if gone := errors.Is(err, tracking.ErrNotFound); gone != tc.gone {
			t.Errorf("day %d transaction: got %v, want gone=%v", tc.d, err, tc.gone)
		}
		evs, _, err := s.Tracking().Object(ctx, nil, fmt.Sprint("bad-", tc.d, "-3"), 0, "")
		if err != nil || (len(evs) == 0) != tc.gone {
			t.Errorf("day %d object: got %d events (%v), want gone=%v", tc.d, len(evs), err, tc.gone)
		}
	}
	// The data itself is untouched.
	if ds := s.Datasets(); ds[0].Transactions != days*txPerDay {
		t.Errorf("transactions in the dataset: got %d, want %d", ds[0].Transactions, days*txPerDay)
	}
}

// BenchmarkApplyIngestTracking applies 10,000-row transactions through
// FSM.ApplyBatch as a Raft node does (disk, NoSync), with tracking off,
// on without the object index (track_objects: false) and on with it (one
// staged object-index key per transaction, folded into bucket runs every
// ~200,000 objects; tracking/keys.go). The target (objects >= 90%
// of off) is about end-to-end ingest: node/BenchmarkIngestTracking.
func BenchmarkApplyIngestTracking(b *testing.B) {
	for _, mode := range []string{"off", "on", "objects"} {
		b.Run("tracking="+mode+"/rows=10000", func(b *testing.B) {
			s, err := OpenStore(StoreConfig{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := NewFSM(s, nil)
			f.trackingOff = mode == "off"
			a := &logApplier{t: b, fsms: []*FSM{f}}
			sc := testSchema("d", "")
			if mode != "objects" {
				sc.TrackObjects = ptr(false)
			}
			a.apply(testTime, mustCreate(b, sc))
			mem := memory.NewGoAllocator()
			batches := make([]*stream.Batch, 8)
			for i := range batches {
				batches[i] = buildBatch(b, mem, &sc, benchRows(10000, i), 10000, nil)
				defer batches[i].Release()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				at := testTime.Add(time.Duration(i) * time.Second)
				m := trackMeta("d", at)
				m.RowsIn = 10000
				// Distinct object ids per transaction, as real orders are.
				parts := mustIngest(b, m, &sc, batches[i%len(batches)], 0)
				i++
				b.StartTimer()
				for _, r := range a.apply(at.Add(5*time.Millisecond), parts...) {
					if _, ok := r.(*IngestResult); !ok {
						b.Fatalf("response %v", r)
					}
				}
			}
			b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			if n := s.TrackingWriteErrors(); n != 0 {
				b.Fatalf("tracking write errors: %d", n)
			}
		})
	}
}

// TestObjectFoldCrashBeforeCommit: a fold of the object index ingests its
// run sstable during the apply, before the batch commits. A node that dies
// in between (simulated: the batch is dropped and the store closed, with
// the ingested file on disk) reopens, replays the entries from its applied
// index and must end byte-identical to a node that never crashed, with the
// same object journeys. As Raft does after a restart, the reopened node
// gets every entry since the last snapshot (here: all) again, and stages
// the object calls that lived in memory only again from them.
func TestObjectFoldCrashBeforeCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("applies 80 ingest entries to two on-disk stores")
	}
	const entries, rowsPer, perBatch = 80, 40, 10 // default fold: every 64th call
	mem := checkedMem(t)
	sc := testSchema("orders", "")
	start := testTime.Truncate(time.Hour)
	var batches [][][]byte // per Raft batch, its entries
	batches = append(batches, [][]byte{mustCreate(t, sc)})
	var objects []string
	for i := 0; i < entries; i += perBatch {
		var es [][]byte
		for j := i; j < i+perBatch; j++ {
			rows := benchRows(rowsPer, j)
			objects = append(objects, rows[0].obj, rows[rowsPer-1].obj)
			b := buildBatch(t, mem, &sc, rows, rowsPer, nil)
			es = append(es, mustIngest(t, trackMeta("orders", start.Add(time.Duration(j)*time.Second)), &sc, b, 0)...)
			b.Release()
		}
		batches = append(batches, es)
	}
	logsOf := func(first uint64, n int, es [][]byte) []*raft.Log {
		logs := make([]*raft.Log, len(es))
		for j, e := range es {
			logs[j] = &raft.Log{Index: first + uint64(j), Term: 1, Type: raft.LogCommand, Data: e,
				AppendedAt: start.Add(time.Duration(n)*time.Minute + time.Duration(j)*time.Millisecond)}
		}
		return logs
	}
	open := func(dir string) (*Store, *FSM) {
		s, err := OpenStore(StoreConfig{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s, NewFSM(s, testLogger(t))
	}
	runsOnDisk := func(s *Store) int { return countKeys(t, s, prefixTrackingRuns) }

	ref, refFSM := open(t.TempDir())
	t.Cleanup(func() { _ = ref.Close() })
	dir := t.TempDir()
	crashed, f := open(dir)
	idx := uint64(1)
	crashedAt := -1
	var applied [][]*raft.Log
	for n, es := range batches {
		logs := logsOf(idx, n, es)
		applied = append(applied, logs)
		refFSM.ApplyBatch(logs)
		if crashedAt < 0 && runsOnDisk(ref) > 0 {
			// The fold happens in this batch: apply it on the other store
			// without committing, then "crash".
			crashedAt = n
			ac := crashed.newApplyCtx(1 << 20)
			for _, l := range logs {
				f.apply(ac, l)
			}
			ac.close()
			if got := runsOnDisk(crashed); got == 0 {
				t.Fatal("no run ingested before the commit: the crash would test nothing")
			}
			if err := crashed.Close(); err != nil {
				t.Fatal(err)
			}
			crashed, f = open(dir)
			if got := crashed.AppliedIndex(); got != idx-1 {
				t.Fatalf("applied index after the crash: got %d, want %d", got, idx-1)
			}
			for _, old := range applied[:n] {
				f.ApplyBatch(old) // at or below the applied index: replayed, not applied
			}
		}
		f.ApplyBatch(logs)
		idx += uint64(len(es))
	}
	t.Cleanup(func() { _ = crashed.Close() })
	if crashedAt < 0 {
		t.Fatal("no fold happened: raise the number of entries")
	}
	var m dto.Metric
	if err := refFSM.metrics.objectFold.Write(&m); err != nil || m.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("object fold metric: %d folds timed (err %v), want 1", m.GetHistogram().GetSampleCount(), err)
	}
	if got, want := dumpKeyspace(t, crashed), dumpKeyspace(t, ref); got != want {
		t.Errorf("keyspace after the crash and replay (crashed in batch %d) differs from the node that did not crash", crashedAt)
	}
	for _, id := range objects {
		a, _, err := crashed.Tracking().Object(t.Context(), nil, id, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := ref.Tracking().Object(t.Context(), nil, id, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != 1 || !slices.Equal(a, b) {
			t.Fatalf("object %s: crashed node %v, other node %v, want the same single apply event", id, a, b)
		}
	}
}

// TestObjectCallsInSnapshots: object calls staged in memory go into the
// tracking staging table when Raft takes a snapshot (and their pending
// keys go), so the snapshot carries them to a restored node, and a node
// restarted after the snapshot (Raft replays only later entries) still
// answers; both then fold like a node that never stopped.
func TestObjectCallsInSnapshots(t *testing.T) {
	mem := checkedMem(t)
	sc := testSchema("orders", "")
	start := testTime.Truncate(time.Hour)
	var objects []string
	entry := func(j int) []byte {
		rows := benchRows(20, j)
		objects = append(objects, rows[0].obj, rows[19].obj)
		b := buildBatch(t, mem, &sc, rows, 20, nil)
		defer b.Release()
		return mustIngest(t, trackMeta("orders", start.Add(time.Duration(j)*time.Second)), &sc, b, 0)[0]
	}
	open := func(dir string) *Store {
		s, err := OpenStore(StoreConfig{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dirA := t.TempDir()
	a := open(dirA)
	ref := open(t.TempDir())
	t.Cleanup(func() { _ = ref.Close() })
	apps := &logApplier{t: t, fsms: []*FSM{NewFSM(a, testLogger(t)), NewFSM(ref, testLogger(t))}}
	apps.apply(start, mustCreate(t, sc))
	for j := range 30 { // below the 64-call fold
		apps.apply(start.Add(time.Duration(j)*time.Minute), entry(j))
	}
	count := func(s *Store, p byte) int { return countKeys(t, s, p) }
	journeys := func(s *Store) string {
		t.Helper()
		var b strings.Builder
		for _, id := range objects {
			evs, _, err := s.Tracking().Object(t.Context(), nil, id, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("object %s: %d events, want 1", id, len(evs))
			}
			fmt.Fprintln(&b, evs)
		}
		return b.String()
	}
	want := journeys(ref)
	if n := a.Tracking().StagedInMemory(); n != 30 || count(a, prefixTrackPending) != 30 {
		t.Fatalf("before the snapshot: %d calls in memory, %d pending keys, want 30 and 30", n, count(a, prefixTrackPending))
	}

	snap := snapshotBytes(t, a)
	if n := a.Tracking().StagedInMemory(); n != 0 || count(a, prefixTrackPending) != 0 {
		t.Errorf("after the snapshot: %d calls in memory, %d pending keys, want none", n, count(a, prefixTrackPending))
	}
	if got := journeys(a); got != want {
		t.Error("journeys after the snapshot differ")
	}
	restored := open(t.TempDir())
	t.Cleanup(func() { _ = restored.Close() })
	if err := NewFSM(restored, testLogger(t)).Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got := journeys(restored); got != want {
		t.Error("journeys of the restored node differ")
	}
	// Restart after the snapshot: nothing to replay, the calls are in the
	// staging table.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = open(dirA)
	t.Cleanup(func() { _ = a.Close() })
	if got := journeys(a); got != want {
		t.Error("journeys after a restart past the snapshot differ")
	}
	// All three go on and fold (64 calls) the same way.
	apps.fsms = []*FSM{NewFSM(a, testLogger(t)), NewFSM(ref, testLogger(t)), NewFSM(restored, testLogger(t))}
	for j := 30; j < 80; j++ {
		apps.apply(start.Add(time.Duration(j)*time.Minute), entry(j))
	}
	want = journeys(ref)
	for name, s := range map[string]*Store{"restarted": a, "restored": restored} {
		if got := journeys(s); got != want {
			t.Errorf("%s: journeys after the fold differ", name)
		}
		if count(s, prefixTrackingRuns) != count(ref, prefixTrackingRuns) || count(ref, prefixTrackingRuns) == 0 {
			t.Errorf("%s: %d run chunks, the node that never stopped %d (want equal, > 0)", name, count(s, prefixTrackingRuns), count(ref, prefixTrackingRuns))
		}
	}
}

// TestObjectCallsGoWithRestore: a restore replaces the state, so object
// calls staged in memory before it (current or recently folded) are not
// answered after it.
func TestObjectCallsGoWithRestore(t *testing.T) {
	mem := checkedMem(t)
	sc := testSchema("orders", "")
	start := testTime.Truncate(time.Hour)
	empty, err := OpenStore(StoreConfig{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = empty.Close() })
	snap := snapshotBytes(t, empty)

	s, err := OpenStore(StoreConfig{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := NewFSM(s, testLogger(t))
	a := &logApplier{t: t, fsms: []*FSM{f}}
	a.apply(start, mustCreate(t, sc))
	rows := benchRows(20, 1)
	b := buildBatch(t, mem, &sc, rows, 20, nil)
	a.apply(start.Add(time.Minute), mustIngest(t, trackMeta("orders", start), &sc, b, 0)...)
	b.Release()
	// Persist (as a snapshot does): the calls move to "recently folded".
	if _, err := f.Snapshot(); err != nil {
		t.Fatal(err)
	}
	a.apply(start.Add(2*time.Minute), func() []byte {
		rows = benchRows(20, 2)
		b := buildBatch(t, mem, &sc, rows, 20, nil)
		defer b.Release()
		return mustIngest(t, trackMeta("orders", start.Add(time.Second)), &sc, b, 0)[0]
	}())
	if s.Tracking().StagedInMemory() == 0 {
		t.Fatal("want calls in memory before the restore")
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{benchRows(20, 1)[0].obj, rows[0].obj} {
		evs, _, err := s.Tracking().Object(t.Context(), nil, id, 0, "")
		if err != nil || len(evs) != 0 {
			t.Errorf("object %s after restoring a state without it: %d events (%v), want none", id, len(evs), err)
		}
	}
}
