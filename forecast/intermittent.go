package forecast

import "math"

// CrostonVariant selects the intermittent-demand method.
type CrostonVariant int

const (
	// CrostonClassic is Croston's (1972) method: sizes and intervals
	// smoothed separately, forecast size/interval.
	CrostonClassic CrostonVariant = iota
	// CrostonSBA is the Syntetos-Boylan approximation: Croston times
	// (1 - alpha/2), which removes its bias.
	CrostonSBA
	// CrostonTSB is Teunter-Syntetos-Babai: the demand probability is
	// smoothed every period, so forecasts decay during long zero runs.
	CrostonTSB
)

// crostonAlpha is the smoothing parameter of sizes and intervals (and beta
// of the TSB probability); 0.1 is the customary default.
const crostonAlpha = 0.1

// Croston forecasts intermittent demand. Its prediction intervals are
// normal with the in-sample one-step error variance, truncated at zero.
type Croston struct {
	Variant CrostonVariant
}

// Name implements Model.
func (c Croston) Name() string {
	switch c.Variant {
	case CrostonSBA:
		return "sba"
	case CrostonTSB:
		return "tsb"
	}
	return "croston"
}

// Fit implements Model.
func (c Croston) Fit(y []float64, m int) (Fitted, error) {
	if len(y) == 0 {
		return nil, ErrTooShort
	}
	const a = crostonAlpha
	var fc, sse float64
	nerr := 0
	switch c.Variant {
	case CrostonTSB:
		nz, sum := 0, 0.0
		for _, v := range y {
			if v != 0 {
				nz++
				sum += v
			}
		}
		if nz == 0 {
			return zeroFitted(c.Name()), nil
		}
		p := float64(nz) / float64(len(y))
		z := sum / float64(nz)
		for _, v := range y {
			e := v - p*z
			sse += e * e
			nerr++
			if v != 0 {
				p += a * (1 - p)
				z += a * (v - z)
			} else {
				p -= a * p
			}
		}
		fc = p * z
	default:
		var z, q float64
		started := false
		gap := 0
		for _, v := range y {
			gap++
			if started {
				f := z / q
				if c.Variant == CrostonSBA {
					f *= 1 - a/2
				}
				e := v - f
				sse += e * e
				nerr++
			}
			if v != 0 {
				if !started {
					z, q, started = v, float64(gap), true
				} else {
					z += a * (v - z)
					q += a * (float64(gap) - q)
				}
				gap = 0
			}
		}
		if !started {
			return zeroFitted(c.Name()), nil
		}
		fc = z / q
		if c.Variant == CrostonSBA {
			fc *= 1 - a/2
		}
	}
	s2 := 0.0
	if nerr > 0 {
		s2 = sse / float64(nerr)
	}
	name := map[CrostonVariant]string{CrostonClassic: "Croston", CrostonSBA: "SBA", CrostonTSB: "TSB"}[c.Variant]
	return &clippedFitted{simpleFitted{name: c.Name(), method: name, f: func(int) (float64, float64) { return fc, s2 }}}, nil
}

func zeroFitted(name string) Fitted {
	return &clippedFitted{simpleFitted{name: name, method: "Zero", f: func(int) (float64, float64) { return 0, 0 }}}
}

// clippedFitted truncates interval bounds at zero (demand is non-negative).
type clippedFitted struct{ simpleFitted }

func (c *clippedFitted) Forecast(h int, levels []float64) Forecast {
	f := c.simpleFitted.Forecast(h, levels)
	for _, lo := range f.Lower {
		for i := range lo {
			lo[i] = math.Max(lo[i], 0)
		}
	}
	return f
}

// Intermittent chooses among Croston, SBA and TSB by the Syntetos-Boylan-
// Croston classification: TSB when the series ends in a zero run longer
// than twice its mean inter-demand interval (possible obsolescence),
// otherwise SBA when demand sizes are erratic (squared coefficient of
// variation > 0.49) and Croston when they are smooth.
type Intermittent struct{}

// Name implements Model.
func (Intermittent) Name() string { return "intermittent" }

// Fit implements Model.
func (Intermittent) Fit(y []float64, m int) (Fitted, error) {
	return Croston{Variant: chooseIntermittent(y)}.Fit(y, m)
}

func chooseIntermittent(y []float64) CrostonVariant {
	var sizes []float64
	trailing := 0
	for _, v := range y {
		if v != 0 {
			sizes = append(sizes, v)
			trailing = 0
		} else {
			trailing++
		}
	}
	if len(sizes) < 2 {
		return CrostonTSB
	}
	adi := float64(len(y)) / float64(len(sizes))
	if float64(trailing) > 2*adi {
		return CrostonTSB
	}
	mu := mean(sizes)
	v := 0.0
	for _, s := range sizes {
		v += (s - mu) * (s - mu)
	}
	v /= float64(len(sizes) - 1)
	if v/(mu*mu) > 0.49 {
		return CrostonSBA
	}
	return CrostonClassic
}

// isIntermittent reports whether a series has many zeros: at least 30% of
// its observations, and at least one non-zero value is non-negative data.
func isIntermittent(y []float64) bool {
	if len(y) == 0 {
		return false
	}
	zeros := 0
	for _, v := range y {
		if v < 0 {
			return false
		}
		if v == 0 {
			zeros++
		}
	}
	return float64(zeros) >= 0.3*float64(len(y))
}
