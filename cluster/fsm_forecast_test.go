package cluster

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/demandflow/demandflow/stream"
)

// monthRows returns n monthly rows of one series starting at month index
// start, skipping the months in skip.
func monthRows(product, region string, start int64, n int, skip map[int]bool) []row {
	var out []row
	for i := range n {
		if skip[i] {
			continue
		}
		out = append(out, row{product, region, stream.PeriodFromIndex(start+int64(i), stream.Month), float64(10 + i), math.NaN(), ""})
	}
	return out
}

func dirtyMarks(t *testing.T, s *Store, ds string) (map[uint64]uint64, uint64) {
	t.Helper()
	got := map[uint64]uint64{}
	refresh, _, err := s.DirtySeries(t.Context(), ds, func(m DirtyMark) bool { got[m.SeriesID] = m.Index; return true })
	if err != nil {
		t.Fatal(err)
	}
	return got, refresh
}

func testForecast(sid, dataIndex uint64, last int64, base float64) *SeriesForecast {
	return &SeriesForecast{
		SeriesID: sid, DataIndex: dataIndex, FittedAt: testTime, ComputedAt: testTime.Add(time.Minute),
		LastPeriod: last, Observations: 24, Model: "ETS(A,N,N)", Levels: []float64{80, 95},
		Mean:  []float64{base, base + 1},
		Lower: [][]float64{{base - 1, base}, {base - 2, base - 1}},
		Upper: [][]float64{{base + 1, base + 2}, {base + 2, base + 3}},
	}
}

