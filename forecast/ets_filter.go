package forecast

import "math"

// Specialised ETS likelihood loops, one per trend (N, A or Ad), season
// (N, A, M) and error (A, M) class, used by etsFilter for everything but
// multiplicative trends. They compute forecast's etscalc recursions
// (algebraically; the order of operations differs where noted) with no
// per-step switch on the model class: level and trend live in locals, the
// seasonal states in ring (oldest first), walked in chunks of m so that no
// index wraps. The level recursion, the only loop-carried dependency that
// matters, holds no division: y/s and y/q, like the relative error, feed
// only the seasonal states and the error sums.
//
// The loops with an additive trend carry q = l + phi*b instead of l and b
// (see the AA loops): three dependent operations per step instead of five.
// The multiplicative-season, multiplicative-error loops divide twice per
// step instead of three times (y/q and the relative error share 1/f); with
// three divisions they were bound by the divider. Both changes move results
// only by rounding: on the 1,931 reference series (bench, e2e-style, M3) no
// model choice and no printed forecast digit changed, and the M3 table is
// identical.
//
// Each returns the sum of squared errors e (relative for multiplicative
// errors) and, for multiplicative errors, sum(log|f|). Nothing else is
// computed per step: with the residuals, the squared one-step differences
// and a call to math.Log in the loop (or both error types behind a branch)
// the compiler ran out of registers and put the recursion's values through
// the stack, which cost about 40% per step.
//
// For multiplicative errors sum(log|f|) is the log of a running product
// (prod), rescaled before it can overflow: when it leaves [1e-150, 1e150]
// it is saved in lg (scratch of len(y), since at most one rescale happens
// per step) and restarted at 1. The logs of the saved products are summed
// after the loop, in the order they were saved.

// sumLogs returns the sum of the logs of lg in order, plus log(prod).
func sumLogs(lg []float64, prod float64) float64 {
	logs := 0.0
	for _, v := range lg {
		logs += math.Log(v)
	}
	return logs + math.Log(prod)
}

// etsFilterNNa: no trend, no season, additive errors. st = [l].
func etsFilterNNa(y []float64, alpha float64, st []float64) (sse float64) {
	l := st[0]
	for _, yi := range y {
		d := yi - l
		sse += d * d
		l += alpha * d
	}
	st[0] = l
	return sse
}

// etsFilterNNm: no trend, no season, multiplicative errors.
func etsFilterNNm(y []float64, alpha float64, st, lg []float64) (sse, logf float64) {
	l := st[0]
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	for _, yi := range y {
		f := l
		d := yi - f
		e := d / f
		prod *= math.Abs(f)
		if prod > 1e150 || prod < 1e-150 {
			lg[nl] = prod
			nl++
			prod = 1
		}
		sse += e * e
		l = f + alpha*d
	}
	st[0] = l
	return sse, sumLogs(lg[:nl], prod)
}

// etsFilterANa: additive (possibly damped) trend, no season, additive
// errors. st = [l, b]. It carries q and phib as the AA loops do.
func etsFilterANa(y []float64, p etsParams, st []float64) (sse float64) {
	alpha, beta, phi := p.alpha, p.beta, p.phi
	phib := phi * st[1]
	q := st[0] + phib
	kq, kb := alpha+phi*beta, phi*beta
	last := len(y) - 1
	if last < 0 {
		return 0
	}
	for _, yi := range y[:last] {
		d := yi - q
		sse += d * d
		pp := phi * phib
		q = (q + pp) + kq*d
		phib = pp + kb*d
	}
	d := y[last] - q
	sse += d * d
	st[0], st[1] = q+alpha*d, phib+beta*d
	return sse
}

