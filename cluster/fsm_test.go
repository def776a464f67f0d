package cluster

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/stream"
	"github.com/hashicorp/raft"
)

func TestFSMCreateDeleteDataset(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("sales", "")

	if resp := a.one(mustCreate(t, sc)); resp != nil {
		t.Fatalf("create: got %v, want nil", resp)
	}
	got, ok := s.Dataset("sales")
	if !ok || got.Duplicates != stream.DuplicatesLast {
		t.Fatalf("Dataset: got %v %v, want normalized schema", got, ok)
	}
	if err, _ := a.one(mustCreate(t, sc)).(error); !errors.Is(err, ErrDatasetExists) {
		t.Fatalf("second create: got %v, want ErrDatasetExists", err)
	}
	del, err := EncodeDeleteDataset("nope", testTime)
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := a.one(del).(error); !errors.Is(err, ErrUnknownDataset) {
		t.Fatalf("delete unknown: got %v, want ErrUnknownDataset", err)
	}

	mem := checkedMem(t)
	b := buildBatch(t, mem, &sc, []row{{"p1", "EU", 100, 1, 2, "o1"}}, 10, nil)
	defer b.Release()
	for _, e := range mustIngest(t, meta("sales", "tx1", ""), &sc, b, 0) {
		if _, ok := a.one(e).(*IngestResult); !ok {
			t.Fatalf("ingest: unexpected response")
		}
	}
	if n := s.SeriesCount("sales"); n != 1 {
		t.Fatalf("series: got %d, want 1", n)
	}
	del, _ = EncodeDeleteDataset("sales", testTime)
	if resp := a.one(del); resp != nil {
		t.Fatalf("delete: got %v, want nil", resp)
	}
	if _, ok := s.Dataset("sales"); ok {
		t.Fatal("dataset still there after delete")
	}
	// Re-create starts empty, with a new id; the old transaction key is free.
	a.one(mustCreate(t, sc))
	if n := s.SeriesCount("sales"); n != 0 {
		t.Fatalf("series after re-create: got %d, want 0", n)
	}
	if _, ok, err := s.Transaction("sales", "tx1"); ok || err != nil {
		t.Fatalf("transaction after re-create: got %v %v, want none", ok, err)
	}
	sers, _, err := s.Series(t.Context(), "sales", nil, 0, 10)
	if err != nil || len(sers) != 0 {
		t.Fatalf("series after re-create: got %v %v, want none", sers, err)
	}
	if ds := s.Datasets(); len(ds) != 1 || ds[0].ID != 2 || ds[0].RowsAccepted != 0 {
		t.Fatalf("Datasets: got %+v, want id 2 and no rows", ds)
	}
}

func TestFSMCreateAndDeleteInOneBatch(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("a", "")
	del, _ := EncodeDeleteDataset("a", testTime)
	resps := a.batch(mustCreate(t, sc), mustCreate(t, sc), del, mustCreate(t, sc))
	if resps[0] != nil || !errors.Is(resps[1].(error), ErrDatasetExists) || resps[2] != nil || resps[3] != nil {
		t.Fatalf("got %v, want nil, exists, nil, nil", resps)
	}
	ds := s.Datasets()
	if len(ds) != 1 || ds[0].ID != 2 {
		t.Fatalf("got %+v, want one dataset with id 2", ds)
	}
	if got := s.AppliedIndex(); got != 4 {
		t.Fatalf("applied: got %d, want 4", got)
	}
}

