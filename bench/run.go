package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/klauspost/compress/zstd"

	"github.com/demandflow/demandflow/client"
)

// Config configures an ingest benchmark run. A zero field means its
// default.
type Config struct {
	// Client sends the batches; it decides targets, protocol and retries.
	// Required.
	Client *client.Client
	// Dataset receives the rows; it must exist with Schema's columns.
	// Required.
	Dataset string
	// Format names the body format in the report ("ndjson", "csv",
	// "arrow"); ContentType is sent with every batch; Encode builds the
	// bodies. Format "ndjson" and "csv" default ContentType and Encode;
	// other formats must set both.
	Format      string
	ContentType string
	Encode      Encoder
	// Rows stops the run after this many rows; Duration after this much
	// time (whichever is set; Rows wins when both are). Default 1,000,000
	// rows.
	Rows     int64
	Duration time.Duration
	// Batch is rows per request (default 10000); Concurrency the requests
	// in flight (default 4).
	Batch       int
	Concurrency int
	// Rate caps the offered load in rows/s (open loop: batches are
	// scheduled at fixed intervals, and latency counts from the scheduled
	// time, so a stalled server cannot hide queueing: no coordinated
	// omission). 0 means as fast as acks come back (closed loop).
	Rate float64
	// Seed makes the rows reproducible. Default 1.
	Seed uint64
	// Pregen, when > 0, pre-generates that many distinct bodies and sends
	// them round-robin (each with its own Idempotency-Key), taking the
	// client's row generation out of the measurement. 0 generates every
	// batch fresh.
	Pregen int
	// Compress is the Content-Encoding of the bodies: "" (none) or "zstd".
	// Bodies are compressed at the client's cost (pre-generated ones once),
	// and the report's bytes are the compressed bytes on the wire.
	// CompressBody compresses one body for Compress "zstd" and is called
	// concurrently; default zstd at its fastest level. demandflow bench
	// passes the level demandflow push uses for the format.
	Compress     string
	CompressBody func(body []byte) []byte
	// Warmup, when > 0, also reports the run after its first Warmup
	// (Report.Steady): throughput, ack latency and CPU of the acks that
	// came back after it, without the start-up (QUIC slow start, the
	// node's first memtables and heap growth). The whole-run figures
	// stay as they are.
	Warmup time.Duration
	// Interval is the timeline bucket. Default 1s.
	Interval time.Duration
	// Labels are copied into the report's config (targets, proto, ...).
	Labels map[string]string
	// Progress, when set, is called once per Interval with the bucket just
	// closed.
	Progress func(Point)
	// NodeCPU, when set, returns the CPU time the server's process has
	// used so far (`bench ingest --local` reads its child node's); the
	// report then gives the server's CPU per row beside the client's.
	NodeCPU func() (time.Duration, bool)
	// Slowest, when > 0, keeps that many of the slowest acks and, after
	// the run, splits each by the node's tracking log of its transaction
	// (Report.Slowest). At most maxSlowest.
	Slowest int
}

// maxSlowest bounds Config.Slowest: one tracking lookup per ack.
const maxSlowest = 1000

