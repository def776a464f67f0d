package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/forecast"
	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/tracking"
)

// The forecaster is write-path step 5 (DESIGN.md): every node runs one. A
// pass walks every dataset's dirty marks (fsm_forecast.go), keeps the series
// this node owns — the highest-random-weight (rendezvous) owner of the
// series id among the alive members — reads their history from the store,
// and either advances a cached fitted model over the new points
// (forecast.Refresh: ETS state update, Theta refit) or refits the dataset's
// model with forecast.Engine on an Arrow List<Float64> built zero-copy over
// the history buffer. Results go back through Raft as forecast_results
// entries of at most MaxForecastEntry bytes, so every node stores and serves
// every forecast. When a member dies the alive set changes and its series
// (still dirty on every node) fall to the survivors.
//
// A cached model is used for an update only when: the dataset's model is
// unchanged, it was fitted within the dataset's refit window and after the
// last forced refresh, at most MaxUpdatePoints points were added since, and
// the earlier history is unchanged (a hash of it matches). Anything else is
// a full refit. The cache is local and bounded; losing it only costs refits.

// ForecasterConfig configures a Forecaster. Zero fields mean defaults.
type ForecasterConfig struct {
	// NodeName is this node's member name; required.
	NodeName string
	// Apply commits an entry through Raft (Cluster.Apply); required.
	Apply func(ctx context.Context, entry []byte) (any, uint64, error)
	// Members returns the names of the alive members; nil means only this
	// node (standalone).
	Members func() []string
	// Record, if not nil, receives one tracking block per transaction and
	// refresh chunk (Cluster.RecordBlocks).
	Record func(ctx context.Context, bs []TrackBlock) error
	// Duty is the share of wall time a pass may spend working (0 < Duty
	// <= 1): after each chunk it pauses for work x (1/Duty - 1). Default
	// 0.5, so refits take at most half of their workers' cores.
	Duty float64
	// Busy, if set, reports whether ingest is active right now; it is
	// called from the forecaster's goroutine only, between chunks. While
	// it returns true a pass fits BusyChunkSize series at a time and
	// keeps to BusyDuty, so one chunk never holds a core for long while
	// acks wait (a 256-series chunk of the default model is most of a
	// second of CPU); forecasts lag a little more under load instead.
	Busy func() bool
	// BusyChunkSize is the chunk size while Busy; default 16.
	BusyChunkSize int
	// BusyDuty is the duty cycle while Busy (0 < BusyDuty <= 1); default
	// 0.1. On two cores shared with the client, refits at 0.25 set the
	// ingest ack tail at half of the maximum load: `make bench`'s 50%
	// run (h3 NDJSON), p99 over eight runs 61-122 ms (median 84) against
	// 46-125 ms (median 63) at 0.1, and 46-52 ms with no refits at all.
	// The price is forecast lag while ingest lasts: in one pair of runs
	// the 24,000 series left pending drained 8 s after the load ended
	// rather than 5 s.
	BusyDuty float64
	// Interval is the pause between passes; default 10s. Series dirtied
	// during a pass wait for the next one, so under sustained ingest a
	// series is refit at most once per interval instead of once per batch.
	Interval time.Duration
	// ChunkSize is the number of series read and fitted together; default
	// 256.
	ChunkSize int
	// MaxUpdatePoints is the most new points a cached model absorbs by
	// state update before a full refit; default 12.
	MaxUpdatePoints int
	// CacheSize bounds the cached fitted models; default 200000.
	CacheSize int
	// Workers is the engine's parallelism; default GOMAXPROCS-1 (at least
	// 1), so background refits leave a core to ingest and reads.
	Workers int
	// ApplyTimeout bounds one results proposal; default 30s.
	ApplyTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c ForecasterConfig) withDefaults() ForecasterConfig {
	if c.Interval <= 0 {
		c.Interval = 10 * time.Second
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 256
	}
	if c.Duty <= 0 || c.Duty > 1 {
		c.Duty = 0.5
	}
	if c.BusyChunkSize <= 0 {
		c.BusyChunkSize = 16
	}
	if c.BusyDuty <= 0 || c.BusyDuty > 1 {
		c.BusyDuty = 0.1
	}
	if c.MaxUpdatePoints <= 0 {
		c.MaxUpdatePoints = 12
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 200000
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a missing dependency.
func (c ForecasterConfig) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("forecaster: node name is required")
	case c.Apply == nil:
		return errors.New("forecaster: apply function is required")
	}
	return nil
}