func resultEntries(t *testing.T, s *Store, ds string, fcs ...*SeriesForecast) [][]byte {
	t.Helper()
	id := uint32(0)
	for _, d := range s.Datasets() {
		if d.Schema.Name == ds {
			id = d.ID
		}
	}
	b := NewForecastBatch(ds, id, "n1", testTime)
	for _, f := range fcs {
		if err := b.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	es, err := b.Entries()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestFSMForecastDirtyResultsAndReplicas(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	replica := openMemStore(t, nil)
	a, ra := newApplier(t, s), newApplier(t, replica)
	both := func(e ...[]byte) []any { ra.batch(e...); return a.batch(e...) }
	sc := testSchema("d", stream.DuplicatesLast)
	both(mustCreate(t, sc))
	rows := append(monthRows("p", "r", 600, 24, map[int]bool{5: true}), monthRows("q", "r", 600, 12, nil)...)
	b := buildBatch(t, mem, &sc, rows, 1000, nil)
	defer b.Release()
	both(mustIngest(t, meta("d", "tx1", ""), &sc, b, 0)...)
	ingestIdx := a.idx

	sp, sq := stream.SeriesID("d", []string{"p", "r"}), stream.SeriesID("d", []string{"q", "r"})
	marks, refresh := dirtyMarks(t, s, "d")
	if want := map[uint64]uint64{sp: ingestIdx, sq: ingestIdx}; !reflect.DeepEqual(marks, want) || refresh != 0 {
		t.Fatalf("dirty: got %v refresh %d, want %v refresh 0", marks, refresh, want)
	}

	// History fills the missing month with 0 and reports the last period.
	var hist [][]float64
	var lasts []int64
	if err := s.History(t.Context(), "d", []uint64{sp, sq, 12345}, func(i int, v []float64, last int64) error {
		hist = append(hist, append([]float64(nil), v...))
		lasts = append(lasts, last)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || len(hist[0]) != 24 || hist[0][5] != 0 || hist[0][6] != 16 || len(hist[1]) != 12 {
		t.Fatalf("history: got %v", hist)
	}
	if lasts[0] != 623 || lasts[1] != 611 {
		t.Errorf("last periods: got %v, want [623 611]", lasts)
	}

	// Results answering the marks clear them; every replica serves the same.
	res := both(resultEntries(t, s, "d", testForecast(sp, ingestIdx, 623, 100), testForecast(sq, ingestIdx-1, 611, 50))...)
	if r := res[0].(*ForecastApplyResult); r.Stored != 2 || r.Cleared != 1 {
		t.Errorf("apply results: got %+v, want 2 stored, 1 cleared", r)
	}
	marks, _ = dirtyMarks(t, s, "d")
	if len(marks) != 1 || marks[sq] != ingestIdx {
		t.Errorf("dirty after results: got %v, want only q (its result predates the mark)", marks)
	}
	for _, st := range []*Store{s, replica} {
		got, ok, err := st.Forecast("d", sp)
		if err != nil || !ok {
			t.Fatalf("forecast: %v %v", ok, err)
		}
		if want := testForecast(sp, ingestIdx, 623, 100); !reflect.DeepEqual(got, want) {
			t.Errorf("forecast: got %+v, want %+v", got, want)
		}
	}

	// A stale result (older data index) never replaces a newer one.
	res = both(resultEntries(t, s, "d", testForecast(sp, ingestIdx-1, 620, 1))...)
	if r := res[0].(*ForecastApplyResult); r.Stale != 1 || r.Stored != 0 {
		t.Errorf("stale result: got %+v, want 1 stale", r)
	}
	// New data in the same apply batch as a result keeps the series dirty.
	b2 := buildBatch(t, mem, &sc, monthRows("p", "r", 624, 1, nil), 10, nil)
	defer b2.Release()
	entries := append(mustIngest(t, meta("d", "tx2", ""), &sc, b2, 0), resultEntries(t, s, "d", testForecast(sp, ingestIdx, 623, 101))...)
	both(entries...)
	marks, _ = dirtyMarks(t, s, "d")
	if marks[sp] != a.idx-1 {
		t.Errorf("dirty mark of p after ingest+result in one batch: got %d, want %d", marks[sp], a.idx-1)
	}
	if got, want := dumpKeyspace(t, replica), dumpKeyspace(t, s); got != want {
		t.Errorf("replica keyspace differs:\n%s\nwant\n%s", got, want)
	}

	// Results for another incarnation are rejected.
	bad := NewForecastBatch("d", 999, "n1", testTime)
	_ = bad.Add(testForecast(sp, a.idx, 624, 1))
	es, _ := bad.Entries()
	if err, _ := a.one(es[0]).(error); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("wrong incarnation: got %v, want ErrUnknownDataset", err)
	}
}

func TestFSMForecastConfigAndRefresh(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("d", stream.DuplicatesLast)
	a.one(mustCreate(t, sc))
	b := buildBatch(t, mem, &sc, append(monthRows("p", "r", 600, 12, nil), monthRows("q", "r", 600, 12, nil)...), 1000, nil)
	defer b.Release()
	a.batch(mustIngest(t, meta("d", "tx1", ""), &sc, b, 0)...)

	if got := s.dataset("d").schema.ForecastSettings(); got.Model != "auto" || got.Horizon != 24 || got.Refit != 24*time.Hour {
		t.Errorf("default settings: got %v", got)
	}
	e, err := EncodeSetForecastConfig("d", &stream.ForecastConfig{Model: "theta", Horizon: 6, Levels: []float64{90}, Refit: "1h"}, testTime)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.one(e); r != nil {
		t.Fatalf("set config: %v", r)
	}
	got := s.dataset("d").schema.ForecastSettings()
	if got.Model != "theta" || got.Horizon != 6 || !reflect.DeepEqual(got.Levels, []float64{90}) || got.Refit != time.Hour {
		t.Errorf("settings: got %v", got)
	}
	if ds := s.Datasets(); ds[0].RowsAccepted != 24 || ds[0].Series != 2 {
		t.Errorf("counters after config change: got %+v", ds[0])
	}
	// The catalog survives a reopen with the new schema.
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	if s.dataset("d").schema.ForecastSettings().Model != "theta" {
		t.Error("config lost on reload")
	}
	if _, err := EncodeSetForecastConfig("d", &stream.ForecastConfig{Horizon: 5000}, testTime); !errors.Is(err, stream.ErrInvalidSchema) {
		t.Errorf("horizon 5000: got %v, want ErrInvalidSchema", err)
	}
	if err, _ := a.one(mustSetConfig(t, "nope")).(error); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("unknown dataset: got %v", err)
	}

	// Clear the marks, then force a refit of one series, then of all.
	sp, sq := stream.SeriesID("d", []string{"p", "r"}), stream.SeriesID("d", []string{"q", "r"})
	a.batch(resultEntries(t, s, "d", testForecast(sp, a.idx, 611, 1), testForecast(sq, a.idx, 611, 1))...)
	if m, _ := dirtyMarks(t, s, "d"); len(m) != 0 {
		t.Fatalf("marks not cleared: %v", m)
	}
	e, _ = EncodeForecastRefresh("d", []uint64{sq, 42}, testTime)
	a.one(e)
	m, refresh := dirtyMarks(t, s, "d")
	if len(m) != 1 || m[sq] != a.idx || refresh != a.idx {
		t.Errorf("refresh one: got %v refresh %d, want q at %d", m, refresh, a.idx)
	}
	e, _ = EncodeForecastRefresh("d", nil, testTime)
	a.one(e)
	if m, refresh := dirtyMarks(t, s, "d"); len(m) != 2 || refresh != a.idx {
		t.Errorf("refresh all: got %v refresh %d", m, refresh)
	}
	if n, d, err := s.ForecastCount(t.Context(), "d"); err != nil || n != 2 || d != 2 {
		t.Errorf("ForecastCount: got %d %d %v, want 2 2", n, d, err)
	}
}

func mustSetConfig(t *testing.T, ds string) []byte {
	e, err := EncodeSetForecastConfig(ds, nil, testTime)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSeriesForecastRecordRoundTrip(t *testing.T) {
	f := testForecast(7, 9, -3, 1.5)
	f.Updated = true
	b, err := appendSeriesForecast(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > seriesForecastSize(f) {
		t.Errorf("size estimate %d below encoded %d", seriesForecastSize(f), len(b))
	}
	got, err := decodeSeriesForecast(b)
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Errorf("round trip: got %+v %v, want %+v", got, err, f)
	}
	for i := range b {
		if _, err := decodeSeriesForecast(b[:i]); err == nil {
			t.Fatalf("truncated at %d: no error", i)
		}
	}
}