func (c Config) withDefaults() (Config, error) {
	if c.Client == nil || c.Dataset == "" {
		return c, errors.New("bench: Client and Dataset are required")
	}
	if c.Format == "" {
		c.Format = "ndjson"
	}
	switch {
	case c.Encode != nil && c.ContentType != "":
	case c.Format == "ndjson":
		c.Encode, c.ContentType = EncodeNDJSON, client.ContentTypeNDJSON
	case c.Format == "csv":
		c.Encode, c.ContentType = EncodeCSV, client.ContentTypeCSV
	default:
		return c, fmt.Errorf("bench: format %q needs Encode and ContentType", c.Format)
	}
	if c.Rows <= 0 && c.Duration <= 0 {
		c.Rows = 1_000_000
	}
	if c.Batch <= 0 {
		c.Batch = 10000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	switch c.Compress {
	case "":
	case "zstd":
		if c.CompressBody == nil {
			c.CompressBody = fastestZstd
		}
	default:
		return c, fmt.Errorf("bench: compress %q: want zstd or none", c.Compress)
	}
	if c.Warmup < 0 {
		return c, fmt.Errorf("bench: warmup %v is negative", c.Warmup)
	}
	if c.Duration > 0 && c.Rows <= 0 && c.Warmup >= c.Duration {
		return c, fmt.Errorf("bench: warmup %v leaves nothing of the %v run", c.Warmup, c.Duration)
	}
	if c.Slowest < 0 || c.Slowest > maxSlowest {
		return c, fmt.Errorf("bench: slowest %d: want 0 to %d", c.Slowest, maxSlowest)
	}
	return c, nil
}

// Latency histogram range: 10 us to 5 min, 3 significant digits.
const (
	histMin = 10
	histMax = int64(5 * time.Minute / time.Microsecond)
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, 3) }

// recorder collects results; guarded by mu.
type recorder struct {
	mu                                   sync.Mutex
	total, bucket                        *hdrhistogram.Histogram
	bucketRows, bucketBytes, bucketErrs  int64
	acked, accepted, rejected, bytes     int64
	batches, ackedBatches, errs, replays int64
	samples                              []string
	timeline                             []Point
	// slowN > 0 keeps the slowN slowest acks in slow (Config.Slowest).
	slowN int
	slow  []slowEntry
	// With Config.Warmup, acks at or after warmEnd also go to steady.
	warmEnd                 time.Time
	steady                  *hdrhistogram.Histogram
	steadyRows, steadyBytes int64
}

// ack records an acked batch: seq, scheduled (or sent, in a closed
// loop) at sched, sent at sent, acked at end.
func (r *recorder) ack(seq int64, sched, sent, end time.Time, res *client.IngestResult, bytes int) {
	us := max(end.Sub(sched).Microseconds(), histMin)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slowN > 0 {
		r.slow = keepSlow(r.slow, slowEntry{seq: seq, txID: res.TxID, sched: sched, sent: sent, end: end}, r.slowN)
	}
	_ = r.total.RecordValue(min(us, histMax))
	_ = r.bucket.RecordValue(min(us, histMax))
	rows := int64(res.Accepted + res.Rejected)
	r.acked += rows
	r.accepted += int64(res.Accepted)
	r.rejected += int64(res.Rejected)
	r.bytes += int64(bytes)
	r.ackedBatches++
	r.bucketRows += rows
	r.bucketBytes += int64(bytes)
	if r.steady != nil && !end.Before(r.warmEnd) {
		_ = r.steady.RecordValue(min(us, histMax))
		r.steadyRows += rows
		r.steadyBytes += int64(bytes)
	}
	if res.Replayed {
		r.replays++
	}
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	r.bucketErrs++
	if len(r.samples) < 10 {
		r.samples = append(r.samples, err.Error())
	}
}

// flush closes the current bucket at t (seconds since start).
func (r *recorder) flush(t, width float64) Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Point{T: t, RowsPerS: float64(r.bucketRows) / width, MBPerS: float64(r.bucketBytes) / 1e6 / width,
		Acks: r.bucket.TotalCount(), Errors: r.bucketErrs}
	if p.Acks > 0 {
		p.P50Ms = ms(r.bucket.ValueAtQuantile(50))
		p.P99Ms = ms(r.bucket.ValueAtQuantile(99))
		p.MaxMs = ms(r.bucket.Max())
	}
	r.timeline = append(r.timeline, p)
	r.bucket.Reset()
	r.bucketRows, r.bucketBytes, r.bucketErrs = 0, 0, 0
	return p
}

// zstdEnc is the default Config.CompressBody's encoder: the fastest level.
var zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))