func TestFSMIngestDuplicatePolicies(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		policy stream.DuplicatePolicy
		want   []float64 // values of periods 10, 11
		obj    string    // object id of period 10
	}{
		{"last", stream.DuplicatesLast, []float64{7, 5}, "o4"},
		{"sum", stream.DuplicatesSum, []float64{1 + 2 + 7, 5}, "o4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := checkedMem(t)
			s := openMemStore(t, nil)
			a := newApplier(t, s)
			sc := testSchema("d", tc.policy)
			a.one(mustCreate(t, sc))
			b1 := buildBatch(t, mem, &sc, []row{
				{"p", "r", 10, 1, 9.5, "o1"},
				{"p", "r", 10, 2, nan, "o2"}, // same period within one batch
				{"p", "r", 11, 5, nan, ""},
			}, 2, nil)
			defer b1.Release()
			b2 := buildBatch(t, mem, &sc, []row{{"p", "r", 10, 7, 1.25, "o4"}}, 10, nil)
			defer b2.Release()
			// Two transactions in one ApplyBatch: overlays must see each other.
			e1 := mustIngest(t, meta("d", "tx1", ""), &sc, b1, 0)
			e2 := mustIngest(t, meta("d", "tx2", ""), &sc, b2, 0)
			a.batch(append(e1, e2...)...)

			sid := stream.SeriesID("d", []string{"p", "r"})
			obs, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
			if err != nil {
				t.Fatal(err)
			}
			if len(obs) != 2 {
				t.Fatalf("got %d observations, want 2", len(obs))
			}
			for i, o := range obs {
				if o.Period != int32(10+i) || o.Value != tc.want[i] {
					t.Errorf("obs %d: got period %d value %v, want %d %v", i, o.Period, o.Value, 10+i, tc.want[i])
				}
			}
			if obs[0].ObjectID != tc.obj || obs[0].Covariates[0] != 1.25 {
				t.Errorf("period 10: got object %q price %v, want %q 1.25", obs[0].ObjectID, obs[0].Covariates[0], tc.obj)
			}
			if !math.IsNaN(obs[1].Covariates[0]) || obs[1].ObjectID != "" {
				t.Errorf("period 11: got price %v object %q, want null and empty", obs[1].Covariates[0], obs[1].ObjectID)
			}
			if ds := s.Datasets(); ds[0].RowsAccepted != 4 || ds[0].Series != 1 || ds[0].Transactions != 2 {
				t.Errorf("Datasets: got %+v, want 4 rows, 1 series, 2 transactions", ds[0])
			}
		})
	}
}

func TestFSMIdempotentParts(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	sc := testSchema("d", stream.DuplicatesSum) // sum makes a double apply visible
	a.one(mustCreate(t, sc))
	rows := make([]row, 3000)
	for i := range rows {
		rows[i] = row{product: "p" + string(rune('a'+i%7)), region: "r", period: int32(i / 7), qty: 1, price: math.NaN(), obj: randHex(i)}
	}
	rej := []stream.RowError{{Row: 3001, Field: "qty", Reason: "below min 0"}}
	b := buildBatch(t, mem, &sc, rows, 1000, rej)
	defer b.Release()
	parts := mustIngest(t, meta("d", "tx1", "key-1"), &sc, b, 32<<10)
	if len(parts) < 3 {
		t.Fatalf("got %d parts, want >= 3 (max entry 32 KiB)", len(parts))
	}
	// Apply only the first part, then the retry re-sends everything (as a
	// new transaction id with the same key).
	first := a.one(parts[0]).(*IngestResult)
	if first.Duplicate || first.Part != 0 || first.Parts != len(parts) {
		t.Fatalf("first: got %+v", first)
	}
	rec, ok, err := s.Transaction("d", "key-1")
	if err != nil || !ok || rec.Complete() || rec.PartsApplied != 1 {
		t.Fatalf("after part 0: got %+v %v %v, want incomplete record", rec, ok, err)
	}
	// Restart between the attempts: idempotency survives.
	a.f = nil
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMemStore(t, fs)
	a = newApplier(t, s)

	retry := mustIngest(t, meta("d", "tx2", "key-1"), &sc, b, 32<<10)
	resps := a.batch(append(retry, retry[1])...) // a duplicate inside one batch too
	total := 0
	for i, r := range resps {
		res := r.(*IngestResult)
		wantDup := i == 0 || i == len(retry)
		if res.Duplicate != wantDup {
			t.Errorf("resp %d: duplicate %v, want %v", i, res.Duplicate, wantDup)
		}
		if res.Duplicate && i == 0 && res.TxID != "tx1" {
			t.Errorf("duplicate of part 0: got tx %q, want recorded tx1", res.TxID)
		}
		if !res.Duplicate || i == 0 {
			total += res.Accepted
		}
	}
	if total != len(rows) {
		t.Errorf("accepted over parts: got %d, want %d", total, len(rows))
	}
	rec, ok, err = s.Transaction("d", "key-1")
	if err != nil || !ok || !rec.Complete() || rec.TxID != "tx1" || rec.Accepted != len(rows) || rec.Rejected != 1 {
		t.Fatalf("record: got %+v %v %v, want complete, tx1, %d accepted, 1 rejected", rec, ok, err, len(rows))
	}
	if len(rec.Errors) != 1 || rec.Errors[0] != rej[0] || !rec.Created.Equal(testTime) {
		t.Errorf("record errors/created: got %v %v", rec.Errors, rec.Created)
	}
	// Every observation is 1: nothing was summed twice.
	for _, p := range []string{"pa", "pg"} {
		obs, err := s.Observations(t.Context(), "d", stream.SeriesID("d", []string{p, "r"}), math.MinInt32, math.MaxInt32)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range obs {
			if o.Value != 1 {
				t.Fatalf("series %s period %d: got %v, want 1", p, o.Period, o.Value)
			}
		}
	}
	if ds := s.Datasets(); ds[0].RowsAccepted != int64(len(rows)) || ds[0].Transactions != 1 || ds[0].Series != 7 {
		t.Errorf("Datasets: got %+v", ds[0])
	}
}

