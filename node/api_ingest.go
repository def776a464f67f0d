package node

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/oklog/ulid/v2"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/stream"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 200

// maxResponseErrors is how many rejected rows an ingest response lists.
const maxResponseErrors = 100

// IngestResponse is the JSON body of a successful ingest (DESIGN.md
// "Contract details"). Errors lists the first 100 rejected rows.
type IngestResponse struct {
	TxID     string            `json:"tx_id"`
	Accepted int               `json:"accepted"`
	Rejected int               `json:"rejected"`
	Errors   []stream.RowError `json:"errors"`
	Node     string            `json:"node"`
	Index    uint64            `json:"index"`
	// Replayed is true when the Idempotency-Key was seen before and this is
	// the first request's result; nothing was stored again.
	Replayed bool `json:"replayed,omitempty"`
}

// limitedReader fails with errBodyTooLarge once more than n bytes are read
// and remembers that it did, so a decoder that wraps read errors cannot
// hide the cause.
type limitedReader struct {
	r    io.Reader
	n    int64
	read int64
	hit  bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.read > l.n {
		l.hit = true
		return 0, errBodyTooLarge
	}
	if rem := l.n - l.read + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := l.r.Read(p)
	l.read += int64(k)
	if l.read > l.n {
		l.hit = true
		return k, errBodyTooLarge
	}
	return k, err
}

// zstdReaders recycles zstd decoders across requests: a new decoder
// allocates its window and tables, which cost more than decoding a 10k-row
// body. A decoder with concurrency 1 starts no goroutines.
var zstdReaders sync.Pool

// decodedBody reports a decompressor's errors as the client's: a broken
// or truncated compressed body is a 400 that names the encoding, not a 500.
type decodedBody struct {
	r        io.Reader
	encoding string
}

func (d *decodedBody) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = badRequest(fmt.Sprintf("invalid %s body: %v", d.encoding, err), nil)
	}
	return n, err
}

// decompress wraps body for the request's Content-Encoding.
func decompress(encoding string, body io.Reader) (io.Reader, func(), error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return body, func() {}, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nil, badRequest("invalid gzip body: "+err.Error(), nil)
		}
		return &decodedBody{r: zr, encoding: "gzip"}, func() { _ = zr.Close() }, nil
	case "zstd":
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
			if err != nil {
				return nil, nil, fmt.Errorf("zstd decoder: %w", err)
			}
		}
		if err := zr.Reset(body); err != nil {
			zstdReaders.Put(zr)
			return nil, nil, badRequest("invalid zstd body: "+err.Error(), nil)
		}
		return &decodedBody{r: zr, encoding: "zstd"}, func() {
			// Drop the reference to this request's body before reuse.
			_ = zr.Reset(nil)
			zstdReaders.Put(zr)
		}, nil
	}
	return nil, nil, &apiError{status: http.StatusUnsupportedMediaType,
		msg: fmt.Sprintf("unsupported Content-Encoding %q (want gzip or zstd)", encoding)}
}

