package forecast

import (
	"fmt"
	"math"
	"strings"
)

// etsSpec is one member of the ETS family: error A/M, trend N/A/M (damped
// or not), season N/A/M.
type etsSpec struct {
	err, trend, season byte
	damped             bool
}

func (s etsSpec) String() string {
	d := ""
	if s.damped {
		d = "d"
	}
	return fmt.Sprintf("ETS(%c,%c%s,%c)", s.err, s.trend, d, s.season)
}

// parseETSSpec parses "MAdN", "ANA", "ETS(M,Ad,N)" and the like.
func parseETSSpec(s string) (etsSpec, error) {
	t := strings.NewReplacer("ETS(", "", ")", "", ",", "", " ", "").Replace(strings.ToUpper(s))
	t = strings.Replace(t, "D", "d", 1)
	var sp etsSpec
	switch {
	case len(t) == 3:
	case len(t) == 4 && t[2] == 'd':
		sp.damped = true
		t = t[:2] + t[3:]
	default:
		return sp, fmt.Errorf("%w: ets spec %q", ErrUnknownModel, s)
	}
	sp.err, sp.trend, sp.season = t[0], t[1], t[2]
	if (sp.err != 'A' && sp.err != 'M') || !strings.ContainsRune("NAM", rune(sp.trend)) ||
		!strings.ContainsRune("NAM", rune(sp.season)) || (sp.damped && sp.trend == 'N') {
		return sp, fmt.Errorf("%w: ets spec %q", ErrUnknownModel, s)
	}
	return sp, nil
}

// etsParams are the smoothing parameters; beta is the trend parameter in
// the error-correction form (beta <= alpha), phi is 1 for undamped trends.
type etsParams struct {
	alpha, beta, gamma, phi float64
}

const (
	etsTol   = 1.0e-10
	etsHugeN = 1.0e10
)

// R's ets() default parameter bounds ("usual" region).
var (
	etsLower = [4]float64{1e-4, 1e-4, 1e-4, 0.8}
	etsUpper = [4]float64{0.9999, 0.9999, 0.9999, 0.98}
)

// etsFilter runs the ETS recursions of forecast's etscalc over y from the
// state st = [l, b?, s_0..s_{m-1}?] (s_0 the most recent season), leaving the
// final state in st. ring is scratch of length m; lg is scratch of length
// len(y) for multiplicative errors (allocated if shorter). It returns R's
// likelihood criterion n*log(SSE) (+ 2*sum(log|f|) for multiplicative
// errors), SSE (the sum of squared errors, relative ones for multiplicative
// errors; for additive errors SSE/n is the one-step MSE), and false if the
// recursion broke down (negative multiplicative trend).
func etsFilter(y []float64, sp etsSpec, m int, p etsParams, st, ring, lg []float64) (lik, sse float64, ok bool) {
	multErr := sp.err == 'M'
	if multErr && len(lg) < len(y) {
		lg = make([]float64, len(y))
	}
	if sp.trend == 'M' {
		return etsFilterGeneric(y, sp, m, p, st, ring, lg)
	}
	k := 1
	if sp.trend != 'N' {
		k = 2
	}
	if sp.season != 'N' {
		for j := range m {
			ring[j] = st[k+m-1-j]
		}
	}
	sse, logf := etsFilterRing(y, sp, m, p, st, ring, lg)
	if sp.season != 'N' {
		// ring[pos] was updated last, ring[pos+1] (mod m) is the oldest.
		pos := (len(y) + m - 1) % m
		s := st[k : k+m]
		for i := range pos + 1 {
			s[i] = ring[pos-i]
		}
		for i := pos + 1; i < m; i++ {
			s[i] = ring[m+pos-i]
		}
	}
	return etsLik(len(y), sse, logf, multErr), sse, true
}

// etsLik is R's likelihood criterion from the filter's sums.
func etsLik(n int, sse, logf float64, multErr bool) float64 {
	lik := float64(n) * math.Log(sse)
	if multErr {
		lik += 2 * logf
	}
	return lik
}

