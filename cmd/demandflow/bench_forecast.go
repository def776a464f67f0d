package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/demandflow/demandflow/node"
)

func newBenchForecastCmd() *cobra.Command {
	var (
		o       node.BenchForecastOptions
		jsonOut string
	)
	cmd := &cobra.Command{
		Use:   "forecast [--series N] [--length L] [--model auto] [--workers W] [--e2e]",
		Short: "Benchmark the forecasting engine (and with --e2e a node's whole refresh path) on synthetic monthly series",
		Long: `Generate N synthetic monthly series of length L (deterministic for a
seed), then forecast them with the engine: build the Arrow input, fit and
forecast every series, build the result batch. Prints series/s and
CPU-ms per series (wall time x workers / series).

--e2e also ingests the series into a fresh node store (FSM on Pebble with
the single-node committer) and times one forecaster pass: read every
series' history from Pebble, fit, commit the results through the FSM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Series < 1 || o.Length < 1 || o.Workers < 0 {
				return exitError{code: 2, msg: "--series and --length must be positive, --workers not negative"}
			}
			if o.Workers == 0 {
				o.Workers = runtime.GOMAXPROCS(0)
			}
			var bar *progressbar.ProgressBar
			phase := ""
			if term.IsTerminal(int(os.Stderr.Fd())) {
				o.Progress = func(p string, done, total int) {
					if p != phase {
						if bar != nil {
							_ = bar.Finish()
							fmt.Fprintln(os.Stderr)
						}
						phase = p
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionSetDescription(p), progressbar.OptionShowCount(),
							progressbar.OptionShowIts(), progressbar.OptionSetItsString("series"))
					}
					_ = bar.Set(done)
				}
			}
			rep, err := node.BenchForecast(cmd.Context(), o)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "engine: %d series x %d, model %s, h=%d, %d workers: %s, %.0f series/s, %.2f ms/series per core\n",
				rep.Series, rep.Length, rep.Model, rep.Horizon, rep.Workers, rep.Engine.Round(1e6), rep.SeriesPerSecond(), rep.MSPerSeriesCore())
			if o.EndToEnd {
				fmt.Fprintf(w, "end to end: ingest %s; forecast pass %s (read %s, fit %s, write %s), %d forecasts stored, %.0f series/s\n",
					rep.Ingest.Round(1e6), rep.Pass.Round(1e6), rep.Read.Round(1e6), rep.Fit.Round(1e6), rep.Write.Round(1e6),
					rep.Published, float64(rep.Series)/rep.Pass.Seconds())
			}
			if jsonOut != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
					return exitError{code: 1, msg: err.Error()}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Series, "series", 1000, "number of series")
	f.IntVar(&o.Length, "length", 120, "periods per series")
	f.StringVar(&o.Model, "model", "auto", "forecast model")
	f.IntVar(&o.Workers, "workers", 0, "engine workers (0 = all cores)")
	f.IntVar(&o.Horizon, "horizon", 24, "forecast horizon")
	f.Uint64Var(&o.Seed, "seed", 1, "data seed")
	f.BoolVar(&o.EndToEnd, "e2e", false, "also time the store path (ingest, then read, fit, write results)")
	f.StringVar(&o.Dir, "dir", "", "store directory for --e2e (default: a temp dir, removed)")
	f.StringVar(&jsonOut, "json", "", "write the report as JSON to this file")
	return cmd
}
