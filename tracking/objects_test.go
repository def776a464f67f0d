package tracking

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestObjectBucketStable pins the object-index hash: it is part of the
// on-disk format (keys.go), so a change here makes stored entries
// unreachable.
func TestObjectBucketStable(t *testing.T) {
	for id, want := range map[string]uint16{"": 294, "a": 603, "ord-0": 384, "ord-1": 767, "o-1": 552, "\x00\xff": 184} {
		if got := objectBucket(id); got != want {
			t.Errorf("objectBucket(%q) = %d, want %d (on-disk format changed?)", id, got, want)
		}
	}
	// The buckets of sequential ids are spread evenly.
	var n [objectBuckets]int
	for i := range 100 * objectBuckets {
		n[objectBucket(fmt.Sprint("ord-", i))]++
	}
	if lo, hi := slices.Min(n[:]), slices.Max(n[:]); lo < 50 || hi > 160 {
		t.Errorf("bucket sizes of sequential ids: min %d max %d, want about 100", lo, hi)
	}
}

// TestObjectIndexModel records random transactions over three days, each
// split into several RecordObjects calls (parts, some at the same
// millisecond), seven calls per batch, and checks every object's journey
// and its pages against a plain model of the calls. It runs with the
// default fold thresholds (one fold, at the 64th of 95 calls, then 31
// staged calls) and with tiny ones, so that folds happen in the middle of
// batches, several per batch, cover calls of several days, and a call
// repeated at the end is folded twice (once with its original).
func TestObjectIndexModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		legacy bool
	}{
		{"default", Config{}, false},
		{"calls=3", Config{ObjectFoldCalls: 3}, false},
		{"entries=700", Config{ObjectFoldEntries: 700}, false},
		{"bytes=4096", Config{ObjectFoldBytes: 4096}, false},
		{"calls=8/legacy runs", Config{ObjectFoldCalls: 8}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore(t, tc.cfg)
			var prepare func(*testing.T, *Store)
			if tc.legacy {
				prepare = moveRunsToLegacy
			}
			testObjectIndexModel(t, s, prepare)
			var staged, runs int
			for _, kv := range dump(t, s) {
				switch kv[0][1] {
				case tableObjStage:
					staged++
				case tableObjRun:
					runs++
				}
			}
			t.Logf("%d staged calls, %d run chunks", staged, runs)
			if runs == 0 {
				t.Error("run chunks: got 0, want folds")
			}
		})
	}
}

// objCall is one RecordObjects call of a test.
type objCall struct {
	tx, ds string
	at     time.Time
	es     []ObjectEntry
}

// randomObjectCalls returns the calls of n random transactions over three
// days (several parts each, some at the same millisecond) in random order,
// and the ids of the transactions recorded with RecordTransaction first
// (half of them, so the dataset is joined for those).
func randomObjectCalls(rng *rand.Rand, n int) (calls []objCall, recorded []objCall) {
	for i := range n {
		at := t0.Add(time.Duration(rng.IntN(3*24*3600)) * time.Second)
		tx := txid(at, uint64(i))
		ds := fmt.Sprint("ds", i%3)
		rows := 1 + rng.IntN(300)
		parts := 1 + rng.IntN(4)
		for p := range parts {
			c := objCall{tx: tx, ds: ds, at: at}
			if p%2 == 1 {
				c.at = at.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
			}
			for row := p; row < rows; row += parts {
				// Few ids, so objects recur across transactions and in
				// several rows and stages of one transaction.
				e := ObjectEntry{ObjectID: fmt.Sprint("obj-", rng.IntN(200)), Row: row, Stage: StageApply, Outcome: OutcomeAccepted}
				if rng.IntN(10) == 0 {
					e.Stage, e.Outcome, e.Field, e.Reason = StageValidate, OutcomeRejected, "qty", fmt.Sprint("bad ", row)
				}
				if rng.IntN(50) == 0 {
					e.ObjectID = ""
				}
				c.es = append(c.es, e)
			}
			calls = append(calls, c)
		}
		if i%2 == 0 {
			recorded = append(recorded, objCall{tx: tx, ds: ds})
		}
	}
	rng.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
	return calls, recorded
}