// Forecaster refreshes the forecasts of the series this node owns. Its
// methods are safe for concurrent use, but passes are serialised.
type Forecaster struct {
	cfg    ForecasterConfig
	store  *Store
	engine *forecast.Engine
	log    *slog.Logger

	passMu sync.Mutex // one pass at a time
	mu     sync.Mutex // guards cache
	cache  map[seriesRef]*fitState
	kick   chan struct{}

	passes, refits, updates, published, failures atomic.Int64
	busyChunks                                   atomic.Int64 // chunks fitted while ingest was busy
}

// fitState is a cached fitted model of one series.
type fitState struct {
	fitted   forecast.Fitted
	model    string    // dataset model name it was fitted with
	fittedAt time.Time // parameter estimation time
	fitIndex uint64    // data index at the fit
	n        int       // points absorbed so far
	hash     uint64    // hash of those points
}

// NewForecaster returns a forecaster over store. Start it with Run.
func NewForecaster(store *Store, cfg ForecasterConfig) (*Forecaster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	eng, err := forecast.NewEngine(forecast.Config{Workers: cfg.Workers})
	if err != nil {
		return nil, err
	}
	return &Forecaster{cfg: cfg, store: store, engine: eng, log: cfg.Logger,
		cache: map[seriesRef]*fitState{}, kick: make(chan struct{}, 1)}, nil
}

// StartForecaster starts this node's forecaster; it stops with Close. The
// node calls it once after Open.
func (c *Cluster) StartForecaster(cfg ForecasterConfig) (*Forecaster, error) {
	cfg.NodeName = c.cfg.NodeName
	cfg.Apply = c.Apply
	cfg.Members = func() []string {
		var out []string
		for _, m := range c.Members() {
			if m.Status == StatusAlive {
				out = append(out, m.Name)
			}
		}
		return out
	}
	cfg.Record = c.RecordBlocks
	if cfg.Busy == nil {
		// Ingest counts as active for a second after a part was applied.
		// Only the forecaster's goroutine calls Busy.
		var last uint64
		var changed time.Time
		cfg.Busy = func() bool {
			if n := c.store.IngestParts(); n != last {
				last, changed = n, time.Now()
			}
			return time.Since(changed) < time.Second
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log.With("component", "forecaster")
	}
	f, err := NewForecaster(c.store, cfg)
	if err != nil {
		return nil, err
	}
	c.wg.Go(func() { f.Run(c.ctx) })
	return f, nil
}

// Kick asks for a pass now instead of after the interval.
func (f *Forecaster) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run runs passes every Interval (or on Kick) until ctx ends.
func (f *Forecaster) Run(ctx context.Context) {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		if _, err := f.RefreshOnce(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("forecast pass failed", "error", err)
		}
	}
}

// ForecasterStats counts the forecaster's work since start.
type ForecasterStats struct {
	Passes, Refits, Updates, Published, Failures int64
	// BusyChunks counts chunks fitted in the small, slow mode while
	// ingest was busy (ForecasterConfig.Busy).
	BusyChunks   int64
	CachedModels int
}

// Stats returns the counters.
func (f *Forecaster) Stats() ForecasterStats {
	f.mu.Lock()
	n := len(f.cache)
	f.mu.Unlock()
	return ForecasterStats{Passes: f.passes.Load(), Refits: f.refits.Load(), Updates: f.updates.Load(),
		Published: f.published.Load(), Failures: f.failures.Load(), BusyChunks: f.busyChunks.Load(), CachedModels: n}
}

