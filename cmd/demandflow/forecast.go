package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/demandflow/demandflow/node"
)

func newForecastCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "forecast",
		Short: "Forecast series (offline from a file, or from a node)",
	}
	cmd.AddCommand(newForecastFileCmd(), newForecastGetCmd())
	return cmd
}

func newForecastFileCmd() *cobra.Command {
	var (
		input, output, model, levels string
		season, horizon, workers     int
	)
	cmd := &cobra.Command{
		Use:   "file --input IN.csv --season-length M --horizon H [--model auto] [--levels 80,95] [--output OUT.csv]",
		Short: "Forecast every series of a long CSV file (id,t,y) without a node",
		Long: `Forecast every series of a long CSV file without a node.

Input: CSV with header id,t,y; t is an integer index or a period string
(rows in any order). Output: CSV id,step,mean,lo_80,hi_80,lo_95,hi_95,model
(one lo/hi pair per level). "-" reads stdin / writes stdout (default output).
Uses the node's forecasting engine on all cores; shows progress on a
terminal and reports series/s at the end (on stderr).

Models: ` + strings.Join(node.ForecastModels(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return exitError{code: 2, msg: "--input is required (a CSV file or - for stdin)"}
			}
			if horizon < 1 {
				return exitError{code: 2, msg: fmt.Sprintf("--horizon: %d, want >= 1", horizon)}
			}
			if season < 0 {
				return exitError{code: 2, msg: fmt.Sprintf("--season-length: %d, want >= 0", season)}
			}
			lv, err := parseLevels(levels)
			if err != nil {
				return exitError{code: 2, msg: err.Error()}
			}
			var in io.Reader = cmd.InOrStdin()
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return exitError{code: 1, msg: err.Error()}
				}
				defer f.Close()
				in = f
			}
			var out io.Writer = cmd.OutOrStdout()
			var outFile *os.File
			if output != "" && output != "-" {
				if outFile, err = os.Create(output); err != nil {
					return exitError{code: 1, msg: err.Error()}
				}
				defer outFile.Close()
				out = outFile
			}
			bw := bufio.NewWriterSize(out, 1<<20)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			var bar *progressbar.ProgressBar
			progress := func(done, total int) {}
			if term.IsTerminal(int(os.Stderr.Fd())) {
				progress = func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionSetDescription("forecasting"), progressbar.OptionShowCount(),
							progressbar.OptionShowIts(), progressbar.OptionSetItsString("series"))
					}
					_ = bar.Set(done)
				}
			}
			st, err := node.ForecastFile(ctx, in, bw, node.ForecastFileOptions{
				SeasonLength: season, Horizon: horizon, Model: model, Levels: lv, Workers: workers,
			}, progress)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			if err := bw.Flush(); err != nil {
				return exitError{code: 1, msg: "write output: " + err.Error()}
			}
			if outFile != nil {
				if err := outFile.Close(); err != nil {
					return exitError{code: 1, msg: "write output: " + err.Error()}
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "forecast %d series (%d observations, %d rows out) in %s: %.0f series/s\n",
				st.Series, st.Points, st.Rows, st.Elapsed.Round(1e6), st.SeriesPerSecond())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "input CSV (id,t,y), - for stdin")
	f.StringVar(&output, "output", "-", "output CSV, - for stdout")
	f.StringVar(&model, "model", "auto", "model name")
	f.StringVar(&levels, "levels", "80,95", "prediction interval levels in percent, comma-separated")
	f.IntVar(&season, "season-length", 1, "season length (12 monthly, 4 quarterly, 52 weekly, 7 daily, 1 none)")
	f.IntVar(&horizon, "horizon", 0, "steps to forecast")
	f.IntVar(&workers, "workers", 0, "parallel workers (0 = all cores)")
	return cmd
}

func parseLevels(s string) ([]float64, error) {
	var out []float64
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v >= 100 {
			return nil, fmt.Errorf("--levels: %q, want numbers between 0 and 100 such as 80,95", p)
		}
		out = append(out, v)
	}
	return out, nil
}
