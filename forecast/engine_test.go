package forecast

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// buildInput makes ids and a List<Float64> of series.
func buildInput(mem memory.Allocator, series [][]float64) (*array.Uint64, *array.List) {
	ib := array.NewUint64Builder(mem)
	defer ib.Release()
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Float64)
	defer lb.Release()
	vb := lb.ValueBuilder().(*array.Float64Builder)
	for i, s := range series {
		ib.Append(uint64(100 + i))
		lb.Append(true)
		vb.AppendValues(s, nil)
	}
	return ib.NewUint64Array(), lb.NewListArray()
}

func engineSeries(k int) [][]float64 {
	out := make([][]float64, k)
	for i := range out {
		if i%5 == 4 {
			out[i] = synthIntermittent(48, uint64(i))
		} else {
			out[i] = synthMonthly(48, uint64(i))
		}
	}
	return out
}

func TestEngineDeterministic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids, vals := buildInput(mem, engineSeries(20))
	defer ids.Release()
	defer vals.Release()
	req := Request{Model: "auto", Horizon: 6, SeasonLength: 12, Levels: []float64{80, 95}, LastPeriod: make([]int64, 20)}
	for i := range req.LastPeriod {
		req.LastPeriod[i] = 1000
	}
	var ref arrow.RecordBatch
	for _, workers := range []int{1, 2, 4} {
		e, err := NewEngine(Config{Workers: workers, ChunkSize: 3, Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		calls, last := 0, 0
		rec, err := e.Run(t.Context(), ids, vals, req, func(done, total int) { calls++; last = done })
		if err != nil {
			t.Fatal(err)
		}
		if last != 20 || calls != 7 {
			t.Errorf("workers=%d: progress last=%d calls=%d, want 20 and 7", workers, last, calls)
		}
		if got, want := rec.NumRows(), int64(20*6); got != want {
			t.Errorf("rows: got %d, want %d", got, want)
		}
		if got := rec.Schema().Field(5).Name; got != "hi_80" {
			t.Errorf("field 5: got %s, want hi_80", got)
		}
		if p := rec.Column(2).(*array.Int64).Value(0); p != 1001 {
			t.Errorf("period: got %d, want 1001", p)
		}
		if ref == nil {
			ref = rec
			defer ref.Release()
			continue
		}
		if !array.RecordEqual(ref, rec) {
			t.Errorf("workers=%d: output differs from workers=1", workers)
		}
		rec.Release()
	}
}

func TestEngineCancel(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids, vals := buildInput(mem, engineSeries(10))
	defer ids.Release()
	defer vals.Release()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e, _ := NewEngine(Config{Workers: 2, ChunkSize: 1, Allocator: mem})
	_, err := e.Run(ctx, ids, vals, Request{Model: "theta", Horizon: 3, SeasonLength: 12}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestEngineBadRequest(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids, vals := buildInput(mem, engineSeries(2))
	defer ids.Release()
	defer vals.Release()
	e, _ := NewEngine(Config{Allocator: mem})
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"zero horizon", Request{Horizon: 0}},
		{"bad level", Request{Horizon: 2, Levels: []float64{100}}},
		{"unknown model", Request{Horizon: 2, Model: "prophet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Run(t.Context(), ids, vals, tc.req, nil); err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
}

func BenchmarkEngine(b *testing.B) {
	series := make([][]float64, 64)
	for i := range series {
		series[i] = synthMonthly(120, uint64(i))
	}
	mem := memory.NewGoAllocator()
	ids, vals := buildInput(mem, series)
	defer ids.Release()
	defer vals.Release()
	e, _ := NewEngine(Config{ChunkSize: 4})
	for _, model := range []string{"ets", "auto"} {
		b.Run("model="+model, func(b *testing.B) {
			req := Request{Model: model, Horizon: 18, SeasonLength: 12, Levels: []float64{80, 95}}
			b.ReportAllocs()
			for b.Loop() {
				rec, err := e.Run(b.Context(), ids, vals, req, nil)
				if err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
			b.ReportMetric(float64(len(series)*b.N)/b.Elapsed().Seconds(), "series/s")
		})
	}
}
