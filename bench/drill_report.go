package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// DrillCycle is the measurement of one kill cycle. Times are milliseconds
// from the SIGKILL; -1 means not measured (the step did not complete).
type DrillCycle struct {
	Cycle     int    `json:"cycle"`
	Killed    string `json:"killed"`
	NewLeader string `json:"new_leader"`
	// FailoverMS is kill -> first ack of a write sent after the kill.
	FailoverMS float64 `json:"failover_ms"`
	// DetectMS is kill -> a survivor reports the old leader not alive or
	// no (or another) leader.
	DetectMS float64 `json:"detect_ms"`
	// ElectMS is kill -> a survivor reports a new leader.
	ElectMS float64 `json:"elect_ms"`
	// ErrorWindowMS is the first failed write attempt after the kill ->
	// the first ack after it; 0 when no attempt failed.
	ErrorWindowMS float64 `json:"error_window_ms"`
	// Errors is the number of failed write attempts from the kill to the
	// first ack.
	Errors int `json:"errors"`
	// RejoinMS is restart -> the restarted node is ready and caught up.
	RejoinMS float64 `json:"rejoin_ms"`
	// AlarmMS is kill -> every survivor lists node_down:<killed> among its
	// active alarms (GET /v1/alarms); -1 when not seen.
	AlarmMS float64 `json:"alarm_ms"`
}

// DrillStat summarizes one measurement over the cycles.
type DrillStat struct {
	Median float64 `json:"median"`
	Worst  float64 `json:"worst"`
}

// DrillLatency is the ack latency of the drill's writes in ms.
type DrillLatency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// DrillReport is the outcome of RunFailoverDrill; its JSON is the drill
// report of DESIGN.md ("cycles", "acked_rows", "stored_rows", "lost_rows",
// "duplicate_rows") plus the fields below.
type DrillReport struct {
	Kind    string    `json:"kind"`
	Started time.Time `json:"started"`
	Nodes   int       `json:"nodes"`
	Dataset string    `json:"dataset"`
	Batch   int       `json:"batch"`
	// Rate is the offered load in rows/s (0: back to back).
	Rate   float64      `json:"rate"`
	Cycles []DrillCycle `json:"cycles"`
	// AckedRows sums the accepted rows of every acked batch, each
	// Idempotency-Key once.
	AckedRows    int64 `json:"acked_rows"`
	AckedBatches int   `json:"acked_batches"`
	// StoredRows is each node's local rows_accepted after convergence.
	StoredRows    map[string]int64 `json:"stored_rows"`
	LostRows      int64            `json:"lost_rows"`
	DuplicateRows int64            `json:"duplicate_rows"`
	// TrackedObjects is how many acked rows' object ids were looked up on
	// every node after convergence (GET /v1/tracking/objects/{id});
	// TrackingMismatches counts those whose journey was not exactly one
	// accepted apply event, or differed between nodes (examples in
	// ErrorSamples).
	TrackedObjects     int `json:"tracked_objects"`
	TrackingMismatches int `json:"tracking_mismatches"`
	// WriteAttempts and FailedAttempts count every write attempt; Unacked
	// is batches given up on (only when the drill was aborted).
	WriteAttempts  int64 `json:"write_attempts"`
	FailedAttempts int64 `json:"failed_attempts"`
	Unacked        int   `json:"unacked_batches"`
	// AckLatencyMS is the latency of acked write attempts.
	AckLatencyMS DrillLatency `json:"ack_latency_ms"`
	// Summary has median and worst of failover_ms, detect_ms, elect_ms,
	// error_window_ms, rejoin_ms and alarm_ms over the measured cycles.
	Summary      map[string]DrillStat `json:"summary"`
	ErrorSamples []string             `json:"error_samples,omitempty"`
}

// finish computes lost/duplicate rows and the summary.
func (r *DrillReport) finish() {
	r.LostRows, r.DuplicateRows = 0, 0
	if len(r.StoredRows) > 0 {
		lo, hi := int64(-1), int64(0)
		for _, n := range r.StoredRows {
			if lo < 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		r.LostRows = max(r.AckedRows-lo, 0)
		r.DuplicateRows = max(hi-r.AckedRows, 0)
	}
	r.Summary = map[string]DrillStat{}
	pick := map[string]func(c DrillCycle) float64{
		"failover_ms":     func(c DrillCycle) float64 { return c.FailoverMS },
		"detect_ms":       func(c DrillCycle) float64 { return c.DetectMS },
		"elect_ms":        func(c DrillCycle) float64 { return c.ElectMS },
		"error_window_ms": func(c DrillCycle) float64 { return c.ErrorWindowMS },
		"rejoin_ms":       func(c DrillCycle) float64 { return c.RejoinMS },
		"alarm_ms":        func(c DrillCycle) float64 { return c.AlarmMS },
	}
	for k, f := range pick {
		var xs []float64
		for _, c := range r.Cycles {
			xs = append(xs, f(c))
		}
		if s := sortedFloats(xs); len(s) > 0 {
			r.Summary[k] = DrillStat{Median: median(s), Worst: s[len(s)-1]}
		}
	}
}

// median of sorted, non-empty xs.
func median(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// OK reports whether every node stores exactly the acked rows: nothing
// lost, nothing duplicated, every node counted, and every node tells the
// same one-apply journey of the sampled objects.
func (r *DrillReport) OK() bool {
	return r.LostRows == 0 && r.DuplicateRows == 0 && len(r.StoredRows) == r.Nodes && r.Unacked == 0 &&
		r.TrackingMismatches == 0
}

// WriteJSON writes the report as indented JSON.
func (r *DrillReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the cycles, the summary and the row check.
func (r *DrillReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cycle\tkilled\tnew leader\tdetect ms\telect ms\tfailover ms\terror window ms\terrors\talarm ms\trejoin ms\t")
	for _, c := range r.Cycles {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", c.Cycle, c.Killed, dashIfEmpty(c.NewLeader),
			msCell(c.DetectMS), msCell(c.ElectMS), msCell(c.FailoverMS), msCell(c.ErrorWindowMS), c.Errors, msCell(c.AlarmMS), msCell(c.RejoinMS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range []string{"detect_ms", "elect_ms", "failover_ms", "error_window_ms", "alarm_ms", "rejoin_ms"} {
		if s, ok := r.Summary[k]; ok {
			fmt.Fprintf(w, "%-16s median %8.1f   worst %8.1f\n", k, s.Median, s.Worst)
		}
	}
	names := make([]string, 0, len(r.StoredRows))
	for n := range r.StoredRows {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "acked rows: %d in %d batches (%d attempts, %d failed); ack latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		r.AckedRows, r.AckedBatches, r.WriteAttempts, r.FailedAttempts, r.AckLatencyMS.P50, r.AckLatencyMS.P99, r.AckLatencyMS.Max)
	for _, n := range names {
		fmt.Fprintf(w, "stored on %-6s %d\n", n+":", r.StoredRows[n])
	}
	fmt.Fprintf(w, "tracking: %d objects looked up on every node, %d mismatches\n", r.TrackedObjects, r.TrackingMismatches)
	verdict := "OK: every acked row stored exactly once on every node"
	if !r.OK() {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "lost rows: %d, duplicate rows: %d  %s\n", r.LostRows, r.DuplicateRows, verdict)
	return err
}

func msCell(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
