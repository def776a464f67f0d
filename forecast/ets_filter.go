package forecast

import "math"

// Specialised ETS likelihood loops, one per trend (N, A or Ad) and season
// (N, A, M) class, used by etsFilter for everything but multiplicative
// trends. They compute exactly forecast's etscalc recursions with no
// per-step switch on the model class: level and trend live in locals, the
// seasonal states in ring (oldest first), walked in chunks of m so that
// no index wraps. The level recursion, the only loop-carried dependency
// that matters, holds no division: y/s and y/q, like the relative error,
// feed only the seasonal states and the error sums.
//
// Each returns the sum of squared errors e (relative for multiplicative
// errors), the sum of squared one-step differences y-f, and, for
// multiplicative errors, sum(log|f|).

// sum(log|f|) is accumulated as the log of a running product (prod),
// rescaled before it can overflow: one Log per many steps, not one per
// observation.

// etsFilterNN: no trend, no season. st = [l].
func etsFilterNN(y []float64, multErr bool, alpha float64, st, resid []float64) (sse, sse2, logf float64) {
	l := st[0]
	logs, prod := 0.0, 1.0
	for i, yi := range y {
		f := l
		d := yi - f
		sse2 += d * d
		e := d
		if multErr {
			e = d / f
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				logs += math.Log(prod)
				prod = 1
			}
		}
		if resid != nil {
			resid[i] = e
		}
		sse += e * e
		l = f + alpha*(yi-f)
	}
	st[0] = l
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}

// etsFilterAN: additive (possibly damped) trend, no season. st = [l, b].
func etsFilterAN(y []float64, multErr bool, p etsParams, st, resid []float64) (sse, sse2, logf float64) {
	l, b := st[0], st[1]
	alpha, beta, phi := p.alpha, p.beta, p.phi
	logs, prod := 0.0, 1.0
	for i, yi := range y {
		phib := phi * b
		q := l + phib
		d := yi - q
		sse2 += d * d
		e := d
		if multErr {
			e = d / q
			prod *= math.Abs(q)
			if prod > 1e150 || prod < 1e-150 {
				logs += math.Log(prod)
				prod = 1
			}
		}
		if resid != nil {
			resid[i] = e
		}
		sse += e * e
		l = q + alpha*d
		b = phib + beta*d
	}
	st[0], st[1] = l, b
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}

// etsFilterNA: no trend, additive season.
func etsFilterNA(y []float64, multErr bool, p etsParams, m int, st0 []float64, ring, resid []float64) (sse, sse2, logf float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	logs, prod := 0.0, 1.0
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			q := l
			f := q + so
			d := yi - so - q // y - f, and also p - q with p = y - s
			sse2 += d * d
			e := d
			if multErr {
				e = d / f
				prod *= math.Abs(f)
				if prod > 1e150 || prod < 1e-150 {
					logs += math.Log(prod)
					prod = 1
				}
			}
			if resid != nil {
				resid[base+j] = e
			}
			sse += e * e
			l = q + alpha*d
			r[j] = so + gamma*d
		}
	}
	st0[0] = l
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}

// etsFilterAA: additive (possibly damped) trend, additive season.
func etsFilterAA(y []float64, multErr bool, p etsParams, m int, st0 []float64, ring, resid []float64) (sse, sse2, logf float64) {
	l, b := st0[0], st0[1]
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	// Carried: phib = phi*b and q = l + phib. With d = p - q,
	// l' = q + alpha*d and b' = phib + beta*d, so
	// q' = (q + phi*phib) + (alpha + phi*beta)*d and
	// phib' = phi*phib + phi*beta*d: one multiply-add deep from d.
	phib := phi * b
	q := l + phib
	kq, kb := alpha+phi*beta, phi*beta
	logs, prod := 0.0, 1.0
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			f := q + so
			d := yi - so - q // y - f, and also p - q with p = y - s
			sse2 += d * d
			e := d
			if multErr {
				e = d / f
				prod *= math.Abs(f)
				if prod > 1e150 || prod < 1e-150 {
					logs += math.Log(prod)
					prod = 1
				}
			}
			if resid != nil {
				resid[base+j] = e
			}
			sse += e * e
			l = q + alpha*d
			b = phib + beta*d
			pp := phi * phib
			q = (q + pp) + kq*d
			phib = pp + kb*d
			r[j] = so + gamma*d
		}
	}
	st0[0], st0[1] = l, b
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}

// etsFilterNM: no trend, multiplicative season.
func etsFilterNM(y []float64, multErr bool, p etsParams, m int, st0 []float64, ring, resid []float64) (sse, sse2, logf float64) {
	l := st0[0]
	alpha, gamma := p.alpha, p.gamma
	logs, prod := 0.0, 1.0
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			q := l
			f := q * so
			d := yi - f
			sse2 += d * d
			e := d
			if multErr {
				e = d / f
				prod *= math.Abs(f)
				if prod > 1e150 || prod < 1e-150 {
					logs += math.Log(prod)
					prod = 1
				}
			}
			if resid != nil {
				resid[base+j] = e
			}
			sse += e * e
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
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}

// etsFilterAM: additive (possibly damped) trend, multiplicative season.
func etsFilterAM(y []float64, multErr bool, p etsParams, m int, st0 []float64, ring, resid []float64) (sse, sse2, logf float64) {
	l, b := st0[0], st0[1]
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	logs, prod := 0.0, 1.0
	ring = ring[:m]
	for base := 0; base < len(y); base += m {
		c := y[base:min(base+m, len(y))]
		r := ring[:len(c)]
		for j, yi := range c {
			so := r[j]
			phib := phi * b
			q := l + phib
			f := q * so
			d := yi - f
			sse2 += d * d
			e := d
			if multErr {
				e = d / f
				prod *= math.Abs(f)
				if prod > 1e150 || prod < 1e-150 {
					logs += math.Log(prod)
					prod = 1
				}
			}
			if resid != nil {
				resid[base+j] = e
			}
			sse += e * e
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
	if multErr {
		logf = logs + math.Log(prod)
	}
	return sse, sse2, logf
}
