package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/forecast"
)

// Backtests run on the answering node, over one page of series per request
// (limit, cursor), on all cores, bounded by the request timeout. A client
// with many series pages through them (demandflow backtest does, and shows
// progress) and averages the per-series results the same way
// forecast.AggregateBacktests does.

// Backtest limits.
const (
	maxBacktestWindows     = 100
	defaultBacktestWindows = 3
	defaultBacktestLimit   = 1000
)

// BacktestRequest is the body of POST /v1/datasets/{name}/backtest. Zero
// fields take the dataset's forecast configuration (model, horizon,
// levels) or defaults (windows 3, step = horizon, limit 1000 series).
type BacktestRequest struct {
	Model    string            `json:"model,omitempty"`
	Horizon  int               `json:"horizon,omitempty"`
	Windows  int               `json:"windows,omitempty"`
	Step     int               `json:"step,omitempty"`
	Levels   []float64         `json:"levels,omitempty"`
	SeriesID []string          `json:"series_id,omitempty"`
	Filter   map[string]string `json:"filter,omitempty"`
	Limit    int               `json:"limit,omitempty"`
	Cursor   string            `json:"cursor,omitempty"`
}

// BacktestMetrics are accuracy measures; nil means not defined (e.g. MASE
// of a constant series). Coverage is keyed by level ("80").
type BacktestMetrics struct {
	MASE     *float64            `json:"mase"`
	SMAPE    *float64            `json:"smape"`
	WAPE     *float64            `json:"wape"`
	Bias     *float64            `json:"bias"`
	Coverage map[string]*float64 `json:"coverage"`
}

// BacktestSeries is one series' backtest.
type BacktestSeries struct {
	SeriesID   string            `json:"series_id"`
	Dimensions map[string]string `json:"dimensions"`
	Windows    int               `json:"windows"`
	Model      string            `json:"model,omitempty"`
	Error      string            `json:"error,omitempty"`
	BacktestMetrics
}