func fastestZstd(body []byte) []byte { return zstdEnc.EncodeAll(body, make([]byte, 0, len(body)/4)) }

// compressBody returns body with cfg's content encoding applied.
func compressBody(cfg Config, body []byte) []byte {
	if cfg.Compress != "zstd" {
		return body
	}
	return cfg.CompressBody(body)
}

func ms(us int64) float64 { return float64(us) / 1000 }

// Run generates and sends batches per cfg and returns the report. It
// returns an error only for a bad config or a canceled ctx before any ack;
// failed batches are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	gen := NewGenerator(cfg.Seed, 0, 0)
	keyPrefix := client.NewIdempotencyKey()
	rec := &recorder{total: newHist(), bucket: newHist(), slowN: cfg.Slowest}

	var pregen [][]byte
	for i := range cfg.Pregen {
		rows := gen.Rows(nil, int64(i)*int64(cfg.Batch), cfg.Batch)
		b, err := cfg.Encode(nil, rows)
		if err != nil {
			return nil, fmt.Errorf("bench: encode: %w", err)
		}
		pregen = append(pregen, compressBody(cfg, b))
	}

	totalBatches := int64(-1)
	if cfg.Rows > 0 {
		totalBatches = (cfg.Rows + int64(cfg.Batch) - 1) / int64(cfg.Batch)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Rows <= 0 {
		runCtx, cancel = context.WithTimeout(runCtx, cfg.Duration)
		defer cancel()
	}
	retries0 := cfg.Client.Stats().Retries
	cpu0 := sampleCPU(cfg.NodeCPU)
	start := time.Now()
	// The CPU sample at the end of the warm-up, taken by a timer
	// goroutine; warm.done is closed once it is taken, or once the run
	// (runEnded) ended first.
	var warm struct {
		sample cpuSample
		taken  bool
		done   chan struct{}
	}
	runEnded := make(chan struct{})
	if cfg.Warmup > 0 {
		rec.warmEnd, rec.steady = start.Add(cfg.Warmup), newHist()
		warm.done = make(chan struct{})
		go func() {
			defer close(warm.done)
			t := time.NewTimer(cfg.Warmup)
			defer t.Stop()
			select {
			case <-runEnded:
			case <-t.C:
				warm.sample, warm.taken = sampleCPU(cfg.NodeCPU), true
			}
		}()
	}
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(cfg.Batch) / cfg.Rate * float64(time.Second))
	}

	// next hands out batch numbers; with a rate, a pacer goroutine releases
	// them on schedule.
	var next atomic.Int64
	type job struct {
		seq   int64
		sched time.Time
	}
	var jobs chan job
	var wg sync.WaitGroup
	if interval > 0 {
		jobs = make(chan job, cfg.Concurrency*4)
		wg.Go(func() {
			defer close(jobs)
			for seq := int64(0); totalBatches < 0 || seq < totalBatches; seq++ {
				at := start.Add(time.Duration(seq) * interval)
				if d := time.Until(at); d > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-time.After(d):
					}
				}
				select {
				case <-runCtx.Done():
					return
				case jobs <- job{seq: seq, sched: at}:
				}
			}
		})
	}
	take := func() (job, bool) {
		if jobs != nil {
			j, ok := <-jobs
			return j, ok && runCtx.Err() == nil
		}
		seq := next.Add(1) - 1
		if (totalBatches >= 0 && seq >= totalBatches) || runCtx.Err() != nil {
			return job{}, false
		}
		return job{seq: seq}, true
	}

	var sentRows, sentBytes atomic.Int64
	for range cfg.Concurrency {
		wg.Go(func() {
			var rows []Row
			var buf []byte
			for {
				j, ok := take()
				if !ok {
					return
				}
				n := cfg.Batch
				if cfg.Rows > 0 {
					n = int(min(int64(cfg.Batch), cfg.Rows-j.seq*int64(cfg.Batch)))
				}
				var body []byte
				if len(pregen) > 0 && n == cfg.Batch {
					body = pregen[j.seq%int64(len(pregen))]
				} else {
					rows = gen.Rows(rows[:0], j.seq*int64(cfg.Batch), n)
					var err error
					// A fresh buffer per batch: the transport may read a body
					// after Do returns, so buffers are never reused.
					buf = make([]byte, 0, cap(buf))
					if body, err = cfg.Encode(buf, rows); err != nil {
						rec.fail(fmt.Errorf("encode: %w", err))
						continue
					}
					buf = body
					body = compressBody(cfg, body)
				}
				sentRows.Add(int64(n))
				sentBytes.Add(int64(len(body)))
				sent := time.Now()
				t0 := j.sched
				if t0.IsZero() {
					t0 = sent
				}
				// The run's end does not cancel batches in flight: their
				// acks (or failures) are part of the result.
				res, err := cfg.Client.IngestEncoded(context.WithoutCancel(ctx), cfg.Dataset, cfg.ContentType,
					cfg.Compress, body, fmt.Sprintf("%s-%d", keyPrefix, j.seq))
				if err != nil {
					rec.fail(err)
					continue
				}
				rec.ack(j.seq, t0, sent, time.Now(), res, len(body))
			}
		})
	}

	// Timeline ticker.
	done := make(chan struct{})
	var tickWG sync.WaitGroup
	tickWG.Go(func() {
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := rec.flush(now.Sub(start).Seconds(), cfg.Interval.Seconds())
				if cfg.Progress != nil {
					cfg.Progress(p)
				}
			}
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	close(runEnded)
	if warm.done != nil {
		<-warm.done // its CPU sample is not taken beside the last one
	}
	cpu1 := sampleCPU(cfg.NodeCPU)
	close(done)
	tickWG.Wait()
	if w := elapsed.Seconds() - float64(len(rec.timeline))*cfg.Interval.Seconds(); w > 0.05 {
		rec.flush(elapsed.Seconds(), w)
	}
	if rec.ackedBatches == 0 && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rec.batches = rec.ackedBatches + rec.errs
	rep := buildReport(cfg, rec, start, elapsed, sentRows.Load(), sentBytes.Load(), cfg.Client.Stats().Retries-retries0)
	rep.CPU = cpuUse(cpu0, cpu1, rep.RowsAcked)
	if warm.taken && rec.steadyRows > 0 {
		rep.Steady = steadyWindow(cfg.Warmup, elapsed, rec)
		rep.Steady.CPU = cpuUse(warm.sample, cpu1, rec.steadyRows)
	}
	if len(rec.slow) > 0 {
		// After the CPU sample: the lookups are not part of the run.
		rep.Slowest = explainSlow(context.WithoutCancel(ctx), cfg.Client, rec.slow)
	}
	return rep, nil
}

// cpuSample is the CPU time used so far by this process and, when known,
// by the server's.
type cpuSample struct {
	client, node     time.Duration
	clientOK, nodeOK bool
}

func sampleCPU(node func() (time.Duration, bool)) cpuSample {
	var s cpuSample
	s.client, s.clientOK = selfCPU()
	if node != nil {
		s.node, s.nodeOK = node()
	}
	return s
}

// cpuUse is the CPU spent between two samples, or nil when the client's
// own is unknown.
func cpuUse(a, b cpuSample, rows int64) *CPUUse {
	if !a.clientOK || !b.clientOK {
		return nil
	}
	u := &CPUUse{ClientS: (b.client - a.client).Seconds()}
	perRow := func(s float64) float64 {
		if rows <= 0 {
			return 0
		}
		return s * 1e6 / float64(rows)
	}
	u.ClientUsPerRow = perRow(u.ClientS)
	if a.nodeOK && b.nodeOK {
		u.NodeS = (b.node - a.node).Seconds()
		u.NodeUsPerRow = perRow(u.NodeS)
	}
	return u
}
