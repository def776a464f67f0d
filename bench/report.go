package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// SchemaVersion is the version of the Report JSON; it changes only when a
// field is removed or changes meaning (new fields do not bump it).
const SchemaVersion = 1

// Report is the result of Run; its JSON form is documented in doc.go.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Kind          string    `json:"kind"`
	Started       time.Time `json:"started"`
	Config        RunConfig `json:"config"`

	RowsSent     int64 `json:"rows_sent"`
	BytesSent    int64 `json:"bytes_sent"`
	RowsAcked    int64 `json:"rows_acked"`
	RowsAccepted int64 `json:"rows_accepted"`
	RowsRejected int64 `json:"rows_rejected"`
	BytesAcked   int64 `json:"bytes_acked"`
	Batches      int64 `json:"batches"`
	BatchesAcked int64 `json:"batches_acked"`
	Replayed     int64 `json:"replayed"`
	Errors       int64 `json:"errors"`
	Retries      int64 `json:"retries"`

	ElapsedS float64 `json:"elapsed_s"`
	RowsPerS float64 `json:"rows_per_s"`
	MBPerS   float64 `json:"mb_per_s"`

	LatencyMs Latency  `json:"latency_ms"`
	Timeline  []Point  `json:"timeline"`
	ErrorLog  []string `json:"error_samples"`

	// CPU is the CPU time spent during the measured run (pregeneration
	// and calibration excluded); nil when unknown.
	CPU *CPUUse `json:"cpu,omitempty"`

	// Slowest are the slowest acks, slowest first, split by the node's
	// tracking log (Config.Slowest); absent when not asked for.
	Slowest []SlowAck `json:"slowest,omitempty"`

	// Steady is the run after its warm-up (Config.Warmup); absent
	// without one, or when the run ended before it did.
	Steady *Steady `json:"steady,omitempty"`
}

