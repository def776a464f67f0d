package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/demandflow/demandflow/client"
)

// SlowAck is one of a run's slowest acks (Config.Slowest) and where its
// time went. Total and Queue are the client's own measure; Server comes
// from the node's tracking log of the transaction.
//
// Why: a run's p99 is a handful of acks, and the stage that held them up
// (the upload, the decode, the Raft commit, or the log sync, FSM apply and
// reply after it) decides what to change; the histogram alone cannot say.
type SlowAck struct {
	// Seq is the batch number; TxID the transaction the node acked.
	Seq  int64  `json:"seq"`
	TxID string `json:"tx_id"`
	// TotalMs is the ack latency as the histogram counts it; QueueMs the
	// part before the request was sent (open loop: behind schedule).
	TotalMs float64 `json:"total_ms"`
	QueueMs float64 `json:"queue_ms"`
	// Server is nil when the node's tracking log had no answer; Note then
	// says why.
	Server *ServerTimes `json:"server,omitempty"`
	Note   string       `json:"note,omitempty"`
}

// ServerTimes splits an ack by the node's tracking blocks. UploadMs and
// AfterAppendMs compare the client's clock with the node's: exact when
// both run on one machine (bench ingest --local), off by the clock
// offset otherwise.
type ServerTimes struct {
	// Node is the node that took the request.
	Node string `json:"node,omitempty"`
	// UploadMs: sent until the node's handler started (network, and the
	// transport's queueing).
	UploadMs float64 `json:"upload_ms"`
	// ValidateMs: reading, decompressing and validating the body
	// (tracking's ingress and validate blocks).
	ValidateMs float64 `json:"validate_ms"`
	// CommitMs: from validation until the Raft leader appended the entry
	// (encoding, forwarding to the leader, the leader's queue).
	CommitMs float64 `json:"commit_ms"`
	// AfterAppendMs: from the append until the client had the ack: the
	// log's fsync, the FSM apply, the reply and its delivery.
	AfterAppendMs float64 `json:"after_append_ms"`
}

// slowEntry is one candidate for Report.Slowest.
type slowEntry struct {
	seq              int64
	txID             string
	sched, sent, end time.Time
}

func (e slowEntry) total() time.Duration { return e.end.Sub(e.sched) }

// keepSlow adds e to keep (the n slowest so far, slowest first) and
// returns it.
func keepSlow(keep []slowEntry, e slowEntry, n int) []slowEntry {
	if len(keep) == n && e.total() <= keep[n-1].total() {
		return keep
	}
	i, _ := slices.BinarySearchFunc(keep, e, func(a, b slowEntry) int { return cmp.Compare(b.total(), a.total()) })
	keep = slices.Insert(keep, i, e)
	if len(keep) > n {
		keep = keep[:n]
	}
	return keep
}

// trackedTx is the part of GET /v1/tracking/transactions/{id} that
// explainSlow reads.
type trackedTx struct {
	Node   string         `json:"node"`
	Blocks []trackedBlock `json:"blocks"`
}

type trackedBlock struct {
	Stage    string    `json:"stage"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// explainTimeout bounds the tracking lookups of one run.
const explainTimeout = 30 * time.Second

// explainSlow looks up each entry's transaction in the node's tracking
// log. A failed lookup leaves Server nil and says why in Note; it never
// fails the run.
func explainSlow(ctx context.Context, c *client.Client, entries []slowEntry) []SlowAck {
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	out := make([]SlowAck, len(entries))
	for i, e := range entries {
		a := SlowAck{Seq: e.seq, TxID: e.txID, TotalMs: msOf(e.total()), QueueMs: msOf(e.sent.Sub(e.sched))}
		if e.txID == "" {
			a.Note = "the ack named no transaction"
		} else if raw, err := c.Transaction(ctx, e.txID); err != nil {
			a.Note = fmt.Sprintf("tracking lookup: %v", err)
		} else {
			a.Server, a.Note = serverTimes(raw, e)
		}
		out[i] = a
	}
	return out
}

// serverTimes splits e by its transaction's tracking blocks, or says why
// it cannot.
func serverTimes(raw json.RawMessage, e slowEntry) (*ServerTimes, string) {
	var tx trackedTx
	if err := json.Unmarshal(raw, &tx); err != nil {
		return nil, fmt.Sprintf("tracking answer: %v", err)
	}
	var ingress, validate, commit *trackedBlock
	for i := range tx.Blocks {
		switch b := &tx.Blocks[i]; b.Stage {
		case "ingress":
			ingress = b
		case "validate":
			validate = b
		case "commit":
			commit = b
		}
	}
	if ingress == nil || validate == nil || commit == nil {
		return nil, "the transaction has no ingress, validate and commit blocks (is tracking off for the dataset?)"
	}
	return &ServerTimes{
		Node:          tx.Node,
		UploadMs:      msOf(ingress.Started.Sub(e.sent)),
		ValidateMs:    msOf(validate.Finished.Sub(ingress.Started)),
		CommitMs:      msOf(commit.Finished.Sub(validate.Finished)),
		AfterAppendMs: msOf(e.end.Sub(commit.Finished)),
	}, ""
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeSlowest prints Report.Slowest as a table.
func writeSlowest(w io.Writer, slow []SlowAck) error {
	if len(slow) == 0 {
		return nil
	}
	fmt.Fprintf(w, "slowest acks (ms; upload and after-append compare the client's clock with the node's)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "seq\ttotal\tqueue\tupload\tvalidate\tcommit\tafter-append\tnode\ttx\t\n")
	for _, a := range slow {
		if s := a.Server; s != nil {
			fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n", a.Seq, a.TotalMs, a.QueueMs,
				s.UploadMs, s.ValidateMs, s.CommitMs, s.AfterAppendMs, s.Node, a.TxID)
			continue
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t-\t-\t-\t-\t-\t%s\t%s\n", a.Seq, a.TotalMs, a.QueueMs, a.TxID, a.Note)
	}
	return tw.Flush()
}
