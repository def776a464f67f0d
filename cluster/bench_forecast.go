package cluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/forecast"
	"github.com/demandflow/demandflow/stream"
)

// BenchForecastOptions configures BenchForecast.
type BenchForecastOptions struct {
	// Series and Length: how many synthetic monthly series of how many
	// periods; defaults 1000 and 120.
	Series, Length int
	// Model is the forecast model; default "auto".
	Model string
	// Workers is the engine's parallelism; default GOMAXPROCS.
	Workers int
	// Horizon; default 24 (the dataset default for monthly data).
	Horizon int
	// EndToEnd also runs the store path: ingest the series into a fresh
	// FSM store in Dir (a temp dir when empty, removed afterwards), then
	// time one forecaster pass (read history, fit, commit results).
	EndToEnd bool
	Dir      string
	// Seed makes the data deterministic; default 1.
	Seed uint64
	// Progress, if not nil, is told about each phase ("engine", "ingest",
	// "forecast") with series done and total; calls are serialised.
	Progress func(phase string, done, total int)
}

// BenchForecastReport is what BenchForecast measured.
type BenchForecastReport struct {
	Series, Length, Workers, Horizon int
	Model                            string
	// Engine: build the Arrow input, fit and forecast every series, build
	// the output record batch.
	Engine time.Duration
	// Ingest, Read, Fit, Write and Pass are the end-to-end phases (zero
	// without EndToEnd): Pass is one forecaster pass over every series
	// (Read + Fit + Write, with Write overlapping Fit).
	Ingest, Read, Fit, Write, Pass time.Duration
	Published                      int
}

// SeriesPerSecond returns the engine rate.
func (r BenchForecastReport) SeriesPerSecond() float64 {
	return float64(r.Series) / r.Engine.Seconds()
}

// MSPerSeriesCore returns the engine cost in CPU-milliseconds per series
// (wall time x workers / series).
func (r BenchForecastReport) MSPerSeriesCore() float64 {
	return r.Engine.Seconds() * 1000 * float64(r.Workers) / float64(r.Series)
}

// syntheticSeries fills flat with n monthly series of length l: level,
// trend, multiplicative seasonality and noise, all positive; series i
// depends only on (seed, i).
func syntheticSeries(seed uint64, n, l int) []float64 {
	flat := make([]float64, n*l)
	for i := range n {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		level := 50 + 950*r.Float64()
		trend := (r.Float64() - 0.4) * level / 200
		amp := 0.3 * r.Float64()
		phase := r.Float64() * 2 * math.Pi
		noise := 0.02 + 0.1*r.Float64()
		for t := range l {
			v := (level + trend*float64(t)) * (1 + amp*math.Sin(2*math.Pi*float64(t)/12+phase)) * (1 + noise*r.NormFloat64())
			flat[i*l+t] = math.Max(v, 1)
		}
	}
	return flat
}

