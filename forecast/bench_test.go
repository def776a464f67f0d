package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
)

// synthMonthly returns a deterministic positive monthly series: level 100,
// gentle trend, multiplicative seasonality and 5% noise.
func synthMonthly(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	y := make([]float64, n)
	for t := range y {
		s := 1 + 0.2*math.Sin(2*math.Pi*float64(t)/12)
		y[t] = (100 + 0.3*float64(t)) * s * (1 + 0.05*r.NormFloat64())
	}
	return y
}

func synthIntermittent(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 9))
	y := make([]float64, n)
	for t := range y {
		if r.Float64() < 0.3 {
			y[t] = float64(1 + r.IntN(10))
		}
	}
	return y
}

func BenchmarkAutoETS(b *testing.B) {
	const nSeries = 16
	ys := make([][]float64, nSeries)
	for i := range ys {
		ys[i] = synthMonthly(120, uint64(i))
	}
	b.Run("monthly-n120", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			f, err := (ETS{}).Fit(ys[i%nSeries], 12)
			if err != nil {
				b.Fatal(err)
			}
			f.Forecast(18, []float64{80, 95})
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/series")
	})
}

// BenchmarkEnsemble is the default "auto" model (AutoETS with its damped
// member, and Theta) on the series of BenchmarkAutoETS.
func BenchmarkEnsemble(b *testing.B) {
	const nSeries = 16
	ys := make([][]float64, nSeries)
	for i := range ys {
		ys[i] = synthMonthly(120, uint64(i))
	}
	b.Run("monthly-n120", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			f, err := (Ensemble{}).Fit(ys[i%nSeries], 12)
			if err != nil {
				b.Fatal(err)
			}
			f.Forecast(18, []float64{80, 95})
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/series")
	})
}

func BenchmarkTheta(b *testing.B) {
	y := synthMonthly(120, 1)
	b.ReportAllocs()
	for b.Loop() {
		f, err := (Theta{}).Fit(y, 12)
		if err != nil {
			b.Fatal(err)
		}
		f.Forecast(18, []float64{80, 95})
	}
}

func BenchmarkCroston(b *testing.B) {
	y := synthIntermittent(120, 1)
	b.ReportAllocs()
	for b.Loop() {
		f, err := (Croston{Variant: CrostonSBA}).Fit(y, 12)
		if err != nil {
			b.Fatal(err)
		}
		f.Forecast(18, []float64{80, 95})
	}
}
