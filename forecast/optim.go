package forecast

import "math"

// nmBig is the value nelderMead substitutes for a non-finite objective, as R's
// optim does.
const nmBig = 1.0e35

// nmResult is the outcome of one Nelder-Mead minimisation.
type nmResult struct {
	fmin  float64
	evals int
	fail  int // 0 converged, 1 maxit reached, 10 degenerate simplex
}

// nelderMead minimises fn starting from x (overwritten with the solution),
// following the algorithm of R's nmmin (Nash, Compact Numerical Methods,
// 1990) step for step: the same initial simplex (step 0.1*max|x_i|), the
// same reflection/expansion/contraction/shrink order and the same relative
// convergence test on the simplex's function values. Matching it closely is
// what makes fitted parameters, and therefore model choices, agree with R's
// forecast::ets. work must hold at least (n+1)*(n+2)+n floats or be nil.
func nelderMead(x []float64, fn func([]float64) float64, abstol, reltol float64, maxit int, work []float64) nmResult {
	const alpha, bet, gamm = 1.0, 0.5, 2.0
	n := len(x)
	n1 := n + 1
	c := n + 2
	need := (n+1)*c + n
	if len(work) < need {
		work = make([]float64, need)
	}
	// P is an (n+1) x (n+2) matrix stored row-major: P[i][j] = work[i*c+j].
	p := work[:(n+1)*c]
	bvec := work[(n+1)*c : (n+1)*c+n]
	at := func(i, j int) *float64 { return &p[i*c+j] }
	copy(bvec, x)
	eval := func() float64 {
		f := fn(bvec)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = nmBig
		}
		return f
	}
	if maxit <= 0 {
		return nmResult{fmin: eval()}
	}
	f := fn(bvec)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nmResult{fmin: math.Inf(1), evals: 1, fail: 10}
	}
	funcount := 1
	convtol := reltol * (math.Abs(f) + reltol)
	*at(n1-1, 0) = f
	for i := range n {
		*at(i, 0) = bvec[i]
	}
	L := 1
	step := 0.0
	for i := range n {
		if 0.1*math.Abs(bvec[i]) > step {
			step = 0.1 * math.Abs(bvec[i])
		}
	}
	if step == 0 {
		step = 0.1
	}
	size := 0.0
	for j := 2; j <= n1; j++ {
		for i := range n {
			*at(i, j-1) = bvec[i]
		}
		trystep := step
		for *at(j-2, j-1) == bvec[j-2] {
			*at(j-2, j-1) = bvec[j-2] + trystep
			trystep *= 10
		}
		size += trystep
	}
	oldsize := size
	calcvert := true
	fail := 0
	for {
		if calcvert {
			for j := range n1 {
				if j+1 != L {
					for i := range n {
						bvec[i] = *at(i, j)
					}
					*at(n1-1, j) = eval()
					funcount++
				}
			}
			calcvert = false
		}
		VL := *at(n1-1, L-1)
		VH := VL
		H := L
		for j := 1; j <= n1; j++ {
			if j != L {
				f := *at(n1-1, j-1)
				if f < VL {
					L = j
					VL = f
				}
				if f > VH {
					H = j
					VH = f
				}
			}
		}
		if VH <= VL+convtol || VL <= abstol {
			break
		}
		for i := range n {
			temp := -*at(i, H-1)
			for j := range n1 {
				temp += *at(i, j)
			}
			*at(i, c-1) = temp / float64(n)
		}
		for i := range n {
			bvec[i] = (1+alpha)*(*at(i, c-1)) - alpha*(*at(i, H-1))
		}
		f := eval()
		funcount++
		VR := f
		if VR < VL {
			*at(n1-1, c-1) = f
			for i := range n {
				f := gamm*bvec[i] + (1-gamm)*(*at(i, c-1))
				*at(i, c-1) = bvec[i]
				bvec[i] = f
			}
			f := eval()
			funcount++
			if f < VR {
				for i := range n {
					*at(i, H-1) = bvec[i]
				}
				*at(n1-1, H-1) = f
			} else {
				for i := range n {
					*at(i, H-1) = *at(i, c-1)
				}
				*at(n1-1, H-1) = VR
			}
		} else {
			if VR < VH {
				for i := range n {
					*at(i, H-1) = bvec[i]
				}
				*at(n1-1, H-1) = VR
			}
			for i := range n {
				bvec[i] = (1-bet)*(*at(i, H-1)) + bet*(*at(i, c-1))
			}
			f := eval()
			funcount++
			if f < *at(n1-1, H-1) {
				for i := range n {
					*at(i, H-1) = bvec[i]
				}
				*at(n1-1, H-1) = f
			} else if VR >= VH {
				calcvert = true
				size = 0
				for j := range n1 {
					if j+1 != L {
						for i := range n {
							*at(i, j) = bet*(*at(i, j)-*at(i, L-1)) + *at(i, L-1)
							size += math.Abs(*at(i, j) - *at(i, L-1))
						}
					}
				}
				if size < oldsize {
					oldsize = size
				} else {
					fail = 10
					break
				}
			}
		}
		if funcount > maxit {
			break
		}
	}
	for i := range n {
		x[i] = *at(i, L-1)
	}
	if funcount > maxit {
		fail = 1
	}
	return nmResult{fmin: *at(n1-1, L-1), evals: funcount, fail: fail}
}

// goldenMin minimises a unimodal fn on [a, b] by golden-section search to
// absolute tolerance tol and returns the minimiser.
func goldenMin(fn func(float64) float64, a, b, tol float64) float64 {
	const g = 0.6180339887498949
	c := b - g*(b-a)
	d := a + g*(b-a)
	fc, fd := fn(c), fn(d)
	for math.Abs(b-a) > tol {
		if fc < fd {
			b, d, fd = d, c, fc
			c = b - g*(b-a)
			fc = fn(c)
		} else {
			a, c, fc = c, d, fd
			d = a + g*(b-a)
			fd = fn(d)
		}
	}
	return (a + b) / 2
}
