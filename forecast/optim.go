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
// forecast::ets.
func nelderMead(x []float64, fn func([]float64) float64, abstol, reltol float64, maxit int) nmResult {
	s := newNM(x, fn, abstol, reltol)
	s.run(maxit)
	return s.result(x, maxit)
}

// nmState is a Nelder-Mead minimisation that can be paused after a number
// of evaluations and resumed; a paused and resumed run takes exactly the
// steps of an uninterrupted one.
type nmState struct {
	fn              func([]float64) float64
	n, c            int
	p               []float64 // (n+1) x (n+2), row-major
	bvec            []float64
	abstol, convtol float64
	L               int
	oldsize         float64
	calcvert        bool
	funcount, fail  int
	done            bool
}

func (s *nmState) at(i, j int) *float64 { return &s.p[i*s.c+j] }

func (s *nmState) eval() float64 {
	f := s.fn(s.bvec)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = nmBig
	}
	s.funcount++
	return f
}

// newNM evaluates the start and builds the initial simplex.
func newNM(x []float64, fn func([]float64) float64, abstol, reltol float64) *nmState {
	n := len(x)
	s := &nmState{fn: fn, n: n, c: n + 2, abstol: abstol}
	s.p = make([]float64, (n+1)*s.c)
	s.bvec = append([]float64(nil), x...)
	f := fn(s.bvec)
	s.funcount = 1
	if math.IsNaN(f) || math.IsInf(f, 0) {
		s.done, s.fail = true, 10
		*s.at(n, 0) = math.Inf(1)
		for i := range n {
			*s.at(i, 0) = x[i]
		}
		s.L = 1
		return s
	}
	s.convtol = reltol * (math.Abs(f) + reltol)
	n1 := n + 1
	*s.at(n1-1, 0) = f
	for i := range n {
		*s.at(i, 0) = s.bvec[i]
	}
	s.L = 1
	step := 0.0
	for i := range n {
		if 0.1*math.Abs(s.bvec[i]) > step {
			step = 0.1 * math.Abs(s.bvec[i])
		}
	}
	if step == 0 {
		step = 0.1
	}
	size := 0.0
	for j := 2; j <= n1; j++ {
		for i := range n {
			*s.at(i, j-1) = s.bvec[i]
		}
		trystep := step
		for *s.at(j-2, j-1) == s.bvec[j-2] {
			*s.at(j-2, j-1) = s.bvec[j-2] + trystep
			trystep *= 10
		}
		size += trystep
	}
	s.oldsize = size
	s.calcvert = true
	return s
}

// best returns the lowest function value among the simplex vertices.
func (s *nmState) best() float64 {
	b := math.Inf(1)
	for j := range s.n + 1 {
		b = math.Min(b, *s.at(s.n, j))
	}
	return b
}

// result copies the best vertex into x.
func (s *nmState) result(x []float64, maxit int) nmResult {
	for i := range s.n {
		x[i] = *s.at(i, s.L-1)
	}
	fail := s.fail
	if s.funcount > maxit {
		fail = 1
	}
	return nmResult{fmin: *s.at(s.n, s.L-1), evals: s.funcount, fail: fail}
}

// run iterates until convergence or until more than limit evaluations have
// been made in total.
func (s *nmState) run(limit int) {
	const alpha, bet, gamm = 1.0, 0.5, 2.0
	n, c := s.n, s.c
	n1 := n + 1
	at := s.at
	bvec := s.bvec
	for !s.done && s.funcount <= limit {
		if s.calcvert {
			for j := range n1 {
				if j+1 != s.L {
					for i := range n {
						bvec[i] = *at(i, j)
					}
					*at(n1-1, j) = s.eval()
				}
			}
			s.calcvert = false
		}
		L := s.L
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
		s.L = L
		if VH <= VL+s.convtol || VL <= s.abstol {
			s.done = true
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
		f := s.eval()
		VR := f
		if VR < VL {
			*at(n1-1, c-1) = f
			for i := range n {
				f := gamm*bvec[i] + (1-gamm)*(*at(i, c-1))
				*at(i, c-1) = bvec[i]
				bvec[i] = f
			}
			f := s.eval()
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
			f := s.eval()
			if f < *at(n1-1, H-1) {
				for i := range n {
					*at(i, H-1) = bvec[i]
				}
				*at(n1-1, H-1) = f
			} else if VR >= VH {
				s.calcvert = true
				size := 0.0
				for j := range n1 {
					if j+1 != L {
						for i := range n {
							*at(i, j) = bet*(*at(i, j)-*at(i, L-1)) + *at(i, L-1)
							size += math.Abs(*at(i, j) - *at(i, L-1))
						}
					}
				}
				if size < s.oldsize {
					s.oldsize = size
				} else {
					s.fail = 10
					s.done = true
					break
				}
			}
		}
	}
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
