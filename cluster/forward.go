package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarding carries a follower's encoded entry to the leader, which
// commits it through Raft and answers with the FSM response and the index.
// Frames on a forward connection ('F', see transport.go), one request at a
// time per connection:
//
//	request:  op u8 | timeout_ms u32 | len u32 | payload
//	response: status u8 | index u64 | len u32 | payload
//
// op 1 = apply (payload: the entry), op 2 = read index (no payload; the
// response index is the leader's commit index after it confirmed its
// leadership). status 0 = ok (payload: response kind u8 + body: 0 nil,
// 1 *IngestResult as JSON); status 1 = error (payload: code u8 + message).
//
// WARNING: this is a wire format between nodes; extend it only with new op
// and code values.
const (
	opApply     byte = 1
	opReadIndex byte = 2

	statusOK  byte = 0
	statusErr byte = 1

	respNil    byte = 0
	respIngest byte = 1

	maxForwardFrame = 64 << 20
	maxIdlePerPeer  = 16
)

// Error codes on the wire; each maps to a sentinel so errors.Is works the
// same on the follower as on the leader.
var wireErrors = []error{
	1: ErrNotLeader,
	2: ErrRetryable,
	3: ErrUnknownDataset,
	4: ErrDatasetExists,
	5: ErrUnknownSeries,
	6: ErrSchemaMismatch,
	7: ErrShutdown,
	8: ErrUnknownDimension,
}

func wireCode(err error) byte {
	for i, s := range wireErrors {
		if s != nil && errors.Is(err, s) {
			return byte(i)
		}
	}
	return 0
}

// remoteError is an error that came back from the leader: its text is the
// leader's, and it unwraps to the matching sentinel.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func writeFrame(w *bufio.Writer, head []byte, payload []byte) error {
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(payload)))
	if _, err := w.Write(head); err != nil {
		return err
	}
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	return w.Flush()
}

func readPayload(r *bufio.Reader) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > maxForwardFrame {
		return nil, fmt.Errorf("cluster: forward frame of %d bytes exceeds %d", n, maxForwardFrame)
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return p, err
}

func encodeResp(resp any) ([]byte, error) {
	switch r := resp.(type) {
	case nil:
		return []byte{respNil}, nil
	case *IngestResult:
		b, err := json.Marshal(r)
		return append([]byte{respIngest}, b...), err
	}
	return nil, fmt.Errorf("cluster: cannot forward response %T", resp)
}

func decodeResp(p []byte) (any, error) {
	if len(p) == 0 {
		return nil, errors.New("cluster: empty forward response")
	}
	switch p[0] {
	case respNil:
		return nil, nil
	case respIngest:
		var r IngestResult
		if err := json.Unmarshal(p[1:], &r); err != nil {
			return nil, fmt.Errorf("cluster: decode forwarded ingest result: %w", err)
		}
		return &r, nil
	}
	return nil, fmt.Errorf("cluster: unknown forward response kind %d", p[0])
}

// serveForward answers forward requests on one connection until it closes.
func (c *Cluster) serveForward(conn net.Conn) {
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 16<<10)
	for {
		var head [5]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		payload, err := readPayload(r)
		if err != nil {
			return
		}
		timeout := time.Duration(binary.BigEndian.Uint32(head[1:])) * time.Millisecond
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		var (
			resp  any
			index uint64
		)
		switch head[0] {
		case opApply:
			resp, index, err = c.applyLeader(ctx, payload)
		case opReadIndex:
			index, err = c.readIndexLeader(ctx)
		default:
			err = fmt.Errorf("cluster: unknown forward op %d", head[0])
		}
		cancel()
		var out [9]byte
		var body []byte
		if err == nil {
			body, err = encodeResp(resp)
		}
		if err != nil {
			out[0] = statusErr
			body = append([]byte{wireCode(err)}, err.Error()...)
		}
		binary.BigEndian.PutUint64(out[1:], index)
		if err := writeFrame(w, out[:], body); err != nil {
			return
		}
	}
}

// forwarder keeps a few idle connections per leader address.
type forwarder struct {
	layer *netLayer
	mu    sync.Mutex
	idle  map[string][]net.Conn
}

func (f *forwarder) get(addr string, timeout time.Duration) (net.Conn, error) {
	f.mu.Lock()
	if l := f.idle[addr]; len(l) > 0 {
		c := l[len(l)-1]
		f.idle[addr] = l[:len(l)-1]
		f.mu.Unlock()
		return c, nil
	}
	f.mu.Unlock()
	return f.layer.dial(addr, connForward, timeout)
}

func (f *forwarder) put(addr string, c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle == nil {
		f.idle = map[string][]net.Conn{}
	}
	if len(f.idle[addr]) >= maxIdlePerPeer {
		_ = c.Close()
		return
	}
	f.idle[addr] = append(f.idle[addr], c)
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.idle {
		for _, c := range l {
			_ = c.Close()
		}
	}
	f.idle = nil
}

// call sends one request to the leader at addr. A transport failure after
// the request may have been sent returns an error wrapping ErrRetryable:
// the outcome is unknown, and only an idempotent retry is safe.
func (f *forwarder) call(ctx context.Context, addr string, op byte, payload []byte) (any, uint64, error) {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, 0, context.DeadlineExceeded
	}
	conn, err := f.get(addr, min(timeout, 5*time.Second))
	if err != nil {
		// Nothing was sent: the caller may retry elsewhere.
		return nil, 0, fmt.Errorf("%w: dial leader %s: %v", ErrNotLeader, addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(timeout + time.Second))
	w := bufio.NewWriterSize(conn, 16<<10)
	var head [5]byte
	head[0] = op
	binary.BigEndian.PutUint32(head[1:], uint32(timeout/time.Millisecond))
	if err := writeFrame(w, head[:], payload); err != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("%w: forward to leader %s: %v", ErrRetryable, addr, err)
	}
	r := bufio.NewReader(conn)
	var out [9]byte
	if _, err := io.ReadFull(r, out[:]); err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, fmt.Errorf("%w: forward to leader %s: %v", ErrRetryable, addr, err)
	}
	body, err := readPayload(r)
	if err != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("%w: forward to leader %s: %v", ErrRetryable, addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	f.put(addr, conn)
	index := binary.BigEndian.Uint64(out[1:])
	if out[0] == statusErr {
		if len(body) == 0 {
			return nil, index, errors.New("cluster: empty error from leader")
		}
		var s error
		if int(body[0]) < len(wireErrors) {
			s = wireErrors[body[0]]
		}
		if s == nil {
			return nil, index, errors.New(string(body[1:]))
		}
		return nil, index, &remoteError{sentinel: s, msg: string(body[1:])}
	}
	resp, err := decodeResp(body)
	return resp, index, err
}
