package forecast

import (
	"math"
)

// etsCrit is the optimisation criterion.
type etsCrit int

const (
	critLik etsCrit = iota // likelihood (R's opt.crit = "lik")
	critMSE                // one-step MSE (R's opt.crit = "mse", used by ses)
)

const etsMaxIt = 2000

// etsFit is an estimated ETS model.
type etsFit struct {
	spec   etsSpec
	m      int // season length used (1 for non-seasonal models)
	par    etsParams
	init   []float64 // initial state [l, b?, s_0..s_{m-1}?]
	last   []float64 // state after the last observation
	n      int       // observations
	np     int       // estimated parameters incl. free initial states
	lik    float64
	aicc   float64
	mse    float64 // mean squared error (relative for multiplicative errors)
	sigma2 float64
}

// etsInitState returns forecast's heuristic initial states (initstate):
// seasonal indices from a classical decomposition of the first three years
// (a Fourier regression when shorter), then level and slope from the first
// max(10, 2m) seasonally adjusted observations. Only m-1 seasonal states are
// returned; the last is implied by normalisation.
func etsInitState(y []float64, sp etsSpec, m int) []float64 {
	n := len(y)
	var initSeas []float64
	ysa := y
	if sp.season != 'N' {
		var seas []float64
		if n < 3*m {
			// y ~ a + b t + sin + cos (first harmonic)
			X := make([][]float64, n)
			for t := range n {
				tt := float64(t + 1)
				row := []float64{1, tt, math.Sin(2 * math.Pi * tt / float64(m)), math.Cos(2 * math.Pi * tt / float64(m))}
				if m == 2 {
					row = row[:2]
					row = append(row, math.Cos(2*math.Pi*tt/float64(m)))
				}
				X[t] = row
			}
			beta := olsSolve(X, y)
			seas = make([]float64, n)
			for t := range n {
				tr := beta[0] + beta[1]*float64(t+1)
				if sp.season == 'A' {
					seas[t] = y[t] - tr
				} else {
					seas[t] = y[t] / tr
				}
			}
		} else {
			s3 := decompose(y[:3*m], m, sp.season == 'M')
			seas = make([]float64, n)
			for t := range n {
				seas[t] = s3[t%m]
			}
		}
		initSeas = make([]float64, m-1)
		for i := range m - 1 {
			initSeas[i] = seas[m-1-i] // rev(seasonal[2:m])
		}
		ysa = make([]float64, n)
		if sp.season == 'A' {
			for t := range n {
				ysa[t] = y[t] - seas[t]
			}
		} else {
			sum := 0.0
			for i := range initSeas {
				initSeas[i] = math.Max(initSeas[i], 1e-2)
				sum += initSeas[i]
			}
			if sum > float64(m) {
				d := sum + 1e-2*float64(len(initSeas))
				for i := range initSeas {
					initSeas[i] /= d
				}
			}
			for t := range n {
				ysa[t] = y[t] / math.Max(seas[t], 1e-2)
			}
		}
	} else {
		m = 1
	}
	maxn := min(max(10, 2*m), n)
	var out []float64
	switch sp.trend {
	case 'N':
		out = append(out, mean(ysa[:maxn]))
	case 'A':
		l0, b0 := lsfitIndex(ysa[:maxn], 1)
		if math.Abs(l0+b0) < 1e-8 {
			l0 *= 1 + 1e-3
			b0 *= 1 - 1e-3
		}
		out = append(out, l0, b0)
	default:
		a, b := lsfitIndex(ysa[:maxn], 1)
		l0 := a + b
		if math.Abs(l0) < 1e-8 {
			l0 = 1e-7
		}
		b0 := (a + 2*b) / l0
		l0 /= b0
		if math.Abs(b0) > 1e10 {
			b0 = math.Copysign(1e10, b0)
		}
		if l0 < 1e-8 || b0 < 1e-8 {
			l0 = math.Max(ysa[0], 1e-3)
			b0 = math.Max(ysa[1]/ysa[0], 1e-3)
		}
		out = append(out, l0, b0)
	}
	return append(out, initSeas...)
}

