package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/demandflow/demandflow/client"
)

// maxErrorSamples bounds the error texts kept in a drill report.
const maxErrorSamples = 20

// drillWriter is the drill's steady ingest: one goroutine sending batch
// after batch, each retried with the same Idempotency-Key, to the next node
// on every failure, until it is acked. It records every attempt so the
// cycle can measure failover and error windows.
type drillWriter struct {
	d       *drill
	runID   string
	stopped chan struct{}
	once    sync.Once

	mu       sync.Mutex
	acks     []ackEvent
	fails    []time.Time
	accepted map[string]int // per Idempotency-Key, first ack only
	attempts int64
	unacked  int
	lastErr  error
	errs     []string
}

// ackEvent is one acked attempt: when it was sent and acked.
type ackEvent struct {
	sent, at time.Time
}

func newDrillWriter(d *drill) *drillWriter {
	return &drillWriter{d: d, runID: fmt.Sprintf("%x", time.Now().UnixNano()), stopped: make(chan struct{}),
		accepted: map[string]int{}}
}

// stop asks run to return after the batch in hand is acked.
func (w *drillWriter) stop() { w.once.Do(func() { close(w.stopped) }) }

// drillRows returns batch n: rows n*size .. (n+1)*size-1, row i being the
// only observation of series i/240 at month i%240 (2000-01 .. 2019-12).
func drillRows(dst []Row, n int64, size int) []Row {
	dst = dst[:0]
	for k := range int64(size) {
		i := n*int64(size) + k
		t, s := int(i%240), i/240
		dst = append(dst, Row{Year: 2000 + t/12, Month: t%12 + 1, Product: int(s / int64(len(Markets))),
			Market: int(s % int64(len(Markets))), Qty: float64(i % 1000), Price: 1, ID: i})
	}
	return dst
}

// run sends batches until stop (then finishes the batch in hand) or ctx
// ends (then the batch in hand counts as unacked).
func (w *drillWriter) run(ctx context.Context) {
	cfg := w.d.cfg
	var gap time.Duration
	if cfg.Rate > 0 {
		gap = time.Duration(float64(cfg.Batch) / cfg.Rate * float64(time.Second))
	}
	var rows []Row
	var body []byte
	next := time.Now()
	node := 0
	for n := int64(0); ; n++ {
		if gap > 0 {
			if wait := time.Until(next); wait > 0 {
				select {
				case <-w.stopped:
					return
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			next = next.Add(gap)
			if now := time.Now(); next.Before(now) {
				next = now // late: no burst to catch up
			}
		}
		select {
		case <-w.stopped:
			return
		case <-ctx.Done():
			return
		default:
		}
		rows = drillRows(rows, n, cfg.Batch)
		body, _ = EncodeNDJSON(body[:0], rows)
		key := fmt.Sprintf("drill-%s-%d", w.runID, n)
		for {
			nodes := cfg.Controller.Nodes()
			target := nodes[node%len(nodes)]
			if target.URL == "" {
				node++
				select {
				case <-ctx.Done():
					w.mu.Lock()
					w.unacked++
					w.mu.Unlock()
					return
				case <-time.After(cfg.RetryInterval):
				}
				continue
			}
			sent := time.Now()
			res, err := w.d.cl(target.URL, cfg.AttemptTimeout).Ingest(ctx, cfg.Dataset, client.ContentTypeNDJSON, body, key)
			if err == nil {
				w.ack(key, sent, res)
				break
			}
			w.fail(err)
			if ctx.Err() != nil {
				w.mu.Lock()
				w.unacked++
				w.mu.Unlock()
				return
			}
			node++
			select {
			case <-ctx.Done():
			case <-time.After(cfg.RetryInterval):
			}
		}
	}
}

func (w *drillWriter) ack(key string, sent time.Time, res *client.IngestResult) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	w.acks = append(w.acks, ackEvent{sent: sent, at: now})
	if _, dup := w.accepted[key]; !dup {
		w.accepted[key] = res.Accepted
	}
}

func (w *drillWriter) fail(err error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	w.fails = append(w.fails, now)
	w.lastErr = err
	if len(w.errs) < maxErrorSamples {
		w.errs = append(w.errs, now.UTC().Format("15:04:05.000")+" "+err.Error())
	}
}

func (w *drillWriter) ackCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

func (w *drillWriter) lastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// firstAckSentAfter returns when the first write sent at or after t was
// acked; zero if none yet.
func (w *drillWriter) firstAckSentAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if !a.sent.Before(t) {
			return a.at
		}
	}
	return time.Time{}
}

// errorWindow returns the time from the first failed attempt after kill to
// the first ack of a write sent after that failure (0 when nothing
// failed), and the failed attempts in [kill, firstAck].
func (w *drillWriter) errorWindow(kill, firstAck time.Time) (float64, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	n := 0
	for _, f := range w.fails {
		if f.Before(kill) {
			continue
		}
		if first.IsZero() {
			first = f
		}
		if !f.After(firstAck) {
			n++
		}
	}
	if first.IsZero() {
		return 0, 0
	}
	for _, a := range w.acks {
		if !a.sent.Before(first) {
			return ms(a.at.Sub(first).Microseconds()), n
		}
	}
	return -1, n
}

// totals returns the acked rows (per key once), acked batches, attempts,
// failed attempts and batches never acked.
func (w *drillWriter) totals() (rows int64, batches int, attempts, failed int64, unacked int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.accepted {
		rows += int64(a)
	}
	return rows, len(w.accepted), w.attempts, int64(len(w.fails)), w.unacked
}

// latency returns median, p99 and max ack latency (send -> ack of the
// acked attempt) in ms; zero without acks.
func (w *drillWriter) latency() DrillLatency {
	w.mu.Lock()
	xs := make([]float64, 0, len(w.acks))
	for _, a := range w.acks {
		xs = append(xs, ms(a.at.Sub(a.sent).Microseconds()))
	}
	w.mu.Unlock()
	s := sortedFloats(xs)
	if len(s) == 0 {
		return DrillLatency{}
	}
	return DrillLatency{P50: median(s), P99: s[min(len(s)-1, len(s)*99/100)], Max: s[len(s)-1]}
}

func (w *drillWriter) samples() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...)
}
