package forecast

import (
	"math"
	"math/rand/v2"
)

// etsSimPaths is the number of sample paths for simulated intervals.
const etsSimPaths = 2000

// etsSimSeed seeds the simulation; fixed so that forecasts are
// deterministic.
const etsSimSeed = 20080101

// ETS is the exponential smoothing state-space model family of Hyndman et
// al. (2008), estimated as R's forecast::ets. Spec "" selects the model by
// AICc over the default candidates (no multiplicative trend); otherwise Spec
// fixes one model, as "MAdN" or "AAA".
type ETS struct {
	Spec string
	name string
}

// Name implements Model.
func (e ETS) Name() string {
	switch {
	case e.name != "":
		return e.name
	case e.Spec == "":
		return "ets"
	}
	return "ets:" + e.Spec
}

// Fit implements Model.
func (e ETS) Fit(y []float64, m int) (Fitted, error) {
	if len(y) == 0 {
		return nil, ErrTooShort
	}
	if e.Spec == "" {
		f, err := autoETS(y, m)
		if err != nil {
			return nil, err
		}
		return &etsFitted{f}, nil
	}
	sp, err := parseETSSpec(e.Spec)
	if err != nil {
		return nil, err
	}
	if isConstant(y) {
		return &etsFitted{constantETS(y)}, nil
	}
	if sp.season != 'N' && (m <= 1 || len(y) <= m) {
		sp.season = 'N'
	}
	if sp.err == 'M' || sp.season == 'M' || sp.trend == 'M' {
		for _, v := range y {
			if v <= 0 {
				return nil, errNonPositive
			}
		}
	}
	f, err := fitETSSpec(y, sp, m, critLik)
	if err != nil {
		return nil, err
	}
	return &etsFitted{f}, nil
}

// etsFitted adapts etsFit to Fitted.
type etsFitted struct{ f *etsFit }

// Method implements Fitted.
func (e *etsFitted) Method() string { return e.f.spec.String() }

// Update implements Updater: the state filter runs over y with the fitted
// parameters.
func (e *etsFitted) Update(y []float64) (Fitted, error) {
	f := *e.f
	f.last = append([]float64(nil), e.f.last...)
	ring := make([]float64, max(f.m, 1))
	if _, _, ok := etsFilter(y, f.spec, f.m, f.par, f.last, ring, nil); !ok {
		return nil, errNonPositive
	}
	f.n += len(y)
	return &etsFitted{&f}, nil
}

// Forecast implements Fitted. Intervals are analytic for the linear class
// (additive errors) and for multiplicative errors without multiplicative
// components (Hyndman et al. 2008, classes 1 and 2); otherwise they are
// quantiles of simulated sample paths with a fixed seed.
func (e *etsFitted) Forecast(h int, levels []float64) Forecast {
	h = validHorizon(h)
	f := e.f
	mu := make([]float64, h)
	etsPointForecast(f.spec, f.m, f.par.phi, f.last, mu)
	out := Forecast{Mean: mu, Levels: levels, Model: f.spec.String()}
	if len(levels) == 0 || h == 0 {
		return out
	}
	if f.spec.trend == 'M' || f.spec.season == 'M' {
		out.Lower, out.Upper = e.simulate(h, levels)
		return out
	}
	c := etsCj(f, h)
	v := make([]float64, h)
	if f.spec.err == 'A' {
		acc := 0.0
		for j := range h {
			v[j] = f.sigma2 * (1 + acc)
			acc += c[j] * c[j]
		}
	} else {
		theta := make([]float64, h)
		for j := range h {
			s := 0.0
			for i := range j {
				s += c[i] * c[i] * theta[j-1-i]
			}
			theta[j] = mu[j]*mu[j] + f.sigma2*s
			v[j] = (1+f.sigma2)*theta[j] - mu[j]*mu[j]
		}
	}
	out.Lower, out.Upper = normalBounds(mu, v, levels)
	return out
}

// etsCj returns c_1..c_h of the linear ETS class: alpha + beta*(phi +..+
// phi^j) + gamma*[j mod m == 0].
func etsCj(f *etsFit, h int) []float64 {
	c := make([]float64, h)
	phis, pj := 0.0, 1.0
	for j := 1; j <= h; j++ {
		cj := f.par.alpha
		if f.spec.trend != 'N' {
			pj *= f.par.phi
			phis += pj
			cj += f.par.beta * phis
		}
		if f.spec.season != 'N' && j%f.m == 0 {
			cj += f.par.gamma
		}
		c[j-1] = cj
	}
	return c
}

// simulate returns interval bounds from etsSimPaths simulated paths.
func (e *etsFitted) simulate(h int, levels []float64) (lo, hi [][]float64) {
	f := e.f
	rng := rand.New(rand.NewPCG(etsSimSeed, uint64(h)))
	sd := math.Sqrt(math.Max(f.sigma2, 0))
	paths := make([][]float64, h)
	for i := range paths {
		paths[i] = make([]float64, etsSimPaths)
	}
	st := make([]float64, len(f.last))
	ring := make([]float64, max(f.m, 1))
	one := make([]float64, 1)
	yv := make([]float64, 1)
	for p := range etsSimPaths {
		copy(st, f.last)
		for t := range h {
			etsPointForecast(f.spec, f.m, f.par.phi, st, one)
			eps := rng.NormFloat64() * sd
			if f.spec.err == 'A' {
				yv[0] = one[0] + eps
			} else {
				yv[0] = one[0] * (1 + eps)
			}
			paths[t][p] = yv[0]
			etsFilter(yv, f.spec, f.m, f.par, st, ring, nil)
		}
	}
	lo = make([][]float64, len(levels))
	hi = make([][]float64, len(levels))
	for i := range levels {
		lo[i] = make([]float64, h)
		hi[i] = make([]float64, h)
	}
	for t := range h {
		s := sortedCopy(paths[t])
		for i, lv := range levels {
			a := (100 - lv) / 200
			lo[i][t] = quantile7(s, a)
			hi[i][t] = quantile7(s, 1-a)
		}
	}
	return lo, hi
}
