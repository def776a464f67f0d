package forecast

import "math"

// Naive forecasts the last observation (random walk).
type Naive struct{}

// SeasonalNaive forecasts the observation one season earlier.
type SeasonalNaive struct{}

// Drift is the random walk with drift (R's rwf(drift = TRUE)).
type Drift struct{}

// Mean forecasts the sample mean.
type Mean struct{}

// Name implements Model.
func (Naive) Name() string { return "naive" }

// Name implements Model.
func (SeasonalNaive) Name() string { return "snaive" }

// Name implements Model.
func (Drift) Name() string { return "drift" }

// Name implements Model.
func (Mean) Name() string { return "mean" }

// simpleFitted holds the closed-form forecast of the benchmark methods.
type simpleFitted struct {
	name   string
	f      func(h int) (mu, v float64) // h >= 1
	method string
}

func (s *simpleFitted) Method() string { return s.method }

func (s *simpleFitted) Forecast(h int, levels []float64) Forecast {
	h = validHorizon(h)
	mu := make([]float64, h)
	v := make([]float64, h)
	for j := range h {
		mu[j], v[j] = s.f(j + 1)
	}
	out := Forecast{Mean: mu, Levels: levels, Model: s.method}
	if len(levels) > 0 {
		out.Lower, out.Upper = normalBounds(mu, v, levels)
	}
	return out
}

// diffVar returns the mean square of lag-k differences (centred on drift
// when centre is true).
func diffVar(y []float64, k int, centre bool) (mse, drift float64) {
	if len(y) <= k {
		return 0, 0
	}
	d := make([]float64, 0, len(y)-k)
	for i := k; i < len(y); i++ {
		d = append(d, y[i]-y[i-k])
	}
	mu := 0.0
	if centre {
		mu = mean(d)
	}
	s := 0.0
	for _, v := range d {
		s += (v - mu) * (v - mu)
	}
	den := float64(len(d))
	if centre && len(d) > 1 {
		den--
	}
	return s / den, mean(d)
}

// Fit implements Model.
func (Naive) Fit(y []float64, m int) (Fitted, error) {
	if len(y) == 0 {
		return nil, ErrTooShort
	}
	last := y[len(y)-1]
	s2, _ := diffVar(y, 1, false)
	return &simpleFitted{name: "naive", method: "Naive", f: func(h int) (float64, float64) {
		return last, s2 * float64(h)
	}}, nil
}

// Fit implements Model.
func (SeasonalNaive) Fit(y []float64, m int) (Fitted, error) {
	if m <= 1 || len(y) < m {
		return Naive{}.Fit(y, 1)
	}
	tail := append([]float64(nil), y[len(y)-m:]...)
	s2, _ := diffVar(y, m, false)
	return &simpleFitted{name: "snaive", method: "SeasonalNaive", f: func(h int) (float64, float64) {
		return tail[(h-1)%m], s2 * math.Ceil(float64(h)/float64(m))
	}}, nil
}

// Fit implements Model.
func (Drift) Fit(y []float64, m int) (Fitted, error) {
	n := len(y)
	if n < 2 {
		return Naive{}.Fit(y, m)
	}
	last := y[n-1]
	s2, b := diffVar(y, 1, true)
	return &simpleFitted{name: "drift", method: "Drift", f: func(h int) (float64, float64) {
		fh := float64(h)
		return last + b*fh, s2 * fh * (1 + fh/float64(n-1))
	}}, nil
}

// Fit implements Model.
func (Mean) Fit(y []float64, m int) (Fitted, error) {
	n := len(y)
	if n == 0 {
		return nil, ErrTooShort
	}
	mu := mean(y)
	s := 0.0
	for _, v := range y {
		s += (v - mu) * (v - mu)
	}
	s2 := 0.0
	if n > 1 {
		s2 = s / float64(n-1)
	}
	return &simpleFitted{name: "mean", method: "Mean", f: func(h int) (float64, float64) {
		return mu, s2 * (1 + 1/float64(n))
	}}, nil
}
