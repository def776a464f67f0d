package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/demandflow/demandflow/stream"
	"github.com/hashicorp/raft"
)

func TestEncodeCreateDatasetRejectsInvalidSchema(t *testing.T) {
	sc := testSchema("bad name!", "")
	if _, err := EncodeCreateDataset(sc, testTime); !errors.Is(err, stream.ErrInvalidSchema) {
		t.Fatalf("got %v, want ErrInvalidSchema", err)
	}
	e := mustCreate(t, testSchema("ok", ""))
	if typ, err := EntryType(e); err != nil || typ != CmdCreateDataset {
		t.Fatalf("EntryType: got %v %v, want create_dataset", typ, err)
	}
}

// TestEncodeIngestSplit checks that a ~5 MB transaction is split into parts
// of at most raft.SuggestedMaxDataSize whose union is the input, and that
// the split is deterministic.
func TestEncodeIngestSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	mem := checkedMem(t)
	sc := testSchema("d", "")
	const n = 60000
	rows := make([]row, n)
	for i := range rows {
		price := float64(i) / 3
		if i%5 == 0 {
			price = math.NaN()
		}
		rows[i] = row{product: randHex(i)[:12], region: "EU-DE", period: int32(i % 400), qty: float64(i), price: price, obj: randHex(i + n)}
	}
	var rej []stream.RowError
	for i := range 3000 {
		rej = append(rej, stream.RowError{Row: n + i + 1, ObjectID: randHex(i), Field: "qty", Reason: "below min 0"})
	}
	b := buildBatch(t, mem, &sc, rows, 4096, rej)
	defer b.Release()
	raw := 0
	for _, r := range b.Records {
		raw += int(recordBytes(r))
	}
	if raw < 5<<20 {
		t.Fatalf("input is %d bytes, want >= 5 MB", raw)
	}
	parts := mustIngest(t, meta("d", "tx", ""), &sc, b, 0)
	again := mustIngest(t, meta("d", "tx", ""), &sc, b, 0)
	if len(parts) != len(again) {
		t.Fatalf("not deterministic: %d vs %d parts", len(parts), len(again))
	}
	for i := range parts {
		if !bytes.Equal(parts[i], again[i]) {
			t.Fatalf("not deterministic: part %d differs", i)
		}
	}
	if len(parts) < 2 {
		t.Fatalf("got %d parts, want several", len(parts))
	}
	dec := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer dec.AssertSize(t, 0)
	next, nextErr := 0, 0
	for i, p := range parts {
		if len(p) > raft.SuggestedMaxDataSize {
			t.Errorf("part %d: %d bytes, above %d", i, len(p), raft.SuggestedMaxDataSize)
		}
		typ, h, payload, err := splitEntry(p)
		if err != nil || typ != CmdIngest {
			t.Fatalf("part %d: %v %v", i, typ, err)
		}
		var hdr ingestHeader
		if err := decodeHeader(h, &hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Part != i || hdr.Parts != len(parts) || hdr.TxID != "tx" || hdr.Key != "tx" {
			t.Fatalf("part %d header: %+v", i, hdr)
		}
		for _, e := range hdr.Errors {
			if e != rej[nextErr] {
				t.Fatalf("part %d: error %v, want %v", i, e, rej[nextErr])
			}
			nextErr++
		}
		recs, err := decodeRows(payload, hdr.Codec, dec)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, r := range recs {
			qty := r.Column(sc.IdxMeasure()).(*array.Float64)
			obj := r.Column(sc.IdxObjectID()).(*array.String)
			price := r.Column(sc.IdxCovariate(0)).(*array.Float64)
			rowNo := r.Column(stream.IdxRow).(*array.Int32)
			for j := range int(r.NumRows()) {
				want := rows[next]
				if qty.Value(j) != want.qty || obj.Value(j) != want.obj || int(rowNo.Value(j)) != next+1 ||
					price.IsNull(j) != math.IsNaN(want.price) {
					t.Fatalf("part %d row %d: does not match input row %d", i, j, next)
				}
				next++
				got++
			}
			r.Release()
		}
		if got != hdr.Rows {
			t.Errorf("part %d: %d rows, header says %d", i, got, hdr.Rows)
		}
	}
	if next != n || nextErr != len(rej) {
		t.Fatalf("union: %d rows and %d errors, want %d and %d", next, nextErr, n, len(rej))
	}
	t.Logf("%d rows, %d raw bytes -> %d parts", n, raw, len(parts))
}