// Steady is the part of a run after its first WarmupS seconds: the acks
// that came back after the warm-up, over the time left.
type Steady struct {
	WarmupS    float64 `json:"warmup_s"`
	ElapsedS   float64 `json:"elapsed_s"`
	RowsAcked  int64   `json:"rows_acked"`
	BytesAcked int64   `json:"bytes_acked"`
	RowsPerS   float64 `json:"rows_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	LatencyMs  Latency `json:"latency_ms"`
	CPU        *CPUUse `json:"cpu,omitempty"`
}

// steadyWindow summarises r's acks after the warm-up of a run that
// lasted elapsed.
func steadyWindow(warmup, elapsed time.Duration, r *recorder) *Steady {
	el := (elapsed - warmup).Seconds()
	return &Steady{WarmupS: warmup.Seconds(), ElapsedS: el, RowsAcked: r.steadyRows, BytesAcked: r.steadyBytes,
		RowsPerS: float64(r.steadyRows) / max(el, 1e-9), MBPerS: float64(r.steadyBytes) / 1e6 / max(el, 1e-9),
		LatencyMs: latency(r.steady)}
}

// latency summarises h.
func latency(h *hdrhistogram.Histogram) Latency {
	n := h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	return Latency{Count: n, Min: ms(h.Min()), Mean: h.Mean() / 1000, P50: ms(h.ValueAtQuantile(50)),
		P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

// CPUUse is the CPU time a run cost: the bench client's own process, and
// the server's when Config.NodeCPU reads it (a node on another machine is
// not measured). On a box shared by client and server, throughput follows
// from these two: rows/s <= cores / (client + node seconds per row), and
// they move far less between runs than the throughput does.
type CPUUse struct {
	ClientS        float64 `json:"client_s"`
	ClientUsPerRow float64 `json:"client_us_per_row"`
	NodeS          float64 `json:"node_s,omitempty"`
	NodeUsPerRow   float64 `json:"node_us_per_row,omitempty"`
}

// RunConfig is the run's configuration as reported.
type RunConfig struct {
	Dataset     string            `json:"dataset"`
	Format      string            `json:"format"`
	Batch       int               `json:"batch"`
	Concurrency int               `json:"concurrency"`
	Rows        int64             `json:"rows,omitempty"`
	DurationS   float64           `json:"duration_s,omitempty"`
	Rate        float64           `json:"rate,omitempty"`
	Seed        uint64            `json:"seed"`
	Pregen      int               `json:"pregen,omitempty"`
	Compress    string            `json:"compress,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Latency is the ack latency distribution of acked batches, milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Point is one timeline bucket.
type Point struct {
	// T is the bucket's end, seconds since the start.
	T        float64 `json:"t_s"`
	RowsPerS float64 `json:"rows_per_s"`
	MBPerS   float64 `json:"mb_per_s"`
	Acks     int64   `json:"acks"`
	Errors   int64   `json:"errors"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
}

func buildReport(cfg Config, r *recorder, start time.Time, elapsed time.Duration, sentRows, sentBytes, retries int64) *Report {
	el := elapsed.Seconds()
	rep := &Report{
		SchemaVersion: SchemaVersion, Kind: "ingest", Started: start.UTC(),
		Config: RunConfig{Dataset: cfg.Dataset, Format: cfg.Format, Batch: cfg.Batch, Concurrency: cfg.Concurrency,
			Rows: cfg.Rows, Rate: cfg.Rate, Seed: cfg.Seed, Pregen: cfg.Pregen, Compress: cfg.Compress,
			Labels: cfg.Labels},
		RowsSent: sentRows, BytesSent: sentBytes, RowsAcked: r.acked, RowsAccepted: r.accepted, RowsRejected: r.rejected,
		BytesAcked: r.bytes, Batches: r.batches, BatchesAcked: r.ackedBatches, Replayed: r.replays, Errors: r.errs,
		Retries: retries, ElapsedS: el, RowsPerS: float64(r.acked) / max(el, 1e-9), MBPerS: float64(r.bytes) / 1e6 / max(el, 1e-9),
		Timeline: r.timeline, ErrorLog: r.samples,
	}
	if cfg.Rows <= 0 {
		rep.Config.DurationS = cfg.Duration.Seconds()
	}
	if rep.Timeline == nil {
		rep.Timeline = []Point{}
	}
	if rep.ErrorLog == nil {
		rep.ErrorLog = []string{}
	}
	rep.LatencyMs = latency(r.total)
	return rep
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a human-readable table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Config
	var labels []string
	for k, v := range r.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	fmt.Fprintf(tw, "run\t%s, batch %d, concurrency %d, rate %s, seed %d %s\n", c.Format, c.Batch, c.Concurrency,
		rateString(c.Rate), c.Seed, strings.Join(labels, " "))
	fmt.Fprintf(tw, "rows acked\t%d of %d sent (%d accepted, %d rejected) in %.2fs\n", r.RowsAcked, r.RowsSent, r.RowsAccepted, r.RowsRejected, r.ElapsedS)
	fmt.Fprintf(tw, "throughput\t%.0f rows/s, %.1f MB/s\n", r.RowsPerS, r.MBPerS)
	l := r.LatencyMs
	fmt.Fprintf(tw, "ack latency ms\tp50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f, %d acks)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
	if u := r.CPU; u != nil {
		line := fmt.Sprintf("client %.2f s (%.3f us/row)", u.ClientS, u.ClientUsPerRow)
		if u.NodeS > 0 {
			line += fmt.Sprintf(", node %.2f s (%.3f us/row)", u.NodeS, u.NodeUsPerRow)
		}
		fmt.Fprintf(tw, "cpu\t%s\n", line)
	}
	if st := r.Steady; st != nil {
		line := fmt.Sprintf("%.0f rows/s, %.1f MB/s, p50 %.1f  p99 %.1f ms (%d acks)", st.RowsPerS, st.MBPerS,
			st.LatencyMs.P50, st.LatencyMs.P99, st.LatencyMs.Count)
		if u := st.CPU; u != nil {
			line += fmt.Sprintf("; client %.3f", u.ClientUsPerRow)
			if u.NodeS > 0 {
				line += fmt.Sprintf(", node %.3f", u.NodeUsPerRow)
			}
			line += " us/row"
		}
		fmt.Fprintf(tw, "after warm-up\t%gs: %s\n", st.WarmupS, line)
	}
	fmt.Fprintf(tw, "batches\t%d acked of %d, %d errors, %d retries, %d replayed\n", r.BatchesAcked, r.Batches, r.Errors, r.Retries, r.Replayed)
	for i, e := range r.ErrorLog {
		if i == 3 {
			break
		}
		fmt.Fprintf(tw, "error\t%s\n", e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeSlowest(w, r.Slowest)
}

func rateString(r float64) string {
	if r <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f rows/s", r)
}
