package forecast

import (
	"errors"
	"math"
	"testing"
)

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestSimpleModels checks closed-form forecasts against hand-computed
// values (tolerance 1e-9 relative).
func TestSimpleModels(t *testing.T) {
	y := []float64{1, 3, 2, 4, 3, 5, 4, 6}
	for _, tc := range []struct {
		model string
		m     int
		want  []float64
	}{
		{"naive", 1, []float64{6, 6, 6}},
		{"snaive", 2, []float64{4, 6, 4}},
		{"drift", 1, []float64{6 + 5.0/7, 6 + 10.0/7, 6 + 15.0/7}},
		{"mean", 1, []float64{3.5, 3.5, 3.5}},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m, err := ModelByName(tc.model)
			if err != nil {
				t.Fatal(err)
			}
			f, err := m.Fit(y, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			fc := f.Forecast(3, []float64{95})
			for i, w := range tc.want {
				if !approx(fc.Mean[i], w, 1e-9) {
					t.Errorf("step %d: got %g, want %g", i+1, fc.Mean[i], w)
				}
				if !(fc.Lower[0][i] <= fc.Mean[i] && fc.Mean[i] <= fc.Upper[0][i]) {
					t.Errorf("step %d: interval [%g, %g] excludes mean", i+1, fc.Lower[0][i], fc.Upper[0][i])
				}
			}
		})
	}
}

