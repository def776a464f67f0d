package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// PushConfig configures a Pusher. A zero field means its default.
type PushConfig struct {
	// Batch is the number of records per request. Default 10000. An Arrow
	// record batch is never split, so an Arrow request holds whole input
	// record batches adding up to at least Batch rows (or MaxBatchBytes).
	Batch int
	// MaxBatchBytes cuts a batch early once its body reaches this size,
	// to stay under the server's max_body_bytes. Default 16 MiB.
	MaxBatchBytes int
	// Concurrency is the number of requests in flight. Default 4.
	Concurrency int
	// ContentEncoding is the Content-Encoding of the requests: "" (none),
	// "gzip" (compress/gzip at BestSpeed, by the Pusher) or another
	// encoding the node accepts ("zstd"), which needs Encode. Compressed
	// bodies save network bytes, 4-14x for demand rows, and over HTTP/3,
	// whose cost is per QUIC packet, zstd also saves CPU on both ends
	// (demandflow push sends zstd by default, at a level chosen by format:
	// internal/zstdbody).
	// MaxBatchBytes still bounds the uncompressed body, which is what the
	// node's max_body_bytes limits.
	ContentEncoding string
	// Encode compresses one body for a ContentEncoding other than "gzip"
	// (this package uses the standard library only; the demandflow
	// command passes zstd). It is called concurrently.
	Encode func(body []byte) []byte
	// KeyPrefix starts every batch's Idempotency-Key, which is
	// "<KeyPrefix>-<batch number>". Pushing the same input again with the
	// same KeyPrefix and Batch stores nothing twice. Default: random.
	KeyPrefix string
	// OnBatch, when set, is called once per batch when it is acked or has
	// failed for good. Calls are serialized (never concurrent) but not in
	// input order. It must not retain o.Rejects after returning.
	OnBatch func(o BatchOutcome)
}

func (c PushConfig) withDefaults() PushConfig {
	if c.Batch <= 0 {
		c.Batch = 10000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = NewIdempotencyKey()
	}
	return c
}

// Reject is one rejected input row.
type Reject struct {
	// Row is the 1-based record number in the whole input (blank lines
	// and the CSV header are not counted, like the server counts); 0 for
	// a summary line about rows the server did not list.
	Row int64 `json:"row"`
	// ObjectID, Field and Reason come from the server.
	ObjectID string `json:"object_id,omitempty"`
	Field    string `json:"field,omitempty"`
	Reason   string `json:"reason"`
	// Record is the record's text (a CSV or NDJSON line, a JSON value or
	// an XML element); empty for Arrow input.
	Record string `json:"record,omitempty"`
}

// BatchOutcome is what became of one batch.
type BatchOutcome struct {
	// Seq is the 0-based batch number; FirstRow the 1-based input row of
	// its first record; Rows its record count; Bytes its body size.
	Seq      int64
	FirstRow int64
	Rows     int
	Bytes    int
	// Result is the ack; nil when the batch failed.
	Result *IngestResult
	// Err is why the batch was not acked; nil when acked.
	Err error
	// Latency is the time from the first attempt's send to the ack
	// (retries included).
	Latency time.Duration
	// Rejects are the batch's rejected rows the server listed (at most
	// 100), plus one summary Reject (Row 0) when it rejected more.
	Rejects []Reject
}

// PushResult summarizes a Push.
type PushResult struct {
	// Rows and Bytes are what was read from the input (records, body
	// bytes of the batches built).
	Rows  int64
	Bytes int64
	// Batches is the number of batches built; Acked of them were acked,
	// Failed were not (after retries), and Unsent were never sent because
	// the push stopped early.
	Batches, Acked, Failed, Unsent int64
	// Accepted and Rejected count rows of acked batches; FailedRows the
	// rows of failed and unsent batches.
	Accepted, Rejected, FailedRows int64
	// Replayed counts acked batches whose key the server had already seen.
	Replayed int64
	// Retries is the number of retried attempts.
	Retries int64
	// Duration is the wall time of the push.
	Duration time.Duration
	// FirstError is the first batch error, nil when every batch was acked.
	FirstError error
}

// OK reports whether every batch was acked (rows may still be rejected).
func (r *PushResult) OK() bool { return r.Failed == 0 && r.Unsent == 0 }

// Pusher sends a stream of records to a dataset in acked batches. It is
// safe for concurrent use; each Push is independent, but two concurrent
// Pushes with the same KeyPrefix would share keys, so give each its own.
type Pusher struct {
	c       *Client
	dataset string
	format  Format
	cfg     PushConfig
}

// NewPusher returns a Pusher of records in format to dataset.
//
// Splitting: NDJSON on lines; CSV on record ends (quotes respected), the
// header re-sent with every batch; a JSON array into smaller arrays; XML
// into documents with the same root and fewer child records; Arrow IPC
// streams at record-batch boundaries (schema re-sent with every batch).
// Rows are counted the way the server counts them, so rejected-row numbers
// are relative to the whole input.
func NewPusher(c *Client, dataset string, format Format, cfg PushConfig) (*Pusher, error) {
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, err
	}
	if dataset == "" {
		return nil, errors.New("client: push: no dataset")
	}
	if cfg.ContentEncoding != "" && cfg.ContentEncoding != "gzip" && cfg.Encode == nil {
		return nil, fmt.Errorf("client: push: content encoding %q needs PushConfig.Encode", cfg.ContentEncoding)
	}
	return &Pusher{c: c, dataset: dataset, format: format, cfg: cfg.withDefaults()}, nil
}

