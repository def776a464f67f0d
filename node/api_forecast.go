package node

// Forecast API (DESIGN.md "Write path" step 5, issue "Forecasting core"):
//
//	GET  /v1/datasets/{name}/forecast            effective forecast configuration
//	PUT  /v1/datasets/{name}/forecast            change it (stream.ForecastConfig JSON); every series is refit
//	GET  /v1/datasets/{name}/forecasts           stored forecasts: JSON, CSV or Arrow IPC by Accept
//	POST /v1/datasets/{name}/forecasts/refresh   force a refit of all (or the chosen) series
//	GET  /v1/datasets/{name}/series/{id}         dimensions + history + forecast
//	POST /v1/datasets/{name}/backtest            rolling-origin backtest (api_backtest.go)
//
// Forecasts are computed by each series' owner node and replicated, so any
// node answers reads from its local store. horizon and levels only narrow
// what is stored: levels must be among the dataset's configured levels
// (400 otherwise; change them with PUT .../forecast), and a series whose
// stored forecast predates a level change shows that level as null until
// it is refreshed.

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/forecast"
	"github.com/demandflow/demandflow/stream"
)

// forecastRoutes registers the forecast endpoints.
func (n *Node) forecastRoutes(mux *http.ServeMux) {
	n.handle(mux, "GET /v1/datasets/{name}/forecast", "get_forecast_config", n.getForecastConfig)
	n.handle(mux, "PUT /v1/datasets/{name}/forecast", "set_forecast_config", n.setForecastConfig)
	n.handle(mux, "GET /v1/datasets/{name}/forecasts", "forecasts", n.listForecasts)
	n.handle(mux, "POST /v1/datasets/{name}/forecasts/refresh", "refresh_forecasts", n.refreshForecasts)
	n.handle(mux, "GET /v1/datasets/{name}/series/{id}", "series", n.seriesDetail)
	n.handle(mux, "POST /v1/datasets/{name}/backtest", "backtest", n.backtest)
}

// validateForecastModel checks the model name of a dataset's forecast
// configuration (stream cannot: it does not import forecast).
func validateForecastModel(c *stream.ForecastConfig) error {
	if c == nil || c.Model == "" {
		return nil
	}
	if _, err := forecast.ModelByName(c.Model); err != nil {
		return badRequest(fmt.Sprintf("forecast.model %q: unknown model (models: %s, or ets:XYZ)", c.Model, strings.Join(forecast.ModelNames, ", ")), nil)
	}
	return nil
}

type forecastConfigView struct {
	Model   string    `json:"model"`
	Horizon int       `json:"horizon"`
	Levels  []float64 `json:"levels"`
	Refit   string    `json:"refit"`
}

func settingsView(s stream.ForecastSettings) forecastConfigView {
	return forecastConfigView{Model: s.Model, Horizon: s.Horizon, Levels: s.Levels, Refit: s.Refit.String()}
}

func (n *Node) getForecastConfig(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	fc, dirty, err := n.cl.Store().ForecastCount(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"dataset": name, "forecast": settingsView(schema.ForecastSettings()),
		"configured": schema.Forecast, "series_forecast": fc, "series_pending": dirty,
		"node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
	return nil
}

func (n *Node) setForecastConfig(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, ok := n.cl.Store().Dataset(name); !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSchemaBytes))
	dec.DisallowUnknownFields()
	var c stream.ForecastConfig
	if err := dec.Decode(&c); err != nil {
		return badRequest("invalid forecast configuration JSON: "+jsonErr(err), nil)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := validateForecastModel(&c); err != nil {
		return err
	}
	now := time.Now().UTC()
	entry, err := cluster.EncodeSetForecastConfig(name, &c, now)
	if err != nil {
		return err
	}
	if _, _, err := n.cl.Apply(r.Context(), entry); err != nil {
		return err
	}
	// Refit everything with the new configuration.
	entry, err = cluster.EncodeForecastRefresh(name, nil, now)
	if err != nil {
		return err
	}
	_, index, err := n.cl.Apply(r.Context(), entry)
	if err != nil {
		return err
	}
	if err := n.cl.WaitApplied(r.Context(), index); err != nil {
		return err
	}
	n.kickForecaster()
	schema, _ := n.cl.Store().Dataset(name)
	writeJSON(w, http.StatusOK, map[string]any{"dataset": name, "forecast": settingsView(schema.ForecastSettings()),
		"node": n.cfg.NodeName, "index": index})
	return nil
}

