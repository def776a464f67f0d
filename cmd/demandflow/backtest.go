package main

// Node-backed forecast commands: "forecast get" prints stored forecasts,
// "backtest" runs rolling-origin backtests page by page on a node (with a
// progress bar on a terminal) and averages the per-series results the way
// forecast.AggregateBacktests does.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// splitDimFlags takes "--<dimension> value" and "--<dimension>=value"
// arguments that are not flags of fs out of args, so commands can filter by
// any dimension of a dataset.
func splitDimFlags(args []string, isFlag func(name string) bool) (rest []string, dims map[string]string, err error) {
	dims = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") || a == "--" {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		if isFlag(name) {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return nil, nil, fmt.Errorf("--%s: a dimension filter needs a value", name)
			}
			i++
			val = args[i]
		}
		dims[name] = val
	}
	return rest, dims, nil
}

// parseFilters parses repeated --filter dim=value flags into dims.
func parseFilters(fs []string, dims map[string]string) error {
	for _, f := range fs {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return fmt.Errorf("--filter %q: want dimension=value", f)
		}
		dims[k] = v
	}
	return nil
}

type forecastGetOpts struct {
	ops      opsFlags
	dataset  string
	seriesID []string
	filters  []string
	horizon  int
	levels   string
	csv      bool
	limit    int
}

func newForecastGetCmd() *cobra.Command {
	o := &forecastGetOpts{}
	cmd := &cobra.Command{
		Use:   "get --dataset NAME [--series-id ID] [--<dimension> VALUE ...] [--horizon H] [--levels 80]",
		Short: "Print the stored forecasts of a dataset from a node",
		Long: `Print the stored forecasts of a dataset (any node serves every forecast).
Filter by series id or by any dimension, as --product apple or
--filter product=apple. --csv prints the node's CSV instead of a table.`,
		DisableFlagParsing: true,
	}
	o.ops.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.dataset, "dataset", "", "dataset name")
	f.StringArrayVar(&o.seriesID, "series-id", nil, "series id (16 hex digits); repeatable")
	f.StringArrayVar(&o.filters, "filter", nil, "dimension=value; repeatable")
	f.IntVar(&o.horizon, "horizon", 0, "steps to show (default: all stored)")
	f.StringVar(&o.levels, "levels", "", "interval levels to show (default: the dataset's)")
	f.BoolVar(&o.csv, "csv", false, "print CSV")
	f.IntVar(&o.limit, "limit", 0, "most series to print (default: all)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dims, err := parseDimArgs(cmd, args)
		if err != nil || dims == nil {
			return err
		}
		if err := parseFilters(o.filters, dims); err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
		if o.dataset == "" {
			return exitError{code: 2, msg: "--dataset is required"}
		}
		c, err := o.ops.client()
		if err != nil {
			return err
		}
		return runForecastGet(cmd.Context(), c, o, dims, cmd.OutOrStdout())
	}
	return cmd
}

// parseDimArgs parses a DisableFlagParsing command's args: known flags into
// the flag set, unknown --name value pairs into the returned dimension
// filter. It returns nil dims (and prints help) for -h/--help.
func parseDimArgs(cmd *cobra.Command, args []string) (map[string]string, error) {
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
		return nil, cmd.Help()
	}
	cmd.Flags().AddFlagSet(cmd.PersistentFlags())
	isFlag := func(name string) bool {
		return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil
	}
	rest, dims, err := splitDimFlags(args, isFlag)
	if err != nil {
		return nil, exitError{code: 2, msg: err.Error()}
	}
	if err := cmd.Flags().Parse(rest); err != nil {
		return nil, exitError{code: 2, msg: err.Error()}
	}
	if n := cmd.Flags().NArg(); n > 0 {
		return nil, exitError{code: 2, msg: fmt.Sprintf("unexpected argument %q", cmd.Flags().Arg(0))}
	}
	return dims, nil
}

type forecastPoint map[string]any

