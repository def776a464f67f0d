package forecast

import (
	"math"
	"testing"
)

// TestETSFilterClasses checks every specialised likelihood loop against
// the generic one (which divides differently for multiplicative seasons,
// hence the tolerance): criterion, SSE and final state.
func TestETSFilterClasses(t *testing.T) {
	y := synthMonthly(50, 2)
	for _, e := range "AM" {
		for _, tr := range []string{"N", "A", "Ad"} {
			for _, s := range "NAM" {
				spec := string(e) + tr + string(s)
				t.Run(spec, func(t *testing.T) {
					sp, err := parseETSSpec(spec)
					if err != nil {
						t.Fatal(err)
					}
					p := etsParams{alpha: 0.3, beta: 0.05, gamma: 0.1, phi: 1}
					if sp.damped {
						p.phi = 0.9
					}
					m := 12
					st := etsInitState(y, sp, m)
					if sp.season != 'N' {
						st = append(st, 1) // the implied last season; any value will do
					}
					st2 := append([]float64(nil), st...)
					ring := make([]float64, m)
					lik, sse, ok := etsFilter(y, sp, m, p, st, ring, nil)
					lik2, sse2, ok2 := etsFilterGeneric(y, sp, m, p, st2, ring, make([]float64, len(y)))
					if !ok || !ok2 {
						t.Fatalf("ok %v, generic %v", ok, ok2)
					}
					if !approx(lik, lik2, 1e-9) || !approx(sse, sse2, 1e-9) {
						t.Errorf("lik, sse: got %v %v, want %v %v", lik, sse, lik2, sse2)
					}
					for i := range st {
						if !approx(st[i], st2[i], 1e-9) {
							t.Errorf("state %d: got %v, want %v", i, st[i], st2[i])
						}
					}
					if math.IsNaN(lik) {
						t.Error("lik is NaN")
					}
				})
			}
		}
	}
}
