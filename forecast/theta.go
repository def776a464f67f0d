package forecast

import (
	"math"
)

// Theta is the Theta method of Assimakopoulos and Nikolopoulos (2000) as
// R's forecast::thetaf computes it: simple exponential smoothing (ETS(A,N,N)
// fitted by MSE) with drift equal to half the slope of a linear trend, on
// data seasonally adjusted by classical multiplicative decomposition when
// the lag-m autocorrelation is significant at 90%.
type Theta struct{}

// Name implements Model.
func (Theta) Name() string { return "theta" }

// Fit implements Model.
func (Theta) Fit(y []float64, m int) (Fitted, error) {
	return fitTheta(y, m, 2)
}

// OptimizedTheta is the Theta method with the theta coefficient chosen in
// [1, 5] by minimising the in-sample one-step MSE (after Fiorucci et al.
// 2016): forecasts are (1-1/theta) times the linear trend plus 1/theta
// times SES applied to the theta line theta*y + (1-theta)*trend.
type OptimizedTheta struct{}

// Name implements Model.
func (OptimizedTheta) Name() string { return "otm" }

// Fit implements Model.
func (OptimizedTheta) Fit(y []float64, m int) (Fitted, error) {
	return fitTheta(y, m, 0)
}

// thetaFitted is a fitted Theta model on the seasonally adjusted scale.
type thetaFitted struct {
	name     string
	n        int
	level    float64 // SES level after the last observation
	alpha    float64
	sigma2   float64
	drift    float64   // b/2 for thetaf
	seas     []float64 // last m seasonal indices (nil when not seasonal)
	theta    float64   // 0 for thetaf
	a, b     float64   // linear trend (otm)
	residVar float64
}

// fitTheta fits thetaf (theta == 2) or the optimised variant (theta == 0).
func fitTheta(y []float64, m int, theta float64) (Fitted, error) {
	n := len(y)
	if n < 4 {
		return nil, ErrTooShort
	}
	x := y
	var seas []float64
	if seasonalTest(y, m) {
		s := decompose(y, m, true)
		okSeas := true
		for _, v := range s {
			if math.Abs(v) < 1e-10 || math.IsNaN(v) {
				okSeas = false
			}
		}
		if okSeas {
			x = make([]float64, n)
			for i := range x {
				x[i] = y[i] / s[i]
			}
			seas = append([]float64(nil), s[n-m:]...)
		}
	}
	if theta == 2 {
		ses, err := fitETSSpec(x, etsSpec{'A', 'N', 'N', false}, 1, critMSE)
		if err != nil {
			return nil, err
		}
		_, slope := lsfitIndex(x, 0)
		return &thetaFitted{
			name: "Theta", n: n, level: ses.last[0], alpha: math.Max(ses.par.alpha, 1e-10),
			sigma2: ses.sigma2, drift: slope / 2, seas: seas,
		}, nil
	}
	a, b := lsfitIndex(x, 0)
	z := make([]float64, n)
	var best *etsFit
	fitFor := func(th float64) (*etsFit, float64) {
		for i := range z {
			z[i] = th*x[i] + (1-th)*(a+b*float64(i))
		}
		ses, err := fitETSSpec(z, etsSpec{'A', 'N', 'N', false}, 1, critMSE)
		if err != nil {
			return nil, math.Inf(1)
		}
		// in-sample one-step MSE of the combination: the SES part's error
		// is divided by theta.
		return ses, ses.mse / (th * th)
	}
	th := goldenMin(func(t float64) float64 { _, v := fitFor(t); return v }, 1, 5, 1e-3)
	best, _ = fitFor(th)
	if best == nil {
		return nil, ErrTooShort
	}
	return &thetaFitted{
		name: "OTM", n: n, level: best.last[0], alpha: math.Max(best.par.alpha, 1e-10),
		sigma2: best.sigma2 / (th * th), seas: seas, theta: th, a: a, b: b,
	}, nil
}

// Method implements Fitted.
func (t *thetaFitted) Method() string { return t.name }

// Forecast implements Fitted; intervals are thetaf's:
// mean +- z*sigma*sqrt(1 + j*alpha^2), j = 0..h-1.
func (t *thetaFitted) Forecast(h int, levels []float64) Forecast {
	h = validHorizon(h)
	mu := make([]float64, h)
	v := make([]float64, h)
	fn := float64(t.n)
	for j := range h {
		if t.theta == 0 {
			mu[j] = t.level + t.drift*(float64(j)+(1-math.Pow(1-t.alpha, fn))/t.alpha)
		} else {
			trend := t.a + t.b*float64(t.n+j)
			mu[j] = (1-1/t.theta)*trend + t.level/t.theta
		}
		if t.seas != nil {
			mu[j] *= t.seas[j%len(t.seas)]
		}
		v[j] = t.sigma2 * (float64(j)*t.alpha*t.alpha + 1)
	}
	out := Forecast{Mean: mu, Levels: levels, Model: t.name}
	if len(levels) > 0 {
		out.Lower, out.Upper = normalBounds(mu, v, levels)
	}
	return out
}