// etsInitParams returns forecast's starting smoothing parameters
// (initparam) for bounds etsLower/etsUpper; m is 1 for non-seasonal models.
func etsInitParams(sp etsSpec, m int) []float64 {
	lo, up := etsLower, etsUpper
	alpha := lo[0] + 0.2*(up[0]-lo[0])/float64(m)
	if alpha > 1 || alpha < 0 {
		alpha = lo[0] + 2e-3
	}
	par := []float64{alpha}
	if sp.trend != 'N' {
		u := math.Min(up[1], alpha)
		beta := lo[1] + 0.1*(u-lo[1])
		if beta < 0 || beta > alpha {
			beta = alpha - 1e-3
		}
		par = append(par, beta)
	}
	if sp.season != 'N' {
		u := math.Min(up[2], 1-alpha)
		gamma := lo[2] + 0.05*(u-lo[2])
		if gamma < 0 || gamma > 1-alpha {
			gamma = 1 - alpha - 1e-3
		}
		par = append(par, gamma)
	}
	if sp.damped {
		phi := lo[3] + 0.99*(up[3]-lo[3])
		if phi < 0 || phi > 1 {
			phi = up[3] - 1e-3
		}
		par = append(par, phi)
	}
	return par
}

// etsTarget is the objective of the joint estimation of smoothing
// parameters and initial states, as forecast's EtsTargetFunction.
type etsTarget struct {
	y    []float64
	sp   etsSpec
	m    int
	crit etsCrit
	npar int // smoothing parameters in the vector
	st   []float64
	ring []float64
	lg   []float64 // etsFilter's scratch for multiplicative errors

	// The last smoothing parameters tested for admissibility and the
	// outcome: Nelder-Mead often evaluates several points in a row that
	// differ only in initial states (the start simplex; shrinks keep
	// coordinates equal to the best vertex's).
	admP        etsParams
	admOK, admV bool
}

func newETSTarget(y []float64, sp etsSpec, m int, crit etsCrit) *etsTarget {
	t := &etsTarget{y: y, sp: sp, m: m, crit: crit, npar: 1}
	if sp.trend != 'N' {
		t.npar++
	}
	if sp.season != 'N' {
		t.npar++
	}
	if sp.damped {
		t.npar++
	}
	ns := 1
	if sp.trend != 'N' {
		ns++
	}
	if sp.season != 'N' {
		ns += m
	}
	t.st = make([]float64, ns)
	t.ring = make([]float64, max(m, 1))
	if sp.err == 'M' {
		t.lg = make([]float64, len(y))
	}
	return t
}

// params unpacks the smoothing parameters at the head of par.
func (t *etsTarget) params(par []float64) etsParams {
	p := etsParams{alpha: par[0], phi: 1}
	j := 1
	if t.sp.trend != 'N' {
		p.beta = par[j]
		j++
	}
	if t.sp.season != 'N' {
		p.gamma = par[j]
		j++
	}
	if t.sp.damped {
		p.phi = par[j]
	}
	return p
}

// checkParams applies bounds = "both": the usual region and admissibility.
func (t *etsTarget) checkParams(p etsParams) bool {
	lo, up := etsLower, etsUpper
	if p.alpha < lo[0] || p.alpha > up[0] {
		return false
	}
	if t.sp.trend != 'N' && (p.beta < lo[1] || p.beta > p.alpha || p.beta > up[1]) {
		return false
	}
	if t.sp.damped && (p.phi < lo[3] || p.phi > up[3]) {
		return false
	}
	if t.sp.season != 'N' && (p.gamma < lo[2] || p.gamma > 1-p.alpha || p.gamma > up[2]) {
		return false
	}
	if t.admV && p == t.admP {
		return t.admOK
	}
	ok := admissibleETS(p, t.sp, t.m)
	t.admP, t.admOK, t.admV = p, ok, true
	return ok
}

