package node

import (
	"context"
	"io"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/forecast"
)

// ForecastFileOptions configures ForecastFile; see forecast.FileOptions.
type ForecastFileOptions = forecast.FileOptions

// ForecastFileStats summarises a ForecastFile run; see forecast.FileStats.
type ForecastFileStats = forecast.FileStats

// ForecastModels lists the model names ForecastFile accepts.
func ForecastModels() []string { return forecast.ModelNames }

// ForecastFile is the offline forecasting mode (no node needed): it reads
// long CSV id,t,y from in and writes id,step,mean,lo_L,hi_L...,model to out
// with the same engine a node uses, on all cores. It lives here so the
// command line reaches the forecasting core through node, as the package
// graph in STYLE.md requires.
func ForecastFile(ctx context.Context, in io.Reader, out io.Writer, opts ForecastFileOptions, progress func(done, total int)) (ForecastFileStats, error) {
	return forecast.ForecastCSV(ctx, in, out, opts, progress)
}

// BenchForecastOptions configures BenchForecast; see
// cluster.BenchForecastOptions.
type BenchForecastOptions = cluster.BenchForecastOptions

// BenchForecastReport is BenchForecast's result; see
// cluster.BenchForecastReport.
type BenchForecastReport = cluster.BenchForecastReport

// BenchForecast measures the forecasting engine and (EndToEnd) a node's
// whole refresh path on synthetic monthly series, without a running node.
// It is here for the command line, like ForecastFile.
func BenchForecast(ctx context.Context, o BenchForecastOptions) (BenchForecastReport, error) {
	return cluster.BenchForecast(ctx, o)
}
