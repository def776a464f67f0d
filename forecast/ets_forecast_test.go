package forecast

import (
	"math/rand/v2"
	"testing"
)

// TestSimSeasonM checks that the multiplicative-season path simulation
// draws exactly the paths of the one-step-at-a-time simulation.
func TestSimSeasonM(t *testing.T) {
	y := synthMonthly(96, 3)
	for _, spec := range []string{"MNM", "MAM", "MAdM", "ANM", "AAdM"} {
		t.Run(spec, func(t *testing.T) {
			f, err := ETS{Spec: spec}.Fit(y, 12)
			if err != nil {
				t.Fatal(err)
			}
			ef := f.(*etsFitted).f
			const h = 15
			got := make([]float64, h*etsSimPaths)
			want := make([]float64, h*etsSimPaths)
			etsSimSeasonM(ef, rand.New(rand.NewPCG(1, 2)), 0.1, h, got)
			etsSimAny(ef, rand.New(rand.NewPCG(1, 2)), 0.1, h, want)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("path %d step %d: got %v, want %v", i%etsSimPaths, i/etsSimPaths, got[i], want[i])
				}
			}
		})
	}
}