// moveRunsToLegacy moves the runs with an odd run number from Q 'R' to
// P 'R', where runs were written before RunPrefix existed: lookups must
// read both, also within one day.
func moveRunsToLegacy(t *testing.T, s *Store) {
	t.Helper()
	b := s.DB().NewBatch()
	defer b.Close()
	moved := 0
	for _, kv := range dump(t, s) {
		k := kv[0]
		if k[0] != s.k.q || k[1] != tableObjRun || binary.BigEndian.Uint32(k[objDayPrefixLen:])%2 == 0 {
			continue
		}
		legacy := append([]byte{s.k.p}, k[1:]...)
		if err := errors.Join(b.Delete(k, nil), b.Set(legacy, kv[1], nil)); err != nil {
			t.Fatal(err)
		}
		moved++
	}
	if moved == 0 {
		t.Fatal("no run to move")
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	// Compacted, as such runs are on disk: lookups would otherwise step
	// over the deleted keys' tombstones (slow under the race detector).
	if err := s.DB().Compact(t.Context(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("moved %d run chunks to the read-only table", moved)
}

// testObjectIndexModel records random calls into s, calls prepare (if
// set), and checks every object's journey against a model, whole and in
// pages (only pages of 10 after a prepare).
func testObjectIndexModel(t *testing.T, s *Store, prepare func(*testing.T, *Store)) {
	rng := rand.New(rand.NewPCG(7, 11))
	calls, recorded := randomObjectCalls(rng, 60)
	for _, c := range recorded {
		update(t, s, func(rec *Recorder) error {
			return rec.RecordTransaction(Transaction{ID: c.tx, Dataset: c.ds, Source: SourceHTTP})
		})
	}
	calls = append(calls, calls[5]) // a repeated call is one event, folded or not
	for i := 0; i < len(calls); i += 7 {
		update(t, s, func(rec *Recorder) error {
			for _, c := range calls[i:min(i+7, len(calls))] {
				if err := rec.RecordObjects(c.tx, c.ds, c.at, c.es); err != nil {
					return err
				}
			}
			return nil
		})
	}

	if prepare != nil {
		prepare(t, s)
	}
	model := map[string][]ObjectEvent{}
	seen := map[ObjectEvent]bool{}
	for _, c := range calls {
		for _, e := range c.es {
			ev := ObjectEvent{ObjectID: e.ObjectID, Time: c.at.Truncate(time.Millisecond), TxID: c.tx, Dataset: c.ds,
				Row: e.Row, Stage: e.Stage, Outcome: e.Outcome, Field: e.Field, Reason: e.Reason}
			if e.ObjectID != "" && !seen[ev] {
				seen[ev] = true
				model[e.ObjectID] = append(model[e.ObjectID], ev)
			}
		}
	}
	for id, want := range model {
		slices.SortFunc(want, func(a, b ObjectEvent) int {
			return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.TxID, b.TxID), cmp.Compare(a.Row, b.Row),
				cmp.Compare(a.Stage.code(), b.Stage.code()))
		})
		got, next, err := s.Object(t.Context(), nil, id, MaxLimit, "")
		if err != nil || next != "" || !slices.Equal(got, want) {
			t.Fatalf("%s: got %d events (next %q, %v), want %d:\ngot  %v\nwant %v", id, len(got), next, err, len(want), got, want)
		}
		limits := []int{1, 3, 10}
		if prepare != nil {
			limits = limits[2:] // the other cases cover paging; keep this one quick under -race
		}
		for _, limit := range limits {
			var all []ObjectEvent
			cursor := ""
			for {
				page, next, err := s.Object(t.Context(), nil, id, limit, cursor)
				if err != nil || len(page) > limit || (next != "" && len(page) != limit) {
					t.Fatalf("%s limit %d: page of %d, next %q, %v", id, limit, len(page), next, err)
				}
				all = append(all, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(all, want) {
				t.Fatalf("%s limit %d: paged journey differs: got %d events, want %d", id, limit, len(all), len(want))
			}
		}
	}
	if got, _, err := s.Object(t.Context(), nil, "obj-none", 0, ""); err != nil || len(got) != 0 {
		t.Errorf("unknown object: got %v, %v", got, err)
	}
}

// TestObjectIndexDeterminism feeds the same object calls, with repeats and
// an Expire in the middle, to stores with tiny fold thresholds: all in one
// batch, one batch per call, random batches, random batches with runs
// written through the batch instead of ingested, and random batches each
// first built and thrown away (a crash after the fold's ingest, before
// the commit) and then applied. The keyspaces must be byte-identical
// (folds happen at the same calls and write the same runs whatever the
// batch boundaries and however the runs get in), and hold both runs and
// staged calls.
func TestObjectIndexDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	calls, _ := randomObjectCalls(rng, 40)
	calls = append(calls, calls[3], calls[10])
	cut := t0.Truncate(24 * time.Hour).Add(24 * time.Hour) // expires the first of the three days
	type op struct {
		c      *objCall
		expire bool
	}
	var ops []op
	for i := range calls {
		if i == len(calls)/2 {
			ops = append(ops, op{expire: true})
		}
		ops = append(ops, op{c: &calls[i]})
	}
	do := func(rec *Recorder, o op) error {
		if o.expire {
			return rec.Expire(cut)
		}
		return rec.RecordObjects(o.c.tx, o.c.ds, o.c.at, o.c.es)
	}
	cfg := Config{ObjectFoldCalls: 5, ObjectFoldEntries: 900}
	one, many, mixed := newMemStore(t, cfg), newMemStore(t, cfg), newMemStore(t, cfg)
	batched, retried := newMemStore(t, cfg), newMemStore(t, cfg)
	batched.ingest = nil
	update(t, one, func(rec *Recorder) error {
		for _, o := range ops {
			if err := do(rec, o); err != nil {
				return err
			}
		}
		return nil
	})
	for _, o := range ops {
		update(t, many, func(rec *Recorder) error { return do(rec, o) })
	}
	errCrash := errors.New("crash before commit")
	for i := 0; i < len(ops); {
		n := 1 + rng.IntN(9)
		apply := func(rec *Recorder) error {
			for _, o := range ops[i:min(i+n, len(ops))] {
				if err := do(rec, o); err != nil {
					return err
				}
			}
			return nil
		}
		update(t, mixed, apply)
		update(t, batched, apply)
		if err := retried.Update(func(rec *Recorder) error { return errors.Join(apply(rec), errCrash) }); !errors.Is(err, errCrash) {
			t.Fatalf("thrown-away batch: got %v, want %v", err, errCrash)
		}
		update(t, retried, apply)
		i += n
	}
	if m := one.DB().Metrics(); m.Levels[len(m.Levels)-1].TablesIngested == 0 {
		t.Errorf("tables ingested into the bottom level: got 0, want the runs")
	}
	if m := batched.DB().Metrics(); m.Levels[len(m.Levels)-1].TablesIngested != 0 {
		t.Errorf("batched store: got ingested tables, want none")
	}
	a := dump(t, one)
	tables := map[byte]int{}
	for _, kv := range a {
		tables[kv[0][1]]++
	}
	if tables[tableObjStage] == 0 || tables[tableObjRun] == 0 {
		t.Fatalf("keys per table: got %v, want staged calls and runs", tables)
	}
	for name, s := range map[string]*Store{"one": one, "many": many, "mixed": mixed, "batched": batched, "retried": retried} {
		if n := s.RunIngestErrors(); n != 0 {
			t.Errorf("%s: %d failed run ingests", name, n)
		}
		b := dump(t, s)
		if len(a) != len(b) {
			t.Fatalf("%s: got %d keys, one batch %d, want equal", name, len(b), len(a))
		}
		for i := range a {
			if !bytes.Equal(a[i][0], b[i][0]) || !bytes.Equal(a[i][1], b[i][1]) {
				t.Fatalf("%s: entry %d: got %x (%d bytes), one batch %x (%d bytes), want equal", name, i, b[i][0], len(b[i][1]), a[i][0], len(a[i][1]))
			}
		}
	}
	// Expired: no object key of the first day is left, not even of calls
	// recorded after the Expire.
	if !recordedAfter(calls[len(calls)/2:], objDay(0, 0, unixDay(cut)-1)) {
		t.Fatal("no call after the Expire is of the expired day")
	}
	for _, kv := range a {
		if k := kv[0]; (k[1] == tableObjStage || k[1] == tableObjRun) && binary.BigEndian.Uint32(k[2:]) < unixDay(cut) {
			t.Errorf("object key %x of an expired day", k)
		}
	}
}

// recordedAfter reports whether one of calls was recorded on the day of
// object-index key k.
func recordedAfter(calls []objCall, k []byte) bool {
	d := binary.BigEndian.Uint32(k[2:])
	for _, c := range calls {
		if unixDay(c.at) == d {
			return true
		}
	}
	return false
}

// strColumn and rowColumn stand in for arrow's string and int32 arrays.
type strColumn struct {
	v    []string
	null []bool
}

func (c strColumn) Len() int           { return len(c.v) }
func (c strColumn) IsNull(i int) bool  { return c.null[i] }
func (c strColumn) Value(i int) string { return c.v[i] }

type rowColumn []int32

func (c rowColumn) Value(i int) int32 { return c[i] }

func (c rowColumn) Int32Values() []int32 { return c }

// rawColumn is a strColumn without nulls that also exposes its buffers,
// as arrow's string array does (its ValueBytes start at its first offset).
type rawColumn struct {
	strColumn
	offs []int32
	data []byte
}

func newRawColumn(ids []string) rawColumn {
	c := rawColumn{strColumn: strColumn{v: ids, null: make([]bool, len(ids))}}
	c.data = []byte("pad") // a first offset other than 0
	for _, id := range ids {
		c.offs = append(c.offs, int32(len(c.data)))
		c.data = append(c.data, id...)
	}
	c.offs = append(c.offs, int32(len(c.data)))
	c.data = c.data[3:]
	return c
}

func (c rawColumn) NullN() int            { return 0 }
func (c rawColumn) ValueOffsets() []int32 { return c.offs }
func (c rawColumn) ValueBytes() []byte    { return c.data }

// TestRecordAppliedMatchesRecordObjects: recording a batch's columns
// writes exactly what RecordObjects writes for the same accepted entries.
func TestRecordAppliedMatchesRecordObjects(t *testing.T) {
	ids := strColumn{}
	var rows rowColumn
	var es []ObjectEntry
	for i := range 3000 {
		id, null := fmt.Sprint("b-", 1000+i), i%97 == 5
		ids.v, ids.null = append(ids.v, id), append(ids.null, null)
		rows = append(rows, int32(2*i+1))
		if !null {
			es = append(es, ObjectEntry{ObjectID: id, Row: 2*i + 1, Stage: StageApply, Outcome: OutcomeAccepted})
		}
	}
	tx := txid(t0, 1)
	a, b := newMemStore(t, Config{}), newMemStore(t, Config{})
	update(t, a, func(rec *Recorder) error { return rec.RecordObjects(tx, "ds", t0, es) })
	update(t, b, func(rec *Recorder) error { return rec.RecordApplied(tx, "ds", t0, ids, rows) })
	da, db := dump(t, a), dump(t, b)
	if len(da) == 0 || fmt.Sprint(da) != fmt.Sprint(db) {
		t.Fatalf("RecordApplied wrote %d keys, RecordObjects %d; contents differ or empty", len(db), len(da))
	}
	evs, _, err := b.Object(t.Context(), nil, "b-1002", 0, "")
	if err != nil || len(evs) != 1 || evs[0].Row != 5 || evs[0].Stage != StageApply {
		t.Fatalf("lookup: got %+v %v, want one apply event at row 5", evs, err)
	}
}

// TestRecordObjectsInvalid: an unknown stage or outcome, or a row out of
// range, fails the call with ErrInvalid naming what is wrong, and writes
// nothing.
func TestRecordObjectsInvalid(t *testing.T) {
	s := newMemStore(t, Config{})
	at := t0
	for _, tc := range []struct {
		e    ObjectEntry
		want string
	}{
		{ObjectEntry{ObjectID: "o-1", Stage: "shipping", Outcome: OutcomeAccepted}, `object "o-1": unknown stage "shipping"`},
		{ObjectEntry{ObjectID: "o-2", Stage: StageApply, Outcome: "lost"}, `object "o-2": unknown outcome "lost"`},
		{ObjectEntry{ObjectID: "o-3", Row: -1, Stage: StageApply, Outcome: OutcomeAccepted}, "row -1 out of range"},
	} {
		err := s.Update(func(rec *Recorder) error {
			return rec.RecordObjects(txid(at, 1), "ds", at, []ObjectEntry{
				{ObjectID: "ok", Stage: StageApply, Outcome: OutcomeAccepted}, tc.e})
		})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want ErrInvalid with %q", tc.e, err, tc.want)
		}
	}
	if kvs := dump(t, s); len(kvs) != 0 {
		t.Errorf("keys after invalid calls: got %d, want 0", len(kvs))
	}
}

// TestVolatileStaging: with Config.VolatileStaging staged calls stay out
// of Pebble, yet lookups answer as a store that writes them; persisting
// them (as before a snapshot) and rebuilding them after a restart with a
// Restager (from the calls since the last fold) both keep the answers.
func TestVolatileStaging(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 4))
	calls, recorded := randomObjectCalls(rng, 40)
	cfg := Config{ObjectFoldCalls: 9}
	ref := newMemStore(t, cfg)
	vcfg := cfg
	vcfg.VolatileStaging = true
	vcfg.FS, vcfg.Dir = vfs.NewMem(), "tracking"
	vol := newMemStore(t, vcfg)
	for _, s := range []*Store{ref, vol} {
		for _, c := range recorded {
			update(t, s, func(rec *Recorder) error {
				return rec.RecordTransaction(Transaction{ID: c.tx, Dataset: c.ds, Source: SourceHTTP})
			})
		}
	}
	lastFold := -1
	for i, c := range calls {
		for _, s := range []*Store{ref, vol} {
			update(t, s, func(rec *Recorder) error { return rec.RecordObjects(c.tx, c.ds, c.at, c.es) })
		}
		if vol.StagedInMemory() == 0 {
			lastFold = i
		}
	}
	staged := vol.StagedInMemory()
	if lastFold < 0 || staged == 0 {
		t.Fatalf("want folds and calls staged after the last one: last fold at call %d, %d staged", lastFold, staged)
	}
	for _, kv := range dump(t, vol) {
		if kv[0][1] == tableObjStage {
			t.Fatalf("staged call %x in Pebble with VolatileStaging", kv[0])
		}
	}
	journeys := func(s *Store) string {
		t.Helper()
		var b strings.Builder
		for _, c := range calls {
			for _, e := range c.es[:min(3, len(c.es))] { // a sample: keeps -race quick
				if e.ObjectID == "" {
					continue
				}
				evs, _, err := s.Object(t.Context(), nil, e.ObjectID, MaxLimit, "")
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(&b, e.ObjectID, evs)
			}
		}
		return b.String()
	}
	want := journeys(ref)
	if got := journeys(vol); got != want {
		t.Fatal("journeys with volatile staging differ from the store that writes staged calls")
	}

	// Restart without persisting: the calls since the last fold are gone
	// until a Restager records them again.
	if err := vol.Close(); err != nil {
		t.Fatal(err)
	}
	vol, err := Open(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vol.Close() })
	if got := journeys(vol); got == want {
		t.Fatal("journeys right after the restart: want the unfolded calls missing")
	}
	rs := vol.NewRestager(vol.DB())
	for _, c := range calls[lastFold+1:] {
		if err := rs.RecordObjects(c.tx, c.ds, c.at, c.es); err != nil {
			t.Fatal(err)
		}
	}
	rs.Published()
	if got := vol.StagedInMemory(); got != staged {
		t.Errorf("staged calls rebuilt: got %d, want %d", got, staged)
	}
	if got := journeys(vol); got != want {
		t.Fatal("journeys after the rebuild differ")
	}

	// Persist (as before a snapshot): into the staging table, and the
	// same answers; a later fold takes them from there.
	b := vol.DB().NewBatch()
	if err := vol.PersistStaged(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	vol.DropStaged()
	if got := journeys(vol); got != want {
		t.Fatal("journeys after persisting differ")
	}
	for _, c := range calls[:20] { // again: repeats are one event, and fold at least once
		for _, s := range []*Store{ref, vol} {
			update(t, s, func(rec *Recorder) error { return rec.RecordObjects(c.tx, c.ds, c.at, c.es) })
		}
	}
	if got, want := journeys(vol), journeys(ref); got != want {
		t.Fatal("journeys after folding persisted calls differ")
	}
}