// PassStats summarises one pass.
type PassStats struct {
	// Series is the number of owned dirty series handled; Refits and
	// Updates split them; Published counts forecasts committed.
	Series, Refits, Updates, Published int
	// Entries is the number of forecast_results entries proposed.
	Entries int
	// Read, Fit and Write are the time spent reading history, fitting and
	// committing results (Write overlaps Fit).
	Read, Fit, Write time.Duration
	Elapsed          time.Duration
}

// RefreshOnce runs one pass over every dataset and returns what it did.
func (f *Forecaster) RefreshOnce(ctx context.Context) (PassStats, error) {
	f.passMu.Lock()
	defer f.passMu.Unlock()
	start := time.Now()
	var total PassStats
	var errs []error
	alive := f.alive()
	for _, ds := range f.store.Datasets() {
		st, err := f.refreshDataset(ctx, ds, alive)
		total.Series += st.Series
		total.Refits += st.Refits
		total.Updates += st.Updates
		total.Published += st.Published
		total.Entries += st.Entries
		total.Read += st.Read
		total.Fit += st.Fit
		total.Write += st.Write
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("dataset %q: %w", ds.Schema.Name, err))
		}
	}
	total.Elapsed = time.Since(start)
	f.passes.Add(1)
	if total.Series > 0 {
		f.log.Debug("forecast pass", "series", total.Series, "refits", total.Refits, "updates", total.Updates,
			"published", total.Published, "elapsed", total.Elapsed)
	}
	return total, errors.Join(errs...)
}

func (f *Forecaster) alive() *Ring {
	var names []string
	if f.cfg.Members != nil {
		names = f.cfg.Members()
	}
	if len(names) == 0 {
		names = []string{f.cfg.NodeName}
	}
	return NewRing(names)
}

// Ring assigns series to members by rendezvous (highest random weight)
// hashing: each series goes to the member with the highest hash of (member,
// series id). Removing a member moves only its own series, spread evenly
// over the others. A Ring is immutable and safe for concurrent use.
type Ring struct {
	names []string
	seeds []uint64
}

// NewRing returns the ring of members (duplicates are ignored).
func NewRing(members []string) *Ring {
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	r := &Ring{names: names, seeds: make([]uint64, len(names))}
	for i, n := range names {
		h := fnv.New64a()
		h.Write([]byte(n))
		r.seeds[i] = h.Sum64()
	}
	return r
}