func (n *Node) kickForecaster() {
	if n.fc != nil {
		n.fc.Kick()
	}
}

// maxRefreshIDs bounds the series ids of one forecast_refresh entry
// (8 bytes each, under the 256 KiB entry warning).
const maxRefreshIDs = 30000

type refreshRequest struct {
	SeriesID []string          `json:"series_id"`
	Filter   map[string]string `json:"filter"`
}

func (n *Node) refreshForecasts(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	var req refreshRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSchemaBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("invalid refresh request JSON: "+jsonErr(err), nil)
	}
	var ids []uint64
	for _, s := range req.SeriesID {
		id, err := parseSeriesID(s)
		if err != nil {
			return badRequest(fmt.Sprintf("series_id %q: want 16 hex digits", s), nil)
		}
		ids = append(ids, id)
	}
	if len(req.Filter) > 0 {
		if err := checkDimensions(schema, req.Filter, "filter"); err != nil {
			return err
		}
		var after uint64
		for {
			page, next, err := n.cl.Store().Series(r.Context(), name, req.Filter, after, cluster.MaxSeriesLimit)
			if err != nil {
				return err
			}
			for _, s := range page {
				ids = append(ids, s.ID)
			}
			if next == 0 {
				break
			}
			after = next
		}
		if len(ids) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"dataset": name, "series": 0, "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
			return nil
		}
	}
	all := len(req.SeriesID) == 0 && len(req.Filter) == 0
	var index uint64
	now := time.Now().UTC()
	for lo := 0; lo < len(ids) || (all && lo == 0); lo += maxRefreshIDs {
		entry, err := cluster.EncodeForecastRefresh(name, ids[lo:min(lo+maxRefreshIDs, len(ids))], now)
		if err != nil {
			return err
		}
		if _, index, err = n.cl.Apply(r.Context(), entry); err != nil {
			return err
		}
	}
	if err := n.cl.WaitApplied(r.Context(), index); err != nil {
		return err
	}
	n.kickForecaster()
	count := len(ids)
	if all {
		count = n.cl.Store().SeriesCount(name)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"dataset": name, "series": count, "node": n.cfg.NodeName, "index": index})
	return nil
}

// checkDimensions rejects filter keys that are not dimensions of schema.
func checkDimensions(schema *stream.Schema, filter map[string]string, field string) error {
	for k := range filter {
		if !slices.Contains(schema.Dimensions, k) {
			return badRequest(fmt.Sprintf("%s.%s: not a dimension of %s (dimensions: %s)", field, k, schema.Name, strings.Join(schema.Dimensions, ", ")), nil)
		}
	}
	return nil
}

// forecastQuery is a parsed GET .../forecasts request.
type forecastQuery struct {
	ids     []uint64
	filter  map[string]string
	horizon int // 0 = all stored
	levels  []float64
	limit   int
	after   uint64
}

