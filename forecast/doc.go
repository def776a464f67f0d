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
// Fitted models that support it (ETS) implement Updater: Update advances
// the state over new observations with fixed parameters, without refitting.
// Refresh does the same for the auto ensemble (ETS members updated, Theta
// refit), which is what a node does on each new point; Engine.RunFitted
// returns the fitted models a caller keeps for that.
//
// # Model search speed
//
// AutoETS follows R's estimation (same start, same Nelder-Mead steps) but
// optimises all candidates in stages (etsStages) and stops those whose AICc
// so far trails the best by more than etsPruneMargin. The optimiser is
// resumable, so surviving candidates take exactly R's steps; only a pruned
// candidate that would have caught up later is lost (ets_prune_test.go
// measures how often on synthetic monthly data). Once a single candidate
// is left, it is refined only while that still pays: it stops before R
// would when 200 evaluations lower -2 log-likelihood by less than 1
// (etsSoloStall). The same stall stop applies to each competing candidate
// after every 200-evaluation stage past the first: close seasonal rivals
// that have stopped improving no longer run on to maxit. The auto ensemble
// always gets ETS(A,Ad,N): if the search pruned it, its own search is
// continued for at most etsDampedEvals more evaluations. These stops cut
// the tail of the 17-parameter monthly seasonal searches, which R ends at
// maxit unconverged; they move the M3 table slightly (bench/RESULTS.md).
//
// # Evaluation and interval speed
//
// Per series the search makes a few thousand likelihood evaluations
// (objective calls), so their cost decides the model's speed:
//
//   - The likelihood runs in one loop per trend, season and error class
//     (ets_filter.go) with the seasonal states in a ring that
//     etsTarget.eval fills straight from the parameter vector. Each loop
//     computes only what the criterion needs and calls nothing, so its
//     recursion stays in registers (the Go compiler spills loop values
//     around any call, even one on a rare branch); partial products of
//     sum(log|f|) are saved and logged after the loop.
//   - Additive-trend loops carry q = l + phi*b (three dependent operations
//     per step instead of five); the loops for multiplicative season and
//     error share one division for y/q and the relative error. These two
//     change results by rounding only (no model choice or printed M3 figure
//     moved).
//   - The admissibility test (Schur-Cohn) remembers the last smoothing
//     parameters per candidate: Nelder-Mead often evaluates several points
//     that differ only in initial states.
//   - Simulated intervals (multiplicative-season models) advance four
//     sample paths at a time from the same draws, and take the tail
//     quantiles from short lists beyond a normal guess (tailQuantiles),
//     with quickselect over the whole sample when the guess misses; both
//     give bit-identical intervals.
//
// Tried and dropped: see bench/RESULTS.md ("Forecasting core").
//
// # Backtests
//
// Backtest runs rolling-origin cross-validation (windows, step, horizon)
// and reports MASE, sMAPE, WAPE, bias and interval coverage per window and
// per series; AggregateBacktests averages over series.
//
// # Engine
//
// Engine.Run takes series as an Arrow List<Float64> (values are read in
// place, never copied) with uint64 series ids and returns one record batch
// (series_id, step, period, mean, lo_L/hi_L per level, model) that the
// caller releases. It owns its parallelism: chunks of series run on an
// errgroup limited to Config.Workers, ctx is checked between chunks, and
// output order is input order, so results are identical for any number of
// workers (simulated intervals use a fixed seed). ForecastCSV is the offline
// file mode on top of the engine.
//
// # Accuracy
//
// TestM3Accuracy compares against R forecast 8.20 on the M3 data in
// shared/data/m3 (the table is in bench/RESULTS.md). Under the race
// detector it uses every third series.
package forecast