// etsFilterRing is etsFilter's loop for any class but multiplicative
// trends, from level (and trend) in st[0:2] and the seasonal states in
// ring, oldest first; it leaves the final level (and trend) in st and the
// seasonal states in ring, rotated by len(y) mod m. lg is as for
// etsFilter (long enough for multiplicative errors).
func etsFilterRing(y []float64, sp etsSpec, m int, p etsParams, st, ring, lg []float64) (sse, logf float64) {
	multErr := sp.err == 'M'
	switch {
	case sp.season == 'N' && sp.trend == 'N' && multErr:
		sse, logf = etsFilterNNm(y, p.alpha, st, lg)
	case sp.season == 'N' && sp.trend == 'N':
		sse = etsFilterNNa(y, p.alpha, st)
	case sp.season == 'N' && multErr:
		sse, logf = etsFilterANm(y, p, st, lg)
	case sp.season == 'N':
		sse = etsFilterANa(y, p, st)
	case sp.season == 'A' && sp.trend == 'N' && multErr:
		sse, logf = etsFilterNAm(y, p, m, st, ring, lg)
	case sp.season == 'A' && sp.trend == 'N':
		sse = etsFilterNAa(y, p, m, st, ring)
	case sp.season == 'A' && multErr:
		sse, logf = etsFilterAAm(y, p, m, st, ring, lg)
	case sp.season == 'A':
		sse = etsFilterAAa(y, p, m, st, ring)
	case sp.trend == 'N' && multErr:
		sse, logf = etsFilterNMm(y, p, m, st, ring, lg)
	case sp.trend == 'N':
		sse = etsFilterNMa(y, p, m, st, ring)
	case multErr:
		sse, logf = etsFilterAMm(y, p, m, st, ring, lg)
	default:
		sse = etsFilterAMa(y, p, m, st, ring)
	}
	return sse, logf
}

// etsFilterGeneric is etsFilter for any class, including multiplicative
// trends, with a per-step switch on the class.
func etsFilterGeneric(y []float64, sp etsSpec, m int, p etsParams, st, ring, lg []float64) (lik, sse float64, ok bool) {
	l := st[0]
	b := 0.0
	k := 1
	if sp.trend != 'N' {
		b = st[1]
		k = 2
	}
	seasonal := sp.season != 'N'
	if seasonal {
		for j := range m {
			ring[j] = st[k+m-1-j]
		}
	}
	pos := 0
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	bOverA := beta / alpha
	prod, nl := 1.0, 0
	multErr := sp.err == 'M'
	for _, yi := range y {
		var q, phib float64
		switch sp.trend {
		case 'N':
			q = l
		case 'A':
			phib = phi * b
			q = l + phib
		default:
			if b < 0 {
				return math.NaN(), math.NaN(), false
			}
			if math.Abs(phi-1) < etsTol {
				phib = b
			} else {
				phib = math.Pow(b, phi)
			}
			q = l * phib
		}
		f := q
		so := 0.0
		pv := yi
		inv := 0.0 // 1/f, shared by the divisions of multiplicative models
		switch sp.season {
		case 'A':
			so = ring[pos]
			f = q + so
			pv = yi - so
		case 'M':
			so = ring[pos]
			f = q * so
			inv = 1 / f
			if math.Abs(so) < etsTol {
				pv = etsHugeN
			} else {
				pv = yi * q * inv // y/s
			}
		}
		e := yi - f
		if multErr {
			if sp.season != 'M' {
				inv = 1 / f
			}
			e *= inv
			prod *= math.Abs(f)
			if prod > 1e150 || prod < 1e-150 {
				lg[nl] = prod
				nl++
				prod = 1
			}
		}
		sse += e * e
		ln := q + alpha*(pv-q)
		switch sp.trend {
		case 'A':
			b = phib + bOverA*(ln-l-phib)
		case 'M':
			r := etsHugeN
			if math.Abs(l) >= etsTol {
				r = ln / l
			}
			b = phib + bOverA*(r-phib)
		}
		if seasonal {
			var t float64
			if sp.season == 'A' {
				t = yi - q
			} else if math.Abs(q) < etsTol {
				t = etsHugeN
			} else {
				t = yi * so * inv // y/q
			}
			ring[pos] = so + gamma*(t-so)
			pos++
			if pos == m {
				pos = 0
			}
		}
		l = ln
	}
	st[0] = l
	if sp.trend != 'N' {
		st[1] = b
	}
	if seasonal {
		for i := range m {
			j := pos + m - 1 - i
			if j >= m {
				j -= m
			}
			st[k+i] = ring[j]
		}
	}
	lik = float64(len(y)) * math.Log(sse)
	if multErr {
		lik += 2 * sumLogs(lg[:nl], prod)
	}
	return lik, sse, true
}

