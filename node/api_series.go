package node

import (
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/stream"
)

// Series ids appear in URLs and JSON as 16 lower-case hex digits: a uint64
// does not fit a JSON number safely.
func formatSeriesID(id uint64) string { return fmt.Sprintf("%016x", id) }

func parseSeriesID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) == 0 || len(s) > 16 {
		return 0, badRequest(fmt.Sprintf("series id %q: want 16 hex digits", s), nil)
	}
	return id, nil
}

const (
	defaultSeriesLimit = 100
	maxSeriesLimit     = 10000
)

type seriesView struct {
	SeriesID   string            `json:"series_id"`
	Dimensions map[string]string `json:"dimensions"`
}

func (n *Node) listSeries(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	q := r.URL.Query()
	limit := defaultSeriesLimit
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxSeriesLimit {
			return badRequest(fmt.Sprintf("limit %q: want 1..%d", v, maxSeriesLimit), nil)
		}
		limit = l
	}
	var after uint64
	if v := q.Get("cursor"); v != "" {
		id, err := parseSeriesID(v)
		if err != nil {
			return badRequest(fmt.Sprintf("cursor %q: want the next_cursor of a previous page", v), nil)
		}
		after = id
	}
	filter := map[string]string{}
	for k, vs := range q {
		if k == "limit" || k == "cursor" {
			continue
		}
		known := false
		for _, d := range schema.Dimensions {
			known = known || d == k
		}
		if !known {
			return badRequest(fmt.Sprintf("query parameter %q: not a dimension of %s (dimensions: %s; also limit, cursor)",
				k, name, strings.Join(schema.Dimensions, ", ")), nil)
		}
		filter[k] = vs[len(vs)-1]
	}
	list, next, err := n.cl.Store().Series(r.Context(), name, filter, after, limit)
	if err != nil {
		return err
	}
	out := make([]seriesView, len(list))
	for i, s := range list {
		out[i] = seriesView{SeriesID: formatSeriesID(s.ID), Dimensions: s.Dimensions}
	}
	resp := map[string]any{"dataset": name, "series": out, "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()}
	if next != 0 {
		resp["next_cursor"] = formatSeriesID(next)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// negotiate picks the response format from the Accept header: JSON
// (default), CSV or Arrow IPC.
func negotiate(accept string) (stream.Format, error) {
	if accept == "" {
		return stream.JSON, nil
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		switch mt {
		case "application/json", "*/*", "application/*":
			return stream.JSON, nil
		case "text/csv", "text/*":
			return stream.CSV, nil
		case "application/vnd.apache.arrow.stream":
			return stream.Arrow, nil
		}
	}
	return "", &apiError{status: http.StatusNotAcceptable,
		msg: fmt.Sprintf("cannot produce %q: want application/json, text/csv or application/vnd.apache.arrow.stream", accept)}
}

type observationView struct {
	Period     string              `json:"period"`
	Value      float64             `json:"value"`
	Covariates map[string]*float64 `json:"covariates,omitempty"`
	ObjectID   string              `json:"object_id,omitempty"`
}

func (n *Node) observations(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	id, err := parseSeriesID(r.PathValue("id"))
	if err != nil {
		return err
	}
	from, to := int32(math.MinInt32), int32(math.MaxInt32)
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = stream.ParsePeriod(v, schema.Frequency); err != nil {
			return badRequest("from: "+err.Error(), nil)
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = stream.ParsePeriod(v, schema.Frequency); err != nil {
			return badRequest("to: "+err.Error(), nil)
		}
	}
	format, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	obs, err := n.cl.Store().Observations(r.Context(), name, id, from, to)
	if err != nil {
		return err
	}
	index := n.cl.Store().AppliedIndex()
	w.Header().Set("X-Demandflow-Index", strconv.FormatUint(index, 10))
	switch format {
	case stream.CSV:
		return writeObservationsCSV(w, schema, obs)
	case stream.Arrow:
		return writeObservationsArrow(w, schema, obs)
	}
	out := make([]observationView, len(obs))
	for i, o := range obs {
		v := observationView{Period: stream.FormatPeriod(o.Period, schema.Frequency), Value: o.Value, ObjectID: o.ObjectID}
		if len(schema.Covariates) > 0 {
			v.Covariates = make(map[string]*float64, len(schema.Covariates))
			for j, c := range schema.Covariates {
				if j < len(o.Covariates) && !math.IsNaN(o.Covariates[j]) {
					x := o.Covariates[j]
					v.Covariates[c] = &x
				} else {
					v.Covariates[c] = nil
				}
			}
		}
		out[i] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"dataset": name, "series_id": formatSeriesID(id), "frequency": schema.Frequency,
		"observations": out, "node": n.cfg.NodeName, "index": index,
	})
	return nil
}

func writeObservationsCSV(w http.ResponseWriter, s *stream.Schema, obs []cluster.Observation) error {
	w.Header().Set("Content-Type", "text/csv")
	cw := csv.NewWriter(w)
	header := append([]string{s.Period, s.Measure}, s.Covariates...)
	if s.ObjectID != "" {
		header = append(header, s.ObjectID)
	}
	_ = cw.Write(header)
	rec := make([]string, len(header))
	for _, o := range obs {
		rec = rec[:0]
		rec = append(rec, stream.FormatPeriod(o.Period, s.Frequency), strconv.FormatFloat(o.Value, 'g', -1, 64))
		for j := range s.Covariates {
			if j < len(o.Covariates) && !math.IsNaN(o.Covariates[j]) {
				rec = append(rec, strconv.FormatFloat(o.Covariates[j], 'g', -1, 64))
			} else {
				rec = append(rec, "")
			}
		}
		if s.ObjectID != "" {
			rec = append(rec, o.ObjectID)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return nil // the status is sent; a write error means the client went away
}

func writeObservationsArrow(w http.ResponseWriter, s *stream.Schema, obs []cluster.Observation) error {
	fields := []arrow.Field{
		{Name: s.Period, Type: arrow.FixedWidthTypes.Date32},
		{Name: s.Measure, Type: arrow.PrimitiveTypes.Float64},
	}
	for _, c := range s.Covariates {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	if s.ObjectID != "" {
		fields = append(fields, arrow.Field{Name: s.ObjectID, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Reserve(len(obs))
	for _, o := range obs {
		b.Field(0).(*array.Date32Builder).Append(arrow.Date32(o.Period))
		b.Field(1).(*array.Float64Builder).Append(o.Value)
		for j := range s.Covariates {
			fb := b.Field(2 + j).(*array.Float64Builder)
			if j < len(o.Covariates) && !math.IsNaN(o.Covariates[j]) {
				fb.Append(o.Covariates[j])
			} else {
				fb.AppendNull()
			}
		}
		if s.ObjectID != "" {
			sb := b.Field(len(fields) - 1).(*array.StringBuilder)
			if o.ObjectID == "" {
				sb.AppendNull()
			} else {
				sb.Append(o.ObjectID)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
	iw := ipc.NewWriter(w, ipc.WithSchema(schema))
	if err := iw.Write(rec); err != nil {
		return nil // headers are out; the client sees a truncated stream
	}
	_ = iw.Close()
	return nil
}
