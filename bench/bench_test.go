package bench

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/demandflow/demandflow/client"
)

func TestGeneratorDeterministic(t *testing.T) {
	g1, g2 := NewGenerator(7, 50, 24), NewGenerator(7, 50, 24)
	a := g1.Rows(nil, 0, 1000)
	// The same rows, generated in two other chunks.
	b := append(g2.Rows(nil, 0, 400), g2.Rows(nil, 400, 600)...)
	if len(a) != 1000 || len(b) != 1000 {
		t.Fatalf("got %d and %d rows, want 1000", len(a), len(b))
	}
	// Values are seeded per chunk, so only the coordinates must agree
	// across chunkings; the same chunk must agree exactly.
	for i := range a {
		if a[i].ID != int64(i) || a[i].Product != b[i].Product || a[i].Market != b[i].Market || a[i].Month != b[i].Month {
			t.Fatalf("row %d: %+v vs %+v", i, a[i], b[i])
		}
		if a[i].Qty < 0 || a[i].Price <= 0 {
			t.Fatalf("row %d: unrealistic %+v", i, a[i])
		}
	}
	if c := NewGenerator(7, 50, 24).Rows(nil, 0, 1000); c[999] != a[999] {
		t.Errorf("same seed, same chunk: got %+v, want %+v", c[999], a[999])
	}
	nd, _ := EncodeNDJSON(nil, a[:2])
	cs, _ := EncodeCSV(nil, a[:2])
	var m map[string]any
	if err := json.Unmarshal(bytes.SplitN(nd, []byte("\n"), 2)[0], &m); err != nil || m["market"] != "EU-DE" || m["period"] != "2015-01" {
		t.Errorf("ndjson %s: %v %v", nd, m, err)
	}
	if lines := strings.Split(strings.TrimSpace(string(cs)), "\n"); len(lines) != 3 || lines[0] != strings.Join(Header, ",") {
		t.Errorf("csv: %s", cs)
	}
}

var zstdDec, _ = zstd.NewReader(nil)

// fakeNodeCPU is a Config.NodeCPU whose process uses 2 s between calls.
func fakeNodeCPU() func() (time.Duration, bool) {
	var used time.Duration
	return func() (time.Duration, bool) {
		used += 2 * time.Second
		return used, true
	}
}

func TestRun(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]bool{}
	calls := 0
	// The tracking blocks of every ack, as a node records them: the
	// handler starts on arrival, validates for 2 ms and has the entry
	// appended 1 ms later.
	txs := map[string]json.RawMessage{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/v1/tracking/transactions/"); ok && r.Method == http.MethodGet {
			mu.Lock()
			tx, found := txs[id]
			mu.Unlock()
			if !found {
				http.Error(w, `{"error":"no such transaction"}`, http.StatusNotFound)
				return
			}
			_, _ = w.Write(tx)
			return
		}
		arrival := time.Now()
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Encoding") == "zstd" {
			var err error
			if b, err = zstdDec.DecodeAll(b, nil); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		mu.Lock()
		calls++
		fail := calls == 3
		keys[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		n := bytes.Count(b, []byte("\n"))
		txID := "t-" + r.Header.Get("Idempotency-Key")
		at := func(ms float64) time.Time { return arrival.Add(time.Duration(ms * float64(time.Millisecond))) }
		blocks := []map[string]any{
			{"stage": "ingress", "started": at(0), "finished": at(0.5)},
			{"stage": "validate", "started": at(0.5), "finished": at(2)},
			{"stage": "commit", "started": at(2), "finished": at(3)},
		}
		tx, _ := json.Marshal(map[string]any{"node": "fake", "blocks": blocks})
		mu.Lock()
		txs[txID] = tx
		mu.Unlock()
		time.Sleep(time.Until(at(3)))
		_ = json.NewEncoder(w).Encode(map[string]any{"tx_id": txID, "accepted": n, "rejected": 0, "errors": []any{}})
	}))
	defer srv.Close()
	c, _ := client.New(client.Config{Addrs: []string{srv.URL}, Backoff: time.Millisecond})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"rows", Config{Rows: 25000, Batch: 1000, Concurrency: 3}},
		{"rate", Config{Rows: 5000, Batch: 500, Concurrency: 2, Rate: 100000}},
		{"pregen", Config{Rows: 10000, Batch: 1000, Pregen: 3}},
		{"zstd", Config{Rows: 5500, Batch: 1000, Compress: "zstd"}},
		{"zstd pregen", Config{Rows: 5500, Batch: 1000, Pregen: 2, Compress: "zstd"}},
		{"node cpu", Config{Rows: 4000, Batch: 1000, NodeCPU: fakeNodeCPU()}},
		{"slowest", Config{Rows: 6000, Batch: 500, Concurrency: 2, Rate: 50000, Slowest: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Client, cfg.Dataset = c, "ds"
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Compress != "" && rep.MBPerS*rep.ElapsedS*1e6 > float64(cfg.Rows)*20 {
				t.Errorf("%.0f bytes on the wire for %d rows: not compressed", rep.MBPerS*rep.ElapsedS*1e6, cfg.Rows)
			}
			if rep.RowsAcked != cfg.Rows || rep.RowsSent != cfg.Rows || rep.Errors != 0 || rep.LatencyMs.Count != rep.BatchesAcked ||
				rep.LatencyMs.P99 < rep.LatencyMs.P50 || rep.RowsPerS <= 0 {
				t.Errorf("report: %+v", rep)
			}
			// The client's own CPU is always known on Unix; the node's
			// only through NodeCPU, whose fake adds 2 s per call (two
			// calls: before and after the run).
			u := rep.CPU
			if u == nil || u.ClientS < 0 || u.ClientUsPerRow != u.ClientS*1e6/float64(rep.RowsAcked) {
				t.Fatalf("cpu: %+v, want the client's CPU per row", u)
			}
			checkSlowest(t, rep, cfg.Slowest)
			if wantNode := map[bool]float64{true: 2, false: 0}[cfg.NodeCPU != nil]; u.NodeS != wantNode ||
				u.NodeUsPerRow != wantNode*1e6/float64(rep.RowsAcked) {
				t.Errorf("cpu: node %v s (%v us/row), want %v s over %d rows", u.NodeS, u.NodeUsPerRow, wantNode, rep.RowsAcked)
			}
		})
	}
	d := Config{Client: c, Dataset: "ds", Duration: 300 * time.Millisecond, Batch: 100, Interval: 50 * time.Millisecond}
	rep, err := Run(t.Context(), d)
	if err != nil || rep.RowsAcked == 0 || len(rep.Timeline) < 3 || rep.Config.DurationS != 0.3 {
		t.Fatalf("duration run: %+v, %v", rep, err)
	}
	var svg, pngBuf bytes.Buffer
	if err := rep.WritePlot(&svg, "x.svg"); err != nil || !strings.Contains(svg.String(), "<polyline") {
		t.Errorf("svg: %v", err)
	}
	if err := rep.WritePlot(&pngBuf, "x.png"); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&pngBuf); err != nil {
		t.Errorf("png: %v", err)
	}
	if rep.WritePlot(io.Discard, "x.gif") == nil {
		t.Errorf("gif plot: got no error")
	}
	if _, err := Run(t.Context(), Config{Client: c, Dataset: "ds", Compress: "lz4"}); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("compress lz4: got %v, want an error naming it", err)
	}
	if _, err := Run(t.Context(), Config{Client: c, Dataset: "ds", Slowest: -1}); err == nil || !strings.Contains(err.Error(), "slowest -1") {
		t.Errorf("slowest -1: got %v, want an error naming it", err)
	}
	if _, err := Run(t.Context(), Config{Client: c, Dataset: "ds", Format: "arrow"}); err == nil {
		t.Errorf("arrow without an encoder: got no error")
	}
}

