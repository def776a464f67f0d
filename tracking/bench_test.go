package tracking

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func openBenchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(Config{Dir: b.TempDir(), CacheSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchObjects(n, salt int) []ObjectEntry {
	es := make([]ObjectEntry, n)
	for i := range es {
		es[i] = ObjectEntry{ObjectID: "ord-" + strconv.Itoa(salt*n+i), Row: i, Stage: StageApply, Outcome: OutcomeAccepted}
		if i%100 == 0 {
			es[i].Stage, es[i].Outcome, es[i].Field, es[i].Reason = StageValidate, OutcomeRejected, "qty", "below min 0"
		}
	}
	return es
}

// BenchmarkRecordObjects records 10,000 objects per transaction into a
// Pebble batch: one staged key of about 1,000 bucket chunks and the
// counters key, and every 20th call a fold of the staged calls into a run
// (about 1,000 keys and a range delete); keys/op is the mean number of
// batch operations. commit=true also commits it NoSync (and so pays for
// the memtable and, in the background, flushes and compactions),
// commit=false measures only the work done inside the apply for a call
// that does not fold (encoding into the batch: with nothing committed,
// staged calls never add up to a fold).
func BenchmarkRecordObjects(b *testing.B) {
	const n = 10_000
	for _, commit := range []bool{false, true} {
		b.Run(fmt.Sprintf("objects=%d/commit=%v", n, commit), func(b *testing.B) {
			s := openBenchStore(b)
			db := s.DB()
			sets := make([][]ObjectEntry, 16)
			for k := range sets {
				sets[k] = benchObjects(n, k)
			}
			b.ReportAllocs()
			i, keys := 0, 0
			start := time.Now()
			for b.Loop() {
				at := t0.Add(time.Duration(i) * time.Second)
				bt := db.NewBatch()
				if err := s.NewRecorder(db, bt).RecordObjects(txid(at, uint64(i)), "orders", at, sets[i%len(sets)]); err != nil {
					b.Fatal(err)
				}
				if commit {
					if err := bt.Commit(pebble.NoSync); err != nil {
						b.Fatal(err)
					}
				}
				keys += int(bt.Count())
				_ = bt.Close()
				i++
			}
			b.ReportMetric(float64(i*n)/time.Since(start).Seconds(), "objects/s")
			b.ReportMetric(float64(keys)/float64(i), "keys/op")
		})
	}
}

// BenchmarkRecordApplied is RecordApplied (the FSM's call for the accepted
// rows of a part, read from the batch's columns) of 10,000 rows into a
// batch that is not committed: the encoding work inside the apply.
func BenchmarkRecordApplied(b *testing.B) {
	const n = 10_000
	s := openBenchStore(b)
	db := s.DB()
	sets := make([]strColumn, 16)
	rows := make(rowColumn, n)
	for i := range rows {
		rows[i] = int32(i)
	}
	for k := range sets {
		for _, e := range benchObjects(n, k) {
			sets[k].v = append(sets[k].v, e.ObjectID)
			sets[k].null = append(sets[k].null, false)
		}
	}
	raws := make([]ObjectColumn, len(sets))
	for k := range sets {
		raws[k] = newRawColumn(sets[k].v)
	}
	for _, cols := range []struct {
		name string
		ids  func(k int) ObjectColumn
	}{
		{"methods", func(k int) ObjectColumn { return sets[k] }},
		{"buffers", func(k int) ObjectColumn { return raws[k] }},
	} {
		b.Run(cols.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			start := time.Now()
			for b.Loop() {
				at := t0.Add(time.Duration(i) * time.Second)
				bt := db.NewBatch()
				if err := s.NewRecorder(db, bt).RecordApplied(txid(at, uint64(i)), "orders", at, cols.ids(i%len(sets)), rows); err != nil {
					b.Fatal(err)
				}
				_ = bt.Close()
				i++
			}
			b.ReportMetric(float64(i*n)/time.Since(start).Seconds(), "objects/s")
		})
	}
}

// BenchmarkApply compares a synthetic 10,000-row FSM apply (one batch of
// 10,000 observation Sets plus the applied index, committed NoSync) with
// tracking off, with transaction tracking (transaction, four blocks, 100
// rejections, statistics) and with a 10,000-object index on top (one
// staged key, and a fold every 20th transaction). The synthetic apply has
// no Arrow decoding,
// so the measured overhead is an upper bound of the real one.
func BenchmarkApply(b *testing.B) {
	const rows = 10_000
	for _, mode := range []string{"off", "tx", "tx+objects"} {
		tracking, objects := mode != "off", mode == "tx+objects"
		b.Run("tracking="+mode, func(b *testing.B) {
			s := openBenchStore(b)
			db := s.DB()
			b.ReportAllocs()
			key := make([]byte, 0, 32)
			val := make([]byte, 40)
			sets := make([][]ObjectEntry, 16)
			for k := range sets {
				sets[k] = benchObjects(rows, k)
			}
			i := 0
			start := time.Now()
			for b.Loop() {
				at := t0.Add(time.Duration(i) * time.Second)
				bt := db.NewBatch()
				for r := range rows {
					key = append(key[:0], 0x11, 0, 0, 0, 1)
					key = binary.BigEndian.AppendUint64(key, uint64(i*rows+r)*0x9E3779B97F4A7C15)
					key = binary.BigEndian.AppendUint32(key, uint32(r))
					binary.BigEndian.PutUint64(val, uint64(r))
					_ = bt.Set(key, val, nil)
				}
				if tracking {
					id := txid(at, uint64(i))
					rec := s.NewRecorder(db, bt)
					_ = rec.RecordTransaction(Transaction{ID: id, Dataset: "orders", Source: SourceHTTP, In: rows, Accepted: rows - 100, Rejected: 100, Node: "n1"})
					for j, st := range []Stage{StageIngress, StageValidate, StageCommit, StageApply} {
						_ = rec.RecordBlock(id, blk(st, BlockSuccess, at.Add(time.Duration(j)*time.Millisecond), time.Millisecond, rows, rows))
					}
					rj := make([]Rejection, 100)
					for k := range rj {
						rj[k] = Rejection{Row: k * 100, ObjectID: "x", Field: "qty", Reason: "below min 0"}
					}
					_ = rec.RecordRejections(id, rj)
					if objects {
						if err := rec.RecordObjects(id, "orders", at, sets[i%len(sets)]); err != nil {
							b.Fatal(err)
						}
					}
				}
				_ = bt.Set([]byte{0x01, 0x01}, binary.BigEndian.AppendUint64(nil, uint64(i)), nil)
				if err := bt.Commit(pebble.NoSync); err != nil {
					b.Fatal(err)
				}
				_ = bt.Close()
				i++
			}
			b.ReportMetric(float64(i*rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// benchObjectCount is the number of tracked objects BenchmarkObjectLookup
// builds: 1,000,000 by default, DEMANDFLOW_BENCH_OBJECTS to override (for
// instance 10000000 for the 10M target, outside CI).
func benchObjectCount(b *testing.B) int {
	if v := os.Getenv("DEMANDFLOW_BENCH_OBJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("DEMANDFLOW_BENCH_OBJECTS: %v", err)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkObjectLookup looks up random objects of a store holding
// benchObjectCount objects, each with two entries (validate and apply),
// spread over seven days in transactions of 10,000 objects, after a full
// compaction. It reports p50 and p99 lookup latency and the store's disk
// use. A lookup reads the
// object's bucket of every run (one per 200,000 entries: ~100 at 10M
// objects) and every staged call of each of the eight day partitions:
// about 2 x benchObjectCount / 1024 entries in all (~20,000 at 10M
// objects).
func BenchmarkObjectLookup(b *testing.B) {
	const perTx = 10_000
	total := benchObjectCount(b)
	b.Run(fmt.Sprintf("objects=%d", total), func(b *testing.B) {
		s := openBenchStore(b)
		db := s.DB()
		txs := (total + perTx - 1) / perTx
		span := 7 * 24 * time.Hour
		es := make([]ObjectEntry, 2*perTx)
		for i := range txs {
			at := t0.Add(span * time.Duration(i) / time.Duration(txs))
			for j := range perTx {
				oid := "ord-" + strconv.Itoa(i*perTx+j)
				es[2*j] = ObjectEntry{ObjectID: oid, Row: j, Stage: StageValidate, Outcome: OutcomeAccepted}
				es[2*j+1] = ObjectEntry{ObjectID: oid, Row: j, Stage: StageApply, Outcome: OutcomeAccepted}
			}
			bt := db.NewBatch()
			if err := s.NewRecorder(db, bt).RecordObjects(txid(at, uint64(i)), "orders", at, es); err != nil {
				b.Fatal(err)
			}
			if err := bt.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			_ = bt.Close()
		}
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := db.Compact(b.Context(), []byte{0}, []byte{0xff}, true); err != nil {
			b.Fatal(err)
		}
		disk := db.Metrics().DiskSpaceUsage()
		rng := rand.New(rand.NewPCG(1, 2))
		var lat []time.Duration
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			oid := "ord-" + strconv.Itoa(rng.IntN(txs*perTx))
			t := time.Now()
			evs, _, err := s.Object(ctx, nil, oid, 0, "")
			lat = append(lat, time.Since(t))
			if err != nil || len(evs) != 2 {
				b.Fatalf("lookup %s: got %d events (%v), want 2", oid, len(evs), err)
			}
		}
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(float64(disk)/1e6, "disk-MB")
	})
}

// BenchmarkStatsDay queries one day of 1-minute buckets, built from 10
// transactions per minute with six blocks each over 10 datasets, grouped by
// stage and by dataset.
func BenchmarkStatsDay(b *testing.B) {
	s := openBenchStore(b)
	db := s.DB()
	const perMin = 10
	for m := range 1440 {
		bt := db.NewBatch()
		rec := s.NewRecorder(db, bt)
		for k := range perMin {
			at := t0.Add(time.Duration(m)*time.Minute + time.Duration(k)*time.Second)
			id := txid(at, uint64(m*perMin+k))
			_ = rec.RecordTransaction(Transaction{ID: id, Dataset: fmt.Sprint("ds", k), Source: SourceHTTP, In: 100, Accepted: 100, Node: "n1"})
			for j, st := range Stages {
				if err := rec.RecordBlock(id, blk(st, BlockSuccess, at.Add(time.Duration(j)*time.Millisecond), time.Duration(j+1)*time.Millisecond, 100, 100)); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := bt.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		_ = bt.Close()
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		by     string
		bucket time.Duration
	}{{"stage", time.Minute}, {"dataset", time.Minute}, {"stage", time.Hour}} {
		b.Run(fmt.Sprintf("by=%s/bucket=%v", tc.by, tc.bucket), func(b *testing.B) {
			b.ReportAllocs()
			q := StatsQuery{From: t0, To: t0.Add(24 * time.Hour), Bucket: tc.bucket, By: tc.by}
			for b.Loop() {
				res, err := s.Stats(b.Context(), nil, q)
				if err != nil {
					b.Fatal(err)
				}
				if tc.bucket == time.Minute && len(res.Buckets) != 1440 {
					b.Fatalf("buckets: got %d, want 1440", len(res.Buckets))
				}
			}
		})
	}
}

// BenchmarkFoldObjects times one fold of the object index: 20 staged
// RecordApplied calls of 10,000 ids each (200,000 entries, the FSM's fold
// size) folded into runs and ingested as an sstable, on disk. The fold
// runs on the FSM's apply path, so its time is an apply stall.
func BenchmarkFoldObjects(b *testing.B) {
	const n, calls = 10_000, 20
	s, err := Open(Config{Dir: b.TempDir(), CacheSize: 64 << 20, VolatileStaging: true,
		ObjectFoldCalls: calls + 1, ObjectFoldEntries: 1 << 30, ObjectFoldBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	cols := make([]AppliedColumns, calls+1)
	rows := make(rowColumn, n)
	for i := range rows {
		rows[i] = int32(i)
	}
	for k := range cols {
		ids := make([]string, n)
		for i, e := range benchObjects(n, k) {
			ids[i] = e.ObjectID
		}
		cols[k] = AppliedColumns{newRawColumn(ids), rows}
	}
	record := func(i, k int) error {
		at := t0.Add(time.Duration(i*(calls+1)+k) * time.Millisecond)
		return s.Update(func(rec *Recorder) error {
			return rec.RecordApplied(txid(at, uint64(i*(calls+1)+k)), "orders", at, cols[k].IDs, cols[k].Rows)
		})
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		for k := range calls {
			if err := record(i, k); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := record(i, calls); err != nil { // folds
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*(calls+1)*n), "ns/entry")
}
