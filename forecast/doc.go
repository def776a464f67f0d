// Package forecast is Demandflow's forecasting core: pure functions over
// float64 slices (taken zero-copy from Arrow arrays) and an engine that
// schedules many series over GOMAXPROCS workers.
//
// # Models
//
// A Model (see ModelByName for the names) fits one series into a Fitted,
// which produces a Forecast: point forecasts and prediction intervals at any
// requested levels. Models are stateless, log nothing and start no
// goroutines; a Fitted is immutable and safe for concurrent use.
//
//   - naive, snaive, drift, mean: benchmark methods with normal intervals.
//   - ETS: the exponential smoothing state-space family (error A/M, trend
//     N/A/Ad(/M), season N/A/M) estimated as R's forecast::ets 8.20: joint
//     Nelder-Mead over smoothing parameters and initial states from the
//     heuristic start, bounds "both" (usual and admissible), AICc
//     selection over the restricted default candidates. ses, holt, damped,
//     hw_add and hw_mul are fixed members of this family.
//   - theta: forecast::thetaf; otm: Theta with an optimised coefficient.
//   - croston, sba, tsb, intermittent: intermittent demand.
//   - auto: mean of AutoETS, Theta and damped trend; intermittent series
//     (>= 30% zeros) go to the intermittent choice.
//
// Season length m is the dataset frequency (12 monthly, 4 quarterly, 1
// none).
//
// # Accuracy
//
// TestM3Accuracy compares against R forecast 8.20 on the M3 data in
// shared/data/m3 (the table is in bench/RESULTS.md).
package forecast