// fullState expands the free initial states in par into t.st (adding the
// implied last seasonal state) and reports whether they are valid.
func (t *etsTarget) fullState(free []float64) bool {
	copy(t.st, free)
	if t.sp.season != 'N' {
		k := 1
		if t.sp.trend != 'N' {
			k = 2
		}
		sum := 0.0
		for _, v := range free[k:] {
			sum += v
		}
		last := -sum
		if t.sp.season == 'M' {
			last += float64(t.m)
		}
		t.st[len(t.st)-1] = last
		if t.sp.season == 'M' {
			for _, v := range t.st[k:] {
				if v < 0 {
					return false
				}
			}
		}
	}
	return true
}

// ringState is fullState for etsFilterRing: level (and trend) into t.st,
// the seasonal states straight into t.ring, oldest (the implied one)
// first.
func (t *etsTarget) ringState(free []float64) bool {
	k := 1
	if t.sp.trend != 'N' {
		k = 2
	}
	copy(t.st[:k], free)
	if t.sp.season == 'N' {
		return true
	}
	m := t.m
	sum := 0.0
	for _, v := range free[k:] {
		sum += v
	}
	last := -sum
	if t.sp.season == 'M' {
		last += float64(m)
	}
	r := t.ring[:m]
	r[0] = last
	s := free[k : k+m-1]
	for j := 1; j < m; j++ {
		r[j] = s[m-1-j]
	}
	if t.sp.season == 'M' {
		for _, v := range r {
			if v < 0 {
				return false
			}
		}
	}
	return true
}

func (t *etsTarget) eval(par []float64) float64 {
	p := t.params(par)
	if !t.checkParams(p) {
		return math.Inf(1)
	}
	var lik, sse float64
	if t.sp.trend == 'M' {
		if !t.fullState(par[t.npar:]) {
			return math.Inf(1)
		}
		var ok bool
		lik, sse, ok = etsFilter(t.y, t.sp, t.m, p, t.st, t.ring, t.lg)
		if !ok {
			return math.Inf(1)
		}
	} else {
		if !t.ringState(par[t.npar:]) {
			return math.Inf(1)
		}
		var logf float64
		sse, logf = etsFilterRing(t.y, t.sp, t.m, p, t.st, t.ring, t.lg)
		lik = etsLik(len(t.y), sse, logf, t.sp.err == 'M')
	}
	if math.IsNaN(lik) {
		return math.Inf(1)
	}
	if t.crit == critMSE {
		return sse / float64(len(t.y))
	}
	if lik < -1e10 {
		lik = -1e10
	}
	return lik
}

// fitETSSpec estimates one ETS model as forecast's etsmodel(): Nelder-Mead
// over smoothing parameters and initial states from the heuristic start.
// m is the season length (ignored for non-seasonal specs).
func fitETSSpec(y []float64, sp etsSpec, m int, crit etsCrit) (*etsFit, error) {
	c, err := newETSCandidate(y, sp, m, crit)
	if err != nil {
		return nil, err
	}
	c.nm.run(etsMaxIt)
	return c.finish()
}

// etsCandidate is one model's optimisation in progress.
type etsCandidate struct {
	y   []float64
	sp  etsSpec
	m   int
	t   *etsTarget
	par []float64
	nm  *nmState
	k   float64 // parameters counted by the information criterion

	stalled bool // stopped for lack of progress (autoETSSearch)
}

func newETSCandidate(y []float64, sp etsSpec, m int, crit etsCrit) (*etsCandidate, error) {
	if sp.season == 'N' {
		m = 1
	}
	n := len(y)
	if n < 4 || (sp.season != 'N' && n <= m) {
		return nil, ErrTooShort
	}
	par := etsInitParams(sp, m)
	par = append(par, etsInitState(y, sp, m)...)
	if len(par) >= n-1 {
		return nil, ErrTooShort
	}
	t := newETSTarget(y, sp, m, crit)
	nm := newNM(par, t.eval, math.Inf(-1), 1.4901161193847656e-08)
	return &etsCandidate{y: y, sp: sp, m: m, t: t, par: par, nm: nm, k: float64(len(par) + 1)}, nil
}

// aicc is the information criterion at the best vertex so far (an upper
// bound of the final one, since Nelder-Mead never loses its best point).
func (c *etsCandidate) aicc() float64 {
	k, n := c.k, float64(len(c.y))
	return c.nm.best() + 2*k + 2*k*(k+1)/(n-k-1)
}