// Owner returns the member that owns seriesID ("" for an empty ring).
func (r *Ring) Owner(seriesID uint64) string {
	best, owner := uint64(0), ""
	for i, s := range r.seeds {
		if w := mix64(s ^ mix64(seriesID)); owner == "" || w > best {
			best, owner = w, r.names[i]
		}
	}
	return owner
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func hashValues(v []float64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, x := range v {
		h = mix64(h ^ math.Float64bits(x))
	}
	return h
}

// work is one owned dirty series within a chunk.
type work struct {
	mark   DirtyMark
	values []float64 // into the chunk's flat buffer
	last   int64
}

func (f *Forecaster) refreshDataset(ctx context.Context, ds DatasetInfo, ring *Ring) (st PassStats, err error) {
	name := ds.Schema.Name
	var marks []DirtyMark
	refresh, dsid, derr := f.store.DirtySeries(ctx, name, func(m DirtyMark) bool {
		if ring.Owner(m.SeriesID) == f.cfg.NodeName {
			marks = append(marks, m)
		}
		return true
	})
	if derr != nil || len(marks) == 0 {
		if errors.Is(derr, ErrUnknownDataset) {
			derr = nil // deleted meanwhile
		}
		return st, derr
	}
	set := ds.Schema.ForecastSettings()
	m := ds.Schema.Frequency.SeasonLength()
	if _, err := forecast.ModelByName(set.Model); err != nil {
		return st, err
	}

	// Results are committed by one goroutine while the next chunk fits.
	entries := make(chan [][]byte, 2)
	var wg sync.WaitGroup
	var writeErr error
	var writeDur time.Duration
	var published atomic.Int64
	wg.Go(func() {
		for es := range entries {
			t0 := time.Now()
			for _, e := range es {
				if writeErr != nil {
					break
				}
				actx, cancel := context.WithTimeout(ctx, f.cfg.ApplyTimeout)
				resp, _, err := f.cfg.Apply(actx, e)
				cancel()
				if err != nil {
					writeErr = err
					break
				}
				if r, ok := resp.(*ForecastApplyResult); ok {
					published.Add(int64(r.Stored))
				}
			}
			writeDur += time.Since(t0)
		}
	})
	defer func() {
		close(entries)
		wg.Wait()
		st.Write = writeDur
		st.Published = int(published.Load())
		f.published.Add(published.Load())
		if err == nil && writeErr != nil && !errors.Is(writeErr, ErrUnknownDataset) {
			err = fmt.Errorf("publish forecasts: %w", writeErr)
		}
	}()

	for lo := 0; lo < len(marks); {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		size, duty := f.cfg.ChunkSize, f.cfg.Duty
		if f.cfg.Busy != nil && f.cfg.Busy() {
			size, duty = f.cfg.BusyChunkSize, f.cfg.BusyDuty
			f.busyChunks.Add(1)
		}
		chunk := marks[lo:min(lo+size, len(marks))]
		lo += len(chunk)
		es, cs, cerr := f.refreshChunk(ctx, name, dsid, refresh, set, m, chunk)
		st.Series += cs.Series
		st.Refits += cs.Refits
		st.Updates += cs.Updates
		st.Read += cs.Read
		st.Fit += cs.Fit
		if cerr != nil {
			f.failures.Add(1)
			return st, cerr
		}
		st.Entries += len(es)
		entries <- es
		// Yield: pause in proportion to the work just done so a long
		// pass cannot hold its cores for seconds while ingest queues
		// behind it (ack latency under load was dominated by refits).
		if duty < 1 {
			pause := time.Duration(float64(cs.Read+cs.Fit) * (1/duty - 1))
			select {
			case <-ctx.Done():
				return st, ctx.Err()
			case <-time.After(pause):
			}
		}
	}
	return st, nil
}

// refreshChunk computes the forecasts of one chunk of dirty series and
// returns them encoded as entries.
func (f *Forecaster) refreshChunk(ctx context.Context, name string, dsid uint32, refresh uint64, set stream.ForecastSettings, m int, chunk []DirtyMark) ([][]byte, PassStats, error) {
	var st PassStats
	started := f.cfg.Now()
	cpu0 := processCPU()
	t0 := time.Now()
	ids := make([]uint64, len(chunk))
	for i, mk := range chunk {
		ids[i] = mk.SeriesID
	}
	var flat []float64
	type span struct{ lo, hi int }
	spans := make([]span, len(chunk))
	lasts := make([]int64, len(chunk))
	have := make([]bool, len(chunk))
	if err := f.store.History(ctx, name, ids, func(i int, v []float64, last int64) error {
		spans[i] = span{len(flat), len(flat) + len(v)}
		flat = append(flat, v...)
		lasts[i], have[i] = last, true
		return nil
	}); err != nil {
		return nil, st, err
	}
	st.Read = time.Since(t0)
	t1 := time.Now()
	now := f.cfg.Now()
	results := make([]*SeriesForecast, len(chunk))
	var refit []int
	f.mu.Lock()
	for i, mk := range chunk {
		if !have[i] {
			continue
		}
		st.Series++
		y := flat[spans[i].lo:spans[i].hi]
		fs := f.cache[seriesRef{dsid, mk.SeriesID}]
		if fs == nil || fs.model != set.Model || fs.fitIndex < refresh || now.Sub(fs.fittedAt) >= set.Refit ||
			len(y) < fs.n || len(y)-fs.n > f.cfg.MaxUpdatePoints || hashValues(y[:fs.n]) != fs.hash {
			refit = append(refit, i)
			continue
		}
		nf := fs.fitted
		if len(y) > fs.n {
			var err error
			if nf, err = forecast.Refresh(fs.fitted, y, len(y)-fs.n, m); err != nil {
				refit = append(refit, i)
				continue
			}
		}
		fc := nf.Forecast(set.Horizon, set.Levels)
		results[i] = seriesForecastOf(mk, fc, fs.fittedAt, now, lasts[i], len(y), true)
		f.cache[seriesRef{dsid, mk.SeriesID}] = &fitState{fitted: nf, model: fs.model, fittedAt: fs.fittedAt,
			fitIndex: fs.fitIndex, n: len(y), hash: hashValues(y)}
		st.Updates++
	}
	f.mu.Unlock()

	if len(refit) > 0 {
		fitted, err := f.fit(ctx, dsid, set, m, chunk, refit, flat, func(i int) []float64 {
			return flat[spans[i].lo:spans[i].hi]
		}, lasts, now, results)
		if err != nil {
			return nil, st, err
		}
		st.Refits += fitted
	}
	st.Fit = time.Since(t1)
	f.refits.Add(int64(st.Refits))
	f.updates.Add(int64(st.Updates))

	b := NewForecastBatch(name, dsid, f.cfg.NodeName, now)
	perTx := map[string]*tracking.Block{}
	for i, r := range results {
		if r == nil {
			continue
		}
		if err := b.Add(r); err != nil {
			return nil, st, err
		}
		if tx := chunk[i].TxID; tx != "" {
			blk := perTx[tx]
			if blk == nil {
				blk = &tracking.Block{Stage: tracking.StageForecast, Status: tracking.BlockSuccess, Node: f.cfg.NodeName}
				perTx[tx] = blk
			}
			blk.RowsIn++
			blk.RowsOut += int64(len(r.Mean))
		}
	}
	es, err := b.Entries()
	if err != nil {
		return nil, st, err
	}
	f.track(ctx, perTx, started, processCPU()-cpu0, len(chunk))
	return es, st, nil
}

// fit refits the series chunk[i] for i in idx with the engine, fills
// results and the cache, and returns how many it fitted.
func (f *Forecaster) fit(ctx context.Context, dsid uint32, set stream.ForecastSettings, m int, chunk []DirtyMark, idx []int, flat []float64,
	series func(i int) []float64, lasts []int64, now time.Time, results []*SeriesForecast) (int, error) {
	offsets := make([]int32, 0, len(idx)+1)
	vals := make([]float64, 0, len(flat))
	ids := make([]uint64, len(idx))
	lp := make([]int64, len(idx))
	offsets = append(offsets, 0)
	for k, i := range idx {
		vals = append(vals, series(i)...)
		offsets = append(offsets, int32(len(vals)))
		ids[k] = chunk[i].SeriesID
		lp[k] = lasts[i]
	}
	idArr, list := arrowSeries(ids, offsets, vals)
	defer idArr.Release()
	defer list.Release()
	rec, fitted, err := f.engine.RunFitted(ctx, idArr, list, forecast.Request{
		Model: set.Model, Horizon: set.Horizon, SeasonLength: m, Levels: set.Levels, LastPeriod: lp,
	}, nil)
	if err != nil {
		return 0, err
	}
	defer rec.Release()
	h := set.Horizon
	fcs := forecastsOf(rec, set.Levels, len(idx), h)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, i := range idx {
		fc := fcs[k]
		mk := chunk[i]
		y := series(i)
		results[i] = seriesForecastOf(mk, fc, now, now, lasts[i], len(y), false)
		ref := seriesRef{dsid, mk.SeriesID}
		if fitted[k] == nil {
			delete(f.cache, ref)
			continue
		}
		if len(f.cache) >= f.cfg.CacheSize {
			for k := range f.cache { // evict an arbitrary entry
				delete(f.cache, k)
				break
			}
		}
		f.cache[ref] = &fitState{fitted: fitted[k], model: set.Model, fittedAt: now, fitIndex: mk.Index, n: len(y), hash: hashValues(y)}
	}
	return len(idx), nil
}

// arrowSeries wraps ids and the flat values (split by offsets) as Arrow
// arrays without copying; the caller must Release both, and must keep the
// slices alive and unmodified until then.
func arrowSeries(ids []uint64, offsets []int32, vals []float64) (*array.Uint64, *array.List) {
	n := len(ids)
	idData := array.NewData(arrow.PrimitiveTypes.Uint64, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Uint64Traits.CastToBytes(ids))}, nil, 0, 0)
	defer idData.Release()
	valData := array.NewData(arrow.PrimitiveTypes.Float64, len(vals),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))}, nil, 0, 0)
	defer valData.Release()
	listData := array.NewData(arrow.ListOf(arrow.PrimitiveTypes.Float64), n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets))},
		[]arrow.ArrayData{valData}, 0, 0)
	defer listData.Release()
	return array.NewUint64Data(idData), array.NewListData(listData)
}

