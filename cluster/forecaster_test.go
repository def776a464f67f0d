package cluster

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/demandflow/demandflow/stream"
)

func TestRingOwner(t *testing.T) {
	three := NewRing([]string{"n1", "n2", "n3"})
	two := NewRing([]string{"n3", "n1"}) // n2 died; order does not matter
	if got := NewRing(nil).Owner(1); got != "" {
		t.Errorf("empty ring: got %q, want \"\"", got)
	}
	counts := map[string]int{}
	moved := 0
	const n = 30000
	for i := range n {
		sid := stream.SeriesID("d", []string{fmt.Sprint(i)})
		o3, o2 := three.Owner(sid), two.Owner(sid)
		counts[o3]++
		if o3 != "n2" && o3 != o2 {
			t.Fatalf("series %d moved from %s to %s though its owner is alive", i, o3, o2)
		}
		if o3 == "n2" {
			moved++
			if o2 == "n2" {
				t.Fatalf("series %d stays on the dead member", i)
			}
		}
		if again := NewRing([]string{"n2", "n3", "n1"}).Owner(sid); i < 100 && again != o3 {
			t.Fatalf("owner depends on member order: %s vs %s", again, o3)
		}
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if c := counts[name]; math.Abs(float64(c)-n/3) > n/30 {
			t.Errorf("member %s owns %d of %d series, want about a third", name, c, n)
		}
	}
	if moved != counts["n2"] {
		t.Errorf("moved %d series, want %d (exactly the dead member's)", moved, counts["n2"])
	}
}

// forecasterFixture is a store with a Local committer and a dataset of
// monthly series.
type forecasterFixture struct {
	s     *Store
	local *Local
	sc    stream.Schema
	now   time.Time
}

func newForecasterFixture(t *testing.T) *forecasterFixture {
	s := openMemStore(t, nil)
	l := NewLocal(NewFSM(s, testLogger(t)), LocalConfig{})
	l.Start()
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	fx := &forecasterFixture{s: s, local: l, sc: testSchema("d", stream.DuplicatesLast), now: testTime}
	fx.apply(t, mustCreate(t, fx.sc))
	return fx
}

