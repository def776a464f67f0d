package forecast

import (
	"math"
	"slices"
)

// qnorm returns the standard normal quantile at probability p.
func qnorm(p float64) float64 {
	return -math.Sqrt2 * math.Erfcinv(2*p)
}

// levelZ returns the two-sided normal multiplier of a prediction interval at
// level percent (80 -> 1.2816).
func levelZ(level float64) float64 {
	return math.Abs(qnorm((100 - level) / 200))
}

func mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// lsfit fits y = a + b*x by least squares (R's lsfit) and returns (a, b).
func lsfit(x, y []float64) (a, b float64) {
	n := float64(len(x))
	mx, my := mean(x), mean(y)
	sxy, sxx := 0.0, 0.0
	for i := range x {
		dx := x[i] - mx
		sxy += dx * (y[i] - my)
		sxx += dx * dx
	}
	_ = n
	if sxx == 0 {
		return my, 0
	}
	b = sxy / sxx
	return my - b*mx, b
}

// lsfitIndex fits y = a + b*(start+i) for i = 0..len(y)-1.
func lsfitIndex(y []float64, start float64) (a, b float64) {
	n := len(y)
	// closed form for x = start..start+n-1
	mx := start + float64(n-1)/2
	my := mean(y)
	sxy, sxx := 0.0, 0.0
	for i, v := range y {
		dx := start + float64(i) - mx
		sxy += dx * (v - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return my, 0
	}
	b = sxy / sxx
	return my - b*mx, b
}

// olsSolve solves the least-squares problem X beta = y for a small dense X
// (rows are observations) via the normal equations and Gaussian elimination
// with partial pivoting. Columns that are numerically zero get beta 0.
func olsSolve(X [][]float64, y []float64) []float64 {
	k := len(X[0])
	a := make([][]float64, k)
	for i := range a {
		a[i] = make([]float64, k+1)
	}
	for r, row := range X {
		for i := range k {
			for j := range k {
				a[i][j] += row[i] * row[j]
			}
			a[i][k] += row[i] * y[r]
		}
	}
	for col := range k {
		piv := col
		for r := col + 1; r < k; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		a[col], a[piv] = a[piv], a[col]
		if math.Abs(a[col][col]) < 1e-12 {
			continue
		}
		for r := range k {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for j := col; j <= k; j++ {
				a[r][j] -= f * a[col][j]
			}
		}
	}
	beta := make([]float64, k)
	for i := range k {
		if math.Abs(a[i][i]) >= 1e-12 {
			beta[i] = a[i][k] / a[i][i]
		}
	}
	return beta
}

// decompose is R's classical decomposition (stats::decompose): a centred
// moving average trend, seasonal figures averaged by cycle position from the
// first observation and normalised to mean 0 (additive) or 1
// (multiplicative). It returns the seasonal component, len(y) long.
// len(y) must be >= 2*m.
func decompose(y []float64, m int, multiplicative bool) []float64 {
	n := len(y)
	// moving-average filter, centred
	var w []float64
	if m%2 == 0 {
		w = make([]float64, m+1)
		for i := range w {
			w[i] = 1 / float64(m)
		}
		w[0] /= 2
		w[m] /= 2
	} else {
		w = make([]float64, m)
		for i := range w {
			w[i] = 1 / float64(m)
		}
	}
	half := len(w) / 2
	sumFig := make([]float64, m)
	cnt := make([]int, m)
	for t := half; t < n-(len(w)-1-half); t++ {
		tr := 0.0
		for j, wj := range w {
			tr += wj * y[t-half+j]
		}
		var s float64
		if multiplicative {
			s = y[t] / tr
		} else {
			s = y[t] - tr
		}
		if math.IsNaN(s) || math.IsInf(s, 0) {
			continue
		}
		sumFig[t%m] += s
		cnt[t%m]++
	}
	fig := make([]float64, m)
	mf := 0.0
	for i := range fig {
		if cnt[i] > 0 {
			fig[i] = sumFig[i] / float64(cnt[i])
		} else {
			fig[i] = math.NaN()
		}
		mf += fig[i]
	}
	mf /= float64(m)
	for i := range fig {
		if multiplicative {
			fig[i] /= mf
		} else {
			fig[i] -= mf
		}
	}
	out := make([]float64, n)
	for t := range out {
		out[t] = fig[t%m]
	}
	return out
}

// acf returns the sample autocorrelations at lags 1..maxLag (R's acf).
func acf(y []float64, maxLag int) []float64 {
	n := len(y)
	mu := mean(y)
	den := 0.0
	for _, v := range y {
		den += (v - mu) * (v - mu)
	}
	r := make([]float64, maxLag)
	for k := 1; k <= maxLag; k++ {
		s := 0.0
		for t := 0; t+k < n; t++ {
			s += (y[t] - mu) * (y[t+k] - mu)
		}
		r[k-1] = s / den
	}
	return r
}

// seasonalTest is the test of forecast::thetaf: the autocorrelation at lag
// m is significant at 90% (one-sided 95%) under Bartlett's formula.
func seasonalTest(y []float64, m int) bool {
	if m <= 1 || isConstant(y) || len(y) < 2*m {
		return false
	}
	r := acf(y, m)
	s := 0.0
	for _, v := range r[:m-1] {
		s += v * v
	}
	stat := math.Sqrt((1 + 2*s) / float64(len(y)))
	return math.Abs(r[m-1])/stat > qnorm(0.95)
}

func isConstant(y []float64) bool {
	for _, v := range y[1:] {
		if v != y[0] {
			return false
		}
	}
	return true
}

// quantile7 returns R's type-7 quantile of sorted x at probability p.
func quantile7(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := float64(n-1) * p
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

func sortedCopy(x []float64) []float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s
}

// quantiles7Select sets out[i] to R's type-7 quantile of x at probability
// ps[i] (ps ascending), as quantile7 on a sorted copy would, but orders x
// in place only as far as needed: one quickselect per order statistic,
// each on the part of x above the previous one. x must not hold NaNs.
func quantiles7Select(x, ps, out []float64) {
	quantiles7Part(x, len(x), 0, ps, out)
}

// quantiles7Part is quantiles7Select for a sample of size n of which x
// holds the order statistics off..off+len(x)-1 (in any order; x is
// reordered). It reports false, with out partly set, when a quantile needs
// an order statistic outside that range.
func quantiles7Part(x []float64, n, off int, ps, out []float64) bool {
	lo := 0 // x[:lo] holds the smallest lo elements of x, in order
	for i, p := range ps {
		if n == 0 {
			out[i] = math.NaN()
			continue
		}
		h := float64(n-1) * p
		k := int(math.Floor(h))
		if k >= n-1 {
			if off+len(x) != n {
				return false
			}
			j := len(x) - 1
			selectK(x[lo:], j-lo)
			out[i] = x[j]
			continue
		}
		j := k - off // x's index of order statistic k once selected
		if j < 0 || j+1 >= len(x) {
			return false
		}
		if j >= lo {
			selectK(x[lo:], j-lo)
			lo = j
		}
		next := x[j+1]
		for _, v := range x[j+2:] {
			if v < next {
				next = v
			}
		}
		out[i] = x[j] + (h-float64(k))*(next-x[j])
	}
	return true
}

// tailQuantiles computes R's type-7 quantiles of equally sized samples at
// fixed probabilities, as quantiles7Select does (identical results), but
// faster when the probabilities lie in the tails (prediction intervals:
// 2.5%, 10%, 90%, 97.5%). One pass guesses the quantiles from the
// sample's mean and standard deviation as if it were normal; a second
// copies the values below a cut-off safely above the highest lower-tail
// guess into lo, and those above a cut-off below the lowest upper-tail
// guess into hi, without branches. The wanted order statistics are
// selected in those short lists (they hold every value at least as
// extreme as the cut-off, so ranks carry over). When a guess was wrong
// and a list misses a needed rank, the whole sample goes through
// quickselect.
type tailQuantiles struct {
	ps     []float64 // ascending
	nLow   int       // ps[:nLow] are < 0.5
	zl, zh float64   // cut-offs in standard deviations from the mean
	lo, hi []float64 // scratch, as long as a sample
}

// tailMargin is how far (in standard deviations) the cut-offs lie inside
// the normal guesses of the innermost quantiles, room for skewed samples.
const tailMargin = 0.35

func newTailQuantiles(ps []float64, n int) *tailQuantiles {
	t := &tailQuantiles{ps: ps, lo: make([]float64, n), hi: make([]float64, n)}
	for t.nLow < len(ps) && ps[t.nLow] < 0.5 {
		t.nLow++
	}
	t.zl, t.zh = math.Inf(-1), math.Inf(1)
	if t.nLow > 0 {
		t.zl = qnorm(ps[t.nLow-1]) + tailMargin
	}
	if t.nLow < len(ps) {
		t.zh = qnorm(ps[t.nLow]) - tailMargin
	}
	return t
}

// quantiles sets out[i] to the type-7 quantile of x at t.ps[i]. x must
// not hold NaNs; it may be reordered.
func (t *tailQuantiles) quantiles(x, out []float64) {
	n := len(x)
	if n < 2 || len(t.lo) < n {
		quantiles7Select(x, t.ps, out)
		return
	}
	// Mean and variance about x[0] (shifted against cancellation).
	x0 := x[0]
	s, ss := 0.0, 0.0
	for _, v := range x {
		d := v - x0
		s += d
		ss += d * d
	}
	fn := float64(n)
	mu := s / fn
	sd := math.Sqrt(math.Max(ss/fn-mu*mu, 0))
	cl, ch := x0+mu+t.zl*sd, x0+mu+t.zh*sd
	if math.IsNaN(cl) || math.IsNaN(ch) || sd == 0 {
		quantiles7Select(x, t.ps, out)
		return
	}
	lo, hi := t.lo[:n], t.hi[:n]
	nl, nh := 0, 0
	for _, v := range x {
		lo[nl] = v
		if v <= cl {
			nl++
		}
		hi[nh] = v
		if v >= ch {
			nh++
		}
	}
	if !quantiles7Part(lo[:nl], n, 0, t.ps[:t.nLow], out[:t.nLow]) ||
		!quantiles7Part(hi[:nh], n, n-nh, t.ps[t.nLow:], out[t.nLow:]) {
		quantiles7Select(x, t.ps, out)
	}
}

// selectK reorders x so that x[k] is the value a sort would put there,
// with x[:k] <= x[k] <= x[k+1:].
func selectK(x []float64, k int) {
	lo, hi := 0, len(x)-1
	for hi-lo > 12 {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
	for i := lo + 1; i <= hi; i++ {
		for j := i; j > lo && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}