// BenchForecast measures the forecasting engine and, with EndToEnd, the
// whole refresh path of a node on synthetic monthly series.
func BenchForecast(ctx context.Context, o BenchForecastOptions) (BenchForecastReport, error) {
	if o.Series <= 0 {
		o.Series = 1000
	}
	if o.Length <= 0 {
		o.Length = 120
	}
	if o.Model == "" {
		o.Model = "auto"
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Horizon <= 0 {
		o.Horizon = 24
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	progress := func(string, int, int) {}
	if o.Progress != nil {
		progress = o.Progress
	}
	rep := BenchForecastReport{Series: o.Series, Length: o.Length, Workers: o.Workers, Horizon: o.Horizon, Model: o.Model}
	flat := syntheticSeries(o.Seed, o.Series, o.Length)

	eng, err := forecast.NewEngine(forecast.Config{Workers: o.Workers})
	if err != nil {
		return rep, err
	}
	t0 := time.Now()
	ids := make([]uint64, o.Series)
	offsets := make([]int32, o.Series+1)
	for i := range ids {
		ids[i] = uint64(i + 1)
		offsets[i+1] = int32((i + 1) * o.Length)
	}
	idArr, list := arrowSeries(ids, offsets, flat)
	rec, err := eng.Run(ctx, idArr, list, forecast.Request{Model: o.Model, Horizon: o.Horizon, SeasonLength: 12, Levels: []float64{80, 95}},
		func(done, total int) { progress("engine", done, total) })
	idArr.Release()
	list.Release()
	if err != nil {
		return rep, err
	}
	rec.Release()
	rep.Engine = time.Since(t0)
	if !o.EndToEnd {
		return rep, nil
	}
	return benchEndToEnd(ctx, o, rep, flat, progress)
}

func benchEndToEnd(ctx context.Context, o BenchForecastOptions, rep BenchForecastReport, flat []float64, progress func(string, int, int)) (BenchForecastReport, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "demandflow-bench-forecast-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	store, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		return rep, err
	}
	defer store.Close()
	local := NewLocal(NewFSM(store, nil), LocalConfig{})
	local.Start()
	defer local.Shutdown(context.Background())

	sc := stream.Schema{Name: "bench", Frequency: stream.Month, Period: "period", Dimensions: []string{"item"}, Measure: "qty",
		Forecast: &stream.ForecastConfig{Model: o.Model, Horizon: o.Horizon}}
	e, err := EncodeCreateDataset(sc, time.Now())
	if err != nil {
		return rep, err
	}
	if _, _, err := local.Apply(ctx, e); err != nil {
		return rep, err
	}
	// Ingest 10k-row transactions, as clients would.
	t0 := time.Now()
	as := sc.ArrowSchema()
	mem := memory.DefaultAllocator
	const rowsPerTx = 10000
	start := int64(2010 * 12) // 2010-01
	perTx := max(rowsPerTx/o.Length, 1)
	for lo, tx := 0, 0; lo < o.Series; lo, tx = lo+perTx, tx+1 {
		hi := min(lo+perTx, o.Series)
		b := array.NewRecordBuilder(mem, as)
		for _, f := range b.Fields() {
			f.Reserve((hi - lo) * o.Length)
		}
		for i := lo; i < hi; i++ {
			item := "item-" + strconv.Itoa(i)
			sid := stream.SeriesID(sc.Name, []string{item})
			for t := range o.Length {
				b.Field(stream.IdxSeriesID).(*array.Uint64Builder).Append(sid)
				b.Field(stream.IdxRow).(*array.Int32Builder).Append(int32(t + 1))
				b.Field(stream.IdxPeriod).(*array.Date32Builder).Append(arrow.Date32(stream.PeriodFromIndex(start+int64(t), stream.Month)))
				b.Field(stream.IdxFirstDimension).(*array.StringBuilder).Append(item)
				b.Field(sc.IdxMeasure()).(*array.Float64Builder).Append(flat[i*o.Length+t])
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		batch := &stream.Batch{Records: []arrow.RecordBatch{rec}, RowsIn: int(rec.NumRows())}
		entries, err := EncodeIngest(IngestMeta{TxID: fmt.Sprintf("bench-%08d", tx), Dataset: sc.Name, Node: "bench", ReceivedAt: time.Now()}, &sc, batch, 0)
		rec.Release()
		if err != nil {
			return rep, err
		}
		for _, e := range entries {
			if _, _, err := local.Apply(ctx, e); err != nil {
				return rep, err
			}
		}
		progress("ingest", hi, o.Series)
	}
	rep.Ingest = time.Since(t0)

	f, err := NewForecaster(store, ForecasterConfig{NodeName: "bench", Apply: local.Apply, Workers: o.Workers,
		Duty: 1, // the benchmark measures the pass itself, with nothing to yield to
	})
	if err != nil {
		return rep, err
	}
	st, err := f.RefreshOnce(ctx)
	if err != nil {
		return rep, err
	}
	rep.Read, rep.Fit, rep.Write, rep.Pass, rep.Published = st.Read, st.Fit, st.Write, st.Elapsed, st.Published
	if st.Published != o.Series {
		return rep, fmt.Errorf("bench forecast: %d of %d forecasts published", st.Published, o.Series)
	}
	return rep, nil
}
