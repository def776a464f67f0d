package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrGaveUp is wrapped by the error of a call that was still failing with a
// retryable error after Config.MaxRetries retries. The last attempt's error
// is wrapped too.
var ErrGaveUp = errors.New("client: gave up after retries")

// retryAfterCap bounds how long a server's Retry-After can make a call wait.
const retryAfterCap = time.Minute

// APIError is a response with an error status that is not retried (or the
// last one when retries ran out): a 4xx data or usage error, a 500.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the "error" member of the JSON error body (or the raw
	// body when it was not JSON).
	Message string
	// Detail is the "detail" member, raw; nil when absent.
	Detail json.RawMessage
	// Node is the X-Demandflow-Node header of the answering node.
	Node string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("demandflow: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Stats counts a Client's traffic since New. All counters only grow.
type Stats struct {
	// Requests is the number of attempts sent (first tries and retries).
	Requests int64
	// Retries is the number of attempts that were retries.
	Retries int64
	// Failovers is how often the client moved to the next address.
	Failovers int64
}

// Client talks to a Demandflow cluster. It is safe for concurrent use and
// holds no goroutines; there is nothing to close (close idle connections
// through the Transport if needed).
type Client struct {
	cfg   Config
	addrs []string
	hc    *http.Client
	cur   atomic.Int64 // index into addrs of the current node

	requests, retries, failovers atomic.Int64
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg}
	for _, a := range cfg.Addrs {
		u, _ := normalizeAddr(a)
		c.addrs = append(c.addrs, u)
	}
	c.hc = &http.Client{
		Transport: cfg.Transport,
		// Redirects are not part of the API; a 3xx is returned as is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Addr returns the base URL the client currently sends to.
func (c *Client) Addr() string { return c.addrs[int(c.cur.Load())%len(c.addrs)] }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), Failovers: c.failovers.Load()}
}

// request is one API call, replayable on every attempt.
type request struct {
	method string
	path   string // escaped path, starting with "/"
	query  url.Values
	header http.Header
	body   []byte

	attempts int // set by do: attempts made so far
}

// response is the successful outcome of a call.
type response struct {
	status   int
	header   http.Header
	body     []byte
	node     string
	attempts int
}

// attemptError classifies one failed attempt.
type attemptError struct {
	err        error
	retry      bool          // worth another attempt
	failover   bool          // move to the next address first
	retryAfter time.Duration // server's Retry-After, 0 if none
}

// do runs req with retries and failover.
func (c *Client) do(ctx context.Context, req *request) (*response, error) {
	var last *attemptError
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if attempt > c.cfg.MaxRetries+1 {
				return nil, fmt.Errorf("%s %s: %w (%d attempts): %w", req.method, req.path, ErrGaveUp, attempt-1, last.err)
			}
			c.retries.Add(1)
			if err := sleep(ctx, c.backoff(attempt-1, last.retryAfter)); err != nil {
				return nil, fmt.Errorf("%s %s: %w (last error: %v)", req.method, req.path, err, last.err)
			}
		}
		req.attempts = attempt
		idx := c.cur.Load()
		resp, aerr := c.once(ctx, c.addrs[int(idx)%len(c.addrs)], req)
		if aerr == nil {
			resp.attempts = attempt
			return resp, nil
		}
		if !aerr.retry || ctx.Err() != nil {
			if ctx.Err() != nil && !errors.Is(aerr.err, ctx.Err()) {
				return nil, fmt.Errorf("%s %s: %w (last error: %v)", req.method, req.path, ctx.Err(), aerr.err)
			}
			return nil, aerr.err
		}
		if aerr.failover && len(c.addrs) > 1 && c.cur.CompareAndSwap(idx, (idx+1)%int64(len(c.addrs))) {
			c.failovers.Add(1)
		}
		last = aerr
	}
}

// backoff is the wait before retry n (1-based).
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, retryAfterCap)
	}
	d := c.cfg.Backoff
	for i := 1; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	// +-25% jitter spreads the retries of concurrent callers.
	return d - d/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// once sends one attempt of req to base.
func (c *Client) once(ctx context.Context, base string, req *request) (*response, *attemptError) {
	c.requests.Add(1)
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(actx, req.method, u, body)
	if err != nil {
		return nil, &attemptError{err: fmt.Errorf("%s %s: %w", req.method, req.path, err)}
	}
	if req.body != nil {
		b := req.body
		hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("User-Agent", c.cfg.UserAgent)
	if c.cfg.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	hresp, err := c.hc.Do(hr)
	if err != nil {
		// Network error or attempt timeout: the request may or may not have
		// been processed; callers that care send an Idempotency-Key.
		return nil, &attemptError{err: fmt.Errorf("%s %s: %w", req.method, base+req.path, err), retry: true, failover: true}
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, c.cfg.MaxResponseBytes+1))
	if err == nil && int64(len(b)) > c.cfg.MaxResponseBytes {
		return nil, &attemptError{err: fmt.Errorf("%s %s: response body over %d bytes", req.method, req.path, c.cfg.MaxResponseBytes)}
	}
	if err != nil {
		return nil, &attemptError{err: fmt.Errorf("%s %s: read response: %w", req.method, base+req.path, err), retry: true, failover: true}
	}
	node := hresp.Header.Get("X-Demandflow-Node")
	if hresp.StatusCode < 400 {
		return &response{status: hresp.StatusCode, header: hresp.Header, body: b, node: node}, nil
	}
	ae := &APIError{Status: hresp.StatusCode, Node: node}
	var eb struct {
		Error  string          `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		ae.Message, ae.Detail = eb.Error, eb.Detail
	} else {
		ae.Message = strings.TrimSpace(string(b))
	}
	out := &attemptError{err: ae}
	switch s := hresp.StatusCode; {
	case s == http.StatusTooManyRequests:
		out.retry, out.retryAfter = true, parseRetryAfter(hresp.Header.Get("Retry-After"))
	case s == http.StatusServiceUnavailable:
		out.retry, out.failover, out.retryAfter = true, true, parseRetryAfter(hresp.Header.Get("Retry-After"))
	case s == http.StatusBadGateway, s == http.StatusGatewayTimeout, s == http.StatusMisdirectedRequest:
		out.retry, out.failover = true, true
	case strings.Contains(strings.ToLower(ae.Message), "not leader"):
		out.retry, out.failover = true, true
	}
	return nil, out
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unparsable.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// getJSON GETs path and decodes the JSON body into out.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) (*response, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return nil, fmt.Errorf("GET %s: decode response: %w", path, err)
		}
	}
	return resp, nil
}

// Get GETs an API path (such as "/v1/status") with query q and returns the
// raw JSON body. It is the escape hatch for endpoints without a typed
// method; it retries like every call.
func (c *Client) Get(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(resp.body), nil
}

// NewIdempotencyKey returns a random key suitable for Ingest
// ("df-" + 32 hex digits).
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand documents it)
	return "df-" + hex.EncodeToString(b[:])
}
