package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Content types of the ingest formats.
const (
	ContentTypeCSV    = "text/csv"
	ContentTypeNDJSON = "application/x-ndjson"
	ContentTypeJSON   = "application/json"
	ContentTypeXML    = "application/xml"
	ContentTypeArrow  = "application/vnd.apache.arrow.stream"
)

// RowError is one rejected row of an ingest: its 1-based row number within
// the request body, the client's object id, the field and the reason.
type RowError struct {
	Row      int    `json:"row"`
	ObjectID string `json:"object_id,omitempty"`
	Field    string `json:"field,omitempty"`
	Reason   string `json:"reason"`
}

// IngestResult is the outcome of an acked ingest (DESIGN.md "Ingest
// response"). Errors lists at most the first 100 rejected rows; Rejected
// is the exact count.
type IngestResult struct {
	TxID     string     `json:"tx_id"`
	Accepted int        `json:"accepted"`
	Rejected int        `json:"rejected"`
	Errors   []RowError `json:"errors"`
	Node     string     `json:"node"`
	Index    uint64     `json:"index"`
	// Replayed is true when the node had already stored this
	// Idempotency-Key and returned the first result.
	Replayed bool `json:"replayed,omitempty"`
	// Key is the Idempotency-Key that was sent.
	Key string `json:"-"`
	// Attempts is how many attempts the call took (1 = no retry).
	Attempts int `json:"-"`
}

// Ingest sends one body of records to dataset and returns once the node has
// committed it (the ack). contentType is one of the ContentType constants.
// key is the Idempotency-Key; when empty a random one is generated. The
// same key is sent on every retry, so a retried body is stored once. body
// is only read, never retained after return.
func (c *Client) Ingest(ctx context.Context, dataset, contentType string, body []byte, key string) (*IngestResult, error) {
	return c.IngestEncoded(ctx, dataset, contentType, "", body, key)
}

// IngestEncoded is Ingest for a compressed body: contentEncoding is "gzip"
// or "zstd" ("" means none).
func (c *Client) IngestEncoded(ctx context.Context, dataset, contentType, contentEncoding string, body []byte, key string) (*IngestResult, error) {
	if key == "" {
		key = NewIdempotencyKey()
	}
	h := http.Header{"Content-Type": {contentType}, "Idempotency-Key": {key}}
	if contentEncoding != "" {
		h.Set("Content-Encoding", contentEncoding)
	}
	if body == nil {
		body = []byte{}
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost,
		path: "/v1/datasets/" + url.PathEscape(dataset) + "/records", header: h, body: body})
	if err != nil {
		return nil, err
	}
	res := &IngestResult{Key: key, Attempts: resp.attempts}
	if err := json.Unmarshal(resp.body, res); err != nil {
		return nil, fmt.Errorf("ingest: decode response: %w", err)
	}
	return res, nil
}