func (c *etsCandidate) finish() (*etsFit, error) {
	res := c.nm.result(c.par, etsMaxIt)
	if res.fmin >= nmBig || math.IsInf(res.fmin, 0) {
		return nil, ErrTooShort
	}
	return finishETS(c.y, c.sp, c.m, c.t, c.par)
}

// finishETS computes the fit statistics at the optimum par.
func finishETS(y []float64, sp etsSpec, m int, t *etsTarget, par []float64) (*etsFit, error) {
	n := len(y)
	p := t.params(par)
	t.fullState(par[t.npar:])
	init := append([]float64(nil), t.st...)
	last := append([]float64(nil), t.st...)
	lik, sse, ok := etsFilter(y, sp, m, p, last, t.ring, t.lg)
	if !ok || math.IsNaN(lik) {
		return nil, ErrTooShort
	}
	np := len(par)
	k := float64(np + 1)
	aic := lik + 2*k
	aicc := aic + 2*k*(k+1)/(float64(n)-k-1)
	return &etsFit{
		spec: sp, m: m, par: p, init: init, last: last, n: n, np: np,
		lik: lik, aicc: aicc, mse: sse / float64(n), sigma2: sse / float64(n-np),
	}, nil
}

// etsCandidates lists the models forecast::ets tries by default (restrict =
// TRUE, no multiplicative trend), in its loop order.
func etsCandidates(seasonal, positive bool) []etsSpec {
	var out []etsSpec
	for _, e := range []byte{'A', 'M'} {
		if e == 'M' && !positive {
			continue
		}
		for _, tr := range []byte{'N', 'A'} {
			seasons := []byte{'N'}
			if seasonal {
				seasons = []byte{'N', 'A', 'M'}
			}
			for _, s := range seasons {
				for _, d := range []bool{true, false} {
					if tr == 'N' && d {
						continue
					}
					if e == 'A' && s == 'M' {
						continue
					}
					if s == 'M' && !positive {
						continue
					}
					out = append(out, etsSpec{e, tr, s, d})
				}
			}
		}
	}
	return out
}

// autoETS selects the ETS model with the lowest AICc as forecast::ets does
// with its defaults.
func autoETS(y []float64, m int) (*etsFit, error) {
	r, err := autoETSSearch(y, m)
	return r.best, err
}

// etsSearch is the outcome of autoETSSearch.
type etsSearch struct {
	best   *etsFit
	damped *etsFit // ETS(A,Ad,N), nil if it could not be fitted
	// Likelihood evaluations by phase: R's staged search, the lone
	// survivor's refinement, finishing a pruned damped member.
	stageEvals, soloEvals, dampedEvals int
}

func (r etsSearch) evals() int {
	return r.stageEvals + r.soloEvals + r.dampedEvals
}

