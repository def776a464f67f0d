package forecast

import (
	"math/rand/v2"
	"testing"
)

func TestQuantiles7Select(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ps := []float64{0, 0.001, 0.025, 0.1, 0.5, 0.5, 0.9, 0.975, 0.999, 1}
	for _, n := range []int{1, 2, 3, 13, 100, 1000} {
		for rep := range 20 {
			x := make([]float64, n)
			for i := range x {
				x[i] = r.NormFloat64()
				if rep%2 == 0 {
					x[i] = float64(r.IntN(5)) // many ties
				}
			}
			s := sortedCopy(x)
			got := make([]float64, len(ps))
			quantiles7Select(x, ps, got)
			for i, p := range ps {
				if want := quantile7(s, p); got[i] != want {
					t.Fatalf("n=%d p=%g: got %v, want %v", n, p, got[i], want)
				}
			}
		}
	}
}
