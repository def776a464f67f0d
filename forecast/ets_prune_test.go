package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
)

func synthVaried(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 11))
	lvl := 50 + 100*r.Float64()
	tr := (r.Float64() - 0.5) * 1.0
	amp := 0.4 * r.Float64()
	noise := 0.02 + 0.15*r.Float64()
	mult := r.IntN(2) == 0
	y := make([]float64, n)
	rw := 0.0
	for t := range y {
		rw += r.NormFloat64() * noise * lvl * 0.3
		s := amp * math.Sin(2*math.Pi*float64(t)/12+float64(seed))
		base := lvl + tr*float64(t) + rw
		if mult {
			y[t] = base * (1 + s) * (1 + noise*r.NormFloat64())
		} else {
			y[t] = base + s*lvl + noise*lvl*r.NormFloat64()
		}
		y[t] = math.Max(y[t], 1)
	}
	return y
}

func TestPruneAgreement(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow")
	}
	agree, total := 0, 0
	for i := range 40 {
		y := synthVaried(120, uint64(i))
		got, _ := autoETS(y, 12)
		saved := etsStages
		etsStages = []int{etsMaxIt}
		want, _ := autoETS(y, 12)
		etsStages = saved
		total++
		if got.spec == want.spec {
			agree++
		} else {
			t.Logf("series %d: pruned %v (aicc %.2f), full %v (aicc %.2f)", i, got.spec, got.aicc, want.spec, want.aicc)
		}
	}
	t.Logf("pruned search picks the full search's model for %d/%d synthetic monthly series", agree, total)
	if agree < total*9/10 {
		t.Errorf("agreement %d/%d, want >= 90%%", agree, total)
	}
}