// TestRunWarmup checks the steady window: a fake node that answers
// slowly for its first 200 ms, a 300 ms warm-up. The slow acks are all in
// the warm-up, so the steady window has none of them, its acks and rows
// add up, and its node CPU is the third sample of the fake (start, end of
// the warm-up, end) minus the second.
func TestRunWarmup(t *testing.T) {
	var first time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		slow := time.Since(first) < 200*time.Millisecond
		mu.Unlock()
		if slow {
			time.Sleep(40 * time.Millisecond)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"tx_id": "t", "accepted": bytes.Count(b, []byte("\n")), "rejected": 0, "errors": []any{}})
	}))
	defer srv.Close()
	c, _ := client.New(client.Config{Addrs: []string{srv.URL}, Backoff: time.Millisecond})
	cfg := Config{Client: c, Dataset: "ds", Duration: 700 * time.Millisecond, Batch: 100, Concurrency: 2,
		Warmup: 300 * time.Millisecond, NodeCPU: fakeNodeCPU()}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Steady
	if st == nil {
		t.Fatalf("no steady window: %+v", rep)
	}
	if st.WarmupS != 0.3 || math.Abs(st.ElapsedS-(rep.ElapsedS-0.3)) > 1e-6 || st.RowsAcked <= 0 || st.RowsAcked >= rep.RowsAcked ||
		st.LatencyMs.Count*100 != st.RowsAcked || st.RowsPerS != float64(st.RowsAcked)/st.ElapsedS {
		t.Errorf("steady %+v of run %+v: want the acks after 0.3 s over the time left", st, rep)
	}
	if rep.LatencyMs.Max < 40 || st.LatencyMs.Max >= 40 || st.RowsPerS <= rep.RowsPerS {
		t.Errorf("max latency: run %.1f ms, steady %.1f ms; rows/s run %.0f, steady %.0f: want the slow start in the warm-up only",
			rep.LatencyMs.Max, st.LatencyMs.Max, rep.RowsPerS, st.RowsPerS)
	}
	if st.CPU == nil || st.CPU.NodeS != 2 || rep.CPU.NodeS != 4 {
		t.Errorf("cpu: steady %+v, run %+v: want 2 s and 4 s of the fake's samples", st.CPU, rep.CPU)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "after warm-up") || !strings.Contains(table.String(), " 0.3s: ") {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
	// A warm-up the run never gets past reports no window.
	rep, err = Run(t.Context(), Config{Client: c, Dataset: "ds", Rows: 300, Batch: 100, Warmup: time.Hour})
	if err != nil || rep.Steady != nil || rep.RowsAcked != 300 {
		t.Errorf("warm-up longer than the run: steady %+v, %v", rep.Steady, err)
	}
	for _, bad := range []Config{{Warmup: -time.Second}, {Duration: time.Second, Warmup: time.Second}} {
		bad.Client, bad.Dataset = c, "ds"
		if _, err := Run(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "warmup") {
			t.Errorf("warmup %v of a %v run: got %v, want an error naming it", bad.Warmup, bad.Duration, err)
		}
	}
}