// TestIntermittent checks Croston, SBA and TSB on a hand-computed series.
func TestIntermittent(t *testing.T) {
	y := []float64{0, 4, 0, 0, 2, 0, 6}
	// Croston: z=4,q=2 -> z=3.8,q=2.1 -> z=4.02,q=2.09; forecast z/q.
	croston := 4.02 / 2.09
	for _, tc := range []struct {
		v    CrostonVariant
		want float64
	}{
		{CrostonClassic, croston},
		{CrostonSBA, croston * 0.95},
		// TSB: p0=3/7, z0=4, updated every period with 0.1.
		{CrostonTSB, tsbRef(y)},
	} {
		f, err := Croston{Variant: tc.v}.Fit(y, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Forecast(1, nil).Mean[0]; !approx(got, tc.want, 1e-12) {
			t.Errorf("%v: got %g, want %g", tc.v, got, tc.want)
		}
	}
	if got := chooseIntermittent([]float64{0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5}); got != CrostonClassic {
		t.Errorf("smooth sizes: got %v, want Croston", got)
	}
	if got := chooseIntermittent([]float64{3, 0, 1, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); got != CrostonTSB {
		t.Errorf("trailing zeros: got %v, want TSB", got)
	}
}

func tsbRef(y []float64) float64 {
	p, z := 3.0/7, 4.0
	for _, v := range y {
		if v != 0 {
			p += 0.1 * (1 - p)
			z += 0.1 * (v - z)
		} else {
			p -= 0.1 * p
		}
	}
	return p * z
}

func TestModelByName(t *testing.T) {
	for _, name := range append(ModelNames, "ets:MAdN", "ets:ANA") {
		m, err := ModelByName(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		y := synthMonthly(60, 3)
		f, err := m.Fit(y, 12)
		if err != nil {
			t.Errorf("%s: fit: %v", name, err)
			continue
		}
		fc := f.Forecast(12, []float64{80, 95})
		for i, v := range fc.Mean {
			if math.IsNaN(v) || fc.Lower[1][i] > fc.Lower[0][i] || fc.Upper[1][i] < fc.Upper[0][i] {
				t.Errorf("%s: step %d: mean %g, 80%% [%g,%g], 95%% [%g,%g]", name, i+1, v,
					fc.Lower[0][i], fc.Upper[0][i], fc.Lower[1][i], fc.Upper[1][i])
				break
			}
		}
	}
	for _, bad := range []string{"arima", "ets:XYZ", "ets:NAdN"} {
		if _, err := ModelByName(bad); err == nil {
			t.Errorf("%s: got nil error", bad)
		}
	}
}

// TestNelderMead minimises the Rosenbrock function from R's usual start;
// R's optim(c(-1.2, 1), fr) reaches f < 1e-6 near (1, 1).
func TestNelderMead(t *testing.T) {
	x := []float64{-1.2, 1}
	fr := func(p []float64) float64 {
		return 100*(p[1]-p[0]*p[0])*(p[1]-p[0]*p[0]) + (1-p[0])*(1-p[0])
	}
	res := nelderMead(x, fr, math.Inf(-1), 1e-8, 500)
	if res.fmin > 1e-5 || math.Abs(x[0]-1) > 0.02 || math.Abs(x[1]-1) > 0.04 {
		t.Errorf("got f=%g at %v, want ~0 at (1, 1)", res.fmin, x)
	}
}

func TestRootsWithin(t *testing.T) {
	for _, tc := range []struct {
		c    []float64 // increasing powers
		want bool
	}{
		{[]float64{-0.25, 0, 1}, true},          // roots +-0.5
		{[]float64{-4, 0, 1}, false},            // roots +-2
		{[]float64{-1, 1}, true},                // root 1 (on the circle)
		{[]float64{0.5, -1.5, 1}, true},         // roots 0.5, 1
		{[]float64{-1.0001, 1}, false},          // root 1.0001
		{[]float64{0.06, -0.17, -0.4, 1}, true}, // roots 0.5, -0.4, 0.3
		{[]float64{0.06, -0.5, 0.5, 1}, false},  // a root near -1.05
	} {
		if got := rootsWithin(append([]float64(nil), tc.c...), 1+1e-10); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.c, got, tc.want)
		}
	}
}

// TestETSUpdate checks that updating a fitted ETS model over new points
// equals filtering the whole series with the same parameters.
func TestETSUpdate(t *testing.T) {
	y := synthMonthly(72, 5)
	f, err := ETS{Spec: "AAA"}.Fit(y[:60], 12)
	if err != nil {
		t.Fatal(err)
	}
	u, err := Update(f, y[60:])
	if err != nil {
		t.Fatal(err)
	}
	ef := f.(*etsFitted).f
	st := append([]float64(nil), ef.init...)
	etsFilter(y, ef.spec, ef.m, ef.par, st, make([]float64, 12), nil)
	got := u.Forecast(3, nil).Mean
	want := make([]float64, 3)
	etsPointForecast(ef.spec, ef.m, ef.par.phi, st, want)
	for i := range want {
		if !approx(got[i], want[i], 1e-9) {
			t.Errorf("step %d: got %g, want %g", i+1, got[i], want[i])
		}
	}
	if _, err := Update(mustFit(t, Theta{}, y), y); !errorsIs(err, ErrNoUpdate) {
		t.Errorf("theta update: got %v, want ErrNoUpdate", err)
	}
}

func mustFit(t *testing.T, m Model, y []float64) Fitted {
	t.Helper()
	f, err := m.Fit(y, 12)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBacktest(t *testing.T) {
	y := make([]float64, 40)
	for i := range y {
		y[i] = float64(i + 1)
	}
	r, err := Backtest(Drift{}, y, BacktestOptions{Horizon: 4, Step: 2, Windows: 3, SeasonLength: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Windows) != 3 || r.Windows[2].Origin != 36 || r.Windows[0].Origin != 32 {
		t.Fatalf("windows: got %+v, want origins 32, 34, 36", r.Windows)
	}
	// a straight line: drift is exact.
	if r.Mean.MASE > 1e-9 || r.Mean.SMAPE > 1e-9 || r.Mean.WAPE > 1e-9 || math.Abs(r.Mean.Bias) > 1e-9 {
		t.Errorf("got %+v, want zero errors", r.Mean)
	}
	r2, _ := Backtest(Naive{}, y, BacktestOptions{Horizon: 2, Windows: 1})
	// naive at origin 38 forecasts 38: errors 1, 2 -> MASE 1.5, bias -1.5.
	if !approx(r2.Mean.MASE, 1.5, 1e-12) || !approx(r2.Mean.Bias, -1.5, 1e-12) {
		t.Errorf("naive: got MASE %g bias %g, want 1.5 and -1.5", r2.Mean.MASE, r2.Mean.Bias)
	}
	agg := AggregateBacktests([]BacktestResult{r, r2})
	if !approx(agg.MASE, 0.75, 1e-12) {
		t.Errorf("aggregate MASE: got %g, want 0.75", agg.MASE)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