func TestFSMAppliedIndexPersisted(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	sc := testSchema("d", "")
	b := buildBatch(t, mem, &sc, []row{{"p", "r", 1, 3, 1, "x"}, {"q", "r", 1, 4, 1, "y"}}, 10, nil)
	defer b.Release()
	a.batch(append([][]byte{mustCreate(t, sc)}, mustIngest(t, meta("d", "tx", ""), &sc, b, 0)...)...)
	// A configuration entry advances the index too.
	a.idx++
	a.f.ApplyBatch([]*raft.Log{{Index: a.idx, Term: 3, Type: raft.LogConfiguration}})
	before := dumpKeyspace(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	s2 := openMemStore(t, fs)
	if got := s2.AppliedIndex(); got != 3 {
		t.Fatalf("applied index after reopen: got %d, want 3", got)
	}
	if got := dumpKeyspace(t, s2); got != before {
		t.Fatalf("state differs after reopen")
	}
	if n := s2.SeriesCount("d"); n != 2 {
		t.Fatalf("series after reopen: got %d, want 2", n)
	}
	// A replay of already applied entries is skipped.
	a2 := newApplier(t, s2)
	a2.idx = 1
	if resp := a2.one(mustCreate(t, testSchema("d", ""))); resp != nil {
		t.Fatalf("replayed entry: got %v, want nil (skipped)", resp)
	}
}

func TestFSMDivergencePanics(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	ignorable, _ := encodeEntry(IgnorableCommand|0x11, map[string]int{"x": 1}, nil)
	if resp := a.one(ignorable); resp != nil {
		t.Fatalf("ignorable: got %v, want nil", resp)
	}
	unknown, _ := encodeEntry(0x42, map[string]int{"x": 1}, nil)
	for _, tc := range []struct {
		name  string
		entry []byte
	}{
		{"unknown command", unknown},
		{"empty entry", nil},
		{"bad header length", []byte{byte(CmdIngest), 0x7f}},
		{"bad header", []byte{byte(CmdCreateDataset), 1, 0xc1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			a.one(tc.entry)
		})
	}
}

func TestSeriesPagingAndFilters(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("d", "")
	a.one(mustCreate(t, sc))
	var rows []row
	for p := range 10 {
		for _, r := range []string{"EU", "US"} {
			rows = append(rows, row{product: "p" + string(rune('0'+p)), region: r, period: 1, qty: 1, price: 1})
		}
	}
	b := buildBatch(t, mem, &sc, rows, 7, nil)
	defer b.Release()
	a.batch(mustIngest(t, meta("d", "tx", ""), &sc, b, 0)...)

	for _, tc := range []struct {
		name   string
		filter map[string]string
		limit  int
		want   int
	}{
		{"all", nil, 3, 20},
		{"region", map[string]string{"region": "EU"}, 4, 10},
		{"both", map[string]string{"region": "US", "product": "p3"}, 1, 1},
		{"none", map[string]string{"region": "XX"}, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []SeriesInfo
			after, pages := uint64(0), 0
			for {
				page, next, err := s.Series(t.Context(), "d", tc.filter, after, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > tc.limit {
					t.Fatalf("page of %d, limit %d", len(page), tc.limit)
				}
				got = append(got, page...)
				pages++
				if next == 0 {
					break
				}
				after = next
			}
			if len(got) != tc.want {
				t.Fatalf("got %d series, want %d", len(got), tc.want)
			}
			if want := max((tc.want+tc.limit-1)/tc.limit, 1); pages != want {
				t.Errorf("got %d pages, want %d", pages, want)
			}
			if !slices.IsSortedFunc(got, func(a, b SeriesInfo) int { return cmp.Compare(a.ID, b.ID) }) {
				t.Error("series not in id order")
			}
			for _, si := range got {
				for d, v := range tc.filter {
					if si.Dimensions[d] != v {
						t.Errorf("series %d: %s=%q, want %q", si.ID, d, si.Dimensions[d], v)
					}
				}
				if si.ID != stream.SeriesID("d", []string{si.Dimensions["product"], si.Dimensions["region"]}) {
					t.Errorf("series %d: id does not match its dimensions %v", si.ID, si.Dimensions)
				}
			}
		})
	}
	if _, _, err := s.Series(t.Context(), "d", map[string]string{"color": "red"}, 0, 10); !errors.Is(err, ErrUnknownDimension) {
		t.Errorf("unknown dimension: got %v, want ErrUnknownDimension", err)
	}
	if _, _, err := s.Series(t.Context(), "x", nil, 0, 10); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("unknown dataset: got %v, want ErrUnknownDataset", err)
	}
}

