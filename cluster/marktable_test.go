package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMarkTableModel runs random sets, puts and deletes against a Go map
// and compares every lookup, the count and the iteration; it also checks
// that sweeps keep exactly the transactions still referred to. The ids are
// drawn from a pool of random ones (series ids are hashes), including 0
// and ids at the top of the range so that probe runs wrap.
func TestMarkTableModel(t *testing.T) {
	for _, span := range []uint64{8, 200, 5000} {
		t.Run(fmt.Sprint(span), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(span, 7))
			pool := make([]uint64, span)
			for i := range pool {
				pool[i] = rng.Uint64()
			}
			pool[0], pool[1], pool[2] = 0, ^uint64(0), ^uint64(0)-1
			id := func() uint64 { return pool[rng.Uint64N(span)] }
			var tab markTable
			model := map[uint64]dirtyMark{}
			index := uint64(0)
			for op := range 40000 {
				sid := id()
				switch r := rng.IntN(10); {
				case r < 4: // a touch of a few series
					index++
					tx := fmt.Sprintf("tx%d", index)
					if rng.IntN(5) == 0 {
						tx = "" // untracked, or a forced refresh
					}
					tab.SetTx(index, tx)
					for range 1 + rng.IntN(4) {
						s := id()
						tab.Put(s, index)
						model[s] = dirtyMark{index: index, tx: tx}
					}
				case r < 6:
					index++
					m := dirtyMark{index: index, tx: fmt.Sprintf("tx%d", index)}
					tab.Set(sid, m)
					model[sid] = m
				default:
					tab.Delete(sid)
					delete(model, sid)
				}
				if got, want := tab.Len(), len(model); got != want {
					t.Fatalf("op %d: %d marks, want %d", op, got, want)
				}
				for range 3 {
					s := id()
					got, gok := tab.Get(s)
					want, wok := model[s]
					if got != want || gok != wok {
						t.Fatalf("op %d: Get(%d) = %v %v, want %v %v", op, s, got, gok, want, wok)
					}
				}
			}
			seen := map[uint64]dirtyMark{}
			for sid, m := range tab.All {
				if _, dup := seen[sid]; dup {
					t.Fatalf("All yields %d twice", sid)
				}
				seen[sid] = m
			}
			if len(seen) != len(model) {
				t.Fatalf("All yields %d marks, want %d", len(seen), len(model))
			}
			for sid, m := range model {
				if seen[sid] != m {
					t.Fatalf("All: %d = %v, want %v", sid, seen[sid], m)
				}
			}
			tab.sweepTxs()
			used := map[uint64]bool{}
			for _, m := range model {
				if m.tx != "" {
					used[m.index] = true
				}
			}
			if len(tab.txs) != len(used) {
				t.Errorf("%d transactions after a sweep, want the %d in use", len(tab.txs), len(used))
			}
		})
	}
}

// BenchmarkMarkTablePut: a period-major feed's publish, parts of 10,000
// sorted series out of 24,000, against the Go map it replaced.
func BenchmarkMarkTablePut(b *testing.B) {
	const series, part, parts = 24000, 10000, 12
	rng := rand.New(rand.NewPCG(1, 2))
	all := make([]uint64, series)
	for i := range all {
		all[i] = rng.Uint64()
	}
	touches := make([][]uint64, parts)
	for i := range touches {
		rng.Shuffle(len(all), func(x, y int) { all[x], all[y] = all[y], all[x] })
		touches[i] = slices.Sorted(slices.Values(all[:part]))
	}
	b.Run("table", func(b *testing.B) {
		var tab markTable
		i := 0
		for b.Loop() {
			tab.SetTx(uint64(i), "01JXYZABCDEFGHJKMNPQRSTVWX")
			for _, sid := range touches[i%parts] {
				tab.Put(sid, uint64(i))
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*part), "ns/put")
	})
	b.Run("map", func(b *testing.B) {
		m := map[uint64]dirtyMark{}
		i := 0
		for b.Loop() {
			mk := dirtyMark{index: uint64(i), tx: "01JXYZABCDEFGHJKMNPQRSTVWX"}
			for _, sid := range touches[i%parts] {
				m[sid] = mk
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*part), "ns/put")
	})
}
