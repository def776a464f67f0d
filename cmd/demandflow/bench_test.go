package main

import (
	"cmp"
	"compress/gzip"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/demandflow/demandflow/bench"
	"github.com/demandflow/demandflow/internal/zstdbody"
)

// TestBenchIngestLocal runs `bench ingest --local` and validates the JSON
// report's schema and the plots.
func TestBenchIngestLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; skipped with -short")
	}
	dir := t.TempDir()
	for _, tc := range []struct{ proto, format, compress, plot string }{
		{"h1", "ndjson", "none", "p.svg"}, {"h3", "arrow", "none", "p.png"}, {"h3", "ndjson", "", "p.svg"}, // "": the default, zstd
	} {
		t.Run(tc.proto+"/"+tc.format+"/"+tc.compress, func(t *testing.T) {
			js, plot, results := filepath.Join(dir, tc.proto+".json"), filepath.Join(dir, tc.plot), filepath.Join(dir, "RESULTS.md")
			prof := filepath.Join(dir, tc.proto+".pprof")
			args := []string{"bench", "ingest", "--local", "--proto", tc.proto, "--format", tc.format, "--rows", "50000",
				"--batch", "5000", "--concurrency", "4", "--json", js, "--plot", plot, "--results", results, "--quiet",
				"--cpuprofile", prof}
			if tc.compress != "" {
				args = append(args, "--compress", tc.compress)
			} else {
				args = append(args, "--slowest", "3", "--warmup", "10ms")
			}
			compress := cmp.Or(tc.compress, "zstd")
			out, errOut, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "rows acked      50000 of 50000") {
				t.Errorf("table:\n%s", out)
			}
			b, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			var rep map[string]any
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			num := func(m map[string]any, k string) float64 {
				v, ok := m[k].(float64)
				if !ok {
					t.Errorf("report %s: got %T %v, want a number", k, m[k], m[k])
				}
				return v
			}
			for _, k := range []string{"schema_version", "rows_sent", "bytes_sent", "rows_acked", "rows_accepted", "rows_rejected",
				"bytes_acked", "batches", "batches_acked", "replayed", "errors", "retries", "elapsed_s", "rows_per_s", "mb_per_s"} {
				num(rep, k)
			}
			if num(rep, "schema_version") != 1 || num(rep, "rows_acked") != 50000 || num(rep, "batches_acked") != 10 ||
				num(rep, "errors") != 0 || num(rep, "rows_per_s") <= 0 || rep["kind"] != "ingest" {
				t.Errorf("report: %s", b)
			}
			lat, _ := rep["latency_ms"].(map[string]any)
			var prev float64
			for _, k := range []string{"min", "p50", "p90", "p99", "p999", "max"} {
				v := num(lat, k)
				if v <= 0 || v < prev {
					t.Errorf("latency_ms.%s = %v: want positive and >= the previous percentile", k, v)
				}
				prev = v
			}
			if num(lat, "count") != 10 {
				t.Errorf("latency_ms.count: want 10")
			}
			// --local reads the node's CPU from /proc (Linux, as in CI).
			cpu, _ := rep["cpu"].(map[string]any)
			if cpu == nil || num(cpu, "client_s") < 0 || runtime.GOOS == "linux" &&
				(num(cpu, "node_s") <= 0 || num(cpu, "node_us_per_row") != num(cpu, "node_s")*1e6/50000) {
				t.Errorf("cpu: %v, want the client's and the node's CPU (node_us_per_row = node_s/rows)", cpu)
			}
			if runtime.GOOS == "linux" && !strings.Contains(out, "us/row), node ") {
				t.Errorf("table lacks the cpu line:\n%s", out)
			}
			cfg, _ := rep["config"].(map[string]any)
			labels, _ := cfg["labels"].(map[string]any)
			if cfg["format"] != tc.format || num(cfg, "batch") != 5000 || labels["proto"] != tc.proto {
				t.Errorf("config: %v", cfg)
			}
			if want := strings.TrimPrefix(compress, "none"); cfg["compress"] != nil && cfg["compress"] != want ||
				want != "" && (cfg["compress"] != want || num(rep, "bytes_sent") > 50000*20) {
				t.Errorf("compress %s: config %v, %v bytes sent", compress, cfg, rep["bytes_sent"])
			}
			// --warmup: the acks after it, with their own latency and CPU.
			if st, _ := rep["steady"].(map[string]any); tc.compress == "" {
				if st == nil || num(st, "warmup_s") != 0.01 || num(st, "rows_acked") <= 0 || num(st, "rows_acked") > 50000 ||
					num(st, "rows_per_s") <= 0 || st["latency_ms"] == nil || st["cpu"] == nil || !strings.Contains(out, "after warm-up") || !strings.Contains(out, " 0.01s: ") {
					t.Errorf("steady: %v\n%s", st, out)
				}
			} else if st != nil {
				t.Errorf("steady without --warmup: %v", st)
			}
			// --slowest 3: the three slowest acks, slowest first, each
			// split by the node's tracking log into parts that add up.
			slow, _ := rep["slowest"].([]any)
			if want := map[bool]int{true: 3, false: 0}[tc.compress == ""]; len(slow) != want {
				t.Errorf("slowest: %d entries, want %d: %v", len(slow), want, rep["slowest"])
			}
			prevTotal := 1e9
			for _, e := range slow {
				a, _ := e.(map[string]any)
				srv, _ := a["server"].(map[string]any)
				if srv == nil {
					t.Errorf("slowest entry without the node's breakdown: %v", a)
					continue
				}
				total := num(a, "total_ms")
				sum := num(a, "queue_ms") + num(srv, "upload_ms") + num(srv, "validate_ms") + num(srv, "commit_ms") + num(srv, "after_append_ms")
				if total > prevTotal || num(srv, "validate_ms") <= 0 || num(srv, "after_append_ms") <= 0 || sum < total-0.1 || sum > total+0.1 ||
					srv["node"] != "bench-local" || a["tx_id"] == "" {
					t.Errorf("slowest entry %v: want slowest first, positive validate and after-append, parts adding up to total_ms", a)
				}
				prevTotal = total
			}
			if tc.compress == "" && !strings.Contains(out, "slowest acks (ms") {
				t.Errorf("table lacks the slowest acks:\n%s", out)
			}
			if _, ok := rep["timeline"].([]any); !ok {
				t.Errorf("timeline: got %T, want an array", rep["timeline"])
			}
			f, err := os.Open(plot)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if strings.HasSuffix(plot, ".png") {
				if _, err := png.Decode(f); err != nil {
					t.Errorf("plot: %v", err)
				}
			} else if b, _ := os.ReadFile(plot); !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "polyline") {
				t.Errorf("plot is not an SVG chart: %.200s", b)
			}
			// --cpuprofile: a gzipped protobuf profile, as runtime/pprof writes.
			if pf, err := os.Open(prof); err != nil {
				t.Errorf("cpuprofile: %v", err)
			} else {
				zr, err := gzip.NewReader(pf)
				var n int64
				if err == nil {
					n, err = io.Copy(io.Discard, zr)
				}
				if err != nil || n == 0 {
					t.Errorf("cpuprofile: %d bytes, %v; want a gzipped profile", n, err)
				}
				pf.Close()
			}
			md, _ := os.ReadFile(results)
			if !strings.Contains(string(md), "--compress "+compress+"`") {
				t.Errorf("results table lacks --compress %s:\n%s", compress, md)
			}
			if !strings.Contains(string(md), "| "+tc.proto+" | "+tc.format+" | 5000 | 4 |") {
				t.Errorf("results table lacks the run:\n%s", md)
			}
		})
	}
}

