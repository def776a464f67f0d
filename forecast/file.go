package forecast

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FileOptions configures ForecastCSV.
type FileOptions struct {
	// SeasonLength is the season length m; 0 or 1 means none.
	SeasonLength int
	// Horizon is the number of steps to forecast (> 0).
	Horizon int
	// Model is a ModelByName name; "" means "auto".
	Model string
	// Levels are interval levels in percent; nil means 80 and 95.
	Levels []float64
	// Workers is the engine's parallelism; 0 means GOMAXPROCS.
	Workers int
}

// FileStats summarises a ForecastCSV run.
type FileStats struct {
	Series  int           // series forecast
	Points  int           // input observations
	Rows    int           // output rows
	Elapsed time.Duration // wall time of the whole call
}

// SeriesPerSecond is the throughput of the run.
func (s FileStats) SeriesPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Series) / s.Elapsed.Seconds()
}

// InputError is a problem in ForecastCSV's input, located by line (1-based,
// the header is line 1) and field.
type InputError struct {
	Line   int
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("input: field %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("input line %d: field %s: %s", e.Line, e.Field, e.Reason)
}

// ForecastCSV is the offline mode: it reads a long CSV with header columns
// id, t, y (any order, other columns ignored; rows in any order), forecasts
// every series with the engine on all workers and writes
// id,step,mean,lo_<L>,hi_<L>...,model, series in order of first
// appearance. t is either an integer index for every row or a period string
// (ISO forms such as 2024-03, 2024-Q1, 2024-W09, 2024-03-15, of one
// zero-padded format), sorted numerically or lexically; y must be a finite
// number. Bad input yields an *InputError naming the line and field.
// progress is passed to Engine.Run.
func ForecastCSV(ctx context.Context, in io.Reader, out io.Writer, opts FileOptions, progress func(done, total int)) (FileStats, error) {
	start := time.Now()
	if opts.Levels == nil {
		opts.Levels = []float64{80, 95}
	}
	req := Request{Model: opts.Model, Horizon: opts.Horizon, SeasonLength: opts.SeasonLength, Levels: opts.Levels}
	if err := req.Validate(); err != nil {
		return FileStats{}, err
	}
	series, names, points, err := readLongCSV(in)
	if err != nil {
		return FileStats{}, err
	}
	mem := memory.DefaultAllocator
	idB := array.NewUint64Builder(mem)
	defer idB.Release()
	listB := array.NewListBuilder(mem, arrow.PrimitiveTypes.Float64)
	defer listB.Release()
	vb := listB.ValueBuilder().(*array.Float64Builder)
	vb.Reserve(points)
	for i, s := range series {
		idB.Append(uint64(i))
		listB.Append(true)
		vb.AppendValues(s, nil)
	}
	ids := idB.NewUint64Array()
	defer ids.Release()
	vals := listB.NewListArray()
	defer vals.Release()

	eng, err := NewEngine(Config{Workers: opts.Workers})
	if err != nil {
		return FileStats{}, err
	}
	rec, err := eng.Run(ctx, ids, vals, req, progress)
	if err != nil {
		return FileStats{}, err
	}
	defer rec.Release()

	w := csv.NewWriter(out)
	header := []string{"id", "step", "mean"}
	for _, l := range opts.Levels {
		header = append(header, "lo_"+levelName(l), "hi_"+levelName(l))
	}
	header = append(header, "model")
	if err := w.Write(header); err != nil {
		return FileStats{}, fmt.Errorf("write output: %w", err)
	}
	sid := rec.Column(0).(*array.Uint64)
	step := rec.Column(1).(*array.Int32)
	cols := make([]*array.Float64, 1+2*len(opts.Levels))
	for i := range cols {
		cols[i] = rec.Column(3 + i).(*array.Float64)
	}
	model := rec.Column(int(rec.NumCols()) - 1).(*array.String)
	row := make([]string, len(header))
	for r := range int(rec.NumRows()) {
		row[0] = names[sid.Value(r)]
		row[1] = strconv.Itoa(int(step.Value(r)))
		for i, c := range cols {
			row[2+i] = strconv.FormatFloat(c.Value(r), 'g', -1, 64)
		}
		row[len(row)-1] = model.Value(r)
		if err := w.Write(row); err != nil {
			return FileStats{}, fmt.Errorf("write output: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return FileStats{}, fmt.Errorf("write output: %w", err)
	}
	return FileStats{Series: len(series), Points: points, Rows: int(rec.NumRows()), Elapsed: time.Since(start)}, nil
}

type obs struct {
	key  string
	num  int64
	y    float64
	line int
}

// readLongCSV parses id,t,y rows into series ordered by t.
func readLongCSV(in io.Reader) (series [][]float64, names []string, points int, err error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err == io.EOF {
		return nil, nil, 0, &InputError{Line: 1, Field: "header", Reason: "empty input"}
	}
	if err != nil {
		return nil, nil, 0, csvErr(err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"id", "t", "y"} {
		if _, ok := col[need]; !ok {
			return nil, nil, 0, &InputError{Line: 1, Field: need, Reason: "missing column"}
		}
	}
	ci, ct, cy := col["id"], col["t"], col["y"]
	width := max(ci, ct, cy) + 1
	index := map[string]int{}
	var rows [][]obs
	line := 1
	for {
		rec, err := r.Read()
		line++
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, 0, csvErr(err)
		}
		if len(rec) < width {
			return nil, nil, 0, &InputError{Line: line, Field: head[min(len(rec), width-1)], Reason: "missing value"}
		}
		id := rec[ci]
		if id == "" {
			return nil, nil, 0, &InputError{Line: line, Field: "id", Reason: "empty"}
		}
		y, perr := strconv.ParseFloat(strings.TrimSpace(rec[cy]), 64)
		if perr != nil || math.IsNaN(y) || math.IsInf(y, 0) {
			return nil, nil, 0, &InputError{Line: line, Field: "y", Reason: fmt.Sprintf("not a finite number: %q", rec[cy])}
		}
		tv := strings.TrimSpace(rec[ct])
		if tv == "" {
			return nil, nil, 0, &InputError{Line: line, Field: "t", Reason: "empty"}
		}
		k, ok := index[id]
		if !ok {
			k = len(names)
			index[id] = k
			names = append(names, strings.Clone(id))
			rows = append(rows, nil)
		}
		rows[k] = append(rows[k], obs{key: strings.Clone(tv), y: y, line: line})
		points++
	}
	series = make([][]float64, len(rows))
	for k, os := range rows {
		numeric := true
		for i := range os {
			v, err := strconv.ParseInt(os[i].key, 10, 64)
			if err != nil {
				numeric = false
				break
			}
			os[i].num = v
		}
		slices.SortStableFunc(os, func(a, b obs) int {
			if numeric {
				return cmpInt(a.num, b.num)
			}
			return strings.Compare(a.key, b.key)
		})
		ys := make([]float64, len(os))
		for i := range os {
			if i > 0 && os[i].key == os[i-1].key || (numeric && i > 0 && os[i].num == os[i-1].num) {
				return nil, nil, 0, &InputError{Line: os[i].line, Field: "t",
					Reason: fmt.Sprintf("duplicate (id, t) = (%s, %s), first on line %d", names[k], os[i].key, os[i-1].line)}
			}
			ys[i] = os[i].y
		}
		series[k] = ys
	}
	return series, names, points, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &InputError{Line: pe.Line, Field: "csv", Reason: pe.Err.Error()}
	}
	return fmt.Errorf("read input: %w", err)
}