type forecastsResp struct {
	Levels    []float64 `json:"levels"`
	Forecasts []struct {
		SeriesID   string            `json:"series_id"`
		Dimensions map[string]string `json:"dimensions"`
		Model      string            `json:"model"`
		Points     []forecastPoint   `json:"points"`
	} `json:"forecasts"`
	NextCursor string `json:"next_cursor"`
}

func forecastQuery(o *forecastGetOpts, dims map[string]string, cursor string) string {
	q := url.Values{}
	for _, id := range o.seriesID {
		q.Add("series_id", id)
	}
	for k, v := range dims {
		q.Set(k, v)
	}
	if o.horizon > 0 {
		q.Set("horizon", strconv.Itoa(o.horizon))
	}
	if o.levels != "" {
		q.Set("levels", o.levels)
	}
	q.Set("limit", "1000")
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return "/v1/datasets/" + url.PathEscape(o.dataset) + "/forecasts?" + q.Encode()
}

func runForecastGet(ctx context.Context, c *opsClient, o *forecastGetOpts, dims map[string]string, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	printed, cursor, first := 0, "", true
	for {
		cctx, cancel := withTimeout(ctx, o.ops.timeout)
		path := forecastQuery(o, dims, cursor)
		if o.csv {
			resp, err := c.do(cctx, "GET", path, "", nil)
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil && !first {
					// Drop the repeated header of later pages.
					if i := strings.IndexByte(string(body), '\n'); i >= 0 {
						body = body[i+1:]
					}
				}
				_, _ = w.Write(body)
				cursor, err = resp.Header.Get("X-Demandflow-Next-Cursor"), rerr
			}
			cancel()
			if err != nil {
				return err
			}
			first = false
			if cursor == "" {
				return nil
			}
			continue
		}
		var fr forecastsResp
		raw, err := c.getJSON(cctx, path, &fr)
		cancel()
		if err != nil {
			return err
		}
		if o.ops.json {
			_, _ = w.Write(raw)
		} else {
			if first {
				hdr := []string{"SERIES", "STEP", "PERIOD", "MEAN"}
				for _, l := range fr.Levels {
					s := strconv.FormatFloat(l, 'f', -1, 64)
					hdr = append(hdr, "LO_"+s, "HI_"+s)
				}
				fmt.Fprintln(tw, strings.Join(append(hdr, "MODEL"), "\t")+"\t")
			}
			for _, f := range fr.Forecasts {
				if o.limit > 0 && printed == o.limit {
					return tw.Flush()
				}
				printed++
				name := seriesLabel(f.SeriesID, f.Dimensions)
				for _, p := range f.Points {
					row := []string{name, fmt.Sprint(p["step"]), fmt.Sprint(p["period"]), num(p["mean"])}
					for _, l := range fr.Levels {
						s := strconv.FormatFloat(l, 'f', -1, 64)
						row = append(row, num(p["lo_"+s]), num(p["hi_"+s]))
					}
					fmt.Fprintln(tw, strings.Join(append(row, f.Model), "\t")+"\t")
				}
			}
		}
		first = false
		if fr.NextCursor == "" || len(o.seriesID) > 0 {
			return tw.Flush()
		}
		cursor = fr.NextCursor
	}
}

// seriesLabel names a series by its dimension values (sorted by name), or
// its id when it has none.
func seriesLabel(id string, dims map[string]string) string {
	if len(dims) == 0 {
		return id
	}
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = dims[k]
	}
	return strings.Join(parts, "/")
}