func TestEncodeIngestEdgeCases(t *testing.T) {
	mem := checkedMem(t)
	sc := testSchema("d", "")
	empty := &stream.Batch{Rejected: []stream.RowError{{Row: 1, Reason: "bad"}}, RowsIn: 1}
	parts := mustIngest(t, meta("d", "tx", ""), &sc, empty, 0)
	if len(parts) != 1 {
		t.Fatalf("no accepted rows: got %d parts, want 1", len(parts))
	}
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	a.one(mustCreate(t, sc))
	res := a.one(parts[0]).(*IngestResult)
	if res.Accepted != 0 || res.Rejected != 1 || len(res.Errors) != 1 {
		t.Fatalf("got %+v, want 0 accepted, 1 rejected", res)
	}
	if rec, ok, _ := s.Transaction("d", "tx"); !ok || !rec.Complete() {
		t.Fatalf("transaction not recorded: %+v", rec)
	}
	// Many rejected rows alone overflow into extra parts.
	var rej []stream.RowError
	for i := range 2000 {
		rej = append(rej, stream.RowError{Row: i + 1, Field: "qty", Reason: randHex(i)})
	}
	parts = mustIngest(t, meta("d", "tx2", ""), &sc, &stream.Batch{Rejected: rej}, 32<<10)
	if len(parts) < 2 {
		t.Fatalf("2000 errors in 32 KiB entries: got %d parts", len(parts))
	}
	total := 0
	for _, p := range parts {
		if len(p) > 32<<10 {
			t.Fatalf("part of %d bytes", len(p))
		}
		total += a.one(p).(*IngestResult).Rejected
	}
	if total != len(rej) {
		t.Fatalf("rejected: got %d, want %d", total, len(rej))
	}

	b := buildBatch(t, mem, &sc, []row{{"p", "r", 1, 1, 1, "o"}}, 1, nil)
	defer b.Release()
	for _, tc := range []struct {
		name string
		m    IngestMeta
		s    stream.Schema
	}{
		{"no tx id", meta("d", "", ""), sc},
		{"other dataset", meta("e", "tx", ""), sc},
		{"long key", meta("d", "tx", string(make([]byte, MaxIdempotencyKey+1))), sc},
		{"layout mismatch", meta("d", "tx", ""), stream.Schema{Name: "d", Frequency: stream.Month, Period: "p", Measure: "m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeIngest(tc.m, &tc.s, b, 0); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestIngestCodecs applies the same rows encoded with every payload codec
// ever written (entries stay in raft logs across upgrades) and checks that
// each store ends with the same observations.
func TestIngestCodecs(t *testing.T) {
	mem := checkedMem(t)
	sc := testSchema("d", "")
	rows := benchRows(3000, 0)
	b := buildBatch(t, mem, &sc, rows, 1000, nil)
	defer b.Release()
	var want []Observation
	for _, codec := range []uint8{codecMinLZ, codecZstdFrame, codecIPCZstd, codecNone} {
		old := ingestCodec
		ingestCodec = codec
		parts := mustIngest(t, meta("d", "tx", ""), &sc, b, 0)
		ingestCodec = old
		s := openMemStore(t, nil)
		a := newApplier(t, s)
		a.one(mustCreate(t, sc))
		for _, p := range parts {
			_, h, _, err := splitEntry(p)
			if err != nil {
				t.Fatal(err)
			}
			var hdr ingestHeader
			if err := decodeHeader(h, &hdr); err != nil {
				t.Fatal(err)
			}
			if hdr.Codec != codec {
				t.Fatalf("codec %d: header says %d", codec, hdr.Codec)
			}
			if res := a.one(p).(*IngestResult); res.Accepted != hdr.Rows {
				t.Fatalf("codec %d: accepted %d of %d", codec, res.Accepted, hdr.Rows)
			}
		}
		var got []Observation
		seen := map[uint64]bool{}
		for _, r := range rows {
			sid := stream.SeriesID("d", []string{r.product, r.region})
			if seen[sid] {
				continue
			}
			seen[sid] = true
			obs, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, obs...)
		}
		if len(got) != len(rows) {
			t.Fatalf("codec %d: %d observations, want %d", codec, len(got), len(rows))
		}
		if want == nil {
			want = got
		} else if !reflect.DeepEqual(got, want) {
			t.Fatalf("codec %d: observations differ from codec %d's", codec, codecMinLZ)
		}
	}
}

// TestEncodeIngestRawLimit: rows that compress so well that a part within
// the entry budget would exceed a MinLZ block are cut into more parts.
// Row numbers barely compress, so it takes a large entry budget.
func TestEncodeIngestRawLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	mem := checkedMem(t)
	sc := testSchema("d", "")
	rows := make([]row, 400000)
	for i := range rows {
		rows[i] = row{product: "p", region: "r", period: 1, qty: 1, price: 1, obj: "o"}
	}
	b := buildBatch(t, mem, &sc, rows, 100000, nil)
	defer b.Release()
	raw := 0
	for _, r := range b.Records {
		raw += int(recordBytes(r))
	}
	if raw <= maxRawPayload {
		t.Fatalf("input is %d bytes, want above %d", raw, maxRawPayload)
	}
	// Large entries, so that the MinLZ block, not the entry budget, limits.
	parts := mustIngest(t, meta("d", "tx", ""), &sc, b, 8<<20)
	if len(parts) < 2 {
		t.Fatalf("%d raw bytes in %d part(s)", raw, len(parts))
	}
	total := 0
	for i, p := range parts {
		_, h, payload, err := splitEntry(p)
		if err != nil {
			t.Fatal(err)
		}
		var hdr ingestHeader
		if err := decodeHeader(h, &hdr); err != nil {
			t.Fatal(err)
		}
		recs, err := decodeRows(payload, hdr.Codec, mem)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		n := 0
		for _, r := range recs {
			n += int(r.NumRows())
			r.Release()
		}
		if n != hdr.Rows {
			t.Fatalf("part %d: %d rows decoded, header says %d", i, n, hdr.Rows)
		}
		total += n
	}
	if total != len(rows) {
		t.Fatalf("%d rows in the parts, want %d", total, len(rows))
	}
	t.Logf("%d rows, %d raw bytes -> %d parts", len(rows), raw, len(parts))
}

// TestEncodeIngestPartsWithinLimit: every part stays within the entry
// limit, also when a payload lands a few bytes above the budget (a
// rounding in planRows once let a 524,703-byte part through; these are the
// rows of BenchmarkObservations that showed it).
func TestEncodeIngestPartsWithinLimit(t *testing.T) {
	mem := checkedMem(t)
	sc := testSchema("d", "")
	rows := make([]row, 0, 120*1000)
	for p := range 120 {
		for k := range 1000 {
			rows = append(rows, row{fmt.Sprintf("SKU-%05d", k), "EU", int32(19000 + p), float64(p), math.NaN(), "o"})
		}
	}
	b := buildBatch(t, mem, &sc, rows, 10000, nil)
	defer b.Release()
	parts := mustIngest(t, meta("d", "tx", ""), &sc, b, 0)
	for i, p := range parts {
		if len(p) > raft.SuggestedMaxDataSize {
			t.Errorf("part %d of %d: %d bytes, above %d", i, len(parts), len(p), raft.SuggestedMaxDataSize)
		}
	}
}