// forecastsOf splits an engine batch (h rows per series, input order) into
// per-series forecasts.
func forecastsOf(rec arrow.RecordBatch, levels []float64, n, h int) []forecast.Forecast {
	mean := rec.Column(3).(*array.Float64).Float64Values()
	nl := len(levels)
	models := rec.Column(4 + 2*nl).(*array.String)
	out := make([]forecast.Forecast, n)
	rows := int(rec.NumRows())
	for k := range n {
		lo, hi := k*h, min((k+1)*h, rows)
		if lo >= rows {
			break
		}
		fc := forecast.Forecast{Mean: slices.Clone(mean[lo:hi]), Levels: levels, Model: models.Value(lo),
			Lower: make([][]float64, nl), Upper: make([][]float64, nl)}
		for li := range nl {
			fc.Lower[li] = slices.Clone(rec.Column(4 + 2*li).(*array.Float64).Float64Values()[lo:hi])
			fc.Upper[li] = slices.Clone(rec.Column(5 + 2*li).(*array.Float64).Float64Values()[lo:hi])
		}
		out[k] = fc
	}
	return out
}

func seriesForecastOf(mk DirtyMark, fc forecast.Forecast, fittedAt, now time.Time, last int64, n int, updated bool) *SeriesForecast {
	levels := slices.Clone(fc.Levels)
	lower, upper := fc.Lower, fc.Upper
	if len(levels) == 0 {
		lower, upper = [][]float64{}, [][]float64{}
		levels = []float64{}
	}
	return &SeriesForecast{SeriesID: mk.SeriesID, DataIndex: mk.Index, FittedAt: fittedAt, ComputedAt: now,
		LastPeriod: last, Observations: n, Updated: updated, Model: fc.Model,
		Levels: levels, Mean: fc.Mean, Lower: lower, Upper: upper}
}

// track reports one forecast block per transaction of the chunk. CPU is the
// process CPU time of the chunk shared out by series count (approximate:
// other work on the node counts too).
func (f *Forecaster) track(ctx context.Context, perTx map[string]*tracking.Block, started time.Time, cpu time.Duration, series int) {
	if f.cfg.Record == nil || len(perTx) == 0 {
		return
	}
	end := f.cfg.Now()
	bs := make([]TrackBlock, 0, len(perTx))
	for tx, b := range perTx {
		b.Started, b.Finished = started, end
		if series > 0 {
			b.CPUTime = cpu * time.Duration(b.RowsIn) / time.Duration(series)
		}
		bs = append(bs, TrackBlock{TxID: tx, Block: *b})
	}
	slices.SortFunc(bs, func(a, b TrackBlock) int { return cmp.Compare(a.TxID, b.TxID) })
	if err := f.cfg.Record(ctx, bs); err != nil {
		f.log.Debug("forecast tracking blocks dropped", "error", err)
	}
}