// autoETSSearch runs the AutoETS model search (see doc.go "Model search
// speed"): R's Nelder-Mead from R's start for every candidate with staged
// pruning and stall stops, and (always) a fit of the damped trend member
// ETS(A,Ad,N) that the auto ensemble needs.
func autoETSSearch(y []float64, m int) (r etsSearch, err error) {
	n := len(y)
	if n == 0 {
		return r, ErrTooShort
	}
	if isConstant(y) {
		r.best = constantETS(y)
		return r, nil
	}
	if n <= 6 {
		f, err := fitETSSpec(y, etsSpec{'A', 'N', 'N', false}, 1, critLik)
		if err != nil {
			f = constantETS(y[n-1:])
		}
		r.best = f
		return r, nil
	}
	positive := true
	for _, v := range y {
		if v <= 0 {
			positive = false
			break
		}
	}
	seasonal := m > 1 && n > m && m <= 24
	var cands []*etsCandidate
	var damped *etsCandidate
	for _, sp := range etsCandidates(seasonal, positive) {
		c, err := newETSCandidate(y, sp, m, critLik)
		if err != nil {
			continue
		}
		cands = append(cands, c)
		if sp == (etsSpec{'A', 'A', 'N', true}) {
			damped = c
		}
	}
	// Optimise the candidates in stages; after each stage drop those whose
	// AICc so far exceeds the best so far by more than etsPruneMargin.
	// Paused optimisations resume exactly where they stopped, so every
	// surviving model gets the same fit as an uninterrupted run.
	var active []*etsCandidate
	for si, limit := range etsStages {
		if len(cands) == 1 {
			// The choice is made; refine the survivor only while it
			// still improves by etsSoloStall per etsSoloWindow evals.
			c := cands[0]
			before0 := c.nm.funcount
			for !c.nm.done && !c.stalled && c.nm.funcount <= etsMaxIt {
				before := c.nm.best()
				c.nm.run(min(c.nm.funcount+etsSoloWindow, etsMaxIt))
				if before-c.nm.best() < etsSoloStall {
					break
				}
			}
			r.soloEvals += c.nm.funcount - before0
			break
		}
		active = active[:0]
		for _, c := range cands {
			if !c.nm.done && !c.stalled {
				active = append(active, c)
			}
		}
		if len(active) == 0 {
			break
		}
		for _, c := range active {
			before, fb := c.nm.funcount, c.nm.best()
			c.nm.run(limit)
			r.stageEvals += c.nm.funcount - before
			// Past the first stage, a candidate that gained less than
			// etsSoloStall per etsSoloWindow evaluations is left as is.
			if si > 0 && (fb-c.nm.best())*etsSoloWindow < etsSoloStall*float64(c.nm.funcount-before) {
				c.stalled = true
			}
		}
		if si == len(etsStages)-1 {
			break
		}
		ref := math.Inf(1)
		for _, c := range cands {
			ref = math.Min(ref, c.aicc())
		}
		alive := cands[:0]
		for _, c := range cands {
			if c.aicc() <= ref+etsPruneMargin {
				alive = append(alive, c)
			}
		}
		cands = alive
	}
	for _, c := range cands {
		f, err := c.finish()
		if err != nil || math.IsNaN(f.aicc) {
			continue
		}
		if c == damped {
			r.damped = f
		}
		if r.best == nil || f.aicc < r.best.aicc {
			r.best = f
		}
	}
	if r.best == nil {
		return r, ErrTooShort
	}
	if damped != nil && r.damped == nil {
		// Pruned (or never started): finish the 6-parameter search from
		// where it stands, within etsDampedEvals more evaluations.
		before := damped.nm.funcount
		damped.nm.run(before + etsDampedEvals)
		r.dampedEvals = damped.nm.funcount - before
		if f, err := damped.finish(); err == nil && !math.IsNaN(f.aicc) {
			r.damped = f
		}
	}
	return r, nil
}

// etsStages are the evaluation limits after which autoETS prunes
// candidates; the last is R's maxit. From the second stage on, a candidate
// that gained less than etsSoloStall per etsSoloWindow evaluations in a
// stage stops there (its AICc still takes part in the comparison).
var etsStages = []int{200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, etsMaxIt}

// Once pruning leaves a single candidate the model choice is made, and R's
// remaining Nelder-Mead steps only refine its estimate (in 17 dimensions
// for monthly seasonal models they run to maxit without converging). The
// survivor keeps going in windows of etsSoloWindow evaluations while each
// window lowers the criterion (-2 log-likelihood up to a constant) by at
// least etsSoloStall, a tenth of what matters in AICc comparisons.
const (
	etsSoloStall  = 1.0
	etsSoloWindow = 200
)

// etsDampedEvals bounds the extra evaluations spent to finish ETS(A,Ad,N)
// for the auto ensemble when the search pruned it.
const etsDampedEvals = 300

// etsPruneMargin is how far (in AICc units) a partially optimised candidate
// may trail the best one and still be optimised further.
const etsPruneMargin = 10.0

// constantETS is the model forecast::ets returns for a constant series: a
// random walk with zero variance.
func constantETS(y []float64) *etsFit {
	v := y[len(y)-1]
	return &etsFit{
		spec: etsSpec{'A', 'N', 'N', false}, m: 1,
		par:  etsParams{alpha: 0.99999, phi: 1},
		init: []float64{v}, last: []float64{v}, n: len(y),
	}
}
