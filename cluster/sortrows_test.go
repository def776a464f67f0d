package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortRows compares sortRows with a comparison sort on (series,
// period, row) for the shapes apply sees: period-major, series-major
// (short and long series), duplicates of (series, period), negative
// periods, ids that share their top bits, small and large.
func TestSortRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ref := func(o []rowOrder) []rowOrder {
		o = slices.Clone(o)
		slices.SortFunc(o, compareRows)
		return o
	}
	sids := make([]uint64, 300)
	for i := range sids {
		sids[i] = rng.Uint64()
	}
	sids[0], sids[1] = 0, ^uint64(0)
	var tmp []rowOrder
	for _, n := range []int{0, 1, 100, 255, 256, 1000, 10000} {
		for _, shape := range []string{"period-major", "series-major", "long-series", "random", "duplicates", "top-bits"} {
			order := make([]rowOrder, n)
			for i := range order {
				var o rowOrder
				switch shape {
				case "period-major":
					o = rowOrder{sid: sids[i%len(sids)], period: int32(19000 + i/len(sids))}
				case "series-major":
					o = rowOrder{sid: sids[i/40%len(sids)], period: int32(i % 40)}
				case "random":
					o = rowOrder{sid: rng.Uint64(), period: rng.Int32() - 1<<30}
				case "long-series":
					o = rowOrder{sid: sids[i/200%len(sids)], period: int32(rng.IntN(300))}
				case "duplicates":
					o = rowOrder{sid: sids[rng.IntN(5)], period: int32(rng.IntN(3)) - 1}
				case "top-bits":
					o = rowOrder{sid: rng.Uint64N(1 << 20), period: int32(rng.IntN(4))}
				}
				o.row = int32(i)
				order[i] = o
			}
			want := ref(order)
			var got []rowOrder
			got, tmp = sortRows(order, tmp)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d %s: not sorted like the reference", n, shape)
			}
		}
	}
}

func BenchmarkSortRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	in := make([]rowOrder, 10000)
	for i := range in {
		in[i] = rowOrder{sid: rng.Uint64(), period: 19000, row: int32(i)}
	}
	order := make([]rowOrder, len(in))
	var tmp []rowOrder
	b.Run("buckets", func(b *testing.B) {
		for b.Loop() {
			copy(order, in)
			order, tmp = sortRows(order, tmp)
		}
	})
	b.Run("pdqsort", func(b *testing.B) {
		for b.Loop() {
			copy(order, in)
			slices.SortFunc(order, compareRows)
		}
	})
}
