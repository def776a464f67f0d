package forecast

import (
	"fmt"
	"math"
)

// BacktestOptions configures rolling-origin cross-validation.
type BacktestOptions struct {
	// Horizon is the forecast horizon of every window (> 0).
	Horizon int
	// Step is the distance between consecutive origins; default Horizon.
	Step int
	// Windows is the number of origins (> 0); fewer are used when the
	// series is too short.
	Windows int
	// SeasonLength is the season length m; it also sets the MASE lag.
	SeasonLength int
	// Levels are the interval levels whose coverage is measured; default
	// 80 and 95.
	Levels []float64
}

// Metrics are accuracy measures of forecasts against actuals.
type Metrics struct {
	MASE  float64 // mean absolute error / in-sample mean |lag-m difference|
	SMAPE float64 // percent, M3 definition
	WAPE  float64 // percent, sum|error| / sum|actual|
	Bias  float64 // mean(forecast - actual)
	// Coverage[i] is the share of actuals inside the Levels[i] interval.
	Coverage []float64
}

// BacktestWindow is the evaluation at one forecast origin.
type BacktestWindow struct {
	Origin  int // observations used for fitting
	Model   string
	Metrics Metrics
}

// BacktestResult is the cross-validation of one series: its windows and
// their mean (WAPE pooled over all windows' errors).
type BacktestResult struct {
	Windows []BacktestWindow
	Mean    Metrics
}

// minTrain is the shortest training window a backtest uses.
func minTrain(m int) int { return max(4, 2*m+1) }

// Backtest evaluates model on y by rolling-origin cross-validation: the
// last origin leaves exactly Horizon observations, earlier ones step back
// by Step. It returns an error if no window fits.
func Backtest(model Model, y []float64, opts BacktestOptions) (BacktestResult, error) {
	if opts.Horizon <= 0 || opts.Windows <= 0 {
		return BacktestResult{}, fmt.Errorf("forecast: backtest needs positive horizon and windows")
	}
	if opts.Step <= 0 {
		opts.Step = opts.Horizon
	}
	if opts.Levels == nil {
		opts.Levels = []float64{80, 95}
	}
	var res BacktestResult
	var absErr, absAct float64
	for w := opts.Windows - 1; w >= 0; w-- {
		origin := len(y) - opts.Horizon - w*opts.Step
		if origin < minTrain(opts.SeasonLength) {
			continue
		}
		train, test := y[:origin], y[origin:origin+opts.Horizon]
		f, err := model.Fit(train, opts.SeasonLength)
		if err != nil {
			continue
		}
		fc := f.Forecast(opts.Horizon, opts.Levels)
		met := Metrics{
			MASE:  MASE(test, fc.Mean, MASEScale(train, opts.SeasonLength)),
			SMAPE: SMAPE(test, fc.Mean),
			WAPE:  WAPE(test, fc.Mean),
			Bias:  Bias(test, fc.Mean),
		}
		for i := range opts.Levels {
			met.Coverage = append(met.Coverage, Coverage(test, fc.Lower[i], fc.Upper[i]))
		}
		for i, a := range test {
			absErr += math.Abs(a - fc.Mean[i])
			absAct += math.Abs(a)
		}
		res.Windows = append(res.Windows, BacktestWindow{Origin: origin, Model: fc.Model, Metrics: met})
	}
	if len(res.Windows) == 0 {
		return res, ErrTooShort
	}
	res.Mean = meanMetrics(res.Windows, len(opts.Levels))
	res.Mean.WAPE = 100 * absErr / absAct
	return res, nil
}

func meanMetrics(ws []BacktestWindow, levels int) Metrics {
	var m Metrics
	m.Coverage = make([]float64, levels)
	for _, w := range ws {
		m.MASE += w.Metrics.MASE
		m.SMAPE += w.Metrics.SMAPE
		m.WAPE += w.Metrics.WAPE
		m.Bias += w.Metrics.Bias
		for i, c := range w.Metrics.Coverage {
			m.Coverage[i] += c
		}
	}
	k := float64(len(ws))
	m.MASE /= k
	m.SMAPE /= k
	m.WAPE /= k
	m.Bias /= k
	for i := range m.Coverage {
		m.Coverage[i] /= k
	}
	return m
}

// AggregateBacktests averages per-series results (each series' mean
// metrics weighted equally); WAPE is the mean of per-series WAPEs.
func AggregateBacktests(rs []BacktestResult) Metrics {
	ws := make([]BacktestWindow, 0, len(rs))
	levels := 0
	for _, r := range rs {
		if len(r.Windows) == 0 {
			continue
		}
		ws = append(ws, BacktestWindow{Metrics: r.Mean})
		levels = len(r.Mean.Coverage)
	}
	if len(ws) == 0 {
		return Metrics{}
	}
	return meanMetrics(ws, levels)
}