func parseForecastQuery(schema *stream.Schema, q map[string][]string) (forecastQuery, error) {
	fq := forecastQuery{filter: map[string]string{}, limit: defaultSeriesLimit}
	set := schema.ForecastSettings()
	fq.levels = set.Levels
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "series_id":
			for _, v := range vs {
				for s := range strings.SplitSeq(v, ",") {
					id, err := parseSeriesID(strings.TrimSpace(s))
					if err != nil {
						return fq, badRequest(fmt.Sprintf("series_id %q: want 16 hex digits", s), nil)
					}
					fq.ids = append(fq.ids, id)
				}
			}
		case "horizon":
			h, err := strconv.Atoi(v)
			if err != nil || h < 1 {
				return fq, badRequest(fmt.Sprintf("horizon %q: want a positive number of steps (stored: %d)", v, set.Horizon), nil)
			}
			fq.horizon = h
		case "levels":
			fq.levels = nil
			for p := range strings.SplitSeq(v, ",") {
				l, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
				if err != nil || !slices.Contains(set.Levels, l) {
					return fq, badRequest(fmt.Sprintf("levels %q: each must be one of the stored levels %v (change them with PUT /v1/datasets/%s/forecast)", p, set.Levels, schema.Name), nil)
				}
				fq.levels = append(fq.levels, l)
			}
		case "limit":
			l, err := strconv.Atoi(v)
			if err != nil || l < 1 || l > maxSeriesLimit {
				return fq, badRequest(fmt.Sprintf("limit %q: want 1..%d series", v, maxSeriesLimit), nil)
			}
			fq.limit = l
		case "cursor":
			id, err := parseSeriesID(v)
			if err != nil {
				return fq, badRequest(fmt.Sprintf("cursor %q: want the next_cursor of a previous page", v), nil)
			}
			fq.after = id
		case "consistent":
		default:
			if !slices.Contains(schema.Dimensions, k) {
				return fq, badRequest(fmt.Sprintf("query parameter %q: not a dimension of %s (dimensions: %s; also series_id, horizon, levels, limit, cursor)",
					k, schema.Name, strings.Join(schema.Dimensions, ", ")), nil)
			}
			fq.filter[k] = v
		}
	}
	return fq, nil
}

// seriesForecastRow is one series with its forecast, for the writers.
type seriesForecastRow struct {
	info cluster.SeriesInfo
	fc   *cluster.SeriesForecast
}

// lookupForecasts returns the page of series (with stored forecasts) the
// query selects, and the next cursor (0 = none).
func (n *Node) lookupForecasts(r *http.Request, name string, fq forecastQuery) ([]seriesForecastRow, uint64, error) {
	st := n.cl.Store()
	var out []seriesForecastRow
	if len(fq.ids) > 0 {
		for _, id := range fq.ids {
			info, ok, err := n.seriesInfo(r, name, id)
			if err != nil {
				return nil, 0, err
			}
			if !ok || !matches(info, fq.filter) {
				continue
			}
			fc, ok, err := st.Forecast(name, id)
			if err != nil {
				return nil, 0, err
			}
			if ok {
				out = append(out, seriesForecastRow{info, fc})
			}
		}
		return out, 0, nil
	}
	page, next, err := st.Series(r.Context(), name, fq.filter, fq.after, fq.limit)
	if err != nil {
		return nil, 0, err
	}
	for _, s := range page {
		fc, ok, err := st.Forecast(name, s.ID)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			out = append(out, seriesForecastRow{s, fc})
		}
	}
	return out, next, nil
}

func matches(s cluster.SeriesInfo, filter map[string]string) bool {
	for k, v := range filter {
		if s.Dimensions[k] != v {
			return false
		}
	}
	return true
}

// seriesInfo returns one series' dimensions.
func (n *Node) seriesInfo(r *http.Request, name string, id uint64) (cluster.SeriesInfo, bool, error) {
	after := uint64(0)
	if id > 0 {
		after = id - 1
	}
	page, _, err := n.cl.Store().Series(r.Context(), name, nil, after, 1)
	if err != nil {
		return cluster.SeriesInfo{}, false, err
	}
	if len(page) == 0 || page[0].ID != id {
		return cluster.SeriesInfo{}, false, nil
	}
	return page[0], true, nil
}