func num(v any) string {
	f, ok := v.(float64)
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

type backtestOpts struct {
	ops      opsFlags
	dataset  string
	model    string
	horizon  int
	windows  int
	step     int
	levels   string
	seriesID []string
	filters  []string
	page     int
	noSeries bool
}

// backtestMetrics mirrors node.BacktestMetrics (nil = undefined).
type backtestMetrics struct {
	MASE     *float64            `json:"mase"`
	SMAPE    *float64            `json:"smape"`
	WAPE     *float64            `json:"wape"`
	Bias     *float64            `json:"bias"`
	Coverage map[string]*float64 `json:"coverage"`
}

type backtestSeries struct {
	SeriesID   string            `json:"series_id"`
	Dimensions map[string]string `json:"dimensions"`
	Windows    int               `json:"windows"`
	Model      string            `json:"model"`
	Error      string            `json:"error"`
	backtestMetrics
}

type backtestResp struct {
	Model       string           `json:"model"`
	Horizon     int              `json:"horizon"`
	Windows     int              `json:"windows"`
	Step        int              `json:"step"`
	Levels      []float64        `json:"levels"`
	Series      []backtestSeries `json:"series"`
	TotalSeries int              `json:"total_series"`
	NextCursor  string           `json:"next_cursor"`
}

func newBacktestCmd() *cobra.Command {
	o := &backtestOpts{}
	cmd := &cobra.Command{
		Use:   "backtest --dataset NAME [--windows 3] [--horizon 6] [--model auto] [--<dimension> VALUE ...]",
		Short: "Backtest a model on a dataset's series (rolling origin) and print accuracy",
		Long: `Backtest a model on a dataset's series on a node: rolling-origin
cross-validation with MASE, sMAPE, WAPE, bias and interval coverage, per
series and aggregated (each series weighted equally; series whose metrics
are undefined, such as MASE of a constant series, are left out of the
aggregate). Series are sent in pages (--page); a progress bar shows on a
terminal. Filter by series id or any dimension (--product apple or
--filter product=apple). Zero flags take the dataset's forecast settings.`,
		DisableFlagParsing: true,
	}
	o.ops.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.dataset, "dataset", "", "dataset name")
	f.StringVar(&o.model, "model", "", "model (default: the dataset's)")
	f.IntVar(&o.horizon, "horizon", 0, "forecast horizon of each window (default: the dataset's)")
	f.IntVar(&o.windows, "windows", 3, "number of forecast origins")
	f.IntVar(&o.step, "step", 0, "periods between origins (default: horizon)")
	f.StringVar(&o.levels, "levels", "", "interval levels for coverage, e.g. 80,95 (default: the dataset's)")
	f.StringArrayVar(&o.seriesID, "series-id", nil, "series id; repeatable")
	f.StringArrayVar(&o.filters, "filter", nil, "dimension=value; repeatable")
	f.IntVar(&o.page, "page", 200, "series per request")
	f.BoolVar(&o.noSeries, "no-series", false, "print only the aggregate")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dims, err := parseDimArgs(cmd, args)
		if err != nil || dims == nil {
			return err
		}
		if err := parseFilters(o.filters, dims); err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
		if o.dataset == "" {
			return exitError{code: 2, msg: "--dataset is required"}
		}
		if o.windows < 1 || o.horizon < 0 || o.step < 0 || o.page < 1 {
			return exitError{code: 2, msg: "--windows and --page must be positive, --horizon and --step not negative"}
		}
		c, err := o.ops.client()
		if err != nil {
			return err
		}
		return runBacktest(cmd.Context(), c, o, dims, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

func (o *backtestOpts) request(dims map[string]string, cursor string) (map[string]any, error) {
	req := map[string]any{"windows": o.windows, "limit": o.page}
	if o.model != "" {
		req["model"] = o.model
	}
	if o.horizon > 0 {
		req["horizon"] = o.horizon
	}
	if o.step > 0 {
		req["step"] = o.step
	}
	if o.levels != "" {
		lv, err := parseLevels(o.levels)
		if err != nil {
			return nil, err
		}
		req["levels"] = lv
	}
	if len(o.seriesID) > 0 {
		req["series_id"] = o.seriesID
	}
	if len(dims) > 0 {
		req["filter"] = dims
	}
	if cursor != "" {
		req["cursor"] = cursor
	}
	return req, nil
}

func runBacktest(ctx context.Context, c *opsClient, o *backtestOpts, dims map[string]string, w, errw io.Writer) error {
	var all []backtestSeries
	var last backtestResp
	var bar *progressbar.ProgressBar
	tty := false
	if f, ok := errw.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	cursor := ""
	for {
		req, err := o.request(dims, cursor)
		if err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
		cctx, cancel := withTimeout(ctx, o.ops.timeout)
		var resp backtestResp
		_, err = c.callJSON(cctx, "POST", "/v1/datasets/"+url.PathEscape(o.dataset)+"/backtest", req, &resp)
		cancel()
		if err != nil {
			return err
		}
		all = append(all, resp.Series...)
		last = resp
		if tty && resp.NextCursor != "" && bar == nil {
			bar = progressbar.NewOptions(resp.TotalSeries, progressbar.OptionSetWriter(errw),
				progressbar.OptionSetDescription("backtesting"), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("series"))
		}
		if bar != nil {
			_ = bar.Set(len(all))
		}
		if resp.NextCursor == "" || len(o.seriesID) > 0 {
			break
		}
		cursor = resp.NextCursor
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(errw)
	}
	if o.ops.json {
		last.Series, last.NextCursor = all, ""
		b, _ := json.MarshalIndent(map[string]any{"result": last, "aggregate": aggregateBacktest(all, last.Levels)}, "", "  ")
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	agg := aggregateBacktest(all, last.Levels)
	fmt.Fprintf(w, "model %s, horizon %d, %d windows, step %d: %d series, %d in the aggregate\n\n",
		last.Model, last.Horizon, last.Windows, last.Step, len(all), agg.Series)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	hdr := []string{"SERIES", "WINDOWS", "MASE", "SMAPE%", "WAPE%", "BIAS"}
	for _, l := range last.Levels {
		hdr = append(hdr, "COV_"+strconv.FormatFloat(l, 'f', -1, 64))
	}
	fmt.Fprintln(tw, strings.Join(append(hdr, "MODEL"), "\t")+"\t")
	row := func(name string, windows string, m backtestMetrics, model string) {
		r := []string{name, windows, fptr(m.MASE), fptr(m.SMAPE), fptr(m.WAPE), fptr(m.Bias)}
		for _, l := range last.Levels {
			r = append(r, fptr(m.Coverage[strconv.FormatFloat(l, 'f', -1, 64)]))
		}
		fmt.Fprintln(tw, strings.Join(append(r, model), "\t")+"\t")
	}
	row("AGGREGATE", "-", agg.backtestMetrics, last.Model)
	if !o.noSeries {
		for _, s := range all {
			if s.Error != "" {
				fmt.Fprintf(tw, "%s\t%d\t%s\t\n", seriesLabel(s.SeriesID, s.Dimensions), s.Windows, s.Error)
				continue
			}
			row(seriesLabel(s.SeriesID, s.Dimensions), strconv.Itoa(s.Windows), s.backtestMetrics, s.Model)
		}
	}
	return tw.Flush()
}

type backtestAggregate struct {
	Series int `json:"series"`
	backtestMetrics
}

// aggregateBacktest averages the per-series metrics of the series whose
// metrics are all defined, as forecast.AggregateBacktests does.
func aggregateBacktest(ss []backtestSeries, levels []float64) backtestAggregate {
	var sum [4]float64
	cov := make([]float64, len(levels))
	n := 0
	for _, s := range ss {
		if s.Error != "" || s.MASE == nil || s.SMAPE == nil || s.WAPE == nil || s.Bias == nil {
			continue
		}
		ok := true
		for _, l := range levels {
			ok = ok && s.Coverage[strconv.FormatFloat(l, 'f', -1, 64)] != nil
		}
		if !ok {
			continue
		}
		n++
		sum[0] += *s.MASE
		sum[1] += *s.SMAPE
		sum[2] += *s.WAPE
		sum[3] += *s.Bias
		for i, l := range levels {
			cov[i] += *s.Coverage[strconv.FormatFloat(l, 'f', -1, 64)]
		}
	}
	out := backtestAggregate{Series: n, backtestMetrics: backtestMetrics{Coverage: map[string]*float64{}}}
	if n == 0 {
		return out
	}
	mean := func(v float64) *float64 { x := v / float64(n); return &x }
	out.MASE, out.SMAPE, out.WAPE, out.Bias = mean(sum[0]), mean(sum[1]), mean(sum[2]), mean(sum[3])
	for i, l := range levels {
		out.Coverage[strconv.FormatFloat(l, 'f', -1, 64)] = mean(cov[i])
	}
	return out
}

func fptr(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}