// etsFilterANm: additive (possibly damped) trend, no season,
// multiplicative errors.
func etsFilterANm(y []float64, p etsParams, st, lg []float64) (sse, logf float64) {
	alpha, beta, phi := p.alpha, p.beta, p.phi
	phib := phi * st[1]
	q := st[0] + phib
	kq, kb := alpha+phi*beta, phi*beta
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	last := len(y) - 1
	if last < 0 {
		return 0, 0
	}
	for _, yi := range y[:last] {
		d := yi - q
		e := d / q
		prod *= math.Abs(q)
		if prod > 1e150 || prod < 1e-150 {
			lg[nl] = prod
			nl++
			prod = 1
		}
		sse += e * e
		pp := phi * phib
		q = (q + pp) + kq*d
		phib = pp + kb*d
	}
	d := y[last] - q
	e := d / q
	prod *= math.Abs(q)
	if prod > 1e150 || prod < 1e-150 {
		lg[nl] = prod
		nl++
		prod = 1
	}
	sse += e * e
	st[0], st[1] = q+alpha*d, phib+beta*d
	return sse, sumLogs(lg[:nl], prod)
}

// etsFilterNAa: no trend, additive season, additive errors.
func etsFilterNAa(y []float64, p etsParams, m int, st0, ring []float64) (sse float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			d := yi - so - l // y - f, and also p - q with p = y - s
			sse += d * d
			l += alpha * d
			r[j] = so + gamma*d
		}
	}
	st0[0] = l
	return sse
}

// etsFilterNAm: no trend, additive season, multiplicative errors.
func etsFilterNAm(y []float64, p etsParams, m int, st0, ring, lg []float64) (sse, logf float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			q := l
			f := q + so
			d := yi - so - q
			e := d / f
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				lg[nl] = prod
				nl++
				prod = 1
			}
			sse += e * e
			l = q + alpha*d
			r[j] = so + gamma*d
		}
	}
	st0[0] = l
	return sse, sumLogs(lg[:nl], prod)
}

// AA loops carry phib = phi*b and q = l + phib. With d = p - q,
// l' = q + alpha*d and b' = phib + beta*d, so
// q' = (q + phi*phib) + (alpha + phi*beta)*d and
// phib' = phi*phib + phi*beta*d: one multiply-add deep from d. Level and
// trend proper are needed only after the last observation, which is
// therefore taken out of the loop.

// etsFilterAAa: additive (possibly damped) trend, additive season,
// additive errors.
func etsFilterAAa(y []float64, p etsParams, m int, st0, ring []float64) (sse float64) {
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	phib := phi * st0[1]
	q := st0[0] + phib
	kq, kb := alpha+phi*beta, phi*beta
	ring = ring[:m]
	last := len(y) - 1
	if last < 0 {
		return 0
	}
	for base := 0; base < last; base += m {
		c := y[base:min(base+m, last)]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			d := yi - so - q
			sse += d * d
			pp := phi * phib
			q = (q + pp) + kq*d
			phib = pp + kb*d
			r[j] = so + gamma*d
		}
	}
	j := last % m
	so := ring[j]
	d := y[last] - so - q
	sse += d * d
	st0[0], st0[1] = q+alpha*d, phib+beta*d
	ring[j] = so + gamma*d
	return sse
}

// etsFilterAAm: additive (possibly damped) trend, additive season,
// multiplicative errors.
func etsFilterAAm(y []float64, p etsParams, m int, st0, ring, lg []float64) (sse, logf float64) {
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	phib := phi * st0[1]
	q := st0[0] + phib
	kq, kb := alpha+phi*beta, phi*beta
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	ring = ring[:m]
	last := len(y) - 1
	if last < 0 {
		return 0, 0
	}
	for base := 0; base < last; base += m {
		c := y[base:min(base+m, last)]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			f := q + so
			d := yi - so - q
			e := d / f
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				lg[nl] = prod
				nl++
				prod = 1
			}
			sse += e * e
			pp := phi * phib
			q = (q + pp) + kq*d
			phib = pp + kb*d
			r[j] = so + gamma*d
		}
	}
	j := last % m
	so := ring[j]
	f := q + so
	d := y[last] - so - q
	e := d / f
	prod *= math.Abs(f)
	if prod > 1e150 || prod < 1e-150 {
		lg[nl] = prod
		nl++
		prod = 1
	}
	sse += e * e
	st0[0], st0[1] = q+alpha*d, phib+beta*d
	ring[j] = so + gamma*d
	return sse, sumLogs(lg[:nl], prod)
}