func TestObservationsRange(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("d", "")
	a.one(mustCreate(t, sc))
	periods := []int32{math.MinInt32, -5, -1, 0, 1, 7, 100, math.MaxInt32}
	var rows []row
	for i, p := range periods {
		rows = append(rows, row{"p", "r", p, float64(i), math.NaN(), ""})
		rows = append(rows, row{"q", "r", p, -1, math.NaN(), ""}) // a neighbour series
	}
	b := buildBatch(t, mem, &sc, rows, 100, nil)
	defer b.Release()
	a.batch(mustIngest(t, meta("d", "tx", ""), &sc, b, 0)...)
	sid := stream.SeriesID("d", []string{"p", "r"})
	for _, tc := range []struct {
		name     string
		from, to int32
		want     []int32
	}{
		{"open", math.MinInt32, math.MaxInt32, periods},
		{"inclusive", -1, 7, []int32{-1, 0, 1, 7}},
		{"point", 0, 0, []int32{0}},
		{"to max", 100, math.MaxInt32, []int32{100, math.MaxInt32}},
		{"from min", math.MinInt32, -5, []int32{math.MinInt32, -5}},
		{"empty", 2, 6, nil},
		{"reversed", 7, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, err := s.Observations(t.Context(), "d", sid, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for _, o := range obs {
				got = append(got, o.Period)
				if o.Value < 0 {
					t.Errorf("period %d: value of the neighbour series", o.Period)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := s.Observations(t.Context(), "d", 12345, 0, 1); !errors.Is(err, ErrUnknownSeries) {
		t.Errorf("unknown series: got %v, want ErrUnknownSeries", err)
	}
}

func randHex(i int) string {
	// Deterministic, poorly compressible object ids.
	x := uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	const digits = "0123456789abcdef"
	out := make([]byte, 32)
	for j := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[j] = digits[x&15]
	}
	return string(out)
}

// TestApplyBatchSize: the apply batch starts at twice the entry bytes,
// then at what batches turned out to need per entry byte, within bounds.
func TestApplyBatchSize(t *testing.T) {
	f := &FSM{}
	if got, want := f.batchSize(1<<20), 2<<20+1<<17; got != want {
		t.Errorf("first batch for 1 MiB: got %d, want %d", got, want)
	}
	if got := f.batchSize(10); got != minApplyBatch {
		t.Errorf("tiny entries: got %d, want %d", got, minApplyBatch)
	}
	if got := f.batchSize(1 << 30); got != maxApplyBatch {
		t.Errorf("huge entries: got %d, want %d", got, maxApplyBatch)
	}
	f.observeBatch(100, 1<<20) // too small to learn from
	if f.batchRatio != 0 {
		t.Errorf("ratio after a 100-byte batch: got %v, want 0", f.batchRatio)
	}
	for range 50 {
		f.observeBatch(1<<20, 3<<20)
	}
	if got := f.batchSize(1 << 20); got < 3<<20 || got > 3<<20+1<<18 {
		t.Errorf("after batches of 3 bytes per entry byte: got %d, want about %d", got, 3<<20+1<<17)
	}
}
