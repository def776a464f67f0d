package forecast

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"
)

// Config configures an Engine. The zero value of a field means its default.
type Config struct {
	// Workers is the number of series fitted in parallel. Default
	// runtime.GOMAXPROCS(0).
	Workers int
	// ChunkSize is the number of series per scheduled chunk; the context
	// is checked between chunks. Default 32.
	ChunkSize int
	// Allocator allocates the output record batch. Default
	// memory.DefaultAllocator.
	Allocator memory.Allocator
}

// DefaultConfig returns the default engine configuration.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports an invalid configuration.
func (c Config) Validate() error {
	if c.Workers < 0 {
		return fmt.Errorf("forecast: workers %d < 0", c.Workers)
	}
	if c.ChunkSize < 0 {
		return fmt.Errorf("forecast: chunk size %d < 0", c.ChunkSize)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 32
	}
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	return c
}

// Request describes one engine run.
type Request struct {
	// Model is a name accepted by ModelByName; "" means "auto".
	Model string
	// Horizon is the number of steps to forecast (> 0).
	Horizon int
	// SeasonLength is the season length m (dataset frequency); 0 or 1 means
	// none.
	SeasonLength int
	// Levels are the prediction-interval levels in percent, e.g. 80, 95.
	Levels []float64
	// LastPeriod, if not nil, holds each series' last period index; the
	// output period is LastPeriod[i] + step. Otherwise period is the
	// 0-based index of the forecast period (len(series) - 1 + step).
	LastPeriod []int64
}

// Validate reports an invalid request.
func (r Request) Validate() error {
	if r.Horizon <= 0 {
		return fmt.Errorf("forecast: horizon %d must be positive", r.Horizon)
	}
	for _, l := range r.Levels {
		if !(l > 0 && l < 100) {
			return fmt.Errorf("forecast: level %g outside (0, 100)", l)
		}
	}
	if _, err := ModelByName(r.Model); err != nil {
		return err
	}
	return nil
}

// Engine fits a model to many series in parallel. It is safe for
// concurrent use; each Run owns its goroutines and waits for them.
type Engine struct {
	cfg Config
}

// NewEngine returns an engine with cfg (zero fields take defaults).
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg.withDefaults()}, nil
}

// OutputSchema returns the schema of Run's record batch for levels:
// series_id uint64, step int32, period int64, mean float64, lo_<L> and
// hi_<L> float64 per level, model utf8.
func OutputSchema(levels []float64) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "series_id", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "step", Type: arrow.PrimitiveTypes.Int32},
		{Name: "period", Type: arrow.PrimitiveTypes.Int64},
		{Name: "mean", Type: arrow.PrimitiveTypes.Float64},
	}
	for _, l := range levels {
		s := levelName(l)
		fields = append(fields,
			arrow.Field{Name: "lo_" + s, Type: arrow.PrimitiveTypes.Float64},
			arrow.Field{Name: "hi_" + s, Type: arrow.PrimitiveTypes.Float64})
	}
	fields = append(fields, arrow.Field{Name: "model", Type: arrow.BinaryTypes.String})
	return arrow.NewSchema(fields, nil)
}

func levelName(l float64) string { return strconv.FormatFloat(l, 'f', -1, 64) }

// ErrNullValue is returned by Run when a series contains a null value.
var ErrNullValue = errors.New("forecast: null value in series")

// Run forecasts every series of values (a List<Float64>, read zero-copy;
// ids[i] names values[i]) and returns one record batch with Horizon rows per
// non-empty series, in input order. The caller must Release the batch.
//
// Series are fitted in chunks of Config.ChunkSize on Config.Workers
// goroutines; ctx is checked between chunks and its error returned on
// cancellation. A series the model cannot fit (too short, non-positive data
// for a multiplicative model) is forecast with the naive method and its
// model column says so. Results do not depend on the number of workers.
// progress, if not nil, is called with the number of series done after
// each chunk; calls are serialised.
func (e *Engine) Run(ctx context.Context, ids *array.Uint64, values *array.List, req Request, progress func(done, total int)) (arrow.RecordBatch, error) {
	rec, _, err := e.run(ctx, ids, values, req, false, progress)
	return rec, err
}

