package tracking

import (
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
	var n int
	err = scan(db, []byte{s.k.p}, []byte{s.k.p + 1}, false, func(it *pebble.Iterator) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Per kept tx: tx + 4 blocks + 1 rejection + 3 index + one object
	// chunk per bucket its objects fall in; stats: 4 dims x 4 stages per
	// minute.
	want := 2 * txPerDay * (1 + 4 + 1 + 3 + 4*4)
	for d := 8; d < days; d++ {
		buckets := map[uint16]bool{}
		for j := range objPerTx {
			buckets[objectBucket(objID(d, j))] = true
		}
		want += txPerDay * len(buckets)
	}
	if n != want {
		t.Errorf("keys left: got %d, want %d", n, want)
	}
}

func objID(d, j int) string { return fmt.Sprintf("obj-%d-%d-%x", d, j, uint32(j)*2654435761) }
