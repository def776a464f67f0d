package tracking

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestRetention writes ten days of records to a standalone store on disk,
// expires the first eight days, compacts, and checks that the records are
// gone from every query and that the disk usage shrank.
func TestRetention(t *testing.T) {
	const days, txPerDay, objPerTx = 10, 12, 120
	s, err := Open(Config{Dir: t.TempDir(), Retention: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	start := t0.Truncate(24 * time.Hour)
	idAt := func(d, i int) (string, time.Time) {
		at := start.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute)
		return txid(at, uint64(d*txPerDay+i)), at
	}
	for d := range days {
		update(t, s, func(rec *Recorder) error {
			for i := range txPerDay {
				id, at := idAt(d, i)
				if err := rec.RecordTransaction(Transaction{ID: id, Dataset: "exports", Source: SourceHTTP, In: objPerTx, Accepted: objPerTx}); err != nil {
					return err
				}
				for _, st := range []Stage{StageIngress, StageValidate, StageCommit, StageApply} {
					if err := rec.RecordBlock(id, blk(st, BlockSuccess, at, time.Millisecond, objPerTx, objPerTx)); err != nil {
						return err
					}
				}
				entries := make([]ObjectEntry, objPerTx)
				for j := range entries {
					entries[j] = ObjectEntry{ObjectID: objID(d, j), Row: j,
						Stage: StageValidate, Outcome: OutcomeRejected, Field: "qty", Reason: fmt.Sprintf("value %d below min 0", j*7919)}
				}
				if err := rec.RecordObjects(id, "exports", at, entries); err != nil {
					return err
				}
				if err := rec.RecordRejections(id, []Rejection{{Row: 1, Reason: "bad"}}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	db := s.DB()
	compact := func() uint64 {
		t.Helper()
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := db.Compact(t.Context(), []byte{s.k.p}, []byte{s.k.p + 1}, false); err != nil {
			t.Fatal(err)
		}
		// Live sstable bytes: the WAL and memtables do not shrink.
		m := db.Metrics()
		return uint64(m.Total().TablesSize)
	}
	before := compact()

	cutoff := s.Cutoff(start.Add(days * 24 * time.Hour)) // = start of day 8
	update(t, s, func(rec *Recorder) error { return rec.Expire(cutoff) })
	after := compact()
	t.Logf("sstable bytes: %d before expiry, %d after", before, after)
	if after >= before/2 {
		t.Errorf("sstable bytes after expiring 80%%: got %d bytes, want < %d (half of %d)", after, before/2, before)
	}

	ctx := t.Context()
	for _, tc := range []struct {
		d    int
		gone bool
	}{{0, true}, {7, true}, {8, false}, {9, false}} {
		id, at := idAt(tc.d, 3)
		_, err := s.Transaction(ctx, nil, id)
		if gotGone := errors.Is(err, ErrNotFound); gotGone != tc.gone {
			t.Errorf("day %d transaction: got err %v, want gone=%v", tc.d, err, tc.gone)
		}
		rej, _, err := s.Rejections(ctx, nil, id, "", 0)
		if err != nil || (len(rej) == 0) != tc.gone {
			t.Errorf("day %d rejections: got %d (%v), want gone=%v", tc.d, len(rej), err, tc.gone)
		}
		evs, _, err := s.Object(ctx, nil, objID(tc.d, 5), 0, "")
		if err != nil || (len(evs) == 0) != tc.gone {
			t.Errorf("day %d object: got %d events (%v), want gone=%v", tc.d, len(evs), err, tc.gone)
		}
		res, err := s.Stats(ctx, nil, StatsQuery{From: at, To: at.Add(time.Minute)})
		if err != nil || (len(res.Buckets) == 0) != tc.gone {
			t.Errorf("day %d stats: got %d buckets (%v), want gone=%v", tc.d, len(res.Buckets), err, tc.gone)
		}
	}
	txs, _, err := s.Transactions(ctx, nil, Filter{Limit: MaxLimit})
	if err != nil || len(txs) != 2*txPerDay {
		t.Errorf("listing: got %d transactions (%v), want %d", len(txs), err, 2*txPerDay)
	}
	txs, _, err = s.Transactions(ctx, nil, Filter{Dataset: "exports", Limit: MaxLimit})
	if err != nil || len(txs) != 2*txPerDay {
		t.Errorf("listing by dataset: got %d transactions (%v), want %d", len(txs), err, 2*txPerDay)
	}
	// No key of any table is older than the cutoff.
	var n, objKeys int
	cutDay := unixDay(cutoff)
	err = scan(db, []byte{0}, []byte{0xff}, false, func(it *pebble.Iterator) (bool, error) {
		switch k := it.Key(); k[1] {
		case tableObjStage, tableObjRun:
			if d := binary.BigEndian.Uint32(k[2:]); d < cutDay {
				t.Errorf("object index key %x: day %d, want >= %d", k, d, cutDay)
			}
			objKeys++
		default:
			n++
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Per kept tx: tx + 4 blocks + 1 rejection + 3 index; stats: 4 dims x
	// 4 stages per minute; the object index counters.
	if want := 2*txPerDay*(1+4+1+3+4*4) + 1; n != want {
		t.Errorf("keys left besides the object index: got %d, want %d", n, want)
	}
	if objKeys == 0 {
		t.Error("object index keys left: got 0, want the last two days'")
	}
}

// TestObjectIndexExpire: Expire removes the staged calls and the runs of
// expired days, also for calls staged earlier in the same batch, and a
// later fold in that batch does not bring them back.
func TestObjectIndexExpire(t *testing.T) {
	day := func(d int) time.Time { return t0.Truncate(24 * time.Hour).Add(time.Duration(d) * 24 * time.Hour) }
	call := func(rec *Recorder, d, i int) error {
		at := day(d).Add(time.Duration(i) * time.Minute)
		return rec.RecordObjects(txid(at, uint64(i)), "ds", at, []ObjectEntry{
			{ObjectID: fmt.Sprint("e-", d, "-", i), Row: 0, Stage: StageApply, Outcome: OutcomeAccepted},
			{ObjectID: fmt.Sprint("f-", d, "-", i), Row: 1, Stage: StageApply, Outcome: OutcomeAccepted},
		})
	}
	// A fold every fourth call: one run on each of days 0-2, then two
	// staged calls on days 1 and 3.
	s := newMemStore(t, Config{ObjectFoldCalls: 4})
	for d := range 3 {
		update(t, s, func(rec *Recorder) error {
			for i := range 4 {
				if err := call(rec, d, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	update(t, s, func(rec *Recorder) error {
		if err := call(rec, 1, 10); err != nil {
			return err
		}
		return call(rec, 3, 10)
	})
	days := func() string {
		got := map[string][]uint32{}
		for _, kv := range dump(t, s) {
			if k := kv[0]; k[1] == tableObjStage || k[1] == tableObjRun {
				d := binary.BigEndian.Uint32(k[2:]) - unixDay(day(0))
				if ds := got[string(k[1])]; len(ds) == 0 || ds[len(ds)-1] != d {
					got[string(k[1])] = append(ds, d)
				}
			}
		}
		return fmt.Sprint(got)
	}
	if got, want := days(), "map[R:[0 1 2] S:[1 3]]"; got != want {
		t.Fatalf("days of runs and staged calls: got %s, want %s", got, want)
	}
	// One batch: stage on day 0, expire days 0 and 1, stage on day 0
	// again (dropped: the day is expired, so it counts for no fold), then
	// on day 3 (the fourth staged call: it folds, and nothing of days 0
	// and 1 comes back). Runs are ingested before the batch commits, so
	// this is also the case where a range deletion earlier in the batch
	// must not cover them (keys.go, "Where runs go").
	update(t, s, func(rec *Recorder) error {
		if err := call(rec, 0, 20); err != nil {
			return err
		}
		if err := rec.Expire(day(2)); err != nil {
			return err
		}
		if n := len(rec.obj.staged); n != 0 {
			t.Errorf("calls staged in the batch after Expire: got %d, want 0", n)
		}
		if err := call(rec, 0, 21); err != nil {
			return err
		}
		if n := len(rec.obj.staged); n != 0 {
			t.Errorf("calls staged in the batch for an expired day: got %d, want 0", n)
		}
		return call(rec, 3, 22)
	})
	if got, want := days(), "map[R:[2 3]]"; got != want {
		t.Errorf("days of runs and staged calls after expiring days 0 and 1: got %s, want %s", got, want)
	}
	for _, tc := range []struct {
		id   string
		want int
	}{{"e-0-1", 0}, {"e-1-10", 0}, {"e-1-2", 0}, {"e-0-20", 0}, {"e-0-21", 0}, {"f-3-10", 1}, {"e-3-22", 1}, {"e-2-1", 1}} {
		evs, _, err := s.Object(t.Context(), nil, tc.id, 0, "")
		if err != nil || len(evs) != tc.want {
			t.Errorf("%s: got %d events (%v), want %d", tc.id, len(evs), err, tc.want)
		}
	}
}

func objID(d, j int) string { return fmt.Sprintf("obj-%d-%d-%x", d, j, uint32(j)*2654435761) }
