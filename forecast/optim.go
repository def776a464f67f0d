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
//
// The simplex is stored vertex by vertex: v[j*n:(j+1)*n] is vertex j
// (j = 0..n) and fv[j] its function value; slot n+1 holds the centroid (and
// the reflected point), as column n+1 of nmmin's matrix P. Every sum is
// taken in nmmin's order, so results are bit for bit those of its
// coordinate-major layout.
type nmState struct {
	fn              func([]float64) float64
	n               int
	v               []float64 // (n+2) vertices of n coordinates
	fv              []float64 // n+2 function values
	bvec            []float64
	abstol, convtol float64
	L               int
	oldsize         float64
	calcvert        bool
	funcount, fail  int
	done            bool
}

// vert returns vertex j (0-based; n+1 is the centroid slot).
func (s *nmState) vert(j int) []float64 { return s.v[j*s.n : (j+1)*s.n : (j+1)*s.n] }

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
	s := &nmState{fn: fn, n: n, abstol: abstol}
	buf := make([]float64, (n+2)*n+(n+2)+n)
	s.v = buf[:(n+2)*n]
	s.fv = buf[(n+2)*n : (n+2)*n+n+2]
	s.bvec = buf[(n+2)*n+n+2:]
	copy(s.bvec, x)
	f := fn(s.bvec)
	s.funcount = 1
	if math.IsNaN(f) || math.IsInf(f, 0) {
		s.done, s.fail = true, 10
		s.fv[0] = math.Inf(1)
		copy(s.vert(0), x)
		s.L = 1
		return s
	}
	s.convtol = reltol * (math.Abs(f) + reltol)
	s.fv[0] = f
	copy(s.vert(0), s.bvec)
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
	for j := 1; j <= n; j++ {
		vj := s.vert(j)
		copy(vj, s.bvec)
		trystep := step
		for vj[j-1] == s.bvec[j-1] {
			vj[j-1] = s.bvec[j-1] + trystep
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
	for _, f := range s.fv[:s.n+1] {
		b = math.Min(b, f)
	}
	return b
}

// result copies the best vertex into x.
func (s *nmState) result(x []float64, maxit int) nmResult {
	copy(x, s.vert(s.L-1))
	fail := s.fail
	if s.funcount > maxit {
		fail = 1
	}
	return nmResult{fmin: s.fv[s.L-1], evals: s.funcount, fail: fail}
}

// run iterates until convergence or until more than limit evaluations have
// been made in total.
func (s *nmState) run(limit int) {
	const alpha, bet, gamm = 1.0, 0.5, 2.0
	n := s.n
	n1 := n + 1
	fv := s.fv[:n+2]
	bvec := s.bvec[:n]
	cen := s.vert(n1)
	fn := float64(n)
	for !s.done && s.funcount <= limit {
		if s.calcvert {
			for j := range n1 {
				if j+1 != s.L {
					copy(bvec, s.vert(j))
					fv[j] = s.eval()
				}
			}
			s.calcvert = false
		}
		L := s.L
		VL := fv[L-1]
		VH := VL
		H := L
		for j := 1; j <= n1; j++ {
			if j != L {
				f := fv[j-1]
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
		vh := s.vert(H - 1)
		for i, x := range vh {
			cen[i] = -x
		}
		// Vertices four at a time; each coordinate's sum still adds them
		// one by one in vertex order.
		j := 0
		for ; j+4 <= n1; j += 4 {
			a, b, c, d := s.vert(j), s.vert(j+1), s.vert(j+2), s.vert(j+3)
			a, b, c, d = a[:len(cen)], b[:len(cen)], c[:len(cen)], d[:len(cen)]
			for i, x := range cen {
				cen[i] = x + a[i] + b[i] + c[i] + d[i]
			}
		}
		for ; j < n1; j++ {
			vj := s.vert(j)
			for i, x := range vj {
				cen[i] += x
			}
		}
		for i := range cen {
			cen[i] /= fn
		}
		for i := range bvec {
			bvec[i] = (1+alpha)*cen[i] - alpha*vh[i]
		}
		f := s.eval()
		VR := f
		if VR < VL {
			fv[n1] = f
			for i := range bvec {
				f := gamm*bvec[i] + (1-gamm)*cen[i]
				cen[i] = bvec[i]
				bvec[i] = f
			}
			f := s.eval()
			if f < VR {
				copy(vh, bvec)
				fv[H-1] = f
			} else {
				copy(vh, cen)
				fv[H-1] = VR
			}
		} else {
			if VR < VH {
				copy(vh, bvec)
				fv[H-1] = VR
			}
			for i := range bvec {
				bvec[i] = (1-bet)*vh[i] + bet*cen[i]
			}
			f := s.eval()
			if f < fv[H-1] {
				copy(vh, bvec)
				fv[H-1] = f
			} else if VR >= VH {
				s.calcvert = true
				size := 0.0
				vl := s.vert(L - 1)
				for j := range n1 {
					if j+1 != L {
						vj := s.vert(j)
						for i := range vj {
							vj[i] = bet*(vj[i]-vl[i]) + vl[i]
							size += math.Abs(vj[i] - vl[i])
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