// BacktestResponse is the answer of POST .../backtest.
type BacktestResponse struct {
	Dataset   string    `json:"dataset"`
	Model     string    `json:"model"`
	Horizon   int       `json:"horizon"`
	Windows   int       `json:"windows"`
	Step      int       `json:"step"`
	Levels    []float64 `json:"levels"`
	Aggregate struct {
		Series int `json:"series"`
		BacktestMetrics
	} `json:"aggregate"`
	Series      []BacktestSeries `json:"series"`
	TotalSeries int              `json:"total_series"`
	NextCursor  string           `json:"next_cursor,omitempty"`
	ElapsedMS   float64          `json:"elapsed_ms"`
	Node        string           `json:"node"`
	Index       uint64           `json:"index"`
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func metricsView(m forecast.Metrics, levels []float64) BacktestMetrics {
	out := BacktestMetrics{MASE: ptr(m.MASE), SMAPE: ptr(m.SMAPE), WAPE: ptr(m.WAPE), Bias: ptr(m.Bias),
		Coverage: make(map[string]*float64, len(levels))}
	for i, l := range levels {
		if i < len(m.Coverage) {
			out.Coverage[levelLabel(l)] = ptr(m.Coverage[i])
		}
	}
	return out
}

func finiteMetrics(m forecast.Metrics) bool {
	ok := !math.IsNaN(m.MASE) && !math.IsInf(m.MASE, 0) && !math.IsNaN(m.SMAPE) && !math.IsNaN(m.WAPE) &&
		!math.IsInf(m.WAPE, 0) && !math.IsNaN(m.Bias)
	for _, c := range m.Coverage {
		ok = ok && !math.IsNaN(c)
	}
	return ok
}

func (n *Node) backtest(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSchemaBytes))
	dec.DisallowUnknownFields()
	var req BacktestRequest
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("invalid backtest request JSON: "+jsonErr(err), nil)
	}
	set := schema.ForecastSettings()
	if req.Model == "" {
		req.Model = set.Model
	}
	model, err := forecast.ModelByName(req.Model)
	if err != nil {
		return badRequest(fmt.Sprintf("model %q: unknown model (models: %s, or ets:XYZ)", req.Model, strings.Join(forecast.ModelNames, ", ")), nil)
	}
	if req.Horizon == 0 {
		req.Horizon = set.Horizon
	}
	if req.Horizon < 1 || req.Horizon > 1000 {
		return badRequest(fmt.Sprintf("horizon %d: want 1..1000", req.Horizon), nil)
	}
	if req.Windows == 0 {
		req.Windows = defaultBacktestWindows
	}
	if req.Windows < 1 || req.Windows > maxBacktestWindows {
		return badRequest(fmt.Sprintf("windows %d: want 1..%d", req.Windows, maxBacktestWindows), nil)
	}
	if req.Step == 0 {
		req.Step = req.Horizon
	}
	if req.Step < 1 {
		return badRequest(fmt.Sprintf("step %d: want a positive number of periods", req.Step), nil)
	}
	if len(req.Levels) == 0 {
		req.Levels = set.Levels
	}
	for _, l := range req.Levels {
		if !(l > 0 && l < 100) {
			return badRequest(fmt.Sprintf("levels %g: want percentages in (0, 100)", l), nil)
		}
	}
	if req.Limit == 0 {
		req.Limit = defaultBacktestLimit
	}
	if req.Limit < 1 || req.Limit > maxSeriesLimit {
		return badRequest(fmt.Sprintf("limit %d: want 1..%d series", req.Limit, maxSeriesLimit), nil)
	}
	if err := checkDimensions(schema, req.Filter, "filter"); err != nil {
		return err
	}
	var after uint64
	if req.Cursor != "" {
		if after, err = parseSeriesID(req.Cursor); err != nil {
			return badRequest(fmt.Sprintf("cursor %q: want the next_cursor of a previous answer", req.Cursor), nil)
		}
	}
	var infos []cluster.SeriesInfo
	var next uint64
	if len(req.SeriesID) > 0 {
		for _, s := range req.SeriesID {
			id, err := parseSeriesID(s)
			if err != nil {
				return badRequest(fmt.Sprintf("series_id %q: want 16 hex digits", s), nil)
			}
			info, ok, err := n.seriesInfo(r, name, id)
			if err != nil {
				return err
			}
			if !ok {
				return badRequest(fmt.Sprintf("series_id %q: no such series in %s", s, name), nil)
			}
			if matches(info, req.Filter) {
				infos = append(infos, info)
			}
		}
	} else if infos, next, err = n.cl.Store().Series(r.Context(), name, req.Filter, after, req.Limit); err != nil {
		return err
	}

	ids := make([]uint64, len(infos))
	for i, s := range infos {
		ids[i] = s.ID
	}
	hist := make([][]float64, len(infos))
	if err := n.cl.Store().History(r.Context(), name, ids, func(i int, v []float64, _ int64) error {
		hist[i] = append([]float64(nil), v...)
		return nil
	}); err != nil {
		return err
	}
	opts := forecast.BacktestOptions{Horizon: req.Horizon, Step: req.Step, Windows: req.Windows,
		SeasonLength: schema.Frequency.SeasonLength(), Levels: req.Levels}
	results := make([]forecast.BacktestResult, len(infos))
	errs := make([]error, len(infos))
	g, gctx := errgroup.WithContext(r.Context())
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range infos {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			results[i], errs[i] = forecast.Backtest(model, hist[i], opts)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := r.Context().Err(); err != nil {
		return err
	}

	resp := BacktestResponse{Dataset: name, Model: req.Model, Horizon: req.Horizon, Windows: req.Windows, Step: req.Step,
		Levels: req.Levels, TotalSeries: n.cl.Store().SeriesCount(name), Node: n.cfg.NodeName, Index: n.cl.Store().AppliedIndex()}
	var ok2 []forecast.BacktestResult
	resp.Series = make([]BacktestSeries, len(infos))
	for i, s := range infos {
		bs := BacktestSeries{SeriesID: formatSeriesID(s.ID), Dimensions: s.Dimensions, Windows: len(results[i].Windows)}
		switch {
		case errs[i] != nil:
			bs.Error = errs[i].Error()
			if errors.Is(errs[i], forecast.ErrTooShort) {
				bs.Error = fmt.Sprintf("too short for %d windows of horizon %d (%d periods)", req.Windows, req.Horizon, len(hist[i]))
			}
		default:
			bs.BacktestMetrics = metricsView(results[i].Mean, req.Levels)
			bs.Model = results[i].Windows[len(results[i].Windows)-1].Model
			if finiteMetrics(results[i].Mean) {
				ok2 = append(ok2, results[i])
			}
		}
		resp.Series[i] = bs
	}
	resp.Aggregate.Series = len(ok2)
	resp.Aggregate.BacktestMetrics = metricsView(forecast.AggregateBacktests(ok2), req.Levels)
	if len(ok2) == 0 {
		resp.Aggregate.BacktestMetrics = BacktestMetrics{Coverage: map[string]*float64{}}
	}
	if next != 0 {
		resp.NextCursor = formatSeriesID(next)
	}
	resp.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, resp)
	return nil
}