func (n *Node) listForecasts(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	fq, err := parseForecastQuery(schema, r.URL.Query())
	if err != nil {
		return err
	}
	format, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	rows, next, err := n.lookupForecasts(r, name, fq)
	if err != nil {
		return err
	}
	index := n.cl.Store().AppliedIndex()
	w.Header().Set("X-Demandflow-Index", strconv.FormatUint(index, 10))
	if next != 0 {
		w.Header().Set("X-Demandflow-Next-Cursor", formatSeriesID(next))
	}
	switch format {
	case stream.CSV:
		return writeForecastsCSV(w, schema, rows, fq)
	case stream.Arrow:
		return writeForecastsArrow(w, schema, rows, fq)
	}
	out := make([]forecastView, len(rows))
	for i, row := range rows {
		out[i] = viewForecast(schema, row, fq)
	}
	resp := map[string]any{"dataset": name, "frequency": schema.Frequency, "levels": fq.levels,
		"forecasts": out, "node": n.cfg.NodeName, "index": index}
	if next != 0 {
		resp["next_cursor"] = formatSeriesID(next)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// forecastView is the JSON shape of one series' forecast.
type forecastView struct {
	SeriesID   string            `json:"series_id"`
	Dimensions map[string]string `json:"dimensions"`
	Model      string            `json:"model"`
	FittedAt   time.Time         `json:"fitted_at"`
	ComputedAt time.Time         `json:"computed_at"`
	Updated    bool              `json:"updated"`
	LastPeriod string            `json:"last_period"`
	Points     []map[string]any  `json:"points"`
}

// levelIndex maps wanted levels to the positions in the stored forecast
// (-1 = not stored).
func levelIndex(fc *cluster.SeriesForecast, levels []float64) []int {
	idx := make([]int, len(levels))
	for i, l := range levels {
		idx[i] = slices.Index(fc.Levels, l)
	}
	return idx
}

func levelLabel(l float64) string { return strconv.FormatFloat(l, 'f', -1, 64) }

func steps(fc *cluster.SeriesForecast, horizon int) int {
	if horizon > 0 {
		return min(horizon, len(fc.Mean))
	}
	return len(fc.Mean)
}

// finite returns v, or nil for NaN/Inf (not representable in JSON).
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func viewForecast(schema *stream.Schema, row seriesForecastRow, fq forecastQuery) forecastView {
	fc := row.fc
	freq := schema.Frequency
	v := forecastView{SeriesID: formatSeriesID(row.info.ID), Dimensions: row.info.Dimensions, Model: fc.Model,
		FittedAt: fc.FittedAt, ComputedAt: fc.ComputedAt, Updated: fc.Updated,
		LastPeriod: stream.FormatPeriod(stream.PeriodFromIndex(fc.LastPeriod, freq), freq)}
	li := levelIndex(fc, fq.levels)
	h := steps(fc, fq.horizon)
	v.Points = make([]map[string]any, h)
	for k := range h {
		p := map[string]any{"step": k + 1, "period": stream.FormatPeriod(stream.PeriodFromIndex(fc.LastPeriod+int64(k+1), freq), freq),
			"mean": finite(fc.Mean[k])}
		for i, l := range fq.levels {
			var lo, hi any
			if j := li[i]; j >= 0 {
				lo, hi = finite(fc.Lower[j][k]), finite(fc.Upper[j][k])
			}
			p["lo_"+levelLabel(l)], p["hi_"+levelLabel(l)] = lo, hi
		}
		v.Points[k] = p
	}
	return v
}

func formatFloat(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// writeForecastsCSV writes series_id, dimensions..., step, period, mean,
// lo_L, hi_L..., model.
func writeForecastsCSV(w http.ResponseWriter, schema *stream.Schema, rows []seriesForecastRow, fq forecastQuery) error {
	w.Header().Set("Content-Type", "text/csv")
	cw := csv.NewWriter(w)
	header := append([]string{"series_id"}, schema.Dimensions...)
	header = append(header, "step", "period", "mean")
	for _, l := range fq.levels {
		header = append(header, "lo_"+levelLabel(l), "hi_"+levelLabel(l))
	}
	header = append(header, "model")
	_ = cw.Write(header)
	freq := schema.Frequency
	rec := make([]string, 0, len(header))
	for _, row := range rows {
		fc := row.fc
		li := levelIndex(fc, fq.levels)
		for k := range steps(fc, fq.horizon) {
			rec = append(rec[:0], formatSeriesID(row.info.ID))
			for _, d := range schema.Dimensions {
				rec = append(rec, row.info.Dimensions[d])
			}
			rec = append(rec, strconv.Itoa(k+1), stream.FormatPeriod(stream.PeriodFromIndex(fc.LastPeriod+int64(k+1), freq), freq), formatFloat(fc.Mean[k]))
			for i := range fq.levels {
				if j := li[i]; j >= 0 {
					rec = append(rec, formatFloat(fc.Lower[j][k]), formatFloat(fc.Upper[j][k]))
				} else {
					rec = append(rec, "", "")
				}
			}
			rec = append(rec, fc.Model)
			_ = cw.Write(rec)
		}
	}
	cw.Flush()
	return nil // the status is sent; a write error means the client went away
}

// ForecastArrowSchema is the Arrow schema of GET .../forecasts for a
// dataset: series_id uint64, one utf8 column per dimension, step int32,
// period date32 (first day of the period), mean float64, lo_L/hi_L float64
// per level (nullable), model utf8.
func ForecastArrowSchema(schema *stream.Schema, levels []float64) *arrow.Schema {
	fields := []arrow.Field{{Name: "series_id", Type: arrow.PrimitiveTypes.Uint64}}
	for _, d := range schema.Dimensions {
		fields = append(fields, arrow.Field{Name: d, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields,
		arrow.Field{Name: "step", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "period", Type: arrow.FixedWidthTypes.Date32},
		arrow.Field{Name: "mean", Type: arrow.PrimitiveTypes.Float64})
	for _, l := range levels {
		fields = append(fields,
			arrow.Field{Name: "lo_" + levelLabel(l), Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			arrow.Field{Name: "hi_" + levelLabel(l), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	fields = append(fields, arrow.Field{Name: "model", Type: arrow.BinaryTypes.String})
	return arrow.NewSchema(fields, nil)
}

func writeForecastsArrow(w http.ResponseWriter, schema *stream.Schema, rows []seriesForecastRow, fq forecastQuery) error {
	as := ForecastArrowSchema(schema, fq.levels)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	total := 0
	for _, row := range rows {
		total += steps(row.fc, fq.horizon)
	}
	b.Reserve(total)
	nd := len(schema.Dimensions)
	freq := schema.Frequency
	for _, row := range rows {
		fc := row.fc
		li := levelIndex(fc, fq.levels)
		for k := range steps(fc, fq.horizon) {
			b.Field(0).(*array.Uint64Builder).Append(row.info.ID)
			for i, d := range schema.Dimensions {
				b.Field(1 + i).(*array.StringBuilder).Append(row.info.Dimensions[d])
			}
			b.Field(1 + nd).(*array.Int32Builder).Append(int32(k + 1))
			b.Field(2 + nd).(*array.Date32Builder).Append(arrow.Date32(stream.PeriodFromIndex(fc.LastPeriod+int64(k+1), freq)))
			b.Field(3 + nd).(*array.Float64Builder).Append(fc.Mean[k])
			for i := range fq.levels {
				lo, hi := b.Field(4+nd+2*i).(*array.Float64Builder), b.Field(5+nd+2*i).(*array.Float64Builder)
				if j := li[i]; j >= 0 {
					lo.Append(fc.Lower[j][k])
					hi.Append(fc.Upper[j][k])
				} else {
					lo.AppendNull()
					hi.AppendNull()
				}
			}
			b.Field(4 + nd + 2*len(fq.levels)).(*array.StringBuilder).Append(fc.Model)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
	iw := ipc.NewWriter(w, ipc.WithSchema(as))
	if err := iw.Write(rec); err != nil {
		return nil // headers are out; the client sees a truncated stream
	}
	_ = iw.Close()
	return nil
}

func (n *Node) seriesDetail(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	id, err := parseSeriesID(r.PathValue("id"))
	if err != nil {
		return err
	}
	info, ok, err := n.seriesInfo(r, name, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s in dataset %q", cluster.ErrUnknownSeries, formatSeriesID(id), name)
	}
	obs, err := n.cl.Store().Observations(r.Context(), name, id, math.MinInt32, math.MaxInt32)
	if err != nil {
		return err
	}
	hist := make([]map[string]any, len(obs))
	for i, o := range obs {
		hist[i] = map[string]any{"period": stream.FormatPeriod(o.Period, schema.Frequency), "value": finite(o.Value)}
	}
	resp := map[string]any{"dataset": name, "series_id": formatSeriesID(id), "dimensions": info.Dimensions,
		"frequency": schema.Frequency, "history": hist, "forecast": nil,
		"node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()}
	fc, ok, err := n.cl.Store().Forecast(name, id)
	if err != nil {
		return err
	}
	if ok {
		resp["forecast"] = viewForecast(schema, seriesForecastRow{info, fc}, forecastQuery{levels: fc.Levels})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