func TestBenchIngestBadCompress(t *testing.T) {
	_, errOut, code := runCLI(t, "bench", "ingest", "--local", "--compress", "lz4")
	if code != 1 || !strings.Contains(errOut, `--compress "lz4": want none or zstd`) {
		t.Errorf("exit %d, stderr %q: want 1 and a message naming --compress", code, errOut)
	}
}

// TestBodyZstdLevels checks the per-format zstd levels of package
// zstdbody on generated bodies: the default level must shrink an Arrow
// stream well past the fastest level (it halves it), and the fastest level
// must do about as well as the default on text. It logs the figures the
// package's doc comment quotes.
func TestBodyZstdLevels(t *testing.T) {
	g := bench.NewGenerator(1, 0, 0)
	for _, f := range []struct {
		name string
		enc  bench.Encoder
	}{{"arrow", encodeArrow}, {"ndjson", bench.EncodeNDJSON}, {"csv", bench.EncodeCSV}} {
		var raw, fastest, def int
		for i := range 4 {
			body, err := f.enc(nil, g.Rows(nil, int64(i)*10000, 10000))
			if err != nil {
				t.Fatal(err)
			}
			raw += len(body)
			for level, n := range map[zstd.EncoderLevel]*int{zstd.SpeedFastest: &fastest, zstd.SpeedDefault: &def} {
				e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
				if err != nil {
					t.Fatal(err)
				}
				*n += len(e.EncodeAll(body, nil))
			}
		}
		t.Logf("%s: raw %.1f B/row, fastest %.1f, default %.1f", f.name, float64(raw)/40000, float64(fastest)/40000, float64(def)/40000)
		chosen := map[zstd.EncoderLevel]int{zstd.SpeedFastest: fastest, zstd.SpeedDefault: def}[zstdbody.Level(f.name)]
		if best := min(fastest, def); float64(chosen) > 1.2*float64(best) {
			t.Errorf("%s: zstdbody's level gives %d bytes, %.0f%% more than the better level's %d", f.name, chosen, 100*(float64(chosen)/float64(best)-1), best)
		}
		if f.name == "arrow" && float64(def) > 0.7*float64(fastest) {
			t.Errorf("arrow: default level %d bytes against fastest %d; the level choice assumes about half", def, fastest)
		}
	}
}

func TestNodeEnv(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"A=1"}, []string{"A=1", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
		{[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "B=2"}, []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "B=2"}},
		{[]string{"GLIBC_TUNABLES="}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
		{[]string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}}, // the user's choice stays
	} {
		if got := nodeEnv(tc.in); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("nodeEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
