package forecast

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// etsSimPaths is the number of sample paths for simulated intervals.
const etsSimPaths = 1000

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
	for p := range etsSimPaths {
		copy(st, f.last)
		for t := range h {
			eps := rng.NormFloat64() * sd
			paths[t][p] = etsSimStep(f.spec, f.m, f.par, st, eps)
		}
	}
	lo = make([][]float64, len(levels))
	hi = make([][]float64, len(levels))
	for i := range levels {
		lo[i] = make([]float64, h)
		hi[i] = make([]float64, h)
	}
	// ps[2i] and ps[2i+1] are the probabilities of the bounds at
	// levels[i]; order lists them ascending for quantiles7Select.
	ps := make([]float64, 0, 2*len(levels))
	for _, lv := range levels {
		a := (100 - lv) / 200
		ps = append(ps, a, 1-a)
	}
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ps[a], ps[b]) })
	sortedPs := make([]float64, len(ps))
	for i, o := range order {
		sortedPs[i] = ps[o]
	}
	q := make([]float64, len(ps))
	for t := range h {
		col := paths[t]
		if slices.ContainsFunc(col, math.IsNaN) {
			s := sortedCopy(col)
			for i := range q {
				q[i] = quantile7(s, sortedPs[i])
			}
		} else {
			quantiles7Select(col, sortedPs, q)
		}
		for i, o := range order {
			if o%2 == 0 {
				lo[o/2][t] = q[i]
			} else {
				hi[o/2][t] = q[i]
			}
		}
	}
	return lo, hi
}

// etsSimStep draws one observation with error eps from state st (R order,
// s_0 most recent) and advances st over it.
func etsSimStep(sp etsSpec, m int, p etsParams, st []float64, eps float64) float64 {
	l := st[0]
	k := 1
	b := 0.0
	if sp.trend != 'N' {
		b = st[1]
		k = 2
	}
	var q, phib float64
	switch sp.trend {
	case 'N':
		q = l
	case 'A':
		phib = p.phi * b
		q = l + phib
	default:
		phib = math.Pow(math.Max(b, 0), p.phi)
		q = l * phib
	}
	so, f := 0.0, q
	switch sp.season {
	case 'A':
		so = st[k+m-1]
		f = q + so
	case 'M':
		so = st[k+m-1]
		f = q * so
	}
	y := f + eps
	if sp.err == 'M' {
		y = f * (1 + eps)
	}
	pv := y
	switch sp.season {
	case 'A':
		pv = y - so
	case 'M':
		pv = y / so
	}
	ln := q + p.alpha*(pv-q)
	switch sp.trend {
	case 'A':
		st[1] = phib + p.beta/p.alpha*(ln-l-phib)
	case 'M':
		st[1] = phib + p.beta/p.alpha*(ln/l-phib)
	}
	st[0] = ln
	if sp.season != 'N' {
		t := y - q
		if sp.season == 'M' {
			t = y / q
		}
		copy(st[k+1:k+m], st[k:k+m-1])
		st[k] = so + p.gamma*(t-so)
	}
	return y
}
