package forecast

import "math"

// SMAPE is the symmetric mean absolute percentage error of the M3
// competition, in percent: mean(200*|a-f|/(|a|+|f|)). Points where both are
// zero count as zero error.
func SMAPE(actual, fc []float64) float64 {
	s := 0.0
	for i, a := range actual {
		d := math.Abs(a) + math.Abs(fc[i])
		if d > 0 {
			s += 200 * math.Abs(a-fc[i]) / d
		}
	}
	return s / float64(len(actual))
}

// MASEScale is the in-sample mean absolute lag-m difference of y (m < 1 is
// treated as 1), the denominator of MASE.
func MASEScale(y []float64, m int) float64 {
	m = max(m, 1)
	if len(y) <= m {
		return math.NaN()
	}
	s := 0.0
	for i := m; i < len(y); i++ {
		s += math.Abs(y[i] - y[i-m])
	}
	return s / float64(len(y)-m)
}

// MASE is the mean absolute error of fc scaled by scale (see MASEScale).
func MASE(actual, fc []float64, scale float64) float64 {
	s := 0.0
	for i, a := range actual {
		s += math.Abs(a - fc[i])
	}
	return s / float64(len(actual)) / scale
}

// WAPE is the weighted absolute percentage error sum|a-f|/sum|a|, in
// percent.
func WAPE(actual, fc []float64) float64 {
	num, den := 0.0, 0.0
	for i, a := range actual {
		num += math.Abs(a - fc[i])
		den += math.Abs(a)
	}
	return 100 * num / den
}

// Bias is the mean forecast error mean(f - a) (positive = over-forecast).
func Bias(actual, fc []float64) float64 {
	s := 0.0
	for i, a := range actual {
		s += fc[i] - a
	}
	return s / float64(len(actual))
}

// Coverage is the share of actual values inside [lo, hi], in [0, 1].
func Coverage(actual, lo, hi []float64) float64 {
	in := 0
	for i, a := range actual {
		if a >= lo[i] && a <= hi[i] {
			in++
		}
	}
	return float64(in) / float64(len(actual))
}
