package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSeriesSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var none *seriesSet
	none.All(func(uint64) bool { t.Fatal("nil set yields"); return false })
	if none.Has(0) || none.Has(1) || none.Len() != 0 {
		t.Fatal("nil set is not empty")
	}
	var s seriesSet
	model := map[uint64]bool{}
	if s.Has(0) || s.Has(42) || s.Len() != 0 {
		t.Fatal("zero value is not empty")
	}
	// Random ids, clustered ids (same top bits: long probe runs), 0 and
	// the largest id, each added twice.
	var ids []uint64
	for i := range 5000 {
		ids = append(ids, rng.Uint64(), 0xabcd<<48|uint64(i))
	}
	ids = append(ids, 0, ^uint64(0))
	for round := range 2 {
		for _, id := range ids {
			s.Add(id)
			model[id] = true
		}
		if s.Len() != len(model) {
			t.Fatalf("round %d: Len %d, want %d", round, s.Len(), len(model))
		}
	}
	for _, id := range ids {
		if !s.Has(id) {
			t.Fatalf("missing %x", id)
		}
	}
	for range 10000 {
		if id := rng.Uint64(); s.Has(id) != model[id] {
			t.Fatalf("Has(%x) = %v, want %v", id, !model[id], model[id])
		}
	}
	var got []uint64
	s.All(func(id uint64) bool { got = append(got, id); return true })
	want := make([]uint64, 0, len(model))
	for id := range model {
		want = append(want, id)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("All: %d ids, want %d", len(got), len(want))
	}
	n := 0
	s.All(func(uint64) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("All went on after false: %d calls", n)
	}
}

// BenchmarkSeriesSetLookup compares the set with a Go map for what apply
// does: look up a record's series ids, sorted, in a 24,000-series dataset.
func BenchmarkSeriesSetLookup(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]uint64, 24000)
	var s seriesSet
	m := map[uint64]struct{}{}
	for i := range ids {
		ids[i] = rng.Uint64()
		s.Add(ids[i])
		m[ids[i]] = struct{}{}
	}
	probe := slices.Clone(ids[:10000])
	slices.Sort(probe)
	b.Run("set", func(b *testing.B) {
		for b.Loop() {
			for _, id := range probe {
				if !s.Has(id) {
					b.Fatal("missing")
				}
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			for _, id := range probe {
				if _, ok := m[id]; !ok {
					b.Fatal("missing")
				}
			}
		}
	})
}