// etsFilterNMa: no trend, multiplicative season, additive errors (only
// when fixed by the caller: AutoETS does not try them).
func etsFilterNMa(y []float64, p etsParams, m int, st0, ring []float64) (sse float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			q := l
			d := yi - q*so
			sse += d * d
			pv := etsHugeN
			if math.Abs(so) >= etsTol {
				pv = yi / so
			}
			t := etsHugeN
			if math.Abs(q) >= etsTol {
				t = yi / q
			}
			l = q + alpha*(pv-q)
			r[j] = so + gamma*(t-so)
		}
	}
	st0[0] = l
	return sse
}

// etsFilterNMm: no trend, multiplicative season, multiplicative errors.
// y/q and the relative error share one division (by f = q*s).
func etsFilterNMm(y []float64, p etsParams, m int, st0, ring, lg []float64) (sse, logf float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			q := l
			f := q * so
			inv := 1 / f
			e := (yi - f) * inv
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				lg[nl] = prod
				nl++
				prod = 1
			}
			sse += e * e
			pv := etsHugeN
			if math.Abs(so) >= etsTol {
				pv = yi / so
			}
			t := etsHugeN
			if math.Abs(q) >= etsTol {
				t = yi * so * inv
			}
			l = q + alpha*(pv-q)
			r[j] = so + gamma*(t-so)
		}
	}
	st0[0] = l
	return sse, sumLogs(lg[:nl], prod)
}

// etsFilterAMa: additive (possibly damped) trend, multiplicative season,
// additive errors (only when fixed by the caller).
func etsFilterAMa(y []float64, p etsParams, m int, st0, ring []float64) (sse float64) {
	l, b := st0[0], st0[1]
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			phib := phi * b
			q := l + phib
			d := yi - q*so
			sse += d * d
			pv := etsHugeN
			if math.Abs(so) >= etsTol {
				pv = yi / so
			}
			t := etsHugeN
			if math.Abs(q) >= etsTol {
				t = yi / q
			}
			dp := pv - q
			l = q + alpha*dp
			b = phib + beta*dp
			r[j] = so + gamma*(t-so)
		}
	}
	st0[0], st0[1] = l, b
	return sse
}

// etsFilterAMm: additive (possibly damped) trend, multiplicative season,
// multiplicative errors. Like the AA loops it carries q and phib, and like
// etsFilterNMm it takes y/q and the relative error from one division.
func etsFilterAMm(y []float64, p etsParams, m int, st0, ring, lg []float64) (sse, logf float64) {
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	phib := phi * st0[1]
	q := st0[0] + phib
	kq, kb := alpha+phi*beta, phi*beta
	prod, nl := 1.0, 0
	lg = lg[:len(y)]
	ring = ring[:m]
	last := len(y) - 1
	if last < 0 {
		return 0, 0
	}
	for base := 0; base < last; base += m {
		c := y[base:min(base+m, last)]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			f := q * so
			inv := 1 / f
			e := (yi - f) * inv
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				lg[nl] = prod
				nl++
				prod = 1
			}
			sse += e * e
			pv := etsHugeN
			if math.Abs(so) >= etsTol {
				pv = yi / so
			}
			t := etsHugeN
			if math.Abs(q) >= etsTol {
				t = yi * so * inv
			}
			dp := pv - q
			pp := phi * phib
			q = (q + pp) + kq*dp
			phib = pp + kb*dp
			r[j] = so + gamma*(t-so)
		}
	}
	j := last % m
	so, yi := ring[j], y[last]
	f := q * so
	inv := 1 / f
	e := (yi - f) * inv
	prod *= math.Abs(f)
	if prod > 1e150 || prod < 1e-150 {
		lg[nl] = prod
		nl++
		prod = 1
	}
	sse += e * e
	pv := etsHugeN
	if math.Abs(so) >= etsTol {
		pv = yi / so
	}
	t := etsHugeN
	if math.Abs(q) >= etsTol {
		t = yi * so * inv
	}
	dp := pv - q
	st0[0], st0[1] = q+alpha*dp, phib+beta*dp
	ring[j] = so + gamma*(t-so)
	return sse, sumLogs(lg[:nl], prod)
}