// TestRecordPreparedMatchesRecordApplied: calls encoded ahead by
// PrepareApplied stage exactly the bytes RecordApplied stages, in the
// same order, across folds, whether or not the transaction is recorded
// (then every chunk carries the dataset), and fail as RecordApplied does.
func TestRecordPreparedMatchesRecordApplied(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	// Columns with nulls go through the column methods; raw ones (half
	// of them, without nulls) through their buffers. The direct store
	// always reads through the methods.
	column := func(n, base int) (methods, raw AppliedColumns) {
		ids := strColumn{}
		var rows rowColumn
		nulls := rng.IntN(2) == 0
		for i := range n {
			ids.v = append(ids.v, fmt.Sprint("p-", base+rng.IntN(5*n)))
			ids.null = append(ids.null, nulls && rng.IntN(50) == 0)
			rows = append(rows, int32(base+i))
		}
		methods = AppliedColumns{ids, rows}
		if nulls {
			return methods, methods
		}
		return methods, AppliedColumns{newRawColumn(ids.v), rows}
	}
	cfg := Config{ObjectFoldCalls: 7}
	direct, prepared := newMemStore(t, cfg), newMemStore(t, cfg)
	folds := 0
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Minute)
		tx := txid(at, uint64(i))
		m1, r1 := column(1+rng.IntN(400), 0)
		m2, r2 := column(1+rng.IntN(400), 1000)
		cols, raw := []AppliedColumns{m1, m2}, []AppliedColumns{r1, r2}
		recordTx := i%3 != 0
		for _, s := range []*Store{direct, prepared} {
			update(t, s, func(rec *Recorder) error {
				if recordTx {
					if err := rec.RecordTransaction(Transaction{ID: tx, Dataset: "ds", Source: SourceHTTP}); err != nil {
						return err
					}
				}
				if s == prepared {
					defer func() { folds += rec.Folds() }()
					return rec.RecordPrepared(s.PrepareApplied(tx, "ds", at, raw))
				}
				for _, c := range cols {
					if err := rec.RecordApplied(tx, "ds", at, c.IDs, c.Rows); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if da, dp := dump(t, direct), dump(t, prepared); fmt.Sprint(da) != fmt.Sprint(dp) {
			t.Fatalf("after call %d (transaction recorded %v): stores differ (%d and %d keys)", i, recordTx, len(da), len(dp))
		}
	}
	if folds == 0 {
		t.Fatal("no fold happened; the test must cover folds")
	}
	evs, _, err := prepared.Object(t.Context(), nil, "p-3", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := direct.Object(t.Context(), nil, "p-3", 0, "")
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("lookup: prepared %+v, direct %+v", evs, want)
	}

	bad := []AppliedColumns{{strColumn{v: []string{"x"}, null: []bool{false}}, rowColumn{-1}}}
	for _, tx := range []string{"not-a-ulid", txid(t0, 99), txid(t0, 98)} {
		if tx == txid(t0, 98) {
			bad = []AppliedColumns{{newRawColumn([]string{"x"}), rowColumn{-1}}}
		}
		var errs [2]error
		for i, s := range []*Store{direct, prepared} {
			errs[i] = s.Update(func(rec *Recorder) error {
				if s == prepared {
					return rec.RecordPrepared(s.PrepareApplied(tx, "ds", t0, bad))
				}
				return rec.RecordApplied(tx, "ds", t0, bad[0].IDs, bad[0].Rows)
			})
		}
		if errs[0] == nil || fmt.Sprint(errs[0]) != fmt.Sprint(errs[1]) {
			t.Errorf("tx %q: RecordApplied failed with %v, RecordPrepared with %v", tx, errs[0], errs[1])
		}
	}
	if direct.WriteErrors() != prepared.WriteErrors() || direct.WriteErrors() != 3 {
		t.Errorf("write errors: direct %d, prepared %d, want 3 each", direct.WriteErrors(), prepared.WriteErrors())
	}
}

// TestLargeFoldSplitsRuns: a fold whose runs pass splitRunBytes writes
// them as two sstables, ingested together into the bottom level, and the
// store holds exactly what a store that writes its runs through the
// batch holds; lookups find every object.
func TestLargeFoldSplitsRuns(t *testing.T) {
	const calls, n = 8, 12_000
	cfg := Config{ObjectFoldCalls: calls}
	split, batched := newMemStore(t, cfg), newMemStore(t, cfg)
	batched.ingest = nil
	rows := make(rowColumn, n)
	for i := range rows {
		rows[i] = int32(i)
	}
	for k := range calls {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("order-%09d", k*n+i)
		}
		at := t0.Add(time.Duration(k) * time.Minute)
		for _, s := range []*Store{split, batched} {
			update(t, s, func(rec *Recorder) error {
				return rec.RecordApplied(txid(at, uint64(k)), "orders", at, newRawColumn(ids), rows)
			})
		}
	}
	bottom := func(s *Store) uint64 {
		m := s.DB().Metrics()
		return m.Levels[len(m.Levels)-1].TablesIngested
	}
	if got := bottom(split); got != 2 {
		t.Fatalf("tables ingested into the bottom level: got %d, want 2 (one fold of > %d bytes of runs)", got, splitRunBytes)
	}
	a, b := dump(t, split), dump(t, batched)
	if len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("split store: %d keys, batched store %d; contents differ or empty", len(a), len(b))
	}
	for _, id := range []string{"order-000000000", "order-000047999", "order-000095999"} {
		evs, _, err := split.Object(t.Context(), nil, id, 0, "")
		if err != nil || len(evs) != 1 {
			t.Fatalf("lookup %s: got %d events (%v), want 1", id, len(evs), err)
		}
	}
}
