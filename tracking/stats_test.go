package tracking

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	// Bucket i in 1..62 holds [ceil(sqrt(2^(i-1))), ceil(sqrt(2^i))) µs.
	tests := []struct {
		d    time.Duration
		want int
		ms   float64 // representative value
	}{
		{0, 0, 0.0005},
		{999 * time.Nanosecond, 0, 0.0005},
		{time.Microsecond, 1, 0.0015},        // [1, 2)
		{2 * time.Millisecond, 22, 1.7485},   // [1449, 2048)
		{4 * time.Millisecond, 24, 3.4965},   // [2897, 4096)
		{10 * time.Millisecond, 27, 9.889},   // [8192, 11586)
		{50 * time.Millisecond, 32, 55.9385}, // [46341, 65536)
		{100 * time.Hour, 63, float64(histBound[62]) / 1000},
	}
	for _, tc := range tests {
		got := histIndex(tc.d)
		if got != tc.want {
			t.Errorf("histIndex(%v): got %d, want %d", tc.d, got, tc.want)
		}
		if v := histValue(got); math.Abs(v-tc.ms) > 1e-9 {
			t.Errorf("histValue(%d): got %v ms, want %v", got, v, tc.ms)
		}
	}
}

// statsFixture records two transactions: tx1 (dataset a, http, node n1) in
// minute 10:00 with all four required stages, tx2 (dataset b, file, node
// n2) in minute 10:01 with ingress and a failed validate.
func statsFixture(t *testing.T) *Store {
	s := newMemStore(t, Config{})
	tx1, tx2 := txid(t0, 1), txid(t0.Add(time.Minute), 2)
	b := func(st Stage, status BlockStatus, start time.Time, d time.Duration, in, out, bytes int64, cpu time.Duration, node string) Block {
		x := blk(st, status, start, d, in, out)
		x.Bytes, x.CPUTime, x.Node = bytes, cpu, node
		return x
	}
	ms := time.Millisecond
	update(t, s, func(rec *Recorder) error {
		if err := rec.RecordTransaction(Transaction{ID: tx1, Dataset: "a", Source: SourceHTTP, In: 10, Accepted: 8, Rejected: 2}); err != nil {
			return err
		}
		if err := rec.RecordTransaction(Transaction{ID: tx2, Dataset: "b", Source: SourceFile, In: 5}); err != nil {
			return err
		}
		for _, x := range []Block{
			b(StageIngress, BlockSuccess, t0, 2*ms, 10, 10, 1000, ms, "n1"),
			b(StageValidate, BlockSuccess, t0.Add(2*ms), 10*ms, 10, 8, 0, 4*ms, "n1"),
			b(StageCommit, BlockSuccess, t0.Add(12*ms), 50*ms, 8, 8, 0, 0, "n1"),
			b(StageApply, BlockSuccess, t0.Add(62*ms), 10*ms, 8, 8, 800, 2*ms, "n1"),
		} {
			if err := rec.RecordBlock(tx1, x); err != nil {
				return err
			}
		}
		m1 := t0.Add(time.Minute)
		for _, x := range []Block{
			b(StageIngress, BlockSuccess, m1, 4*ms, 5, 5, 500, ms, "n2"),
			b(StageValidate, BlockFailed, m1.Add(4*ms), 10*ms, 5, 0, 0, ms, "n2"),
		} {
			if err := rec.RecordBlock(tx2, x); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}

func TestStats(t *testing.T) {
	s := statsFixture(t)
	m1 := t0.Add(time.Minute)
	g := func(group string, st Stage, blocks, failedBlocks, in, ok, failed int64, p50, p99, latS float64, bytes int64, cpuS float64) StatsGroup {
		return StatsGroup{Group: group, Stage: st, Blocks: blocks, FailedBlocks: failedBlocks, In: in, OK: ok, Failed: failed,
			P50MS: p50, P99MS: p99, LatencySeconds: latS, Bytes: bytes, CPUSeconds: cpuS}
	}
	tests := []struct {
		name string
		q    StatsQuery
		want []StatsBucket
	}{
		{
			name: "by stage per minute",
			q:    StatsQuery{From: t0, To: t0.Add(2 * time.Minute)},
			want: []StatsBucket{
				{Start: t0, Groups: []StatsGroup{
					g("ingress", StageIngress, 1, 0, 10, 10, 0, 1.7485, 1.7485, 0.002, 1000, 0.001),
					g("validate", StageValidate, 1, 0, 10, 8, 2, 9.889, 9.889, 0.010, 0, 0.004),
					g("commit", StageCommit, 1, 0, 8, 8, 0, 55.9385, 55.9385, 0.050, 0, 0),
					g("apply", StageApply, 1, 0, 8, 8, 0, 9.889, 9.889, 0.010, 800, 0.002),
				}},
				{Start: m1, Groups: []StatsGroup{
					g("ingress", StageIngress, 1, 0, 5, 5, 0, 3.4965, 3.4965, 0.004, 500, 0.001),
					g("validate", StageValidate, 1, 1, 5, 0, 5, 9.889, 9.889, 0.010, 0, 0.001),
				}},
			},
		},
		{
			name: "by dataset per hour",
			q:    StatsQuery{From: t0, To: t0.Add(time.Hour), Bucket: time.Hour, By: "dataset"},
			want: []StatsBucket{{Start: t0, Groups: []StatsGroup{
				g("a", StageIngress, 1, 0, 10, 10, 0, 1.7485, 1.7485, 0.002, 1000, 0.001),
				g("a", StageValidate, 1, 0, 10, 8, 2, 9.889, 9.889, 0.010, 0, 0.004),
				g("a", StageCommit, 1, 0, 8, 8, 0, 55.9385, 55.9385, 0.050, 0, 0),
				g("a", StageApply, 1, 0, 8, 8, 0, 9.889, 9.889, 0.010, 800, 0.002),
				g("b", StageIngress, 1, 0, 5, 5, 0, 3.4965, 3.4965, 0.004, 500, 0.001),
				g("b", StageValidate, 1, 1, 5, 0, 5, 9.889, 9.889, 0.010, 0, 0.001),
			}}},
		},
		{
			name: "by node from the second minute",
			q:    StatsQuery{From: m1, To: t0.Add(time.Hour), By: "node"},
			want: []StatsBucket{{Start: m1, Groups: []StatsGroup{
				g("n2", StageIngress, 1, 0, 5, 5, 0, 3.4965, 3.4965, 0.004, 500, 0.001),
				g("n2", StageValidate, 1, 1, 5, 0, 5, 9.889, 9.889, 0.010, 0, 0.001),
			}}},
		},
		{
			name: "by source, one day bucket",
			q:    StatsQuery{From: t0.Add(-10 * time.Hour), To: t0.Add(14 * time.Hour), Bucket: 24 * time.Hour, By: "source"},
			want: []StatsBucket{{Start: t0.Add(-10 * time.Hour), Groups: []StatsGroup{
				g("file", StageIngress, 1, 0, 5, 5, 0, 3.4965, 3.4965, 0.004, 500, 0.001),
				g("file", StageValidate, 1, 1, 5, 0, 5, 9.889, 9.889, 0.010, 0, 0.001),
				g("http", StageIngress, 1, 0, 10, 10, 0, 1.7485, 1.7485, 0.002, 1000, 0.001),
				g("http", StageValidate, 1, 0, 10, 8, 2, 9.889, 9.889, 0.010, 0, 0.004),
				g("http", StageCommit, 1, 0, 8, 8, 0, 55.9385, 55.9385, 0.050, 0, 0),
				g("http", StageApply, 1, 0, 8, 8, 0, 9.889, 9.889, 0.010, 800, 0.002),
			}}},
		},
		{
			name: "empty range",
			q:    StatsQuery{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Stats(t.Context(), nil, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Buckets) != len(tc.want) {
				t.Fatalf("buckets: got %d (%+v), want %d", len(res.Buckets), res.Buckets, len(tc.want))
			}
			for i, b := range res.Buckets {
				w := tc.want[i]
				if !b.Start.Equal(w.Start) {
					t.Errorf("bucket %d start: got %v, want %v", i, b.Start, w.Start)
				}
				if len(b.Groups) != len(w.Groups) {
					t.Errorf("bucket %d: got %d groups %+v, want %d", i, len(b.Groups), b.Groups, len(w.Groups))
					continue
				}
				for j := range b.Groups {
					if !groupEqual(b.Groups[j], w.Groups[j]) {
						t.Errorf("bucket %d group %d:\ngot  %+v\nwant %+v", i, j, b.Groups[j], w.Groups[j])
					}
				}
			}
		})
	}

	res, err := s.Stats(t.Context(), nil, StatsQuery{From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bottleneck != StageCommit {
		t.Errorf("bottleneck: got %q, want commit", res.Bottleneck)
	}
	wantStages := []StageSummary{
		{StatsGroup: g("ingress", StageIngress, 2, 0, 15, 15, 0, 1.7485, 3.4965, 0.006, 1500, 0.002), Share: 6.0 / 86},
		{StatsGroup: g("validate", StageValidate, 2, 1, 15, 8, 7, 9.889, 9.889, 0.020, 0, 0.005), Share: 20.0 / 86},
		{StatsGroup: g("commit", StageCommit, 1, 0, 8, 8, 0, 55.9385, 55.9385, 0.050, 0, 0), Share: 50.0 / 86},
		{StatsGroup: g("apply", StageApply, 1, 0, 8, 8, 0, 9.889, 9.889, 0.010, 800, 0.002), Share: 10.0 / 86},
	}
	if len(res.Stages) != len(wantStages) {
		t.Fatalf("stages: got %+v, want %+v", res.Stages, wantStages)
	}
	for i, st := range res.Stages {
		if !groupEqual(st.StatsGroup, wantStages[i].StatsGroup) || math.Abs(st.Share-wantStages[i].Share) > 1e-9 {
			t.Errorf("stage %d:\ngot  %+v\nwant %+v", i, st, wantStages[i])
		}
	}

	for _, bad := range []StatsQuery{
		{From: t0, To: t0.Add(time.Hour), By: "color"},
		{From: t0, To: t0.Add(time.Hour), Bucket: 90 * time.Second},
		{From: t0, To: t0},
		{To: t0},
	} {
		if _, err := s.Stats(t.Context(), nil, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Stats(%+v): got %v, want ErrInvalid", bad, err)
		}
	}
}

func groupEqual(a, b StatsGroup) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9 }
	return a.Group == b.Group && a.Stage == b.Stage && a.Blocks == b.Blocks && a.FailedBlocks == b.FailedBlocks &&
		a.In == b.In && a.OK == b.OK && a.Failed == b.Failed && a.Skipped == b.Skipped && a.Bytes == b.Bytes &&
		near(a.P50MS, b.P50MS) && near(a.P99MS, b.P99MS) && near(a.LatencySeconds, b.LatencySeconds) && near(a.CPUSeconds, b.CPUSeconds)
}
