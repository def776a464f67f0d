package forecast

import (
	"math"
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

func TestTailQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	draws := map[string]func() float64{
		"normal":    r.NormFloat64,
		"lognormal": func() float64 { return math.Exp(1.5 * r.NormFloat64()) },
		"ties":      func() float64 { return float64(r.IntN(5)) },
		"left-skew": func() float64 { return -math.Exp(r.NormFloat64()) },
	}
	for _, ps := range [][]float64{{0.025, 0.1, 0.9, 0.975}, {0.05, 0.95}, {0.001, 0.999}, {0, 1}, {0.3, 0.5, 0.7}, {0.1}, {0.9}} {
		for name, draw := range draws {
			for _, n := range []int{1, 2, 3, 13, 100, 1000} {
				tq := newTailQuantiles(ps, n)
				for range 20 {
					x := make([]float64, n)
					for i := range x {
						x[i] = draw()
					}
					s := sortedCopy(x)
					got := make([]float64, len(ps))
					tq.quantiles(x, got)
					for i, p := range ps {
						if want := quantile7(s, p); got[i] != want {
							t.Fatalf("%s n=%d ps=%v p=%g: got %v, want %v", name, n, ps, p, got[i], want)
						}
					}
				}
			}
		}
	}
}