// etsPointForecast writes h point forecasts from state st into out, as
// forecast's C function forecast() (damped trend sums phi^1..phi^h).
func etsPointForecast(sp etsSpec, m int, phi float64, st []float64, out []float64) {
	l := st[0]
	b := 0.0
	k := 1
	if sp.trend != 'N' {
		b = st[1]
		k = 2
	}
	phistar := phi
	for i := range out {
		var f float64
		switch sp.trend {
		case 'N':
			f = l
		case 'A':
			f = l + phistar*b
		default:
			if b < 0 {
				f = math.NaN()
			} else {
				f = l * math.Pow(b, phistar)
			}
		}
		if sp.season != 'N' {
			j := m - 1 - i
			for j < 0 {
				j += m
			}
			if sp.season == 'A' {
				f += st[k+j]
			} else {
				f *= st[k+j]
			}
		}
		out[i] = f
		if math.Abs(phi-1) < etsTol {
			phistar++
		} else {
			phistar += math.Pow(phi, float64(i+2))
		}
	}
}

// admissibleETS reports whether the parameters lie in the admissible
// (forecastable) region of Hyndman et al. (2008), as forecast's
// admissible(): phi is 1 for undamped models, gamma is used only when
// seasonal.
func admissibleETS(p etsParams, sp etsSpec, m int) bool {
	alpha, beta, gamma, phi := p.alpha, p.beta, p.gamma, p.phi
	if phi < 0 || phi > 1+1e-8 {
		return false
	}
	if sp.season == 'N' {
		if alpha < 1-1/phi || alpha > 1+1/phi {
			return false
		}
		if sp.trend != 'N' {
			if beta < alpha*(phi-1) || beta > (1+phi)*(2-alpha) {
				return false
			}
		}
		return true
	}
	if m <= 1 {
		return true
	}
	if sp.trend == 'N' {
		beta = 0
	}
	if gamma < math.Max(1-1/phi-alpha, 0) || gamma > 1+1/phi-alpha {
		return false
	}
	fm := float64(m)
	if alpha < 1-1/phi-gamma*(1-fm+phi+phi*fm)/(2*phi*fm) {
		return false
	}
	if beta < -(1-phi)*(gamma/fm+alpha) {
		return false
	}
	// Characteristic polynomial, increasing powers:
	// phi(1-a-g) + (a+b-a*phi+g-1) z + (a+b-a*phi) z^2..z^(m-1) + (a+b-phi) z^m + z^(m+1).
	var buf [32]float64
	c := buf[:m+2]
	if m+2 > len(buf) {
		c = make([]float64, m+2)
	}
	c[0] = phi * (1 - alpha - gamma)
	c[1] = alpha + beta - alpha*phi + gamma - 1
	for i := 2; i < m; i++ {
		c[i] = alpha + beta - alpha*phi
	}
	c[m] = alpha + beta - phi
	c[m+1] = 1
	return rootsWithin(c, admTol)
}

// rootsWithin reports whether every root of the real polynomial with
// increasing-power coefficients c (leading c[len-1] != 0) has modulus at
// most r, using the Schur-Cohn recursion on p(r'z) with r' slightly above r
// so that roots on the circle |z| = r pass as they do with R's polyroot
// tolerance. c is overwritten.
func rootsWithin(c []float64, r float64) bool {
	// Scale so roots w = z / r2 must lie strictly inside the unit disk.
	r2 := r + 1e-9
	if r2 == admRadius && len(c) <= len(admPowers) {
		// The same products as the loop below, made once.
		for i := range c {
			c[i] *= admPowers[i]
		}
	} else {
		s := 1.0
		for i := range c {
			c[i] *= s
			s *= r2
		}
	}
	var buf [32]float64
	t := buf[:len(c)]
	if len(c) > len(buf) {
		t = make([]float64, len(c))
	}
	// Each step writes the reduced polynomial into the other buffer.
	for d := len(c) - 1; d > 0; d-- {
		a0, ad := c[0], c[d]
		if math.Abs(a0) >= math.Abs(ad) {
			return false
		}
		// T p = (ad*p - a0*p*) / z, degree d-1; normalised by ad.
		r := a0 / ad
		hi, lo := c[1:d+1], c[:d]
		td := t[:d]
		for k := range td {
			td[k] = hi[k] - r*lo[d-1-k]
		}
		c, t = t, c
	}
	return true
}

// admTol is the root modulus admissibleETS allows, admRadius the radius
// rootsWithin scales by for it (the same float64 sum) and admPowers[i] its
// i-th power as rootsWithin's running product forms it.
var (
	admTol    = 1 + 1e-10
	admRadius = admTol + 1e-9
	admPowers = func() (p [32]float64) {
		s := 1.0
		for i := range p {
			p[i] = s
			s *= admRadius
		}
		return p
	}()
)
