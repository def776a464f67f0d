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
	// Column t (all paths' values at step t) is paths[t*etsSimPaths:].
	paths := make([]float64, h*etsSimPaths)
	if f.spec.season == 'M' && f.spec.trend != 'M' {
		etsSimSeasonM(f, rng, sd, h, paths)
	} else {
		etsSimAny(f, rng, sd, h, paths)
	}
	lo = make([][]float64, len(levels))
	hi = make([][]float64, len(levels))
	for i := range levels {
		lo[i] = make([]float64, h)
		hi[i] = make([]float64, h)
	}
	// ps[2i] and ps[2i+1] are the probabilities of the bounds at
	// levels[i]; order lists them ascending for the quantile selection.
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
	tq := newTailQuantiles(sortedPs, etsSimPaths)
	q := make([]float64, len(ps))
	for t := range h {
		col := paths[t*etsSimPaths : (t+1)*etsSimPaths]
		if slices.ContainsFunc(col, math.IsNaN) {
			s := sortedCopy(col)
			for i := range q {
				q[i] = quantile7(s, sortedPs[i])
			}
		} else {
			tq.quantiles(col, q)
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

// etsSimAny draws etsSimPaths sample paths of h steps for any class into
// paths (column-major, as simulate), one etsSimStep at a time.
func etsSimAny(f *etsFit, rng *rand.Rand, sd float64, h int, paths []float64) {
	st := make([]float64, len(f.last))
	for p := range etsSimPaths {
		copy(st, f.last)
		for t := range h {
			eps := rng.NormFloat64() * sd
			paths[t*etsSimPaths+p] = etsSimStep(f.spec, f.m, f.par, st, eps)
		}
	}
}

// simLanes is the number of sample paths etsSimSeasonM advances together:
// one path is a chain of dependent divisions, four independent ones keep
// the divider busy.
const simLanes = 4

// etsSimPaths must be a multiple of simLanes.
var _ = [1]struct{}{}[etsSimPaths%simLanes]

// etsSimSeasonM draws etsSimPaths sample paths of h steps for a
// multiplicative-season model without multiplicative trend (the classes
// AutoETS simulates) into paths (column-major, as simulate). It is
// etsSimStep with the class fixed and the seasonal states in rings, with
// the same arithmetic and the same draws in the same order (each path's h
// errors in turn), so the paths are identical; it advances simLanes paths
// at a time.
func etsSimSeasonM(f *etsFit, rng *rand.Rand, sd float64, h int, paths []float64) {
	m := f.m
	c := simM{alpha: f.par.alpha, bOverA: f.par.beta / f.par.alpha, gamma: f.par.gamma, phi: f.par.phi,
		trend: f.spec.trend == 'A', multErr: f.spec.err == 'M'}
	k := 1
	lb := [2]float64{f.last[0]}
	if c.trend {
		k = 2
		lb[1] = f.last[1]
	}
	eps := make([]float64, simLanes*h)
	rings := make([]float64, simLanes*m) // lane i: rings[i*m:], oldest season first
	for j := range m {
		rings[j] = f.last[k+m-1-j]
	}
	for i := 1; i < simLanes; i++ {
		copy(rings[i*m:(i+1)*m], rings[:m])
	}
	init := slices.Clone(rings)
	e0, e1, e2, e3 := eps[:h], eps[h:2*h], eps[2*h:3*h], eps[3*h:]
	r0, r1, r2, r3 := rings[:m], rings[m:2*m], rings[2*m:3*m], rings[3*m:]
	for p := 0; p < etsSimPaths; p += simLanes {
		for i := range eps {
			eps[i] = rng.NormFloat64() * sd
		}
		copy(rings, init)
		l0, l1, l2, l3 := lb[0], lb[0], lb[0], lb[0]
		b0, b1, b2, b3 := lb[1], lb[1], lb[1], lb[1]
		pos := 0
		for t := range h {
			var y0, y1, y2, y3 float64
			y0, l0, b0, r0[pos] = c.step(l0, b0, r0[pos], e0[t])
			y1, l1, b1, r1[pos] = c.step(l1, b1, r1[pos], e1[t])
			y2, l2, b2, r2[pos] = c.step(l2, b2, r2[pos], e2[t])
			y3, l3, b3, r3[pos] = c.step(l3, b3, r3[pos], e3[t])
			out := paths[t*etsSimPaths+p : t*etsSimPaths+p+simLanes]
			out[0], out[1], out[2], out[3] = y0, y1, y2, y3
			if pos++; pos == m {
				pos = 0
			}
		}
	}
}

// simM is one step of a multiplicative-season sample path (see
// etsSimSeasonM).
type simM struct {
	alpha, bOverA, gamma, phi float64
	trend, multErr            bool
}

// step draws y with error eps from level l, trend b and the season so
// used now, and returns y and the new level, trend and season.
func (c *simM) step(l, b, so, eps float64) (y, ln, bn, sn float64) {
	q, phib := l, b
	if c.trend {
		phib = c.phi * b
		q = l + phib
	}
	y = q * so
	if c.multErr {
		y *= 1 + eps
	} else {
		y += eps
	}
	ln = q + c.alpha*(y/so-q)
	if c.trend {
		b = phib + c.bOverA*(ln-l-phib)
	}
	return y, ln, b, so + c.gamma*(y/q-so)
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