// RunFitted is Run that also returns every series' Fitted model (fitted[i]
// for values[i]; nil for empty series and naive fallbacks), so a caller can
// advance them later with Refresh instead of refitting. The caller must
// Release the batch.
func (e *Engine) RunFitted(ctx context.Context, ids *array.Uint64, values *array.List, req Request, progress func(done, total int)) (arrow.RecordBatch, []Fitted, error) {
	return e.run(ctx, ids, values, req, true, progress)
}

func (e *Engine) run(ctx context.Context, ids *array.Uint64, values *array.List, req Request, keep bool, progress func(done, total int)) (arrow.RecordBatch, []Fitted, error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	n := values.Len()
	if ids.Len() != n {
		return nil, nil, fmt.Errorf("forecast: %d ids for %d series", ids.Len(), n)
	}
	if req.LastPeriod != nil && len(req.LastPeriod) != n {
		return nil, nil, fmt.Errorf("forecast: %d last periods for %d series", len(req.LastPeriod), n)
	}
	child, ok := values.ListValues().(*array.Float64)
	if !ok {
		return nil, nil, fmt.Errorf("forecast: values are %s, want list<float64>", values.DataType())
	}
	model, _ := ModelByName(req.Model)
	flat := child.Float64Values()
	for i := range n {
		if values.IsNull(i) {
			continue
		}
		s, t := values.ValueOffsets(i)
		if child.NullN() > 0 {
			for j := s; j < t; j++ {
				if child.IsNull(int(j)) {
					return nil, nil, fmt.Errorf("%w: series %d", ErrNullValue, ids.Value(i))
				}
			}
		}
	}

	results := make([]Forecast, n)
	var fitted []Fitted
	if keep {
		fitted = make([]Fitted, n)
	}
	cs := e.cfg.ChunkSize
	var (
		mu   sync.Mutex
		done int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Workers)
	for lo := 0; lo < n; lo += cs {
		if err := gctx.Err(); err != nil {
			break
		}
		hi := min(lo+cs, n)
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			for i := lo; i < hi; i++ {
				if values.IsNull(i) {
					continue
				}
				s, t := values.ValueOffsets(i)
				f, fc := forecastOne(model, flat[s:t], req)
				results[i] = fc
				if keep {
					fitted[i] = f
				}
			}
			if progress != nil {
				mu.Lock()
				done += hi - lo
				progress(done, n)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return e.buildBatch(ids, values, results, req), fitted, nil
}

// forecastOne fits and forecasts one series, falling back to naive (then
// the returned Fitted is nil).
func forecastOne(model Model, y []float64, req Request) (Fitted, Forecast) {
	if len(y) == 0 {
		return nil, Forecast{}
	}
	f, err := model.Fit(y, req.SeasonLength)
	if err != nil {
		f, _ = Naive{}.Fit(y, req.SeasonLength)
		fc := f.Forecast(req.Horizon, req.Levels)
		fc.Model = "Naive (fallback)"
		return nil, fc
	}
	return f, f.Forecast(req.Horizon, req.Levels)
}

func (e *Engine) buildBatch(ids *array.Uint64, values *array.List, res []Forecast, req Request) arrow.RecordBatch {
	schema := OutputSchema(req.Levels)
	b := array.NewRecordBuilder(e.cfg.Allocator, schema)
	defer b.Release()
	rows := 0
	for _, f := range res {
		rows += len(f.Mean)
	}
	for _, fb := range b.Fields() {
		fb.Reserve(rows)
	}
	idB := b.Field(0).(*array.Uint64Builder)
	stepB := b.Field(1).(*array.Int32Builder)
	perB := b.Field(2).(*array.Int64Builder)
	meanB := b.Field(3).(*array.Float64Builder)
	modelB := b.Field(4 + 2*len(req.Levels)).(*array.StringBuilder)
	for i, f := range res {
		if len(f.Mean) == 0 {
			continue
		}
		s, t := values.ValueOffsets(i)
		last := t - s - 1
		if req.LastPeriod != nil {
			last = req.LastPeriod[i]
		}
		for k, v := range f.Mean {
			idB.Append(ids.Value(i))
			stepB.Append(int32(k + 1))
			perB.Append(last + int64(k+1))
			meanB.Append(v)
			for li := range req.Levels {
				b.Field(4 + 2*li).(*array.Float64Builder).Append(f.Lower[li][k])
				b.Field(5 + 2*li).(*array.Float64Builder).Append(f.Upper[li][k])
			}
			modelB.Append(f.Model)
		}
	}
	return b.NewRecordBatch()
}
