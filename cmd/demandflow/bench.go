package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/demandflow/demandflow/bench"
	"github.com/demandflow/demandflow/client"
	"github.com/demandflow/demandflow/internal/zstdbody"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that drive a node or cluster from outside, like a client",
	}
	cmd.AddCommand(newBenchIngestCmd(), newBenchForecastCmd())
	return cmd
}

type benchIngestOpts struct {
	tf          transportFlags
	local       bool
	nodeArgs    []string
	localTLS    bool
	dataset     string
	format      string
	rows        int64
	duration    time.Duration
	batch       int
	concurrency int
	rate        string
	calibrate   time.Duration
	seed        uint64
	pregen      int
	compress    string
	jsonOut     string
	plotOut     string
	results     string
	quiet       bool
	cpuProfile  string
	slowest     int
	warmup      time.Duration
}

func newBenchIngestCmd() *cobra.Command {
	o := &benchIngestOpts{}
	cmd := &cobra.Command{
		Use:   "ingest (--target ADDR[,ADDR...] | --local) [flags]",
		Short: "Measure ingest throughput and ack latency",
		Long: `Bench ingest generates realistic monthly demand rows (products x markets x
months, deterministic for --seed), sends them in batches of --batch rows
with --concurrency requests in flight, and reports throughput (rows/s,
MB/s), ack latency (p50/p90/p99/p99.9/max, HDR histogram), errors and
retries: as a table on stdout, as JSON with --json FILE (fields in the
bench package documentation), as a chart of throughput and latency over
time with --plot FILE.svg|FILE.png, and as a row appended to a markdown
table with --results FILE.

Bodies are zstd-compressed by the client (--compress zstd, the default,
as demandflow push sends them); --compress none sends them raw. With
--pregen the pre-generated bodies are encoded and compressed once, so
neither cost is in the measurement; without it, every body is generated,
encoded and compressed on the request's path.

The report also gives the CPU time the run cost, per row: the client's
own and, with --local, the node's (read from /proc on Linux). On a box
that client and node share, those bound the throughput and move far less
between runs than it does.

--rate caps the offered load (rows/s, open loop: latency counts from the
scheduled send time). --rate 50% first runs --calibrate at full speed and
then runs at that fraction of the measured throughput.

--warmup D also reports the run after its first D (QUIC slow start, the
node's first memtables and heap growth are in the first second):
throughput, ack latency and CPU per row of the acks after it, beside the
whole run's figures, which stay as they are.

--slowest N explains the tail: after the run it looks up the N slowest
acks in the node's tracking log and splits each into queue (behind the
--rate schedule), upload, validate, commit (until the Raft leader
appended the entry) and after-append (log fsync, FSM apply, the reply).
Upload and after-append compare the client's clock with the node's, so
they are exact with --local and approximate across machines.

--local starts a fresh single node (this binary, "node" subcommand) in a
temporary directory, points the run at it (its HTTP/3 address and pinned
self-signed certificate for --proto h3; plain http for h1/h2 unless
--local-tls), and stops it afterwards. It runs the node as
deploy/demandflow.service does, with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
(unless GLIBC_TUNABLES already sets it). The dataset (--dataset, default
"bench") is created when missing.

Exit status: 0 when every batch was acked, 3 when some were not, 1 on a
setup error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchIngest(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.tf.register(cmd, "target")
	fs := cmd.Flags()
	fs.BoolVar(&o.local, "local", false, "start a single node in a temp dir and bench it")
	fs.StringArrayVar(&o.nodeArgs, "node-arg", nil, "extra flag for the --local node (repeatable), e.g. --node-arg=--forecast-interval=1h")
	fs.BoolVar(&o.localTLS, "local-tls", false, "with --local and h1/h2: use https with the node's pinned certificate")
	fs.StringVar(&o.dataset, "dataset", "bench", "dataset to ingest into (created when missing)")
	fs.StringVar(&o.format, "format", "ndjson", "ndjson, csv or arrow")
	fs.Int64Var(&o.rows, "rows", 0, "rows to send (default 1000000 when --duration is not set)")
	fs.DurationVar(&o.duration, "duration", 0, "run for this long instead of a row count")
	fs.IntVar(&o.batch, "batch", 10000, "rows per request")
	fs.IntVar(&o.concurrency, "concurrency", 8, "requests in flight")
	fs.StringVar(&o.rate, "rate", "", "offered load in rows/s, or P% of a calibration run's throughput (default unlimited)")
	fs.DurationVar(&o.calibrate, "calibrate", 5*time.Second, "length of the calibration run for --rate P%")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the row generator")
	fs.IntVar(&o.pregen, "pregen", 0, "pre-generate N distinct bodies and send them round-robin (takes row generation out of the measurement)")
	fs.StringVar(&o.compress, "compress", "zstd", "Content-Encoding of the bodies: zstd (as demandflow push sends them) or none; MB/s counts the bytes on the wire")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to FILE")
	fs.StringVar(&o.plotOut, "plot", "", "draw throughput and latency over time to FILE (.svg or .png)")
	fs.StringVar(&o.results, "results", "", "append a row to the markdown results table in FILE (bench/RESULTS.md)")
	fs.BoolVar(&o.quiet, "quiet", false, "no per-second progress lines on stderr")
	fs.DurationVar(&o.warmup, "warmup", 0, "also report throughput, latency and CPU of the acks after this warm-up (the whole run's figures stay)")
	fs.IntVar(&o.slowest, "slowest", 0, "after the run, split the N slowest acks by the node's tracking log (upload, validate, commit, after-append)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of this client process during the run (pregeneration included) to FILE")
	return cmd
}

func runBenchIngest(ctx context.Context, o *benchIngestOpts, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	setup := func(format string, a ...any) error {
		return exitError{code: 1, msg: "bench ingest: " + fmt.Sprintf(format, a...)}
	}
	if o.rows > 0 && o.duration > 0 {
		return setup("give --rows or --duration, not both")
	}
	if o.warmup < 0 || o.duration > 0 && o.warmup >= o.duration {
		return setup("--warmup %v: want a positive duration shorter than the run", o.warmup)
	}
	var enc bench.Encoder
	var ct string
	switch o.format {
	case "ndjson":
		enc, ct = bench.EncodeNDJSON, client.ContentTypeNDJSON
	case "csv":
		enc, ct = bench.EncodeCSV, client.ContentTypeCSV
	case "arrow":
		enc, ct = encodeArrow, client.ContentTypeArrow
	default:
		return setup("--format %q: want ndjson, csv or arrow", o.format)
	}
	switch o.compress {
	case "", "none", "zstd":
	default:
		return setup("--compress %q: want none or zstd", o.compress)
	}

	var ln *localNode
	if o.local {
		var err error
		ln, err = startLocalNode(ctx, stderr, o.nodeArgs)
		if err != nil {
			return setup("--local: %v", err)
		}
		defer ln.stop()
		switch {
		case o.tf.proto == "h3":
			o.tf.addrs, o.tf.pin = "https://"+ln.addrs.HTTP3, ln.addrs.Fingerprint
		case o.localTLS:
			o.tf.addrs, o.tf.pin = "https://"+ln.addrs.HTTP, ln.addrs.Fingerprint
		default:
			o.tf.addrs = "http://" + ln.addrs.HTTP
		}
	}
	tr, err := o.tf.build(o.concurrency)
	if err != nil {
		return setup("%v", err)
	}
	defer tr.close()
	c, err := client.New(client.Config{Addrs: tr.addrs, Transport: tr.rt, Timeout: o.tf.timeout,
		MaxRetries: retriesFlag(o.tf.retries), Token: o.tf.token, UserAgent: "demandflow-bench/" + version})
	if err != nil {
		return setup("%v", err)
	}
	if _, err := c.Dataset(ctx, o.dataset); err != nil {
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			return setup("dataset %s: %v", o.dataset, err)
		}
		if _, err := c.CreateDataset(ctx, bench.Schema(o.dataset)); err != nil {
			return setup("create dataset %s: %v", o.dataset, err)
		}
	}

	labels := map[string]string{"proto": o.tf.proto, "targets": strings.Join(tr.addrs, ",")}
	if enc := o.encoding(); enc != "" {
		labels["compress"] = enc
	}
	if o.local {
		labels["local"] = "true"
	}
	cfg := bench.Config{Client: c, Dataset: o.dataset, Format: o.format, ContentType: ct, Encode: enc,
		Rows: o.rows, Duration: o.duration, Batch: o.batch, Concurrency: o.concurrency, Seed: o.seed,
		Pregen: o.pregen, Compress: o.encoding(), Labels: labels, Slowest: o.slowest, Warmup: o.warmup,
		// The bytes push would send (its zstd level depends on the format).
		CompressBody: func(b []byte) []byte { return zstdbody.Encode(o.format, b) }}
	if ln != nil {
		pid := ln.cmd.Process.Pid
		cfg.NodeCPU = func() (time.Duration, bool) { return procCPU(pid) }
	}
	if !o.quiet {
		cfg.Progress = func(p bench.Point) {
			fmt.Fprintf(stderr, "bench: %5.1fs %9.0f rows/s %7.1f MB/s  p50 %6.1f ms  p99 %6.1f ms  errors %d\n",
				p.T, p.RowsPerS, p.MBPerS, p.P50Ms, p.P99Ms, p.Errors)
		}
	}
	if r, ok := strings.CutSuffix(o.rate, "%"); ok {
		pct, err := strconv.ParseFloat(r, 64)
		if err != nil || pct <= 0 {
			return setup("--rate %q: want rows/s or a percentage such as 50%%", o.rate)
		}
		cal := cfg
		cal.Rows, cal.Duration, cal.Progress, cal.Seed, cal.Slowest, cal.Warmup = 0, o.calibrate, nil, cfg.Seed+1000, 0, 0
		fmt.Fprintf(stderr, "bench: calibrating at full speed for %v\n", o.calibrate)
		rep, err := bench.Run(ctx, cal)
		if err != nil {
			return setup("calibration: %v", err)
		}
		cfg.Rate = rep.RowsPerS * pct / 100
		labels["rate_of_max"] = r + "%"
		labels["calibrated_max_rows_per_s"] = fmt.Sprintf("%.0f", rep.RowsPerS)
		fmt.Fprintf(stderr, "bench: calibrated max %.0f rows/s; running at %.0f rows/s\n", rep.RowsPerS, cfg.Rate)
	} else if o.rate != "" {
		if cfg.Rate, err = strconv.ParseFloat(o.rate, 64); err != nil || cfg.Rate < 0 {
			return setup("--rate %q: want rows/s or a percentage such as 50%%", o.rate)
		}
	}

	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return setup("--cpuprofile: %v", err)
	}
	rep, err := bench.Run(ctx, cfg)
	if perr := stopProfile(); perr != nil && err == nil {
		return setup("--cpuprofile: %v", perr)
	}
	if err != nil {
		return setup("%v", err)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	write := func(path string, f func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		if dir := filepath.Dir(path); dir != "." {
			_ = os.MkdirAll(dir, 0o755)
		}
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			return err
		}
		return os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if err := write(o.jsonOut, rep.WriteJSON); err != nil {
		return setup("--json: %v", err)
	}
	if err := write(o.plotOut, func(w io.Writer) error { return rep.WritePlot(w, o.plotOut) }); err != nil {
		return setup("--plot: %v", err)
	}
	if o.results != "" {
		if err := bench.AppendResult(o.results, rep, "demandflow bench ingest "+strings.Join(benchArgs(o), " ")); err != nil {
			return setup("--results: %v", err)
		}
	}
	if rep.Errors > 0 {
		return exitError{code: 3, msg: fmt.Sprintf("bench ingest: %d of %d batches not acked", rep.Errors, rep.Batches)}
	}
	return nil
}

// encoding is the Content-Encoding --compress asks for ("" for none).
func (o *benchIngestOpts) encoding() string { return strings.TrimPrefix(o.compress, "none") }

// benchArgs reconstructs the run's flags for the results table.
func benchArgs(o *benchIngestOpts) []string {
	a := []string{}
	if o.local {
		a = append(a, "--local")
	}
	a = append(a, "--proto", o.tf.proto, "--format", o.format)
	if o.rows > 0 {
		a = append(a, "--rows", strconv.FormatInt(o.rows, 10))
	}
	if o.duration > 0 {
		a = append(a, "--duration", o.duration.String())
	}
	a = append(a, "--batch", strconv.Itoa(o.batch), "--concurrency", strconv.Itoa(o.concurrency))
	if o.rate != "" {
		a = append(a, "--rate", o.rate)
	}
	if o.pregen > 0 {
		a = append(a, "--pregen", strconv.Itoa(o.pregen))
	}
	if o.warmup > 0 {
		a = append(a, "--warmup", o.warmup.String())
	}
	// Always named: the default changed (none -> zstd), and a results row
	// must say which one it measured.
	a = append(a, "--compress", cmp.Or(o.encoding(), "none"))
	return a
}

// localNode is a node child process started by --local.
type localNode struct {
	cmd    *exec.Cmd
	dir    string
	exited chan error
	addrs  struct {
		HTTP        string `json:"http"`
		HTTP3       string `json:"http3"`
		TLS         bool   `json:"tls"`
		Fingerprint string `json:"fingerprint"`
	}
}

// startLocalNode runs "<this binary> node" on loopback port 0 in a temp dir
// and waits for its addrs.json and /healthz.
func startLocalNode(ctx context.Context, logs io.Writer, extra []string) (*localNode, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	dir, err := os.MkdirTemp("", "demandflow-bench-")
	if err != nil {
		return nil, err
	}
	n := &localNode{dir: dir}
	args := append([]string{"node", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--gossip-addr", "127.0.0.1:0", "--node-name", "bench-local", "--log-level", "warn"}, extra...)
	n.cmd = exec.Command(exe, args...)
	n.cmd.Env = nodeEnv(os.Environ())
	n.cmd.Stdout, n.cmd.Stderr = logs, logs
	if err := n.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("node exited: %v", err)
		case <-ctx.Done():
			n.stopWait(exited)
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		b, err := os.ReadFile(filepath.Join(dir, "addrs.json"))
		if err != nil || json.Unmarshal(b, &n.addrs) != nil || n.addrs.HTTP == "" {
			continue
		}
		if resp, err := http.Get("http://" + n.addrs.HTTP + "/healthz"); err == nil {
			resp.Body.Close()
			n.exited = exited
			return n, nil
		}
	}
	n.stopWait(exited)
	return nil, errors.New("node did not come up within 30s")
}

// hugeMalloc is the glibc tunable that backs malloc's large regions with
// transparent huge pages (madvise MADV_HUGEPAGE; glibc 2.35 and later,
// ignored elsewhere). Pebble takes its memtables and block cache from C
// malloc: with 4 KiB pages, every new memtable costs a page fault per 4
// KiB, which on a VM that returns freed memory to the host (this one)
// costs about 10 us each. deploy/demandflow.service sets it, and --local
// runs its node the same way. h3 Arrow runs, alternating without and with
// it: whole-run throughput higher in 15 of 18 pairs, node CPU per row 8%
// lower in the last 8 (bench/RESULTS.md, 2026-12-07).
const hugeMalloc = "glibc.malloc.hugetlb=1"

// nodeEnv returns env with hugeMalloc added to GLIBC_TUNABLES, unless the
// variable already sets glibc.malloc.hugetlb.
func nodeEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
			found = true
			if !strings.Contains(v, "glibc.malloc.hugetlb=") {
				kv += ":" + hugeMalloc
				if v == "" {
					kv = "GLIBC_TUNABLES=" + hugeMalloc
				}
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GLIBC_TUNABLES="+hugeMalloc)
	}
	return out
}

func (n *localNode) stopWait(exited chan error) {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-exited
	}
	_ = os.RemoveAll(n.dir)
}

func (n *localNode) stop() { n.stopWait(n.exited) }

// arrowSchema is the Arrow schema of generated rows, with the column types
// the node's decoder takes zero-copy (date32 period, utf8, float64).
var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "period", Type: arrow.FixedWidthTypes.Date32},
	{Name: "product", Type: arrow.BinaryTypes.String},
	{Name: "market", Type: arrow.BinaryTypes.String},
	{Name: "qty", Type: arrow.PrimitiveTypes.Float64},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64},
	{Name: "object_id", Type: arrow.BinaryTypes.String},
}, nil)

// encodeArrow is the bench Encoder for Arrow IPC streams: one record batch
// per body.
func encodeArrow(dst []byte, rows []bench.Row) ([]byte, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema)
	defer b.Release()
	b.Reserve(len(rows))
	period := b.Field(0).(*array.Date32Builder)
	product := b.Field(1).(*array.StringBuilder)
	market := b.Field(2).(*array.StringBuilder)
	qty := b.Field(3).(*array.Float64Builder)
	price := b.Field(4).(*array.Float64Builder)
	oid := b.Field(5).(*array.StringBuilder)
	var scratch []byte
	for i := range rows {
		r := &rows[i]
		period.Append(arrow.Date32FromTime(time.Date(r.Year, time.Month(r.Month), 1, 0, 0, 0, 0, time.UTC)))
		scratch = fmt.Appendf(scratch[:0], "P%05d", r.Product)
		product.BinaryBuilder.Append(scratch)
		market.Append(bench.Markets[r.Market])
		qty.Append(r.Qty)
		price.Append(r.Price)
		scratch = strconv.AppendInt(append(scratch[:0], "b-"...), r.ID, 10)
		oid.BinaryBuilder.Append(scratch)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	buf := bytes.NewBuffer(dst)
	w := ipc.NewWriter(buf, ipc.WithSchema(arrowSchema))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// startCPUProfile starts a CPU profile into path (nothing when path is
// empty) and returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