func (fx *forecasterFixture) apply(t *testing.T, entries ...[]byte) {
	t.Helper()
	for _, e := range entries {
		if _, _, err := fx.local.Apply(t.Context(), e); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}

func (fx *forecasterFixture) ingest(t *testing.T, tx string, rows []row) {
	t.Helper()
	mem := checkedMem(t)
	b := buildBatch(t, mem, &fx.sc, rows, 1000, nil)
	defer b.Release()
	fx.apply(t, mustIngest(t, meta("d", tx, ""), &fx.sc, b, 0)...)
}

func (fx *forecasterFixture) forecaster(t *testing.T, node string, members []string) (*Forecaster, *[]TrackBlock) {
	var blocks []TrackBlock
	f, err := NewForecaster(fx.s, ForecasterConfig{
		NodeName: node, Apply: fx.local.Apply, Members: func() []string { return members },
		Record:  func(_ context.Context, bs []TrackBlock) error { blocks = append(blocks, bs...); return nil },
		Workers: 2, ChunkSize: 3, Now: func() time.Time { return fx.now }, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, &blocks
}

// seasonalRows returns n months of a seasonal series.
func seasonalRows(product string, start int64, n int) []row {
	var out []row
	for i := range n {
		v := 100 + 10*math.Sin(2*math.Pi*float64(i)/12) + float64(i%5)
		out = append(out, row{product, "r", stream.PeriodFromIndex(start+int64(i), stream.Month), v, math.NaN(), ""})
	}
	return out
}

func TestForecasterRefitUpdateAndOwnership(t *testing.T) {
	fx := newForecasterFixture(t)
	var rows []row
	for p := range 5 {
		rows = append(rows, seasonalRows(fmt.Sprint("p", p), 600, 36)...)
	}
	fx.ingest(t, "tx1", rows)

	// n1 and n2 split the series; each only handles its own.
	f1, blocks := fx.forecaster(t, "n1", []string{"n1", "n2"})
	f2, _ := fx.forecaster(t, "n2", []string{"n1", "n2"})
	st1, err := f1.RefreshOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	marks, _ := dirtyMarks(t, fx.s, "d")
	if st1.Series == 0 || st1.Series == 5 || len(marks) != 5-st1.Series || st1.Refits != st1.Series || st1.Published != st1.Series {
		t.Fatalf("n1 pass: got %+v with %d marks left, want a share of 5 series refit", st1, len(marks))
	}
	if len(*blocks) != 1 || (*blocks)[0].TxID != "tx1" || (*blocks)[0].Block.RowsIn != int64(st1.Series) ||
		(*blocks)[0].Block.RowsOut != int64(24*st1.Series) || (*blocks)[0].Block.Stage != "forecast" {
		t.Errorf("tracking blocks: got %+v", *blocks)
	}
	// n2 dies: n1 sees only itself alive and takes the rest.
	f1b, _ := fx.forecaster(t, "n1", []string{"n1"})
	f1b.cache = f1.cache
	st, err := f1b.RefreshOnce(t.Context())
	if err != nil || st.Series != 5-st1.Series {
		t.Fatalf("after n2 died: got %+v %v, want %d series", st, err, 5-st1.Series)
	}
	if marks, _ := dirtyMarks(t, fx.s, "d"); len(marks) != 0 {
		t.Fatalf("marks left: %v", marks)
	}
	if st, _ := f2.RefreshOnce(t.Context()); st.Series != 0 {
		t.Errorf("idle pass: got %+v, want nothing to do", st)
	}
	sid := stream.SeriesID("d", []string{"p0", "r"})
	fc, ok, err := fx.s.Forecast("d", sid)
	if err != nil || !ok {
		t.Fatalf("forecast of p0: %v %v", ok, err)
	}
	if len(fc.Mean) != 24 || fc.LastPeriod != 635 || fc.Observations != 36 || fc.Updated || len(fc.Levels) != 2 {
		t.Errorf("forecast: got h=%d last=%d n=%d updated=%v levels=%v", len(fc.Mean), fc.LastPeriod, fc.Observations, fc.Updated, fc.Levels)
	}
	for k := range fc.Mean {
		if !(fc.Lower[1][k] <= fc.Lower[0][k] && fc.Lower[0][k] <= fc.Mean[k] && fc.Mean[k] <= fc.Upper[0][k] && fc.Upper[0][k] <= fc.Upper[1][k]) {
			t.Fatalf("step %d: intervals not nested: %v %v %v %v %v", k, fc.Lower[1][k], fc.Lower[0][k], fc.Mean[k], fc.Upper[0][k], fc.Upper[1][k])
		}
	}

	// One new point: a cheap update on the owner (n1 now owns all).
	fx.now = fx.now.Add(time.Hour)
	fx.ingest(t, "tx2", seasonalRows("p0", 636, 1))
	st, err = f1b.RefreshOnce(t.Context())
	if err != nil || st.Series != 1 || st.Updates != 1 {
		t.Fatalf("update pass: got %+v %v, want 1 update", st, err)
	}
	fc2, _, _ := fx.s.Forecast("d", sid)
	if !fc2.Updated || fc2.LastPeriod != 636 || !fc2.FittedAt.Equal(fc.FittedAt) || fc2.DataIndex <= fc.DataIndex {
		t.Errorf("updated forecast: got updated=%v last=%d fitted=%v index %d (was %d)", fc2.Updated, fc2.LastPeriod, fc2.FittedAt, fc2.DataIndex, fc.DataIndex)
	}
	// Past the refit window: a full refit.
	fx.now = fx.now.Add(25 * time.Hour)
	fx.ingest(t, "tx3", seasonalRows("p0", 637, 1))
	if st, _ := f1b.RefreshOnce(t.Context()); st.Refits != 1 {
		t.Errorf("stale pass: got %+v, want 1 refit", st)
	}
	// A forced refresh refits everything even when fresh.
	e, _ := EncodeForecastRefresh("d", nil, testTime)
	fx.apply(t, e)
	if st, _ := f1b.RefreshOnce(t.Context()); st.Refits != 5 || st.Updates != 0 {
		t.Errorf("forced pass: got %+v, want 5 refits", st)
	}
	// A changed configuration applies on the next refresh.
	e, _ = EncodeSetForecastConfig("d", &stream.ForecastConfig{Model: "theta", Horizon: 3, Levels: []float64{50}}, testTime)
	fx.apply(t, e)
	e, _ = EncodeForecastRefresh("d", []uint64{sid}, testTime)
	fx.apply(t, e)
	if _, err := f1b.RefreshOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	fc3, _, _ := fx.s.Forecast("d", sid)
	if len(fc3.Mean) != 3 || fc3.Model != "Theta" || len(fc3.Levels) != 1 {
		t.Errorf("theta forecast: got model %q h=%d levels %v", fc3.Model, len(fc3.Mean), fc3.Levels)
	}
}

// TestForecasterYieldsToBusyIngest: while Busy reports ingest, a pass fits
// BusyChunkSize series at a time (and the same forecasts get published);
// Store.IngestParts, the default signal, counts applied parts.
func TestForecasterYieldsToBusyIngest(t *testing.T) {
	fx := newForecasterFixture(t)
	var rows []row
	for p := range 5 {
		rows = append(rows, seasonalRows(fmt.Sprint("p", p), 600, 36)...)
	}
	before := fx.s.IngestParts()
	fx.ingest(t, "tx1", rows)
	if got := fx.s.IngestParts(); got != before+1 {
		t.Fatalf("IngestParts: got %d, want %d", got, before+1)
	}
	busy := true
	f, err := NewForecaster(fx.s, ForecasterConfig{
		NodeName: "n1", Apply: fx.local.Apply, Workers: 1, ChunkSize: 256, Logger: testLogger(t),
		Busy: func() bool { return busy }, BusyChunkSize: 2, BusyDuty: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.RefreshOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Series != 5 || st.Published != 5 || f.Stats().BusyChunks != 3 {
		t.Fatalf("busy pass: got %+v, %d busy chunks; want 5 series published in 3 chunks of <= 2", st, f.Stats().BusyChunks)
	}
	busy = false
	fx.ingest(t, "tx2", seasonalRows("p9", 600, 36))
	if st, err = f.RefreshOnce(t.Context()); err != nil || st.Published != 1 || f.Stats().BusyChunks != 3 {
		t.Fatalf("idle pass: got %+v %v, %d busy chunks; want 1 published, no busy chunk", st, err, f.Stats().BusyChunks)
	}
}