func (n *Node) ingest(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	start := time.Now()
	name := r.PathValue("name")
	schema, ok := n.cl.Store().Dataset(name)
	if !ok {
		// This node may lag a dataset just created elsewhere: catch up
		// with the leader once before answering 404.
		if _, err := n.cl.ConsistentRead(ctx); err == nil {
			schema, ok = n.cl.Store().Dataset(name)
		}
		if !ok {
			return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &apiError{status: http.StatusUnsupportedMediaType, msg: "Content-Type is required (text/csv, application/x-ndjson, application/json, application/xml or application/vnd.apache.arrow.stream)"}
	}
	format, err := stream.FormatFromContentType(ct)
	if err != nil {
		return err
	}
	code := http.StatusOK
	defer func() { n.metrics.ingestRequests.WithLabelValues(string(format), fmt.Sprint(code)).Inc() }()

	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
		code = http.StatusBadRequest
		return badRequest(fmt.Sprintf("Idempotency-Key: want at most %d printable ASCII characters", maxIdempotencyKey), nil)
	}
	if key != "" {
		rec, found, err := n.cl.Store().Transaction(name, key)
		if err != nil {
			return err
		}
		if found && rec.Complete() {
			resp := IngestResponse{TxID: rec.TxID, Accepted: rec.Accepted, Rejected: rec.Rejected,
				Errors: nonNil(rec.Errors), Node: n.cfg.NodeName, Index: n.cl.Store().AppliedIndex(), Replayed: true}
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusOK, resp)
			return nil
		}
	}

	raw := &limitedReader{r: r.Body, n: n.cfg.MaxBodyBytes}
	dr, closeDR, err := decompress(r.Header.Get("Content-Encoding"), raw)
	if err != nil {
		code = http.StatusUnsupportedMediaType
		return err
	}
	defer closeDR()
	body := &limitedReader{r: dr, n: n.cfg.MaxBodyBytes}

	// Validate runs on this goroutine only; the meter counts its CPU time
	// between body reads (tracking's validate CPU).
	validateStart := time.Now()
	meter := &cpuMeter{r: body}
	meter.begin()
	batch, err := stream.Decode(ctx, format, meter, schema, stream.DecodeConfig{ChunkRows: n.cfg.ChunkRows, MaxBytes: n.cfg.MaxBodyBytes + 1, Allocator: n.mem})
	meter.end()
	validateCPU := meter.cpu
	if raw.hit || body.hit {
		if batch != nil {
			batch.Release()
		}
		code = http.StatusRequestEntityTooLarge
		return fmt.Errorf("%w: limit is %d bytes (max_body_bytes); split the upload", errBodyTooLarge, n.cfg.MaxBodyBytes)
	}
	if err != nil {
		code, _ = errorStatus(err)
		return err
	}
	defer batch.Release()
	validated := time.Now()
	n.metrics.ingestSeconds.WithLabelValues("validate").Observe(validated.Sub(start).Seconds())

	txID := ulid.Make().String()
	meta := cluster.IngestMeta{
		TxID: txID, Dataset: name, Source: "http", ContentType: string(format), Node: n.cfg.NodeName,
		IdempotencyKey: key, Bytes: body.read, RowsIn: batch.RowsIn, ReceivedAt: start.UTC(),
		ValidateStart: validateStart.UTC(), ValidateEnd: validated.UTC(), ValidateCPU: validateCPU,
		CommitStart: time.Now().UTC(),
	}
	if meta.IdempotencyKey == "" {
		meta.IdempotencyKey = txID
	}
	parts, err := cluster.EncodeIngest(meta, schema, batch, 0)
	if err != nil {
		code = http.StatusInternalServerError
		return fmt.Errorf("encode ingest: %w", err)
	}
	resp := IngestResponse{TxID: txID, Node: n.cfg.NodeName, Errors: []stream.RowError{}}
	// Parts are applied in order so that, under the "last" duplicate
	// policy, a later row of the body wins over an earlier one.
	for _, p := range parts {
		out, index, err := n.cl.Apply(ctx, p)
		if err != nil {
			code, _ = errorStatus(err)
			return err
		}
		res, ok := out.(*cluster.IngestResult)
		if !ok {
			code = http.StatusInternalServerError
			return fmt.Errorf("ingest: unexpected apply response %T", out)
		}
		resp.TxID = res.TxID
		resp.Accepted += res.Accepted
		resp.Rejected += res.Rejected
		resp.Replayed = resp.Replayed || res.Duplicate
		for _, e := range res.Errors {
			if len(resp.Errors) < maxResponseErrors {
				resp.Errors = append(resp.Errors, e)
			}
		}
		resp.Index = index
	}
	// Read-your-writes on this node: reads here after the ack see the rows.
	if err := n.cl.WaitApplied(ctx, resp.Index); err != nil {
		return err
	}
	n.metrics.ingestSeconds.WithLabelValues("commit").Observe(time.Since(validated).Seconds())
	n.metrics.ingestSeconds.WithLabelValues("total").Observe(time.Since(start).Seconds())
	n.metrics.ingestRows.WithLabelValues("accepted").Add(float64(resp.Accepted))
	n.metrics.ingestRows.WithLabelValues("rejected").Add(float64(resp.Rejected))
	n.metrics.ingestBytes.Add(float64(body.read))
	n.log.Debug("ingest", "tx_id", resp.TxID, "dataset", name, "accepted", resp.Accepted, "rejected", resp.Rejected, "raft_index", resp.Index)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func nonNil(e []stream.RowError) []stream.RowError {
	if e == nil {
		return []stream.RowError{}
	}
	return e
}