// Push reads r to the end and sends it in batches, at most
// PushConfig.Concurrency at a time, holding at most Concurrency+1 batches
// in memory. A batch refused with a 4xx (for example a syntax error in it)
// counts as failed and the push goes on; a batch that still fails after
// the client's retries (cluster unreachable) stops the push, and the rest
// of the input is counted as unsent without being read. Push returns an
// error only for an unreadable or malformed input or a canceled ctx; batch
// failures are in the result (see PushResult.OK).
func (p *Pusher) Push(ctx context.Context, r io.Reader) (*PushResult, error) {
	start := time.Now()
	sp, err := newSplitter(p.format, r)
	if err != nil {
		return nil, err
	}
	res := &PushResult{}
	var mu sync.Mutex // guards res and serializes OnBatch
	var stopped atomic.Bool
	work := make(chan *batch)
	var wg sync.WaitGroup
	for range p.cfg.Concurrency {
		wg.Go(func() {
			for b := range work {
				if stopped.Load() {
					mu.Lock()
					res.Unsent++
					res.FailedRows += int64(b.rows)
					mu.Unlock()
					continue
				}
				o := p.send(ctx, b)
				mu.Lock()
				p.account(res, o)
				if o.Err != nil && !isDataError(o.Err) {
					// Batches in flight finish (they may still be acked);
					// the rest are not sent.
					stopped.Store(true)
				}
				if p.cfg.OnBatch != nil {
					p.cfg.OnBatch(o)
				}
				mu.Unlock()
			}
		})
	}

	var readErr error
	next := int64(1)
	sizeHint := 0
	for seq := int64(0); ; seq++ {
		if stopped.Load() || ctx.Err() != nil {
			break
		}
		b := &batch{seq: seq, firstRow: next, body: make([]byte, 0, sizeHint)}
		err := sp.fill(b, p.cfg.Batch, p.cfg.MaxBatchBytes)
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		sizeHint = cap(b.body)
		next += int64(b.rows)
		mu.Lock()
		res.Rows += int64(b.rows)
		res.Bytes += int64(len(b.body))
		res.Batches++
		mu.Unlock()
		select {
		case work <- b:
		case <-ctx.Done():
			mu.Lock()
			res.Unsent++
			res.FailedRows += int64(b.rows)
			mu.Unlock()
		}
	}
	close(work)
	wg.Wait()
	res.Duration = time.Since(start)
	if readErr != nil {
		return res, readErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// isDataError reports whether err is a refusal of the batch itself (a 4xx
// other than the retryable ones), after which other batches may still go
// through.
func isDataError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 &&
		ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusRequestTimeout
}

// gzipWriters recycles the gzip writers of gzipBody.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// gzipBody compresses body with gzip at BestSpeed.
func gzipBody(body []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(body) / 4)
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&out)
	_, _ = w.Write(body) // a bytes.Buffer does not fail
	_ = w.Close()
	return out.Bytes()
}

// send ingests one batch.
func (p *Pusher) send(ctx context.Context, b *batch) BatchOutcome {
	o := BatchOutcome{Seq: b.seq, FirstRow: b.firstRow, Rows: b.rows, Bytes: len(b.body)}
	key := fmt.Sprintf("%s-%d", p.cfg.KeyPrefix, b.seq)
	t0 := time.Now()
	body := b.body
	switch {
	case p.cfg.Encode != nil:
		body = p.cfg.Encode(body)
	case p.cfg.ContentEncoding == "gzip":
		body = gzipBody(body)
	}
	r, err := p.c.IngestEncoded(ctx, p.dataset, p.format.ContentType(), p.cfg.ContentEncoding, body, key)
	o.Latency = time.Since(t0)
	if err != nil {
		o.Err = fmt.Errorf("batch %d (rows %d-%d): %w", b.seq, b.firstRow, b.firstRow+int64(b.rows)-1, err)
		return o
	}
	o.Result = r
	for _, e := range r.Errors {
		o.Rejects = append(o.Rejects, Reject{Row: b.firstRow - 1 + int64(e.Row), ObjectID: e.ObjectID,
			Field: e.Field, Reason: e.Reason, Record: b.record(e.Row - 1)})
	}
	if more := r.Rejected - len(r.Errors); more > 0 {
		o.Rejects = append(o.Rejects, Reject{Reason: fmt.Sprintf(
			"%d more rejected rows in input rows %d-%d not listed (the server lists the first %d per batch; use a smaller batch to see them all)",
			more, b.firstRow, b.firstRow+int64(b.rows)-1, len(r.Errors))})
	}
	return o
}

func (p *Pusher) account(res *PushResult, o BatchOutcome) {
	if o.Err != nil {
		res.Failed++
		res.FailedRows += int64(o.Rows)
		if res.FirstError == nil {
			res.FirstError = o.Err
		}
		return
	}
	res.Acked++
	res.Accepted += int64(o.Result.Accepted)
	res.Rejected += int64(o.Result.Rejected)
	res.Retries += int64(o.Result.Attempts - 1)
	if o.Result.Replayed {
		res.Replayed++
	}
}
