package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/stream"
	"github.com/hashicorp/raft"
)

var testTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testSchema(name string, dup stream.DuplicatePolicy) stream.Schema {
	return stream.Schema{
		Name: name, Frequency: stream.Month, Period: "period",
		Dimensions: []string{"product", "region"}, Measure: "qty",
		Covariates: []string{"price"}, ObjectID: "object_id", Duplicates: dup,
	}
}

// row is one validated input row for tests.
type row struct {
	product, region string
	period          int32
	qty             float64
	price           float64 // NaN = null
	obj             string  // "" = null
}

// buildBatch builds a batch of validated records (chunk rows per record)
// with the arrow builders; rows are numbered 1.. in order.
func buildBatch(t testing.TB, mem memory.Allocator, s *stream.Schema, rows []row, chunk int, rejected []stream.RowError) *stream.Batch {
	t.Helper()
	b := &stream.Batch{Rejected: rejected, RowsIn: len(rows) + len(rejected)}
	as := s.ArrowSchema()
	for start := 0; start < len(rows); start += chunk {
		end := min(start+chunk, len(rows))
		rb := array.NewRecordBuilder(mem, as)
		for _, f := range rb.Fields() {
			f.Reserve(end - start)
		}
		for i := start; i < end; i++ {
			r := rows[i]
			rb.Field(0).(*array.Uint64Builder).Append(stream.SeriesID(s.Name, []string{r.product, r.region}))
			rb.Field(1).(*array.Int32Builder).Append(int32(i + 1))
			rb.Field(2).(*array.Date32Builder).Append(arrow.Date32(r.period))
			rb.Field(3).(*array.StringBuilder).Append(r.product)
			rb.Field(4).(*array.StringBuilder).Append(r.region)
			rb.Field(5).(*array.Float64Builder).Append(r.qty)
			if math.IsNaN(r.price) {
				rb.Field(6).(*array.Float64Builder).AppendNull()
			} else {
				rb.Field(6).(*array.Float64Builder).Append(r.price)
			}
			if r.obj == "" {
				rb.Field(7).(*array.StringBuilder).AppendNull()
			} else {
				rb.Field(7).(*array.StringBuilder).Append(r.obj)
			}
		}
		rec := rb.NewRecordBatch()
		rb.Release()
		b.Records = append(b.Records, rec)
	}
	return b
}

func checkedMem(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openMemStore(t testing.TB, fs vfs.FS) *Store {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	s, err := OpenStore(StoreConfig{Dir: "fsm", FS: fs, Logger: testLogger(t), CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// applier feeds entries to an FSM with consecutive hand-made raft logs.
type applier struct {
	t    testing.TB
	f    *FSM
	idx  uint64
	logs []*raft.Log // every entry applied, for replays
}

func newApplier(t testing.TB, s *Store) *applier {
	return &applier{t: t, f: NewFSM(s, testLogger(t)), idx: s.AppliedIndex()}
}

func (a *applier) batch(entries ...[]byte) []any {
	a.t.Helper()
	logs := make([]*raft.Log, len(entries))
	for i, e := range entries {
		a.idx++
		logs[i] = &raft.Log{Index: a.idx, Term: 1, Type: raft.LogCommand, Data: e}
	}
	a.logs = append(a.logs, logs...)
	return a.f.ApplyBatch(logs)
}

func (a *applier) one(entry []byte) any {
	a.t.Helper()
	a.idx++
	l := &raft.Log{Index: a.idx, Term: 1, Type: raft.LogCommand, Data: entry}
	a.logs = append(a.logs, l)
	return a.f.Apply(l)
}

func mustCreate(t testing.TB, s stream.Schema) []byte {
	t.Helper()
	e, err := EncodeCreateDataset(s, testTime)
	if err != nil {
		t.Fatalf("encode create: %v", err)
	}
	return e
}

func mustIngest(t testing.TB, meta IngestMeta, s *stream.Schema, b *stream.Batch, maxEntry int) [][]byte {
	t.Helper()
	parts, err := EncodeIngest(meta, s, b, maxEntry)
	if err != nil {
		t.Fatalf("encode ingest: %v", err)
	}
	return parts
}

func meta(ds, tx, key string) IngestMeta {
	return IngestMeta{TxID: tx, Dataset: ds, Source: "test", ContentType: "text/csv", Node: "n1",
		IdempotencyKey: key, ReceivedAt: testTime}
}

// dumpKeyspace returns every key/value of the FSM keyspace as text, after
// folding the staged observations and checkpointing the dirty marks (both
// run at different times on different nodes; folded and checkpointed
// stores compare equal).
func dumpKeyspace(t testing.TB, s *Store) string {
	t.Helper()
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	// Likewise the dirty marks held in memory: where a store checkpointed
	// them depends on its snapshots and restarts, not on the entries.
	if !s.replaying() {
		if err := s.persistDirty(); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keyspaceStart, UpperBound: keyspaceEnd})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		fmt.Fprintf(&buf, "%x=%x\n", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (m *memSink) ID() string    { return "test" }
func (m *memSink) Close() error  { m.closed = true; return nil }
func (m *memSink) Cancel() error { m.canceled = true; return nil }

// Every test checks each dirty checkpoint's series against the log.
func init() { verifyDirtyCheckpoints = true }