// checkSlowest checks Report.Slowest of a run against TestRun's fake
// node: n entries, slowest first, each split into parts that add up to
// its latency, with the fake's 2 ms validate and 1 ms commit.
func checkSlowest(t *testing.T, rep *Report, n int) {
	t.Helper()
	if len(rep.Slowest) != n {
		t.Fatalf("slowest: %d entries, want %d", len(rep.Slowest), n)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if got := strings.Contains(table.String(), "slowest acks"); got != (n > 0) {
		t.Errorf("table lists slowest acks: %v, want %v:\n%s", got, n > 0, table.String())
	}
	seen := map[int64]bool{}
	for i, a := range rep.Slowest {
		s := a.Server
		if s == nil {
			t.Fatalf("slowest[%d] has no breakdown: %+v", i, a)
		}
		sum := a.QueueMs + s.UploadMs + s.ValidateMs + s.CommitMs + s.AfterAppendMs
		if i > 0 && a.TotalMs > rep.Slowest[i-1].TotalMs || seen[a.Seq] || a.TotalMs > rep.LatencyMs.Max+0.01 ||
			s.ValidateMs != 2 || s.CommitMs != 1 || s.UploadMs < 0 || s.AfterAppendMs < 0 || s.Node != "fake" ||
			sum < a.TotalMs-0.01 || sum > a.TotalMs+0.01 || !strings.HasPrefix(a.TxID, "t-") {
			t.Errorf("slowest[%d] = %+v %+v: want slowest first, distinct, validate 2 and commit 1 ms, parts adding up", i, a, *s)
		}
		seen[a.Seq] = true
	}
}

// TestSlowestWithoutTracking checks that acks whose transactions the
// node cannot find are still listed, with the reason.
func TestSlowestWithoutTracking(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.Error(w, `{"error":"tracking is off"}`, http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.NewEncoder(w).Encode(map[string]any{"tx_id": "t", "accepted": bytes.Count(b, []byte("\n")), "errors": []any{}})
	}))
	defer srv.Close()
	c, _ := client.New(client.Config{Addrs: []string{srv.URL}, Backoff: time.Millisecond, MaxRetries: 1})
	rep, err := Run(t.Context(), Config{Client: c, Dataset: "ds", Rows: 3000, Batch: 1000, Slowest: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Slowest) != 3 {
		t.Fatalf("slowest: %d entries, want all 3 acks", len(rep.Slowest))
	}
	for _, a := range rep.Slowest {
		if a.Server != nil || !strings.Contains(a.Note, "tracking lookup") || a.TotalMs <= 0 {
			t.Errorf("slowest %+v: want no breakdown and a note naming the failed lookup", a)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "tracking lookup") {
		t.Errorf("table (%v) lacks the note:\n%s", err, table.String())
	}
}

func TestAppendResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	other := "# Results\n\n## Decoders\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"
	_ = os.WriteFile(path, []byte(other), 0o644)
	rep := &Report{Config: RunConfig{Format: "ndjson", Batch: 10, Concurrency: 2, Labels: map[string]string{"proto": "h3"}}, RowsAcked: 5}
	for range 2 {
		if err := AppendResult(path, rep, "cmd"); err != nil {
			t.Fatal(err)
		}
	}
	// Another section after ours must stay after it.
	b, _ := os.ReadFile(path)
	_ = os.WriteFile(path, append(b, "\n## Later\n\ntext\n"...), 0o644)
	if err := AppendResult(path, rep, "cmd3"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	s := string(b)
	if !strings.HasPrefix(s, other) || strings.Count(s, "| h3 | ndjson |") != 3 || strings.Count(s, resultsHeading) != 1 ||
		strings.Index(s, "`cmd3`") > strings.Index(s, "## Later") {
		t.Errorf("RESULTS.md:\n%s", s)
	}
	// A run with a warm-up shows its steady rows/s beside the whole run's.
	rep.RowsPerS, rep.Steady = 1000, &Steady{WarmupS: 1, RowsPerS: 1500}
	if err := AppendResult(path, rep, "cmd4"); err != nil {
		t.Fatal(err)
	}
	if b, _ = os.ReadFile(path); !strings.Contains(string(b), "| 5 | 1000 (1500 after 1s) |") {
		t.Errorf("RESULTS.md with a warm-up:\n%s", b)
	}
}
